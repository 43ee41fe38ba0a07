#include "tools/redis_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace granary::tools {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// ---- RedisServer ----

std::string RedisServer::FindExecutable() {
  if (::access("/usr/bin/redis-server", X_OK) == 0) return "/usr/bin/redis-server";
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::vector<std::string> RedisServer::ArgList() const {
  // Persistence off (the KV pool under test has no disk tier either); everything else, threads
  // included (io-threads 1), is Redis's default.
  const std::pair<const char*, std::string> settings[] = {
      {"--port", std::to_string(port_)},
      {"--bind", "127.0.0.1"},
      {"--save", ""},
      {"--appendonly", "no"},
      {"--protected-mode", "no"},
      {"--daemonize", "no"},
      {"--dir", dir_},
  };
  std::vector<std::string> args;
  for (const auto& [name, value] : settings) {
    args.push_back(name);
    args.push_back(value);
  }
  return args;
}

std::string RedisServer::Args() const {
  std::string out;
  for (const std::string& a : ArgList()) {
    if (!out.empty()) out += ' ';
    out += a.empty() ? "\"\"" : a;
  }
  return out;
}

Result<std::unique_ptr<RedisServer>> RedisServer::Start(const std::string& executable,
                                                        const std::string& dir) {
  const std::string log = dir + "/redis.log";
  Status last = Status::Unavailable("redis-server did not start");
  // The free port may be taken between our probe and Redis's bind: try a few.
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::unique_ptr<RedisServer> server(new RedisServer());
    server->dir_ = dir;
    ASSIGN_OR_RETURN(server->port_, FreeLoopbackPort());
    ASSIGN_OR_RETURN(server->process_,
                     ChildProcess::Spawn(executable, server->ArgList(), dir, log));
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    bool exited = false;
    while (Clock::now() < deadline) {
      std::string how;
      if (server->process_->Exited(&how)) {
        exited = true;
        last = Status::Unavailable(executable + " exited at startup (" + how + "); its log " +
                                   log + " ends: " + FileTail(log, 600));
        break;
      }
      auto client = RedisClient::Connect(server->port_);
      if (client.ok() && (*client)->Ping().ok()) return server;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exited) {
      server->Stop();
      return Status::Unavailable(executable + " did not answer PING on port " +
                                 std::to_string(server->port_) + " within 10 s; its log " + log +
                                 " ends: " + FileTail(log, 600));
    }
  }
  return last;
}

RedisServer::~RedisServer() { Stop(); }

void RedisServer::Stop() {
  if (process_ != nullptr) process_->Stop();
}

// ---- RedisClient ----

Result<std::unique_ptr<RedisClient>> RedisClient::Connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::Unavailable("cannot connect to Redis on 127.0.0.1:" + std::to_string(port) +
                               ": " + std::strerror(err));
  }
  return std::unique_ptr<RedisClient>(new RedisClient(fd));
}

RedisClient::~RedisClient() {
  if (fd_ >= 0) ::close(fd_);
}

Status RedisClient::Broken(Status status) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return status;
}

Status RedisClient::Send(std::span<const std::string_view> pieces) {
  if (fd_ < 0) return Status::Unavailable("the Redis connection is closed after an error");
  constexpr size_t kMaxPieces = 8;
  if (pieces.size() > kMaxPieces) return Status::Internal("too many pieces for one sendmsg");
  iovec iov[kMaxPieces];
  size_t count = 0;
  for (std::string_view p : pieces) {
    if (!p.empty()) iov[count++] = {const_cast<char*>(p.data()), p.size()};
  }
  size_t first = 0;
  while (first < count) {
    msghdr msg{};
    msg.msg_iov = iov + first;
    msg.msg_iovlen = count - first;
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Broken(Status::Unavailable(std::string("sending to Redis: ") + std::strerror(errno)));
    }
    size_t sent = static_cast<size_t>(n);
    while (first < count && sent >= iov[first].iov_len) sent -= iov[first++].iov_len;
    if (first < count) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + sent;
      iov[first].iov_len -= sent;
    }
  }
  return Status::OK();
}

