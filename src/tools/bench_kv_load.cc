#include "tools/bench_kv_load.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <thread>

namespace granary::tools {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Runs fn(t) on `threads` threads and joins them.
void Parallel(int threads, const std::function<void(int)>& fn) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(fn, t);
  for (auto& th : pool) th.join();
}

KvFigure FigureOf(const LoadResult& r, uint64_t bytes_per_op) {
  KvFigure f;
  f.gib_s = r.seconds > 0 ? static_cast<double>(r.ops * bytes_per_op) / r.seconds / kGiB : 0;
  f.details = {{"gib_per_sec", f.gib_s},
               {"ops", r.ops},
               {"seconds", r.seconds},
               {"bytes_per_op", bytes_per_op},
               {"p50_ms", r.latency.Percentile(50) / 1e6},
               {"p99_ms", r.latency.Percentile(99) / 1e6}};
  return f;
}

}  // namespace

Workload::Workload(uint64_t size, size_t count, int clients, int max_batch)
    : size_(size),
      count_(count),
      keys_(count, kKvBenchKeyBytes, 0x6b76 + size),
      values_(new char[count * size]) {
  orders_.resize(static_cast<size_t>(clients));
  buffers_.resize(static_cast<size_t>(clients));
  Parallel(clients, [&](int t) {
    for (size_t i = static_cast<size_t>(t); i < count_; i += static_cast<size_t>(clients)) {
      char* v = values_.get() + i * size_;
      FillRandom(v, size_, 0x7661 + size_ * 1000003 + i);
      const uint64_t tag = Tag(i), last = ~tag;
      std::memcpy(v, &tag, 8);
      std::memcpy(v + size_ - 8, &last, 8);
    }
    std::vector<uint32_t>& order = orders_[static_cast<size_t>(t)];
    order.resize(count_);
    for (size_t i = 0; i < count_; ++i) order[i] = static_cast<uint32_t>(i);
    const std::vector<uint32_t> r = RandomIndices(count_, UINT64_MAX, 0x6f72 + t);
    for (size_t i = count_; i > 1; --i) std::swap(order[i - 1], order[r[i - 1] % i]);
    auto& buf = buffers_[static_cast<size_t>(t)];
    buf.reset(new char[static_cast<size_t>(max_batch) * size_]);
    std::memset(buf.get(), 0, static_cast<size_t>(max_batch) * size_);
  });
}

Status Workload::Check(size_t i, int64_t got_size, const char* data, bool full) const {
  if (got_size < 0) return Status::NotFound("key #" + std::to_string(i) + " was not found");
  if (static_cast<uint64_t>(got_size) != size_) {
    return Status::Corruption("key #" + std::to_string(i) + " read back " +
                              std::to_string(got_size) + " bytes instead of " +
                              std::to_string(size_));
  }
  uint64_t first = 0, last = 0;
  std::memcpy(&first, data, 8);
  std::memcpy(&last, data + size_ - 8, 8);
  if (first != Tag(i) || last != ~Tag(i) ||
      (full && std::memcmp(data, values_.get() + i * size_, size_) != 0)) {
    return Status::Corruption("key #" + std::to_string(i) + " read back other bytes" +
                              (first != Tag(i) ? " (those of another key or size)" : ""));
  }
  return Status::OK();
}

Status GranaryTarget::Put(int, std::string_view key, std::string_view value) {
  return store_.Put(key, value);
}

