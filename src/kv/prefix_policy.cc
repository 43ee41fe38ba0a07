// Prefix-aware eviction (docs/design/kv-eviction.md): chain tails first.
//
// Candidates are split in two ordered sets. Tails (no cached successor) are ordered by a
// priority that combines recency and frequency in the manner of GreedyDual-Frequency: a tail's
// priority is the pool's "age" when it was last accessed plus a bonus, 1 for a block not used
// since it was stored and 2 x log2(1 + accesses) for one that was; the age is the priority of
// the last tail evicted, so blocks that have not been touched for a while fall behind newly
// touched ones whatever their count. Interior blocks (with a cached successor) are evicted only
// when no tail is a candidate, least recently used first. Ties go to the block ordered longest
// ago. Every call is O(log n).
#include <algorithm>
#include <cmath>
#include <set>

#include "kv/eviction.h"

namespace granary::kv {
namespace {

// Priority bonuses, in units of the age (about one generation of evicted new blocks).
constexpr double kNewBlockBonus = 1.0;
constexpr double kReuseWeight = 2.0;  // per doubling of the access count

struct ByPriority {
  bool operator()(const Block* a, const Block* b) const {
    if (a->priority != b->priority) return a->priority < b->priority;
    return a->policy_seq < b->policy_seq;
  }
};

struct ByRecency {
  bool operator()(const Block* a, const Block* b) const {
    if (a->policy_tick != b->policy_tick) return a->policy_tick < b->policy_tick;
    return a->policy_seq < b->policy_seq;
  }
};

class PrefixAwarePolicy final : public EvictionPolicy {
 public:
  void Add(Block* b) override {
    Reorder(b);
    Insert(b);
  }

  void Erase(Block* b) override {
    if (b->policy_leaf) {
      tails_.erase(b);
    } else {
      interior_.erase(b);
    }
  }

  void Evict(Block* b) override {
    if (b->policy_leaf) age_ = std::max(age_, b->priority);
    Erase(b);
  }

  void Touched(Block* b) override {
    // Reordered in place: the set's node is reused, nothing is allocated.
    if (b->policy_leaf) {
      auto node = tails_.extract(b);
      Reorder(b);
      tails_.insert(std::move(node));
    } else {
      auto node = interior_.extract(b);
      Reorder(b);
      interior_.insert(std::move(node));
    }
  }

  void ShapeChanged(Block* b) override {
    if (b->policy_leaf == (b->cached_children == 0)) return;
    Erase(b);
    b->policy_seq = ++seq_;
    Insert(b);
  }

  Block* Victim() const override {
    if (!tails_.empty()) return *tails_.begin();
    return interior_.empty() ? nullptr : *interior_.begin();
  }

  size_t size() const override { return tails_.size() + interior_.size(); }

 private:
  // A block never used since it was stored gets the smallest bonus: most blocks of a KV-cache
  // trace are never used again, while one that was reused usually is again.
  double PriorityOf(const Block* b) const {
    if (b->accesses <= 1) return age_ + kNewBlockBonus;
    return age_ + kReuseWeight * std::log2(1.0 + static_cast<double>(b->accesses));
  }

  // The ordering keys of an access. REQUIRES: b is in neither set.
  void Reorder(Block* b) {
    b->priority = PriorityOf(b);
    b->policy_tick = b->last_tick;
    b->policy_seq = ++seq_;  // ties go to the block ordered longest ago
  }

  void Insert(Block* b) {
    b->policy_leaf = b->cached_children == 0;
    if (b->policy_leaf) {
      tails_.insert(b);
    } else {
      interior_.insert(b);
    }
  }

  std::set<Block*, ByPriority> tails_;
  std::set<Block*, ByRecency> interior_;
  double age_ = 0;
  uint64_t seq_ = 0;
};

}  // namespace

std::unique_ptr<EvictionPolicy> MakePrefixAwarePolicy() {
  return std::make_unique<PrefixAwarePolicy>();
}

}  // namespace granary::kv
