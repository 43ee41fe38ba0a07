// LRU: candidates in one list, least recently used at the front. Every call is O(1).
#include <list>

#include "kv/eviction.h"

namespace granary::kv {
namespace {

class LruPolicy final : public EvictionPolicy {
 public:
  void Add(Block* b) override { b->lru_pos = order_.insert(order_.end(), b); }
  void Erase(Block* b) override { order_.erase(b->lru_pos); }
  void Touched(Block* b) override { order_.splice(order_.end(), order_, b->lru_pos); }
  void ShapeChanged(Block*) override {}
  Block* Victim() const override { return order_.empty() ? nullptr : order_.front(); }
  size_t size() const override { return order_.size(); }

 private:
  std::list<Block*> order_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> MakeLruPolicy() { return std::make_unique<LruPolicy>(); }

const char* EvictionPolicyName(EvictionPolicyKind kind) {
  switch (kind) {
    case EvictionPolicyKind::kLru:
      return "lru";
    case EvictionPolicyKind::kPrefixAware:
      return "prefix-aware";
  }
  return "unknown";
}

std::unique_ptr<EvictionPolicy> MakeEvictionPolicy(EvictionPolicyKind kind) {
  if (kind == EvictionPolicyKind::kLru) return MakeLruPolicy();
  return MakePrefixAwarePolicy();
}

}  // namespace granary::kv
