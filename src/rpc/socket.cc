#include "rpc/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "rpc/socket_impl.h"

namespace granary::rpc {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Waits until `fd` is ready for `events` or the deadline passes. kUnavailable on timeout.
constexpr int64_t kConnectTimeoutMs = 5'000;

Status WaitFor(int fd, short events, Deadline deadline, const std::string& peer) {
  for (;;) {
    int timeout_ms = -1;
    bool last = false;  // the deadline has passed: one look at what is already there
    if (deadline != NoDeadline()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      last = left <= 0;
      timeout_ms = last ? 0 : static_cast<int>(std::min<int64_t>(left + 1, 1 << 30));
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r > 0) return Status::OK();  // readable, writable, hung up or in error: the call says which
    if (r < 0 && errno != EINTR) return Status::FromErrno(errno, "poll on " + peer);
    if (r == 0 && last) return Status::Unavailable("timed out waiting for " + peer);
  }
}

}  // namespace

Result<HostPort> ParseHostPort(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::InvalidArgument("address \"" + std::string(address) +
                                   "\" is not host:port (for example 127.0.0.1:9100)");
  }
  HostPort out;
  std::string_view host = address.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) {
      return Status::InvalidArgument("address \"" + std::string(address) +
                                     "\": an IPv6 host is written [addr]:port");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Status::InvalidArgument("address \"" + std::string(address) +
                                   "\": write an IPv6 host in brackets, [addr]:port");
  }
  std::string_view port = address.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return Status::InvalidArgument("address \"" + std::string(address) + "\": port \"" +
                                   std::string(port) + "\" is not a number from 0 to 65535");
  }
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(value);
  return out;
}

Result<std::unique_ptr<Socket>> Socket::Impl::Wrap(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  if (!ec) socket.non_blocking(true, ec);
  if (ec) return Status::IOError("configuring a socket: " + ec.message());
  // A peer that vanishes (its host cut off the network or powered down) sends no reset: a
  // connection waiting on it is found dead by keepalives within about 6 s, and data it does not
  // acknowledge is given up after 10 s, so that callers fail over instead of hanging.
  const int fd = socket.native_handle();
  const int on = 1, idle_s = 3, interval_s = 1, probes = 3;
  const unsigned user_timeout_ms = 10'000;
  if (::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
                   sizeof(user_timeout_ms)) != 0) {
    return Status::FromErrno(errno, "configuring a socket's keepalives");
  }
  auto impl = std::make_unique<Impl>(std::move(socket));
  auto remote = impl->socket_.remote_endpoint(ec);
  if (ec) {
    impl->peer_ = "(unknown peer)";
  } else if (remote.address().is_v6()) {
    impl->peer_ = "[" + remote.address().to_string() + "]:" + std::to_string(remote.port());
  } else {
    impl->peer_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }
  return std::make_unique<Socket>(std::move(impl));
}