Status GranaryTarget::Get(int, std::span<const uint32_t>, std::span<const std::string_view> keys,
                          std::span<const std::span<char>> buffers, std::span<int64_t> sizes) {
  std::vector<Result<size_t>> got = store_.BatchGetInto(keys, buffers);
  for (size_t k = 0; k < got.size(); ++k) {
    if (got[k].ok()) {
      sizes[k] = static_cast<int64_t>(*got[k]);
    } else if (got[k].status().code() == Code::kNotFound) {
      sizes[k] = -1;
    } else {
      return got[k].status();
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<RedisTarget>> RedisTarget::Connect(uint16_t port, int clients) {
  std::unique_ptr<RedisTarget> t(new RedisTarget());
  for (int i = 0; i < clients; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> c, RedisClient::Connect(port));
    t->clients_.push_back(std::move(c));
  }
  return t;
}

Status GranaryTarget::Clear(const Workload& w, int clients) {
  LoadResult r = RunClosedLoop(clients, 1e9, w.count(),
                               [&](int, uint64_t i) { return store_.Remove(w.key(i)); });
  return r.status.WithContext("removing the working set");
}

Status RedisTarget::Clear(const Workload&, int) { return client(0).FlushAll(); }

Status RedisTarget::Put(int thread, std::string_view key, std::string_view value) {
  return client(thread).Set(key, value);
}

Status RedisTarget::Get(int thread, std::span<const uint32_t>,
                        std::span<const std::string_view> keys,
                        std::span<const std::span<char>> buffers, std::span<int64_t> sizes) {
  return client(thread).MGetInto(keys, buffers, sizes);
}

Status MemcpyTarget::Put(int thread, std::string_view, std::string_view value) {
  std::memcpy(w_.buffer(thread, 0).data(), value.data(), value.size());
  return Status::OK();
}

Status MemcpyTarget::Get(int, std::span<const uint32_t> indices, std::span<const std::string_view>,
                         std::span<const std::span<char>> buffers, std::span<int64_t> sizes) {
  for (size_t k = 0; k < indices.size(); ++k) {
    const std::string_view v = w_.value(indices[k]);
    std::memcpy(buffers[k].data(), v.data(), v.size());
    sizes[k] = static_cast<int64_t>(v.size());
  }
  return Status::OK();
}

Result<KvFigure> MeasureKvPuts(Target& target, const Workload& w, int clients, int passes) {
  std::vector<KvFigure> figures;
  for (int pass = 0; pass < passes; ++pass) {
    if (pass > 0) RETURN_IF_ERROR(target.Clear(w, clients));
    LoadResult r = RunClosedLoop(clients, 1e9, w.count(), [&](int t, uint64_t i) {
      return target.Put(t, w.key(i), w.value(i));
    });
    RETURN_IF_ERROR(r.status.WithContext("put"));
    if (r.ops != w.count()) return Status::Internal("not every put ran");
    figures.push_back(FigureOf(r, w.size()));
  }
  std::vector<double> all;
  for (const KvFigure& f : figures) all.push_back(f.gib_s);
  std::sort(figures.begin(), figures.end(),
            [](const KvFigure& a, const KvFigure& b) { return a.gib_s < b.gib_s; });
  KvFigure median = figures[figures.size() / 2];
  median.details["passes_gib_per_sec"] = all;
  return median;
}

Result<KvFigure> MeasureKvGets(Target& target, const Workload& w, int clients, int batch,
                               double seconds) {
  const size_t b = static_cast<size_t>(batch);
  struct Scratch {
    std::vector<uint32_t> indices;
    std::vector<std::string_view> keys;
    std::vector<std::span<char>> buffers;
    std::vector<int64_t> sizes;
  };
  std::vector<Scratch> scratch(static_cast<size_t>(clients));
  for (int t = 0; t < clients; ++t) {
    Scratch& s = scratch[static_cast<size_t>(t)];
    s.indices.resize(b);
    s.keys.resize(b);
    s.sizes.resize(b);
    for (size_t k = 0; k < b; ++k) s.buffers.push_back(w.buffer(t, k));
  }
  // The batch of client t's ticket: the next window of its order (distinct keys: b <= count).
  auto choose = [&](int t, uint64_t ticket) -> Scratch& {
    Scratch& s = scratch[static_cast<size_t>(t)];
    const std::vector<uint32_t>& order = w.order(t);
    const uint64_t start = (ticket / static_cast<uint64_t>(clients)) * b;
    for (size_t k = 0; k < b; ++k) {
      s.indices[k] = order[(start + k) % order.size()];
      s.keys[k] = w.key(s.indices[k]);
    }
    return s;
  };
  LoadResult r = RunClosedLoop(clients, seconds, UINT64_MAX, [&](int t, uint64_t ticket) {
    Scratch& s = choose(t, ticket);
    // A buffer may hold this key's value from an earlier read: clear the bytes that are checked.
    for (std::span<char> buf : s.buffers) {
      std::memset(buf.data(), 0, 8);
      std::memset(buf.data() + buf.size() - 8, 0, 8);
    }
    RETURN_IF_ERROR(target.Get(t, s.indices, s.keys, s.buffers, s.sizes));
    for (size_t k = 0; k < b; ++k) {
      RETURN_IF_ERROR(w.Check(s.indices[k], s.sizes[k], s.buffers[k].data(), false));
    }
    return Status::OK();
  });
  RETURN_IF_ERROR(r.status.WithContext("get of batches of " + std::to_string(batch)));
  for (int t = 0; t < clients; ++t) {
    Scratch& s = choose(t, static_cast<uint64_t>(t));
    for (std::span<char> buf : s.buffers) std::memset(buf.data(), 0xa5, buf.size());
    RETURN_IF_ERROR(target.Get(t, s.indices, s.keys, s.buffers, s.sizes).WithContext("verifying"));
    for (size_t k = 0; k < b; ++k) {
      RETURN_IF_ERROR(w.Check(s.indices[k], s.sizes[k], s.buffers[k].data(), true)
                          .WithContext("verifying a batch byte for byte"));
    }
  }
  return FigureOf(r, b * w.size());
}

}  // namespace granary::tools
