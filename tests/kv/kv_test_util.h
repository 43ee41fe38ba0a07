// Helpers shared by the KV pool tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/test_util.h"
#include "kv/pool.h"

namespace granary::kv::testing {

using granary::testing::TempDir;

inline constexpr size_t kBlockBytes = 1024;

// Budget for exactly `blocks` blocks of kBlockBytes under keys of `key_size` bytes.
inline uint64_t BudgetFor(uint64_t blocks, size_t key_size = 1) {
  return blocks * DramTier::ChargeOf(key_size, kBlockBytes);
}

// A DRAM-only pool that holds `blocks` blocks and evicts one at a time, without leases.
inline PoolOptions CountingOptions(uint64_t blocks, EvictionPolicyKind policy) {
  PoolOptions o;
  o.dram_budget_bytes = BudgetFor(blocks);
  o.high_watermark = 1.0;
  o.low_watermark = 1.0;
  o.eviction = policy;
  o.lease = std::chrono::nanoseconds(0);
  return o;
}

// Engine options that keep a test's disk tier small.
inline engine::EngineOptions SmallEngine() {
  engine::EngineOptions e;
  e.segment_size = 4 << 20;
  e.preallocate_bytes = 256 * 1024;
  e.checkpoint_interval_bytes = 0;
  return e;
}

// A pool whose DRAM holds `dram_blocks` one-byte-key blocks (CountingOptions) and whose disk
// tier, in dir/disk, holds `disk_blocks`.
inline PoolOptions TieredOptions(const TempDir& dir, uint64_t dram_blocks, uint64_t disk_blocks,
                                 EvictionPolicyKind policy = EvictionPolicyKind::kLru) {
  PoolOptions o = CountingOptions(dram_blocks, policy);
  o.disk_dir = dir.Sub("disk");
  o.disk_budget_bytes = disk_blocks * DiskTier::ChargeOf(1, kBlockBytes);
  o.engine = SmallEngine();
  return o;
}

inline std::unique_ptr<Pool> OpenOrDie(PoolOptions o) {
  auto p = Pool::Open(std::move(o));
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : nullptr;
}

// The one value a key ever holds in these tests: its id, then bytes derived from it, so that a
// read of another key's value or a torn value is detected.
inline std::string ValueFor(uint64_t id, size_t size = kBlockBytes) {
  std::string v(size, '\0');
  uint64_t x = id * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v[i] = static_cast<char>(x);
  }
  if (size >= sizeof(id)) std::memcpy(v.data(), &id, sizeof(id));
  return v;
}

// A view's bytes, its pieces joined.
inline std::string Joined(const BlockView& view) {
  std::string out;
  for (std::span<const char> piece : view.pieces()) out.append(piece.data(), piece.size());
  return out;
}

inline std::vector<std::string_view> Views(const std::vector<std::string>& keys) {
  return std::vector<std::string_view>(keys.begin(), keys.end());
}

inline std::vector<KeyValue> Items(const std::vector<std::string>& keys,
                                   const std::vector<std::string>& values) {
  std::vector<KeyValue> items;
  for (size_t i = 0; i < keys.size(); ++i) items.push_back({keys[i], values[i]});
  return items;
}

}  // namespace granary::kv::testing