Socket::Socket(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Socket::~Socket() = default;

Result<std::unique_ptr<Socket>> Socket::Connect(asio::io_context& io, std::string_view address,
                                                Deadline deadline) {
  // A connection that takes longer is to a host that is down or cut off: the caller learns it
  // soon and may try another node, whatever its own deadline.
  deadline = std::min(deadline, DeadlineAfterMs(kConnectTimeoutMs));
  ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(address));
  boost::system::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  auto ip = asio::ip::make_address(hp.host, ec);
  if (!ec) {
    endpoints.emplace_back(ip, hp.port);
  } else {
    tcp::resolver resolver(io);
    auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
    if (ec) {
      return Status::Unavailable("cannot resolve \"" + hp.host + "\": " + ec.message());
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  std::string last_error = "no address";
  for (const tcp::endpoint& ep : endpoints) {
    tcp::socket socket(io);
    socket.open(ep.protocol(), ec);
    if (ec) {
      last_error = ec.message();
      continue;
    }
    socket.non_blocking(true, ec);
    // connect(2) itself: Asio's synchronous connect waits for the handshake however long the
    // kernel retries, whatever the socket's mode, and so past the deadline.
    if (!ec && ::connect(socket.native_handle(), ep.data(), ep.size()) != 0) {
      ec.assign(errno, boost::system::system_category());
    }
    if (ec == asio::error::in_progress || ec == asio::error::would_block) {
      Status waited = WaitFor(socket.native_handle(), POLLOUT, deadline, std::string(address));
      if (!waited.ok()) {
        last_error = waited.message();
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
      ec.assign(err, boost::system::system_category());
    }
    if (ec) {
      last_error = ec.message();
      continue;
    }
    return Impl::Wrap(std::move(socket));
  }
  return Status::Unavailable("cannot connect to " + std::string(address) + ": " + last_error);
}

Status Socket::ReadFull(void* buf, size_t n, Deadline deadline, bool* clean_eof) {
  if (clean_eof) *clean_eof = false;
  char* p = static_cast<char*>(buf);
  Impl& s = *impl_;
  auto shut_down = [&] {
    return Status::Unavailable("connection to " + s.peer_ + " was shut down");
  };
  if (s.shut_down_.load(std::memory_order_relaxed)) return shut_down();
  size_t done = std::min(n, s.read_end_ - s.read_pos_);
  if (done != 0) {
    std::memcpy(p, s.read_buffer_.get() + s.read_pos_, done);
    s.read_pos_ += done;
  }
  while (done < n) {
    if (s.shut_down_.load(std::memory_order_relaxed)) return shut_down();
    if (s.drained_) {
      RETURN_IF_ERROR(WaitFor(s.socket_.native_handle(), POLLIN, deadline, s.peer_));
      s.drained_ = false;
      continue;  // woken perhaps by Shutdown(): look again first
    }
    boost::system::error_code ec;
    const size_t want = n - done;
    if (want >= Impl::kReadBufferBytes) {
      // A large payload streams in: more has usually arrived by the next read.
      done += s.socket_.read_some(asio::buffer(p + done, want), ec);
    } else {
      // The buffer is empty here: fill it with whatever has arrived, take what is asked for.
      if (!s.read_buffer_) s.read_buffer_ = std::make_unique<char[]>(Impl::kReadBufferBytes);
      const size_t got =
          s.socket_.read_some(asio::buffer(s.read_buffer_.get(), Impl::kReadBufferBytes), ec);
      const size_t take = std::min(got, want);
      std::memcpy(p + done, s.read_buffer_.get(), take);
      done += take;
      s.read_pos_ = take;
      s.read_end_ = got;
      s.drained_ = got < Impl::kReadBufferBytes;
    }
    if (!ec) continue;
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      s.drained_ = true;
      continue;
    }
    if (ec == asio::error::interrupted) continue;
    if (ec == asio::error::eof) {
      if (done == 0 && clean_eof) *clean_eof = true;
      return Status::Unavailable("connection closed by " + s.peer_ +
                                 (done == 0 ? "" : " in the middle of a message"));
    }
    return Status::Unavailable("reading from " + s.peer_ + ": " + ec.message());
  }
  return Status::OK();
}

Status Socket::WriteAll(std::span<const std::string_view> pieces, Deadline deadline) {
  // Asio gathers at most 64 buffers per call; larger requests go in rounds.
  constexpr size_t kMaxIov = 64;
  std::array<asio::const_buffer, kMaxIov> bufs;
  size_t index = 0;   // first piece not fully written
  size_t offset = 0;  // bytes of pieces[index] already written
  while (index < pieces.size()) {
    if (impl_->shut_down_.load(std::memory_order_relaxed)) {
      return Status::Unavailable("connection to " + impl_->peer_ + " was shut down");
    }
    size_t count = 0;
    for (size_t i = index; i < pieces.size() && count < kMaxIov; ++i) {
      size_t skip = i == index ? offset : 0;
      if (pieces[i].size() == skip) continue;
      bufs[count++] = asio::const_buffer(pieces[i].data() + skip, pieces[i].size() - skip);
    }
    if (count == 0) break;
    boost::system::error_code ec;
    size_t wrote =
        impl_->socket_.write_some(std::span<const asio::const_buffer>(bufs.data(), count), ec);
    while (wrote > 0 && index < pieces.size()) {
      size_t left = pieces[index].size() - offset;
      if (wrote >= left) {
        wrote -= left;
        ++index;
        offset = 0;
      } else {
        offset += wrote;
        wrote = 0;
      }
    }
    while (index < pieces.size() && pieces[index].size() == offset) {
      ++index;
      offset = 0;
    }
    if (!ec) continue;
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      RETURN_IF_ERROR(WaitFor(impl_->socket_.native_handle(), POLLOUT, deadline, impl_->peer_));
      continue;
    }
    if (ec == asio::error::interrupted) continue;
    return Status::Unavailable("writing to " + impl_->peer_ + ": " + ec.message());
  }
  return Status::OK();
}

bool Socket::LooksAlive() {
  if (impl_->shut_down_.load(std::memory_order_relaxed)) return false;
  if (impl_->read_pos_ != impl_->read_end_) return false;  // bytes nobody asked for
  char byte;
  ssize_t r = ::recv(impl_->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (r == 0) return false;  // end of file
  if (r > 0) return false;   // bytes nobody asked for
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

bool Socket::Readable() {
  if (impl_->read_pos_ != impl_->read_end_) return true;
  pollfd p{impl_->socket_.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

void Socket::Shutdown() {
  impl_->shut_down_.store(true, std::memory_order_relaxed);
  ::shutdown(impl_->socket_.native_handle(), SHUT_RDWR);
}

const std::string& Socket::peer() const { return impl_->peer_; }

}  // namespace granary::rpc
