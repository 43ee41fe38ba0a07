// Socket: one TCP connection (Boost.Asio underneath) with blocking calls bounded by deadlines.
// Small reads are served from a buffer that one system call fills with whatever has arrived (a
// message's prefix, header and small payload together); large reads land straight in the
// caller's memory. Writes gather several pieces into one sendmsg.
//
// Thread-safety: one thread at a time uses a Socket, except Shutdown(), which any thread may
// call at any time to wake the user out of a blocked call (as Server::Stop does).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace boost::asio {
class io_context;
}

namespace granary::rpc {

using Deadline = std::chrono::steady_clock::time_point;
inline Deadline NoDeadline() { return Deadline::max(); }
inline Deadline DeadlineAfterMs(int64_t ms) {
  if (ms <= 0) return NoDeadline();
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

// "host:port" or "[v6]:port" split in two. kInvalidArgument when malformed.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
Result<HostPort> ParseHostPort(std::string_view address);

class Socket {
 public:
  class Impl;
  explicit Socket(std::unique_ptr<Impl> impl);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Connects to "host:port" (names resolved), with TCP_NODELAY and keepalives that find a
  // vanished peer within seconds. kUnavailable if nothing accepts there before the deadline or
  // within 5 s, kInvalidArgument for a malformed address.
  // The socket belongs to `io` (only its executor is used: calls are synchronous).
  static Result<std::unique_ptr<Socket>> Connect(boost::asio::io_context& io,
                                                 std::string_view address, Deadline deadline);

  // Reads exactly `n` bytes into `buf`. kUnavailable when the peer closes the connection or the
  // deadline passes; `*clean_eof` (when given) is set if the peer closed before the first byte.
  Status ReadFull(void* buf, size_t n, Deadline deadline, bool* clean_eof = nullptr);
  // Writes every byte of every piece, in order, with as few system calls as the kernel allows.
  Status WriteAll(std::span<const std::string_view> pieces, Deadline deadline);
  Status WriteAll(std::string_view data, Deadline deadline) {
    return WriteAll(std::span<const std::string_view>(&data, 1), deadline);
  }

  // True if the connection seems usable: no end-of-file, error or unexpected bytes are pending.
  // Never blocks. Used before reusing an idle pooled connection.
  bool LooksAlive();

  // True if bytes (or end-of-file) are waiting to be read. Never blocks.
  bool Readable();

  // Shuts both directions down; blocked and later calls fail with kUnavailable. Thread-safe.
  void Shutdown();

  // "127.0.0.1:41234", for logs.
  const std::string& peer() const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::rpc
