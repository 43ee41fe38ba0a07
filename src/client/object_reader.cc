// The client's ObjectReader. Open() sends one GET whose response carries the object's info, the
// resolved range and its first chunk_bytes; that payload stays on the connection until Read()
// takes it straight into the caller's buffer. A Read() into a buffer larger than a chunk fetches
// the rest as parallel ranged GETs, each pinned to the version of the first response
// (Conditions::if_version) and each read straight into its place in the caller's buffer: a large
// Get or GetInto moves every byte once, from the socket to its destination.
#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "client/client_impl.h"
#include "rpc/object_convert.h"

namespace granary::client {

using rpc::Lease;
namespace {

// Sends a GET and reads its response header. On success the payload waits on `*lease`.
Status SendGet(Client::Impl& impl, const proto::GetRequest& req, rpc::Deadline deadline,
               Lease* lease, proto::GetResponse* resp, uint64_t* payload_length) {
  for (int attempt = 0;; ++attempt) {
    Result<Lease> acquired = impl.pool().Acquire(deadline);
    if (!acquired.ok()) {
      if (impl.ShouldRetry(acquired.status(), attempt)) continue;
      return acquired.status();
    }
    rpc::ClientConnection& conn = *acquired->get();
    rpc::Response r;
    Status st = conn.Send(proto::GET, req, {}, deadline);
    if (st.ok()) st = conn.ReadResponse(&r, deadline);
    if (!st.ok()) {
      if (conn.broken() && std::chrono::steady_clock::now() < deadline &&
          impl.ShouldRetry(st, attempt)) {
        continue;  // GET is idempotent
      }
      return st;
    }
    if (!r.status.ok()) return r.status;  // an error carries no payload
    RETURN_IF_ERROR(ParseResponse(r, resp));
    *payload_length = r.payload_length;
    *lease = std::move(*acquired);
    return Status::OK();
  }
}

// A ranged read of [pos, pos + n) of the reader's range into `dst`, as its own request.
struct RangeSpec {
  Client::Impl* impl;
  std::string bucket;
  std::string key;
  uint64_t base_offset;  // the reader's resolved offset
  uint64_t version;
  // When the destination lies in a shared buffer: the buffer, and where it is mapped here. Each
  // ranged GET then has the server write its bytes there.
  uint64_t shared_buffer = 0;
  const char* shared_base = nullptr;
};

Status FetchRange(const RangeSpec& spec, uint64_t pos, uint64_t n, char* dst) {
  proto::GetRequest req;
  req.set_bucket(spec.bucket);
  req.set_key(spec.key);
  req.mutable_options()->set_offset(spec.base_offset + pos);
  req.mutable_options()->set_length(n);
  req.mutable_options()->mutable_conditions()->set_if_version(spec.version);
  req.set_max_bytes(n);
  const bool shared = spec.shared_base != nullptr;
  if (shared) {
    req.mutable_into()->set_buffer(spec.shared_buffer);
    req.mutable_into()->set_offset(static_cast<uint64_t>(dst - spec.shared_base));
    req.mutable_into()->set_length(n);
  }
  rpc::Deadline deadline = spec.impl->NewDeadline();
  for (int attempt = 0;; ++attempt) {
    Lease lease;
    proto::GetResponse resp;
    uint64_t payload = 0;
    Status st = SendGet(*spec.impl, req, deadline, &lease, &resp, &payload);
    if (st.code() == Code::kPreconditionFailed) {
      return st.WithContext("object changed while it was being read (version " +
                            std::to_string(spec.version) + "); read it again");
    }
    RETURN_IF_ERROR(st);
    const uint64_t got = shared ? resp.shared_bytes() : payload;
    if (got != n || (shared && payload != 0) || resp.info().version() != spec.version) {
      return Status::Internal("ranged GET of " + std::to_string(n) + " bytes returned " +
                              std::to_string(got) + " bytes of version " +
                              std::to_string(resp.info().version()));
    }
    if (shared) return Status::OK();  // the server wrote them in place
    st = lease->ReadPayload(dst, n, deadline);
    if (st.ok()) return st;
    if (!spec.impl->ShouldRetry(st, attempt)) return st;
  }
}

// The chunks of one large Read(), claimed in order by the calling thread and by workers.
struct ChunkJob {
  RangeSpec spec;
  uint64_t start = 0;  // range position of chunk 0
  uint64_t bytes = 0;  // all chunks together
  uint64_t chunk = 0;
  char* dst = nullptr;  // where chunk 0 goes
  size_t count = 0;

  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0;      // GUARDED_BY(mu): next chunk to claim
  size_t finished = 0;  // GUARDED_BY(mu): claimed chunks done (or skipped after an error)
  Status error;         // GUARDED_BY(mu): the first failure

