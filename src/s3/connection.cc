// The per-connection coroutine (connection.h).
//
// Each request: read the header (bounded by max_header_bytes, idle timeout), answer /health,
// authenticate on the I/O thread (CPU only), route, then by the operation's body kind:
//   stream  PutObject / UploadPart: the body is read in pieces of kPieceBytes; the worker pool
//           appends piece k while the connection reads piece k+1 (one piece ahead at most, so
//           TCP flow control is the backpressure). A small body is one worker call.
//   xml     read whole (bounded), then one worker call decodes, verifies and handles it.
//   none    one worker call; a GetObject's first piece comes back with the response and the
//           rest is streamed, the worker reading piece k+1 while piece k is written.
// Content-Length bodies are read from the socket straight into the piece buffer; only
// Transfer-Encoding: chunked bodies go through Beast's parser.
#include "s3/connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include "common/clock.h"
#include "common/logging.h"
#include "s3/auth.h"
#include "s3/errors.h"
#include "s3/http_time.h"
#include "s3/upload.h"

namespace granary::s3 {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kPieceBytes = 1 << 20;
// XML request bodies: at most this much payload (and twice that raw, for aws-chunked framing).
constexpr size_t kMaxXmlBody = 1 << 20;
// A body nobody asked for (e.g. on a GET) is read and dropped up to this size.
constexpr uint64_t kMaxIgnoredBody = 64 << 10;

using Parser = http::request_parser<http::buffer_body>;

// A blocking call running on the worker pool; the connection awaits it with Wait().
template <typename R>
struct Job {
  explicit Job(const asio::any_io_executor& ex) : timer(ex) {
    timer.expires_at(asio::steady_timer::time_point::max());
  }
  std::optional<R> result;
  bool done = false;
  asio::steady_timer timer;  // cancelled when the result is in
};

template <typename F>
auto StartJob(GatewayShared& sh, const asio::any_io_executor& ex, F f) {
  using R = std::invoke_result_t<F&>;
  auto job = std::make_shared<Job<R>>(ex);
  asio::post(*sh.workers, [job, ex, f = std::move(f)]() mutable {
    R r = f();
    asio::post(ex, [job, r = std::move(r)]() mutable {
      job->result.emplace(std::move(r));
      job->done = true;
      job->timer.cancel();
    });
  });
  return job;
}

template <typename R>
asio::awaitable<R> Wait(std::shared_ptr<Job<R>> job) {
  while (!job->done) co_await job->timer.async_wait(kNoThrow);
  co_return std::move(*job->result);
}

template <typename F>
auto OnWorker(GatewayShared& sh, F f) -> asio::awaitable<std::invoke_result_t<F&>> {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await Wait(StartJob(sh, ex, std::move(f)));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

class Connection {
 public:
  Connection(GatewayShared& sh, IoShard& shard, tcp::socket socket)
      : sh_(sh), shard_(shard), stream_(std::move(socket)),
        buffer_(sh.options.max_header_bytes + 8192) {
    shard_.live.insert(&stream_);
    sh_.connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~Connection() {
    shard_.live.erase(&stream_);
    sh_.connections.fetch_sub(1, std::memory_order_relaxed);
  }

  asio::awaitable<void> Run() {
    while (!sh_.stopping.load(std::memory_order_relaxed)) {
      bool keep_alive = co_await ServeOne();
      if (!keep_alive) break;
    }
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

 private:
  std::chrono::seconds Idle() const { return std::chrono::seconds(sh_.options.idle_timeout_s); }

  // Serves one request; false when the connection must close.
  asio::awaitable<bool> ServeOne() {
    parser_.emplace();
    expect_continue_ = false;
    parser_->header_limit(static_cast<uint32_t>(sh_.options.max_header_bytes));
    parser_->body_limit(boost::none);
    stream_.expires_after(Idle());
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, *parser_, kNoThrow);
    (void)n;
    if (ec) {
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        co_await SendBareError(431, "RequestHeaderSectionTooLarge",
                               "Your request header section exceeds the maximum allowed size.");
      } else if (ec.category() == beast::http::make_error_code(http::error::bad_method).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message) {
        co_await SendBareError(400, "BadRequest", "The request could not be parsed as HTTP/1.1.");
      }
      co_return false;
    }
    stream_.expires_never();

    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.request_id = NewRequestId();
    req.headers.reserve(16);
    for (const auto& field : msg) {
      req.headers.emplace_back(Lower(field.name_string()), std::string(field.value()));
    }
    if (auto cl = parser_->content_length()) {
      req.has_content_length = true;
      req.content_length = *cl;
    }
    req.chunked_transfer = parser_->chunked();
    keep_alive_ = msg.keep_alive();
    expect_continue_ = Lower(req.HeaderOr("expect")) == "100-continue";
    body_remaining_ = req.content_length;

    if ((req.method == "GET" || req.method == "HEAD") && req.target == "/health") {
      Response r;
      r.body = "ok";
      r.AddHeader("Content-Type", "text/plain");
      if (req.method == "HEAD") {
        r.omit_body = true;
        r.content_length = 2;
        r.body.clear();
      }
      co_return co_await Finish(req, std::move(r));
    }

    // Authenticate on this thread: it is CPU work of a few microseconds.
    RequestView view{req.method, req.target, std::move(req.headers)};
    int64_t now_s = static_cast<int64_t>(SystemClock::Default()->WallMicros() / 1000000);
    Result<AuthContext> auth = Authenticate(view, sh_.secrets, now_s);
    req.headers = std::move(view.headers);
    if (!auth.ok()) co_return co_await Finish(req, ErrorResponse(auth.status(), req));
    req.access_key = auth->access_key;
    if (Status st = ResolveTarget(req.HeaderOr("host"), sh_.options.domains, &req); !st.ok()) {
      co_return co_await Finish(req, ErrorResponse(st, req));
    }
    Op op = Route(req);
    switch (BodyKindOf(op)) {
      case BodyKind::kStream: co_return co_await ServeUpload(op, std::move(req), *auth);
      case BodyKind::kXml: co_return co_await ServeXml(op, std::move(req), *auth);
      case BodyKind::kNone: break;
    }
    if (HasBody(req)) {
      if (req.chunked_transfer || req.content_length > kMaxIgnoredBody) {
        keep_alive_ = false;  // not worth reading: answer, then close
      } else {
        std::string ignored;
        if (Status st = co_await ReadAll(req, kMaxIgnoredBody, &ignored); !st.ok()) {
          co_return co_await FailBody(req, st);
        }
      }
    }
    Response resp = co_await OnWorker(sh_, [this, op, &req] {
      return HandleRequest(op, req, {}, sh_.handler);
    });
    co_return co_await Finish(req, std::move(resp));
  }

  static bool HasBody(const Request& req) {
    return req.chunked_transfer || (req.has_content_length && req.content_length > 0);
  }

  bool BodyDone() const {
    return parser_->chunked() ? parser_->is_done() : body_remaining_ == 0;
  }

  // Reads the next body bytes into `dst` (up to `cap`); 0 at the end of the body. An error when
  // the client closed early or the framing is broken.
  asio::awaitable<Result<size_t>> ReadSome(char* dst, size_t cap) {
    if (BodyDone() || cap == 0) co_return size_t{0};
    if (expect_continue_) {
      expect_continue_ = false;
      if (beast::error_code ec = co_await SendContinue()) co_return Truncated(ec);
    }
    stream_.expires_after(Idle());
    if (!parser_->chunked()) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(cap, body_remaining_));
      if (buffer_.size() > 0) {
        size_t n = std::min(want, buffer_.size());
        std::memcpy(dst, buffer_.data().data(), n);
        buffer_.consume(n);
        body_remaining_ -= n;
        co_return n;
      }
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(dst, want), kNoThrow);
      if (ec) co_return Truncated(ec);
      body_remaining_ -= n;
      co_return n;
    }
    auto& body = parser_->get().body();
    body.data = dst;
    body.size = cap;
    auto [ec, n] = co_await http::async_read_some(stream_, buffer_, *parser_, kNoThrow);
    (void)n;
    if (ec && ec != http::error::need_buffer) co_return Truncated(ec);
    co_return cap - body.size;
  }

  // Writes "100 Continue".
  asio::awaitable<beast::error_code> SendContinue() {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(Idle());
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(kContinue), kNoThrow);
    (void)n;
    co_return ec;
  }

  static Status Truncated(const beast::error_code& ec) {
    if (ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return S3Status(Code::kInvalidArgument, "IncompleteBody",
                      "the request body's chunked encoding is broken (" + ec.message() +
                          "): each chunk is its size in hex, CRLF, its bytes, CRLF; the last "
                          "chunk has size 0");
    }
    return S3Status(Code::kInvalidArgument, "IncompleteBody",
                    "the request body ended early: " + ec.message());
  }

  // The body could not be read (broken framing, a client that stopped sending or is gone):
  // nothing is stored; answer with `st` (a client that is gone does not read it) and close,
  // since the rest of the body cannot be told from a next request.
  asio::awaitable<bool> FailBody(const Request& req, const Status& st,
                                 std::unique_ptr<Upload>* upload = nullptr) {
    keep_alive_ = false;
    co_await Finish(req, ErrorResponse(st, req), upload);
    co_return false;
  }

  // Reads until `dst` holds `cap` bytes or the body ends.
  asio::awaitable<Result<size_t>> Fill(char* dst, size_t cap) {
    size_t got = 0;
    while (got < cap && !BodyDone()) {
      Result<size_t> n = co_await ReadSome(dst + got, cap - got);
      if (!n.ok()) co_return n.status();
      if (*n == 0) break;
      got += *n;
    }
    co_return got;
  }

  // Reads the whole body into `out`; kInvalidArgument MaxMessageLengthExceeded over `max`.
  asio::awaitable<Status> ReadAll(const Request& req, size_t max, std::string* out) {
    if (req.has_content_length && req.content_length > max) {
      co_return S3Status(Code::kInvalidArgument, "MaxMessageLengthExceeded",
                         "Your request was too big: at most " + std::to_string(max) +
                             " bytes are accepted for this operation");
    }
    out->resize(req.has_content_length ? req.content_length : 0);
    size_t got = 0;
    for (;;) {
      if (got == out->size()) {
        if (BodyDone()) break;
        if (out->size() >= max) {
          co_return S3Status(Code::kInvalidArgument, "MaxMessageLengthExceeded",
                             "Your request was too big: at most " + std::to_string(max) +
                                 " bytes are accepted for this operation");
        }
        out->resize(std::min(max, std::max<size_t>(out->size() * 2, 16 << 10)));
      }
      Result<size_t> n = co_await ReadSome(out->data() + got, out->size() - got);
      if (!n.ok()) co_return n.status();
      if (*n == 0 && BodyDone()) break;
      got += *n;
    }
    out->resize(got);
    co_return Status::OK();
  }

  asio::awaitable<bool> ServeXml(Op op, Request req, AuthContext auth) {
    std::string raw;
    if (Status st = co_await ReadAll(req, 2 * kMaxXmlBody, &raw); !st.ok()) {
      keep_alive_ = false;
      co_return co_await Finish(req, ErrorResponse(st, req));
    }
    Response resp = co_await OnWorker(sh_, [this, op, &req, &auth, &raw]() -> Response {
      Result<std::unique_ptr<BodyDecoder>> decoder = BodyDecoder::Make(req, auth);
      if (!decoder.ok()) return ErrorResponse(decoder.status(), req);
      std::string_view payload;
      Status st = (*decoder)->Feed(raw, &payload);
      std::string body(payload);
      if (st.ok()) st = (*decoder)->Finish();
      if (st.ok() && body.size() > kMaxXmlBody) {
        st = S3Status(Code::kInvalidArgument, "MaxMessageLengthExceeded",
                      "Your request was too big: XML bodies are limited to " +
                          std::to_string(kMaxXmlBody) + " bytes");
      }
      if (!st.ok()) return ErrorResponse(st, req);
      return HandleRequest(op, req, body, sh_.handler);
    });
    co_return co_await Finish(req, std::move(resp));
  }

  asio::awaitable<bool> ServeUpload(Op op, Request req, AuthContext auth) {
    // A body of known, small length gets a buffer of its size, not a whole piece.
    size_t first_cap = kPieceBytes;
    if (!req.chunked_transfer && req.has_content_length) {
      first_cap = static_cast<size_t>(std::min<uint64_t>(req.content_length, kPieceBytes));
    }
    std::unique_ptr<char[]> cur(new char[first_cap]);
    std::unique_ptr<char[]> next;
    Result<size_t> n = co_await Fill(cur.get(), first_cap);
    if (!n.ok()) co_return co_await FailBody(req, n.status());
    std::unique_ptr<Upload> upload;
    bool end = BodyDone();
    // The first piece goes with Begin (and, for a small body, with Finish): one worker call.
    Result<Response> first = co_await OnWorker(
        sh_, [&, len = *n]() -> Result<Response> {
          Result<Response> r = [&]() -> Result<Response> {
            ASSIGN_OR_RETURN(upload, Upload::Begin(op, req, auth, *sh_.api));
            RETURN_IF_ERROR(upload->Feed(std::string_view(cur.get(), len)));
            if (end) return upload->Finish();
            return Response{};
          }();
          if (!r.ok() || end) upload.reset();  // done with it: drop it here, not in a new hop
          return r;
        });
    if (!first.ok() || end) {
      if (!first.ok() && !end) keep_alive_ = false;
      Response resp = first.ok() ? std::move(first).value() : ErrorResponse(first.status(), req);
      co_return co_await Finish(req, std::move(resp), &upload);
    }
    // Pipeline: a worker feeds one piece while the next is read here.
    if (first_cap < kPieceBytes) cur.reset(new char[kPieceBytes]);  // never, with a whole body
    next.reset(new char[kPieceBytes]);
    auto ex = co_await asio::this_coro::executor;
    std::shared_ptr<Job<Status>> job;
    Status failed;
    for (;;) {
      Result<size_t> got = co_await Fill(cur.get(), kPieceBytes);
      Status fed;
      if (job) fed = co_await Wait(job);
      job.reset();
      // Abandons the upload (Finish drops it on a worker: it may reclaim data).
      if (!got.ok()) co_return co_await FailBody(req, got.status(), &upload);
      if (!fed.ok()) {
        failed = fed;
        break;
      }
      if (BodyDone()) {
        Result<Response> last = co_await OnWorker(sh_, [&, len = *got]() -> Result<Response> {
          Status fed = upload->Feed(std::string_view(cur.get(), len));
          Result<Response> r = fed.ok() ? upload->Finish() : Result<Response>(fed);
          upload.reset();
          return r;
        });
        Response resp = last.ok() ? std::move(last).value() : ErrorResponse(last.status(), req);
        co_return co_await Finish(req, std::move(resp), &upload);
      }
      job = StartJob(sh_, ex, [&upload, p = cur.get(), len = *got] {
        return upload->Feed(std::string_view(p, len));
      });
      std::swap(cur, next);
    }
    co_return co_await Finish(req, ErrorResponse(failed, req), &upload);
  }

  // A response without a request (the header could not be read); the connection closes.
  asio::awaitable<void> SendBareError(unsigned status, std::string_view code,
                                      std::string_view message) {
    Request req;
    req.request_id = NewRequestId();
    Response r;
    r.status = status;
    r.body = ErrorXml(S3Error{std::string(code), status, std::string(message)}, "/",
                      req.request_id);
    r.AddHeader("Content-Type", "application/xml");
    keep_alive_ = false;
    co_await Write(req, std::move(r));
  }

  // Writes the response (and drops the upload, on a worker, if one is left), then says whether
  // the connection stays open.
  asio::awaitable<bool> Finish(const Request& req, Response resp,
                               std::unique_ptr<Upload>* upload = nullptr) {
    if (upload != nullptr && *upload) {
      // Destroying an uncommitted writer reclaims its data: disk work, so on a worker.
      co_await OnWorker(sh_, [upload] { upload->reset(); return 0; });
    }
    if (!BodyDone()) keep_alive_ = false;  // unread body bytes would be taken as a request
    if (expect_continue_) {
      // The client waits for "100 Continue" before it sends a body, and none was needed. With
      // an empty body, send it anyway, as S3 does: botocore (1.29 at least) misreads the next
      // answer on a connection whose Expect got a final status straight away. With a body left
      // unread the connection closes (above), which botocore copes with.
      expect_continue_ = false;
      if (keep_alive_ && (co_await SendContinue())) co_return false;
    }
    bool ok = co_await Write(req, std::move(resp));
    co_return ok && keep_alive_ && !sh_.stopping.load(std::memory_order_relaxed);
  }

  asio::awaitable<bool> Write(const Request& req, Response resp) {
    http::response<http::string_body> res;
    res.result(resp.status);
    res.version(11);
    res.set(http::field::server, "Granary");
    res.set(http::field::date, FormatRfc1123(static_cast<int64_t>(
                                   SystemClock::Default()->WallMicros() * 1000)));
    res.set("x-amz-request-id", req.request_id);
    for (auto& [name, value] : resp.headers) res.insert(name, value);
    uint64_t length = resp.reader || resp.omit_body ? resp.content_length : resp.body.size();
    if (resp.status != 204 && resp.status != 304 && resp.status >= 200) {
      res.set(http::field::content_length, std::to_string(length));
    }
    res.keep_alive(keep_alive_);
    if (!resp.omit_body && resp.status != 304 && resp.status != 204) {
      res.body() = std::move(resp.body);
    }
    size_t first = res.body().size();
    std::unique_ptr<ObjectReader> reader = std::move(resp.reader);
    uint64_t rest = reader ? length - first : 0;
    // Read the next piece on a worker while this one is written.
    std::unique_ptr<char[]> cur, next;
    std::shared_ptr<Job<Result<size_t>>> job;
    auto ex = co_await asio::this_coro::executor;
    auto start_read = [&](char* dst) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(rest, kPieceBytes));
      job = StartJob(sh_, ex, [r = reader.get(), dst, want]() -> Result<size_t> {
        size_t got = 0;
        while (got < want) {
          ASSIGN_OR_RETURN(size_t k, r->Read(std::span<char>(dst + got, want - got)));
          if (k == 0) return Status::Internal("object ended before its stated length");
          got += k;
        }
        return got;
      });
    };
    if (rest > 0) {
      cur.reset(new char[kPieceBytes]);
      next.reset(new char[kPieceBytes]);
      start_read(cur.get());
    }
    stream_.expires_after(Idle());
    auto [ec, n] = co_await http::async_write(stream_, res, kNoThrow);
    (void)n;
    bool ok = !ec;
    while (rest > 0) {
      Result<size_t> got = co_await Wait(job);
      if (!ok || !got.ok()) {
        if (!got.ok()) GLOG_WARN("s3: GET {} failed mid-stream: {}", req.Resource(), got.status().ToString());
        ok = false;
        break;
      }
      rest -= *got;
      std::swap(cur, next);
      if (rest > 0) start_read(cur.get());
      stream_.expires_after(Idle());
      auto [wec, wn] = co_await asio::async_write(stream_, asio::buffer(next.get(), *got), kNoThrow);
      (void)wn;
      ok = !wec;
    }
    // Never leave a read running; its result no longer matters.
    if (rest > 0 && job && !job->done) (void)(co_await Wait(job));
    if (reader) co_await OnWorker(sh_, [&reader] { reader.reset(); return 0; });
    stream_.expires_never();
    co_return ok;
  }

  GatewayShared& sh_;
  IoShard& shard_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  bool keep_alive_ = true;
  bool expect_continue_ = false;
  uint64_t body_remaining_ = 0;
};

}  // namespace

asio::awaitable<void> ServeConnection(GatewayShared& shared, IoShard& shard, tcp::socket socket) {
  if (shared.stopping.load()) co_return;
  Connection conn(shared, shard, std::move(socket));
  co_await conn.Run();
}

}  // namespace granary::s3