Status RedisClient::Fill() {
  if (fd_ < 0) return Status::Unavailable("the Redis connection is closed after an error");
  if (pos_ > 0) {
    std::memmove(buf_, buf_ + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == kLineBuffer) return Broken(Status::Internal("a Redis reply line exceeds 4 KiB"));
  while (true) {
    const ssize_t n = ::recv(fd_, buf_ + end_, kLineBuffer - end_, 0);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      return Status::OK();
    }
    if (n < 0 && errno == EINTR) continue;
    return Broken(
        Status::Unavailable(n == 0 ? std::string("Redis closed the connection")
                                   : std::string("receiving from Redis: ") + std::strerror(errno)));
  }
}

Result<std::string_view> RedisClient::ReadLine() {
  size_t scanned = pos_;
  while (true) {
    const char* lf = static_cast<const char*>(std::memchr(buf_ + scanned, '\n', end_ - scanned));
    if (lf != nullptr) {
      const size_t end = static_cast<size_t>(lf - buf_);
      if (end == pos_ || buf_[end - 1] != '\r') {
        return Broken(Status::Corruption("a Redis reply line does not end with CRLF"));
      }
      std::string_view line(buf_ + pos_, end - 1 - pos_);
      pos_ = end + 1;
      return line;
    }
    const size_t scanned_len = end_ - pos_;
    RETURN_IF_ERROR(Fill());  // moves the unconsumed bytes to the front
    scanned = scanned_len;
  }
}

Result<int64_t> RedisClient::ReadHeader(char type) {
  ASSIGN_OR_RETURN(std::string_view line, ReadLine());
  if (!line.empty() && line[0] == '-') {
    return Status::IOError("Redis answered: " + std::string(line.substr(1)));
  }
  int64_t value = 0;
  if (line.empty() || line[0] != type ||
      std::from_chars(line.data() + 1, line.data() + line.size(), value).ec != std::errc()) {
    return Broken(Status::Corruption("unexpected Redis reply line \"" +
                                     std::string(line.substr(0, 64)) + "\" where '" +
                                     std::string(1, type) + "' was expected"));
  }
  return value;
}

Status RedisClient::ReadBulk(char* dst, size_t n) {
  const size_t buffered = std::min(end_ - pos_, n);
  std::memcpy(dst, buf_ + pos_, buffered);
  pos_ += buffered;
  size_t done = buffered;
  if (done < n) {
    pos_ = end_ = 0;  // everything buffered was consumed
    // The rest of the value goes straight into `dst`; what follows it (its CRLF, the next
    // header line) lands in a short tail of the line buffer, so that at most a few hundred
    // bytes of the next value are copied.
    constexpr size_t kTail = 256;
    while (done < n) {
      if (fd_ < 0) return Status::Unavailable("the Redis connection is closed after an error");
      iovec iov[2] = {{dst + done, n - done}, {buf_, kTail}};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = 2;
      const ssize_t r = ::recvmsg(fd_, &msg, 0);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        return Broken(Status::Unavailable(r == 0 ? std::string("Redis closed the connection")
                                                 : std::string("receiving from Redis: ") +
                                                       std::strerror(errno)));
      }
      const size_t got = static_cast<size_t>(r);
      if (got <= n - done) {
        done += got;
      } else {
        end_ = got - (n - done);
        done = n;
      }
    }
  }
  while (end_ - pos_ < 2) RETURN_IF_ERROR(Fill());
  if (buf_[pos_] != '\r' || buf_[pos_ + 1] != '\n') {
    return Broken(Status::Corruption("a Redis bulk reply is longer than its header says"));
  }
  pos_ += 2;
  return Status::OK();
}

void RedisClient::Encode(std::string_view command, std::span<const std::string_view> args,
                         size_t more) {
  request_ = "*" + std::to_string(1 + args.size() + more) + "\r\n";
  auto bulk = [&](std::string_view a) {
    request_ += "$" + std::to_string(a.size()) + "\r\n";
    request_.append(a);
    request_ += "\r\n";
  };
  bulk(command);
  for (std::string_view a : args) bulk(a);
}