  // Claims and fetches chunks until none is left.
  void Run() {
    for (;;) {
      size_t i;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (next >= count) return;
        i = next++;
        if (!error.ok()) {
          ++finished;
          cv.notify_all();
          continue;
        }
      }
      uint64_t off = i * chunk;
      uint64_t n = std::min(chunk, bytes - off);
      Status st = FetchRange(spec, start + off, n, dst + off);
      std::lock_guard<std::mutex> lock(mu);
      if (!st.ok() && error.ok()) error = st;
      ++finished;
      cv.notify_all();
    }
  }

  Status Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return finished == count; });
    return error;
  }
};

// Fetches [start, start + bytes) of the range of `spec` into `dst` in chunks, on the calling
// thread and up to parallel_chunks - 1 workers. `first` (may be null) runs on the calling thread
// before it joins in; its failure fails the whole.
Status FetchParallel(const RangeSpec& spec, uint64_t start, uint64_t bytes, char* dst,
                     const std::function<Status()>& first) {
  const ClientOptions& options = spec.impl->options();
  auto job = std::make_shared<ChunkJob>();
  job->spec = spec;
  job->start = start;
  job->bytes = bytes;
  job->chunk = options.chunk_bytes;
  job->dst = dst;
  job->count = static_cast<size_t>((bytes + job->chunk - 1) / job->chunk);
  // The calling thread is one of the parallel_chunks readers.
  size_t helpers = std::min<size_t>(job->count, options.parallel_chunks - 1);
  if (!first && helpers == job->count) --helpers;
  for (size_t i = 0; i < helpers; ++i) spec.impl->workers().Submit([job] { job->Run(); });
  if (first) {
    Status st = first();
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(job->mu);
      if (job->error.ok()) job->error = st;
    }
  }
  job->Run();
  return job->Wait();
}

class Reader final : public ObjectReader {
 public:
  Reader(Client::Impl& impl, RangeSpec spec, ObjectInfo info, uint64_t length, Lease lease,
         uint64_t first_payload)
      : impl_(impl),
        spec_(std::move(spec)),
        info_(std::move(info)),
        length_(length),
        active_(std::move(lease)),
        active_left_(first_payload) {
    if (active_left_ == 0) active_.Reset();
  }

  const ObjectInfo& info() const override { return info_; }
  uint64_t offset() const override { return spec_.base_offset; }
  uint64_t length() const override { return length_; }

  Result<size_t> Read(std::span<char> buf) override {
    if (!failed_.ok()) return failed_;
    if (pos_ >= length_ || buf.empty()) return size_t{0};
    uint64_t want = std::min<uint64_t>(buf.size(), length_ - pos_);
    uint64_t chunk = impl_.options().chunk_bytes;
    Status st;
    size_t got = 0;
    if (want > active_left_ && want - active_left_ > chunk) {
      st = ReadParallel(buf.data(), want);
      got = want;
    } else {
      if (active_left_ == 0) {
        // Sequential reading in small buffers: one chunk at a time on one connection.
        st = FetchNextChunk(std::min<uint64_t>(chunk, length_ - pos_));
      }
      if (st.ok()) {
        got = static_cast<size_t>(std::min(want, active_left_));
        st = ReadActive(buf.data(), got);
      }
    }
    if (!st.ok()) {
      failed_ = st;
      active_.Reset();
      return st;
    }
    pos_ += got;
    return got;
  }

 private:
  // Reads `n` bytes of the pending payload on the active connection.
  Status ReadActive(char* dst, uint64_t n) {
    if (n == 0) return Status::OK();
    RETURN_IF_ERROR(active_->ReadPayload(dst, n, impl_.NewDeadline()));
    active_left_ -= n;
    if (active_left_ == 0) active_.Reset();
    return Status::OK();
  }

