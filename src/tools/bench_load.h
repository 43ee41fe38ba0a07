// Load generation for the benchmarks: pre-generated random keys and values (no random number
// generator runs inside a timed loop) and a closed-loop driver that runs an operation from N
// threads for a time or a count, recording every operation's latency.
//
// Thread-safety: KeySet and ValueSet are immutable once built and may be read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tools/bench_report.h"

namespace granary::tools {

// `count` random keys of `width` bytes each, stored flat (no allocation per key).
class KeySet {
 public:
  KeySet(size_t count, size_t width, uint64_t seed);
  size_t size() const { return count_; }
  std::string_view operator[](size_t i) const { return {data_.data() + i * width_, width_}; }

 private:
  size_t count_;
  size_t width_;
  std::string data_;
};

// `count` random values of `length` bytes each. Value i of a workload is values[i % size()].
class ValueSet {
 public:
  ValueSet(size_t count, size_t length, uint64_t seed);
  size_t size() const { return values_.size(); }
  size_t length() const { return length_; }
  std::string_view operator[](size_t i) const { return values_[i % values_.size()]; }

 private:
  size_t length_;
  std::vector<std::string> values_;
};

// `count` random indices in [0, bound).
std::vector<uint32_t> RandomIndices(size_t count, uint64_t bound, uint64_t seed);

// Fills `n` bytes at `dst` with random bytes from a xoshiro-style generator.
void FillRandom(char* dst, size_t n, uint64_t seed);

struct LoadResult {
  uint64_t ops = 0;
  double seconds = 0;        // from the start of the first operation to the end of the last
  LatencyHistogram latency;  // nanoseconds per operation
  Status status;             // the first failure, which stopped the run

  double OpsPerSec() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

// Runs `op(thread, ticket)` in a loop on `threads` threads until `seconds` have passed or
// `max_ops` operations have started, or an operation fails. Tickets are unique and, with a
// finite max_ops, dense in [0, max_ops), so they can index a KeySet. `op` must be thread-safe.
LoadResult RunClosedLoop(int threads, double seconds, uint64_t max_ops,
                         const std::function<Status(int thread, uint64_t ticket)>& op);

}  // namespace granary::tools
