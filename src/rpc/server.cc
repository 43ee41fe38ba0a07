#include "rpc/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <list>
#include <mutex>
#include <thread>

#include <google/protobuf/message_lite.h>

#include "common/logging.h"
#include "common/mutex.h"
#include "rpc/server_connection.h"
#include "rpc/socket_impl.h"

namespace granary::rpc {
namespace asio = boost::asio;

bool ParseBody(const ServerCall& call, google::protobuf::MessageLite* message) {
  return message->ParseFromArray(call.body().data(), static_cast<int>(call.body().size()));
}

Status ReadWholePayload(ServerCall& call, uint64_t max_bytes, std::string_view what,
                        std::string* out) {
  if (call.payload_chunked() || call.payload_length() > max_bytes) {
    return Status::InvalidArgument(std::string(what) + " is one payload of at most " +
                                   std::to_string(max_bytes) + " bytes");
  }
  out->resize(call.payload_length());
  for (size_t got = 0; got < out->size();) {
    ASSIGN_OR_RETURN(size_t n, call.ReadPayload(std::span<char>(*out).subspan(got)));
    if (n == 0) return Status::Unavailable(std::string(what) + " cut short");
    got += n;
  }
  return Status::OK();
}
using asio::ip::tcp;

constexpr int kReapIntervalMs = 1000;

class Server::Impl {
 public:
  Impl(ServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        verifier_(options_.secrets, options_.clock),
        acceptor_(io_) {}

  ~Impl() {
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  Status Listen() {
    ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(options_.listen));
    boost::system::error_code ec;
    tcp::endpoint endpoint;
    auto ip = asio::ip::make_address(hp.host, ec);
    if (!ec) {
      endpoint = tcp::endpoint(ip, hp.port);
    } else {
      tcp::resolver resolver(io_);
      auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
      if (ec || results.empty()) {
        return Status::InvalidArgument("cannot resolve listen address \"" + options_.listen +
                                       "\": " + ec.message());
      }
      endpoint = results.begin()->endpoint();
    }
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) acceptor_.non_blocking(true, ec);
    if (ec) {
      return Status::Unavailable("cannot listen on " + options_.listen + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return Status::FromErrno(errno, "eventfd");
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return Status::OK();
  }

  void Stop() {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_.store(true);
    if (accept_thread_.joinable()) {
      uint64_t one = 1;
      if (::write(wake_fd_, &one, sizeof(one)) < 0) {
        GLOG_ERROR("rpc: cannot wake the accept thread: errno {}", errno);
      }
      accept_thread_.join();
    }
    boost::system::error_code ec;
    acceptor_.close(ec);
    std::list<std::unique_ptr<Conn>> conns;
    {
      MutexLock lock(&mu_);
      conns.swap(conns_);
    }
    for (auto& c : conns) c->connection->Shutdown();
    for (auto& c : conns) c->thread.join();
  }

  uint16_t port() const { return port_; }

 private:
  struct Conn {
    std::unique_ptr<ServerConnection> connection;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop() {
    while (!stopping_.load()) {
      pollfd fds[2] = {{acceptor_.native_handle(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      // Wakes now and then to join the threads of connections that ended meanwhile.
      int r = ::poll(fds, 2, kReapIntervalMs);
      if (r < 0) {
        if (errno == EINTR) continue;
        GLOG_ERROR("rpc: poll on the listener failed: errno {}", errno);
        return;
      }
      if (r == 0) {
        MutexLock lock(&mu_);
        Reap();
        continue;
      }
      if (fds[1].revents != 0 || stopping_.load()) return;
      boost::system::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again ||
          ec == asio::error::interrupted || ec == asio::error::connection_aborted) {
        continue;
      }
      if (ec) {
        // Out of descriptors or memory: back off briefly instead of spinning on the error.
        GLOG_WARN("rpc: accept on port {} failed: {}", port_, ec.message());
        pollfd wake{wake_fd_, POLLIN, 0};
        ::poll(&wake, 1, 100);
        continue;
      }
      Result<std::unique_ptr<Socket>> wrapped = Socket::Impl::Wrap(std::move(socket));
      if (!wrapped.ok()) {
        GLOG_WARN("rpc: dropping a new connection: {}", wrapped.status().ToString());
        continue;
      }
      MutexLock lock(&mu_);
      Reap();
      if (static_cast<int>(conns_.size()) >= options_.max_connections) {
        GLOG_WARN("rpc: refusing connection from {}: {} connections open (the limit)",
                  (*wrapped)->peer(), conns_.size());
        continue;  // the socket closes as `wrapped` goes
      }
      auto conn = std::make_unique<Conn>();
      conn->connection =
          std::make_unique<ServerConnection>(std::move(*wrapped), options_, handler_, verifier_);
      Conn* raw = conn.get();
      conn->thread = std::thread([raw] {
        raw->connection->Serve();
        // The peer sees the close now; the descriptor goes when the thread is joined.
        raw->connection->Shutdown();
        raw->done.store(true);
      });
      conns_.push_back(std::move(conn));
    }
  }

  // Joins the threads of connections that have ended.
  void Reap() REQUIRES(mu_) {
    for (auto it = conns_.begin(); it != conns_.end();) {
      if ((*it)->done.load()) {
        (*it)->thread.join();
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }

  const ServerOptions options_;
  const Handler handler_;
  HelloVerifier verifier_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  int wake_fd_ = -1;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  bool stopped_ = false;
  Mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_ GUARDED_BY(mu_);
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler handler) {
  if (!handler) return Status::InvalidArgument("rpc::Server needs a handler");
  if (options.max_connections < 1) {
    return Status::InvalidArgument("max_connections must be at least 1");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
  RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->port(); }
void Server::Stop() { impl_->Stop(); }

}  // namespace granary::rpc
