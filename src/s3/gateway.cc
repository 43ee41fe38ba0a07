// The gateway's listener, I/O threads and worker pool (gateway.h).
#include "s3/gateway.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <future>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "s3/connection.h"

namespace granary::s3 {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class Gateway::Impl {
 public:
  Impl(ObjectApi& api, SecretLookup secrets, GatewayOptions options)
      : workers_(static_cast<size_t>(options.worker_threads)) {
    shared_.api = &api;
    shared_.secrets = std::move(secrets);
    shared_.handler.api = &api;
    shared_.handler.region = options.region;
    shared_.options = std::move(options);
    shared_.workers = &workers_;
    for (int i = 0; i < shared_.options.threads; ++i) {
      shards_.push_back(std::make_unique<IoShard>());
      guards_.emplace_back(asio::make_work_guard(shards_.back()->context));
    }
    acceptor_.emplace(shards_[0]->context);
  }

  ~Impl() { Stop(); }

  Status Listen() {
    std::string_view listen = shared_.options.listen;
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("listen address \"" + std::string(listen) +
                                     "\" must be host:port, e.g. 127.0.0.1:9000");
    }
    std::string host(listen.substr(0, colon));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    std::string_view port_text = listen.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
      return Status::InvalidArgument("listen address \"" + std::string(listen) +
                                     "\" has an invalid port");
    }
    boost::system::error_code err;
    asio::ip::address address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, err);
    if (err) {
      return Status::InvalidArgument("listen address \"" + std::string(listen) +
                                     "\": \"" + host + "\" is not an IP address");
    }
    tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
    acceptor_->open(endpoint.protocol(), err);
    if (!err) acceptor_->set_option(asio::socket_base::reuse_address(true), err);
    if (!err) acceptor_->bind(endpoint, err);
    if (!err) acceptor_->listen(asio::socket_base::max_listen_connections, err);
    if (err) {
      return Status::IOError("cannot listen on " + std::string(listen) + ": " + err.message());
    }
    port_ = acceptor_->local_endpoint().port();
    return Status::OK();
  }

  void Run() {
    asio::co_spawn(shards_[0]->context, AcceptLoop(), asio::detached);
    for (auto& shard : shards_) {
      threads_.emplace_back([ctx = &shard->context] { ctx->run(); });
    }
    GLOG_INFO("s3 gateway listening on port {} ({} I/O threads, {} workers)", port_,
              shards_.size(), shared_.options.worker_threads);
  }

  uint16_t port() const { return port_; }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    shared_.stopping.store(true);
    asio::post(shards_[0]->context, [this] {
      boost::system::error_code ec;
      acceptor_->close(ec);
    });
    for (auto& shard : shards_) {
      asio::post(shard->context, [s = shard.get()] {
        // Closing cancels every pending operation; each connection's coroutine then ends.
        for (boost::beast::tcp_stream* stream : s->live) stream->close();
      });
    }
    guards_.clear();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    workers_.join();
  }

 private:
  asio::awaitable<void> AcceptLoop() {
    constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
    size_t next = 0;
    for (;;) {
      IoShard& shard = *shards_[next++ % shards_.size()];
      auto [ec, socket] = co_await acceptor_->async_accept(shard.context, kNoThrow);
      if (shared_.stopping.load()) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
        // Out of descriptors or a similar transient failure: back off briefly, keep serving.
        GLOG_WARN("s3 gateway: accept failed: {}", ec.message());
        asio::steady_timer pause(acceptor_->get_executor(), std::chrono::milliseconds(50));
        co_await pause.async_wait(kNoThrow);
        continue;
      }
      if (shared_.connections.load(std::memory_order_relaxed) >=
          shared_.options.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(shard.context, ServeConnection(shared_, shard, std::move(socket)),
                     asio::detached);
    }
  }

  GatewayShared shared_;
  asio::thread_pool workers_;
  std::vector<std::unique_ptr<IoShard>> shards_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::optional<tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Gateway::~Gateway() { Stop(); }

uint16_t Gateway::port() const { return impl_->port(); }

void Gateway::Stop() { impl_->Stop(); }

Result<std::unique_ptr<Gateway>> Gateway::Start(ObjectApi& api, SecretLookup secrets,
                                                GatewayOptions options) {
  if (options.threads < 1 || options.worker_threads < 1) {
    return Status::InvalidArgument("the gateway needs at least one I/O thread and one worker");
  }
  if (options.max_header_bytes < 1024 || options.idle_timeout_s < 1 ||
      options.max_connections < 1) {
    return Status::InvalidArgument(
        "max_header_bytes must be at least 1024, idle_timeout_s and max_connections at least 1");
  }
  if (!secrets) return Status::InvalidArgument("the gateway needs a SecretLookup");
  auto impl = std::make_unique<Impl>(api, std::move(secrets), std::move(options));
  if (Status st = impl->Listen(); !st.ok()) {
    impl->Stop();
    return st;
  }
  impl->Run();
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

}  // namespace granary::s3