Result<std::string> RedisClient::Call(std::string_view command,
                                      std::span<const std::string_view> args) {
  Encode(command, args, 0);
  const std::string_view piece = request_;
  RETURN_IF_ERROR(Send(std::span<const std::string_view>(&piece, 1)));
  ASSIGN_OR_RETURN(std::string_view line, ReadLine());
  if (line.empty()) return Broken(Status::Corruption("an empty Redis reply line"));
  switch (line[0]) {
    case '+':
    case ':':
      return std::string(line.substr(1));
    case '-':
      return Status::IOError("Redis answered: " + std::string(line.substr(1)));
    case '$': {
      int64_t n = 0;
      if (std::from_chars(line.data() + 1, line.data() + line.size(), n).ec != std::errc()) {
        return Broken(Status::Corruption("a malformed Redis bulk header"));
      }
      if (n < 0) return Status::NotFound("Redis answered nil");
      std::string out(static_cast<size_t>(n), '\0');
      RETURN_IF_ERROR(ReadBulk(out.data(), out.size()));
      return out;
    }
    default:
      return Broken(
          Status::Corruption("an unexpected Redis reply type '" + std::string(1, line[0]) + "'"));
  }
}

Status RedisClient::Ping() {
  Result<std::string> reply = Call("PING");
  if (!reply.ok()) return reply.status();
  if (reply.value() != "PONG") {
    return Status::Corruption("Redis answered PING with " + reply.value());
  }
  return Status::OK();
}

Status RedisClient::FlushAll() { return Call("FLUSHALL").status(); }

Result<std::string> RedisClient::Info(std::string_view section) {
  return Call("INFO", std::span<const std::string_view>(&section, 1));
}

Status RedisClient::Set(std::string_view key, std::string_view value) {
  // The value's header ends the request; the value itself is sent from the caller's memory.
  Encode("SET", std::span<const std::string_view>(&key, 1), 1);
  request_ += "$" + std::to_string(value.size()) + "\r\n";
  const std::string_view pieces[] = {request_, value, "\r\n"};
  RETURN_IF_ERROR(Send(pieces));
  ASSIGN_OR_RETURN(std::string_view line, ReadLine());
  if (line == "+OK") return Status::OK();
  if (!line.empty() && line[0] == '-') {
    return Status::IOError("Redis answered SET with: " + std::string(line.substr(1)));
  }
  return Broken(Status::Corruption("Redis answered SET with \"" + std::string(line) + "\""));
}

Status RedisClient::MGetInto(std::span<const std::string_view> keys,
                             std::span<const std::span<char>> buffers, std::span<int64_t> sizes) {
  if (keys.size() != buffers.size() || keys.size() != sizes.size()) {
    return Status::InvalidArgument("MGET of " + std::to_string(keys.size()) + " keys into " +
                                   std::to_string(buffers.size()) + " buffers and " +
                                   std::to_string(sizes.size()) + " sizes");
  }
  Encode("MGET", keys, 0);
  const std::string_view piece = request_;
  RETURN_IF_ERROR(Send(std::span<const std::string_view>(&piece, 1)));
  ASSIGN_OR_RETURN(int64_t count, ReadHeader('*'));
  if (count != static_cast<int64_t>(keys.size())) {
    return Broken(Status::Corruption("Redis answered MGET of " + std::to_string(keys.size()) +
                                     " keys with " + std::to_string(count) + " values"));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSIGN_OR_RETURN(int64_t n, ReadHeader('$'));
    sizes[i] = n < 0 ? -1 : n;
    if (n < 0) continue;
    if (static_cast<uint64_t>(n) > buffers[i].size()) {
      return Broken(Status::InvalidArgument("a Redis value of " + std::to_string(n) +
                                            " bytes does not fit its buffer of " +
                                            std::to_string(buffers[i].size())));
    }
    RETURN_IF_ERROR(ReadBulk(buffers[i].data(), static_cast<size_t>(n)));
  }
  return Status::OK();
}

}  // namespace granary::tools
