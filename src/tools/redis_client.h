// Redis for the KV benchmark's baseline (`granary bench kv`): a redis-server child process on
// loopback, and a minimal client of its RESP2 protocol (SET, MGET, PING, FLUSHALL, INFO) over one
// blocking TCP connection.
//
// The client is the most favourable one for Redis: a command goes out in one sendmsg (the value
// gathered from the caller's memory, not copied), and a bulk reply's bytes are received straight
// into the caller's buffer once its header line is parsed. Only the few bytes that arrive in the
// same receive as a header line are copied, from a 4 KiB line buffer.
//
// Thread-safety: a RedisClient is used by one thread at a time (one connection per thread, as
// Redis clients do). A RedisServer is started and stopped from one thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tools/child_process.h"

namespace granary::tools {

// A redis-server child process on 127.0.0.1 with persistence off.
class RedisServer {
 public:
  // The redis-server executable: /usr/bin/redis-server or one on PATH; empty if there is none.
  static std::string FindExecutable();

  // Starts `executable` on a free loopback port with `dir` as its working directory (its log is
  // DIR/redis.log) and returns once it answers PING. The settings given on its command line are
  // Args(); everything else is Redis's default. kUnavailable (with the log's tail) if it exits or
  // does not answer within 10 s.
  static Result<std::unique_ptr<RedisServer>> Start(const std::string& executable,
                                                    const std::string& dir);
  ~RedisServer();  // Stop()s
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  // "--port 41234 --bind 127.0.0.1 ...": the settings it was started with, for reports.
  std::string Args() const;

  // SIGTERM, then waits for the process (SIGKILL after 10 s). Idempotent.
  void Stop();

 private:
  RedisServer() = default;
  std::vector<std::string> ArgList() const;

  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
  std::string dir_;
};

class RedisClient {
 public:
  // Connects to 127.0.0.1:`port` with TCP_NODELAY. kUnavailable if nothing accepts.
  static Result<std::unique_ptr<RedisClient>> Connect(uint16_t port);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  Status Ping();
  Status FlushAll();
  // INFO `section`'s text ("# Server\r\nredis_version:7.0.15\r\n...").
  Result<std::string> Info(std::string_view section);
  Status Set(std::string_view key, std::string_view value);
  // MGET of `keys`: the value of keys[i] lands in buffers[i] and its size in sizes[i], or -1
  // when the key is missing. kInvalidArgument when the counts differ or a value is larger than
  // its buffer (the connection is then closed: the rest of the reply is not read).
  Status MGetInto(std::span<const std::string_view> keys, std::span<const std::span<char>> buffers,
                  std::span<int64_t> sizes);

  // After any failure but kInvalidArgument for mismatched counts, the connection is closed and
  // every later call fails with kUnavailable.

 private:
  explicit RedisClient(int fd) : fd_(fd) {}
  // Sends every byte of `pieces` with as few sendmsg calls as the kernel allows.
  Status Send(std::span<const std::string_view> pieces);
  // Sets request_ to the start of a command: its count of arguments (`command`, `args` and
  // `more` the caller appends), then `command` and `args` as bulk strings.
  void Encode(std::string_view command, std::span<const std::string_view> args, size_t more);
  // Sends `command` with `args` and reads a status, integer or bulk string reply.
  Result<std::string> Call(std::string_view command, std::span<const std::string_view> args = {});
  // The next line of the reply, without its CRLF; valid until the next read.
  Result<std::string_view> ReadLine();
  // A bulk string's `n` bytes and its CRLF: what is buffered is copied, the rest received into
  // `dst` directly.
  Status ReadBulk(char* dst, size_t n);
  // A line starting with `type` ('*', '$', ':') and its integer; an error reply becomes a Status.
  Result<int64_t> ReadHeader(char type);
  // Receives more bytes into the line buffer. kUnavailable at end of file.
  Status Fill();
  Status Broken(Status status);

  int fd_ = -1;
  static constexpr size_t kLineBuffer = 4096;
  char buf_[kLineBuffer];
  size_t pos_ = 0;  // buf_[pos_, end_) is received and not yet consumed
  size_t end_ = 0;
  std::string request_;  // reused for command headers
};

}  // namespace granary::tools
