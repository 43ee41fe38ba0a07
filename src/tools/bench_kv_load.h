// The load of the KV throughput benchmark (bench_kv_throughput.cc): the keys and values of one
// value size, the stores that one loop drives (Granary's KVStore, Redis, memcpy), and the two
// measurements: puts of the whole working set, and random batched gets for a time.
//
// Thread-safety: a Workload is immutable once built, except its read buffers, each of which
// belongs to one client thread. A Target is called from many client threads at once, each with
// its own number; RedisTarget's connection `thread` is used by that thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "granary/kv.h"
#include "tools/bench_load.h"
#include "tools/redis_client.h"

namespace granary::tools {

inline constexpr size_t kKvBenchKeyBytes = 32;  // like a 256-bit content hash of a block

// `count` distinct random keys and incompressible values of `size` bytes (value i's first and
// last 8 bytes name i and the size), and for each of `clients` threads a random order of the keys
// and `max_batch` read buffers of `size` bytes, touched so that no page fault lands in a timed
// run. Built by `clients` threads.
class Workload {
 public:
  Workload(uint64_t size, size_t count, int clients, int max_batch);

  uint64_t size() const { return size_; }
  size_t count() const { return count_; }
  std::string_view key(size_t i) const { return keys_[i]; }
  std::string_view value(size_t i) const { return {values_.get() + i * size_, size_}; }
  // A permutation of [0, count): the order in which the thread reads the keys, a batch at a time.
  const std::vector<uint32_t>& order(int thread) const {
    return orders_[static_cast<size_t>(thread)];
  }
  std::span<char> buffer(int thread, size_t k) const {
    return {buffers_[static_cast<size_t>(thread)].get() + k * size_, size_};
  }

  // OK when a read of key `i` returned value i: `got_size` (-1: missing) is its size and `data`
  // holds its first and last 8 bytes, or, when `full`, every byte.
  Status Check(size_t i, int64_t got_size, const char* data, bool full) const;

 private:
  uint64_t Tag(size_t i) const { return (size_ << 32) | i; }

  uint64_t size_;
  size_t count_;
  KeySet keys_;
  std::unique_ptr<char[]> values_;  // value i at i * size_: what is put, and memcpy's source
  std::vector<std::vector<uint32_t>> orders_;
  std::vector<std::unique_ptr<char[]>> buffers_;
};

// A store the loops drive, called by client thread `thread`.
class Target {
 public:
  virtual ~Target() = default;
  virtual Status Put(int thread, std::string_view key, std::string_view value) = 0;
  // Reads keys[k] (the key of value indices[k]) into buffers[k]; sizes[k]: its size, -1 if it is
  // missing.
  virtual Status Get(int thread, std::span<const uint32_t> indices,
                     std::span<const std::string_view> keys,
                     std::span<const std::span<char>> buffers, std::span<int64_t> sizes) = 0;
  // Removes every key of `w`, so that it can be put again (not timed).
  virtual Status Clear(const Workload& w, int clients) = 0;
};

// KVStore::Put per put, KVStore::BatchGetInto per batch.
class GranaryTarget final : public Target {
 public:
  explicit GranaryTarget(KVStore& store) : store_(store) {}
  Status Put(int thread, std::string_view key, std::string_view value) override;
  Status Get(int thread, std::span<const uint32_t> indices, std::span<const std::string_view> keys,
             std::span<const std::span<char>> buffers, std::span<int64_t> sizes) override;
  Status Clear(const Workload& w, int clients) override;  // Remove of each key

 private:
  KVStore& store_;
};

// A connection per client thread; SET per put, MGET per batch.
class RedisTarget final : public Target {
 public:
  static Result<std::unique_ptr<RedisTarget>> Connect(uint16_t port, int clients);
  Status Put(int thread, std::string_view key, std::string_view value) override;
  Status Get(int thread, std::span<const uint32_t> indices, std::span<const std::string_view> keys,
             std::span<const std::span<char>> buffers, std::span<int64_t> sizes) override;
  Status Clear(const Workload& w, int clients) override;  // FLUSHALL
  RedisClient& client(int thread) { return *clients_[static_cast<size_t>(thread)]; }

 private:
  RedisTarget() = default;
  std::vector<std::unique_ptr<RedisClient>> clients_;
};

// The machine's copy bandwidth: a get copies the values from the workload's array into the
// buffers; a put copies its value into the thread's first buffer.
class MemcpyTarget final : public Target {
 public:
  explicit MemcpyTarget(const Workload& w) : w_(w) {}
  Status Put(int thread, std::string_view key, std::string_view value) override;
  Status Get(int thread, std::span<const uint32_t> indices, std::span<const std::string_view> keys,
             std::span<const std::span<char>> buffers, std::span<int64_t> sizes) override;
  Status Clear(const Workload&, int) override { return Status::OK(); }

 private:
  const Workload& w_;
};

// A measured throughput, and for machines its operations, time and latency.
struct KvFigure {
  double gib_s = 0;
  nlohmann::json details;
};

// Puts the whole working set from `clients` threads, which take keys from one counter, `passes`
// times (clearing the target between passes): the pass of the median throughput.
Result<KvFigure> MeasureKvPuts(Target& target, const Workload& w, int clients, int passes);

// Reads batches of `batch` distinct keys from `clients` threads for `seconds`, each thread the
// next window of its order of the keys, checking every value's first and last 8 bytes (cleared
// before each read); then each thread reads one more batch into wiped buffers, compared byte for
// byte.
Result<KvFigure> MeasureKvGets(Target& target, const Workload& w, int clients, int batch,
                               double seconds);

}  // namespace granary::tools