  Status FetchNextChunk(uint64_t n) {
    proto::GetRequest req;
    req.set_bucket(spec_.bucket);
    req.set_key(spec_.key);
    req.mutable_options()->set_offset(spec_.base_offset + pos_);
    req.mutable_options()->set_length(n);
    req.mutable_options()->mutable_conditions()->set_if_version(spec_.version);
    req.set_max_bytes(n);
    proto::GetResponse resp;
    uint64_t payload = 0;
    Status st = SendGet(impl_, req, impl_.NewDeadline(), &active_, &resp, &payload);
    if (st.code() == Code::kPreconditionFailed) {
      return st.WithContext("object changed while it was being read (version " +
                            std::to_string(spec_.version) + "); read it again");
    }
    RETURN_IF_ERROR(st);
    if (payload != n) {
      active_.Reset();
      return Status::Internal("ranged GET of " + std::to_string(n) + " bytes returned " +
                              std::to_string(payload));
    }
    active_left_ = payload;
    return Status::OK();
  }

  // Fills dst[0, want): the pending payload on this thread, the rest in parallel chunks.
  Status ReadParallel(char* dst, uint64_t want) {
    const uint64_t head = active_left_;
    std::function<Status()> first;
    if (head != 0) first = [&] { return ReadActive(dst, head); };
    return FetchParallel(spec_, pos_ + head, want - head, dst + head, first);
  }

  Client::Impl& impl_;
  const RangeSpec spec_;
  const ObjectInfo info_;
  const uint64_t length_;
  uint64_t pos_ = 0;  // bytes of the range returned so far
  Lease active_;      // holds a response whose payload continues the range at pos_
  uint64_t active_left_ = 0;
  Status failed_;
};

// The first GET of an object: its range as asked, and the first chunk of it.
proto::GetRequest FirstGet(const Client::Impl& impl, std::string_view bucket, std::string_view key,
                           const GetOptions& options) {
  proto::GetRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  rpc::ToProto(options, req.mutable_options());
  req.set_max_bytes(impl.options().chunk_bytes);
  return req;
}

}  // namespace

Result<std::unique_ptr<ObjectReader>> OpenReader(Client::Impl& impl, std::string_view bucket,
                                                 std::string_view key, const GetOptions& options) {
  proto::GetRequest req = FirstGet(impl, bucket, key, options);
  Lease lease;
  proto::GetResponse resp;
  uint64_t payload = 0;
  RETURN_IF_ERROR(SendGet(impl, req, impl.NewDeadline(), &lease, &resp, &payload));
  if (payload > resp.length()) {
    return Status::Internal("GET response payload exceeds its range");
  }
  RangeSpec spec{&impl, std::string(bucket), std::string(key), resp.offset(),
                 resp.info().version()};
  return std::unique_ptr<ObjectReader>(new Reader(impl, std::move(spec),
                                                  rpc::FromProto(resp.info()), resp.length(),
                                                  std::move(lease), payload));
}

Result<size_t> GetShared(Client::Impl& impl, std::string_view bucket, std::string_view key,
                         std::span<char> buf, const proto::SharedRange& range,
                         const GetOptions& options) {
  proto::GetRequest req = FirstGet(impl, bucket, key, options);
  *req.mutable_into() = range;
  Lease lease;
  proto::GetResponse resp;
  uint64_t payload = 0;
  RETURN_IF_ERROR(SendGet(impl, req, impl.NewDeadline(), &lease, &resp, &payload));
  lease.Reset();  // nothing is pending on it (else it is closed)
  const uint64_t length = resp.length();
  if (payload != 0 || resp.shared_bytes() > std::min<uint64_t>(length, buf.size())) {
    return Status::Internal("GET into a shared buffer answered " + std::to_string(payload) +
                            " payload bytes and " + std::to_string(resp.shared_bytes()) +
                            " written");
  }
  if (length > buf.size()) {
    return Status::InvalidArgument("buffer of " + std::to_string(buf.size()) +
                                   " bytes is too small for the " + std::to_string(length) +
                                   " bytes requested");
  }
  const uint64_t done = resp.shared_bytes();
  if (done < length) {
    RangeSpec spec{&impl,           std::string(bucket),  std::string(key),
                   resp.offset(),   resp.info().version(), range.buffer(),
                   buf.data() - range.offset()};
    RETURN_IF_ERROR(FetchParallel(spec, done, length - done, buf.data() + done, nullptr));
  }
  return static_cast<size_t>(length);
}

}  // namespace granary::client
