// Socket's Asio side, shared by socket.cc and the server's acceptor (server.cc) only: kept out of
// socket.h so that users of Socket do not compile Asio.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "rpc/socket.h"

namespace granary::rpc {

class Socket::Impl {
 public:
  // Takes a connected socket; sets TCP_NODELAY and Asio's non-blocking mode (blocking is done
  // with poll(), which honours deadlines).
  static Result<std::unique_ptr<Socket>> Wrap(boost::asio::ip::tcp::socket socket);

  explicit Impl(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

  boost::asio::ip::tcp::socket socket_;
  std::string peer_;
  std::atomic<bool> shut_down_{false};
};

}  // namespace granary::rpc
