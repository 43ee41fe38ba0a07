// Eviction policies of a KV pool's DRAM tier: which unprotected block goes first.
//
// A policy orders the tier's candidates (ready blocks that are not pinned, not parked and not
// waiting for readers). The tier adds and erases candidates, tells the policy when one is
// accessed or when its chain shape changes (it gains its first cached successor or loses its
// last), and asks for the next victim. Every call is O(1) (LRU) or O(log n) (prefix-aware).
// docs/design/kv-eviction.md describes the prefix-aware policy.
//
// Thread-safety: none; the DramTier calls a policy under the Pool's mutex.
#pragma once

#include <cstddef>
#include <memory>

#include "kv/block.h"

namespace granary::kv {

enum class EvictionPolicyKind {
  kLru,          // least recently used block first
  kPrefixAware,  // chain tails first, ordered by recency and frequency
};

// "lru", "prefix-aware".
const char* EvictionPolicyName(EvictionPolicyKind kind);

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;

  // `b` becomes a candidate. REQUIRES: b is not one.
  virtual void Add(Block* b) = 0;
  // `b` stops being a candidate without being evicted (pinned, parked, removed).
  virtual void Erase(Block* b) = 0;
  // `b` is evicted. REQUIRES: b == Victim().
  virtual void Evict(Block* b) { Erase(b); }
  // Candidate `b` was accessed; its last_tick and accesses are already updated.
  virtual void Touched(Block* b) = 0;
  // Candidate `b`'s cached_children went from 0 to 1 or from 1 to 0.
  virtual void ShapeChanged(Block* b) = 0;
  // The candidate to evict next; null when there is none.
  virtual Block* Victim() const = 0;
  virtual size_t size() const = 0;
};

std::unique_ptr<EvictionPolicy> MakeEvictionPolicy(EvictionPolicyKind kind);
std::unique_ptr<EvictionPolicy> MakeLruPolicy();
std::unique_ptr<EvictionPolicy> MakePrefixAwarePolicy();

}  // namespace granary::kv
