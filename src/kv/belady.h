// The offline optimum for a KV-cache trace, by Belady's rule: when the cache is full, evict the
// block whose next use is furthest in the future (or do not admit the incoming block when its
// own next use is further still). It is the block-level optimum of a cache of `capacity` equal
// blocks, the yardstick `granary bench kv` puts beside LRU and the prefix-aware policy.
//
// Replay of each request, as the benchmark replays it against a pool: count the prefix hits (the
// leading blocks that are all cached), then use every block of the request in order (hits are
// read, misses written).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

namespace granary::kv {

// Requests in order, each a chain of block ids in prefix order.
using BlockTrace = std::vector<std::vector<uint64_t>>;

struct PrefixHits {
  uint64_t references = 0;   // blocks requested
  uint64_t prefix_hits = 0;  // blocks that hit while every block before them in their request hit
  double Rate() const {
    return references == 0 ? 0.0
                           : static_cast<double>(prefix_hits) / static_cast<double>(references);
  }
};

PrefixHits SimulateBelady(const BlockTrace& trace, uint64_t capacity_blocks);

// Number of distinct block ids in `trace`.
uint64_t DistinctBlocks(const BlockTrace& trace);

}  // namespace granary::kv
