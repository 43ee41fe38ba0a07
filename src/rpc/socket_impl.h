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

  // Reads of at least this many bytes bypass the buffer.
  static constexpr size_t kReadBufferBytes = 16 * 1024;

  boost::asio::ip::tcp::socket socket_;
  std::string peer_;
  std::atomic<bool> shut_down_{false};
  // Bytes received and not yet read: read_buffer_[read_pos_, read_end_). Allocated at first use.
  std::unique_ptr<char[]> read_buffer_;
  size_t read_pos_ = 0;
  size_t read_end_ = 0;
  // The last read took everything that had arrived: the next one most likely has to wait, so it
  // polls first rather than read, fail and poll.
  bool drained_ = false;
};

}  // namespace granary::rpc
