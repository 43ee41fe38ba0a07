// One client connection of the gateway: a coroutine on its I/O thread that reads requests,
// authenticates and routes them, streams bodies in and out, and hands every ObjectApi call to
// the worker pool. Internal to the gateway (gateway.cc starts these).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <unordered_set>

#include "common/credentials.h"
#include "s3/gateway.h"
#include "s3/handlers.h"

namespace granary::s3 {

// What every connection shares. Immutable after Start() except the atomics.
struct GatewayShared {
  ObjectApi* api = nullptr;
  SecretLookup secrets;
  GatewayOptions options;
  HandlerContext handler;
  boost::asio::thread_pool* workers = nullptr;
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
};

// One I/O thread: its io_context and the connections it owns. `live` is touched only on that
// thread.
struct IoShard {
  boost::asio::io_context context{1};
  std::unordered_set<boost::beast::tcp_stream*> live;
};

// Serves `socket` (whose executor is shard.context's) until the client closes, the idle timeout
// passes, an error ends the connection or the gateway stops.
boost::asio::awaitable<void> ServeConnection(GatewayShared& shared, IoShard& shard,
                                             boost::asio::ip::tcp::socket socket);

}  // namespace granary::s3
