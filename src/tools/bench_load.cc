#include "tools/bench_load.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

namespace granary::tools {

namespace {

// splitmix64: seeds and a fast stream of random 64-bit words.
uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

void FillRandom(char* dst, size_t n, uint64_t seed) {
  uint64_t state = seed;
  while (n >= 8) {
    const uint64_t w = SplitMix(state);
    std::memcpy(dst, &w, 8);
    dst += 8;
    n -= 8;
  }
  if (n > 0) {
    const uint64_t w = SplitMix(state);
    std::memcpy(dst, &w, n);
  }
}

KeySet::KeySet(size_t count, size_t width, uint64_t seed)
    : count_(count), width_(width), data_(count * width, '\0') {
  FillRandom(data_.data(), data_.size(), seed);
}

ValueSet::ValueSet(size_t count, size_t length, uint64_t seed) : length_(length) {
  values_.resize(count == 0 ? 1 : count);
  for (size_t i = 0; i < values_.size(); ++i) {
    values_[i].resize(length);
    FillRandom(values_[i].data(), length, seed * 1000003 + i);
  }
}

std::vector<uint32_t> RandomIndices(size_t count, uint64_t bound, uint64_t seed) {
  std::vector<uint32_t> out(count);
  uint64_t state = seed;
  for (auto& v : out) v = bound ? static_cast<uint32_t>(SplitMix(state) % bound) : 0;
  return out;
}

LoadResult RunClosedLoop(int threads, double seconds, uint64_t max_ops,
                         const std::function<Status(int thread, uint64_t ticket)>& op) {
  if (threads < 1) threads = 1;
  std::atomic<uint64_t> next_ticket{0};
  std::atomic<bool> stop{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<uint64_t> start_ns{0};
  std::atomic<uint64_t> deadline_ns{0};
  const bool bounded = max_ops != UINT64_MAX;

  std::vector<LatencyHistogram> hists(static_cast<size_t>(threads));
  std::vector<uint64_t> counts(static_cast<size_t>(threads), 0);
  std::mutex status_mu;
  Status first_error;  // guarded by status_mu

  auto worker = [&](int t) {
    LatencyHistogram& hist = hists[static_cast<size_t>(t)];
    uint64_t done = 0;
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    const uint64_t deadline = deadline_ns.load();
    for (uint64_t local = 0; !stop.load(std::memory_order_relaxed); ++local) {
      // A finite run hands out dense tickets; an open-ended one strides per thread, so that
      // threads do not share a counter's cache line.
      const uint64_t ticket =
          bounded ? next_ticket.fetch_add(1, std::memory_order_relaxed)
                  : local * static_cast<uint64_t>(threads) + static_cast<uint64_t>(t);
      if (bounded && ticket >= max_ops) break;
      const uint64_t t0 = BenchNowNanos();
      Status s = op(t, ticket);
      const uint64_t t1 = BenchNowNanos();
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(status_mu);
        if (first_error.ok()) first_error = std::move(s);
        stop.store(true);
        break;
      }
      hist.Add(t1 - t0);
      ++done;
      if (t1 >= deadline) break;
    }
    counts[static_cast<size_t>(t)] = done;
  };

  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  while (ready.load() < threads) std::this_thread::yield();
  start_ns.store(BenchNowNanos());
  deadline_ns.store(start_ns.load() + static_cast<uint64_t>(seconds * 1e9));
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  const uint64_t end_ns = BenchNowNanos();

  LoadResult r;
  for (int t = 0; t < threads; ++t) {
    r.ops += counts[static_cast<size_t>(t)];
    r.latency.Merge(hists[static_cast<size_t>(t)]);
  }
  r.seconds = static_cast<double>(end_ns - start_ns.load()) / 1e9;
  r.status = first_error;
  return r;
}

}  // namespace granary::tools
