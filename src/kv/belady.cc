#include "kv/belady.h"

#include <limits>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace granary::kv {

PrefixHits SimulateBelady(const BlockTrace& trace, uint64_t capacity_blocks) {
  constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  // The position (over all references) of the next use of the block referenced at each position.
  std::vector<uint64_t> next_use;
  for (const auto& request : trace) next_use.resize(next_use.size() + request.size());
  {
    std::unordered_map<uint64_t, uint64_t> seen_at;
    uint64_t pos = next_use.size();
    for (auto r = trace.rbegin(); r != trace.rend(); ++r) {
      for (auto id = r->rbegin(); id != r->rend(); ++id) {
        --pos;
        auto [it, inserted] = seen_at.try_emplace(*id, pos);
        next_use[pos] = inserted ? kNever : it->second;
        it->second = pos;
      }
    }
  }

  PrefixHits hits;
  std::unordered_map<uint64_t, uint64_t> cached;    // id -> next use
  std::set<std::pair<uint64_t, uint64_t>> by_next;  // (next use, id): furthest last
  uint64_t pos = 0;
  for (const auto& request : trace) {
    hits.references += request.size();
    for (uint64_t id : request) {
      if (!cached.contains(id)) break;
      ++hits.prefix_hits;
    }
    for (uint64_t id : request) {
      const uint64_t nu = next_use[pos++];
      if (auto it = cached.find(id); it != cached.end()) {
        by_next.erase({it->second, id});
        it->second = nu;
        by_next.insert({nu, id});
        continue;
      }
      if (capacity_blocks == 0) continue;
      if (cached.size() >= capacity_blocks) {
        auto furthest = std::prev(by_next.end());
        if (furthest->first <= nu) continue;  // the incoming block is needed last: not admitted
        cached.erase(furthest->second);
        by_next.erase(furthest);
      }
      cached.emplace(id, nu);
      by_next.insert({nu, id});
    }
  }
  return hits;
}

uint64_t DistinctBlocks(const BlockTrace& trace) {
  std::unordered_set<uint64_t> ids;
  for (const auto& request : trace) ids.insert(request.begin(), request.end());
  return ids.size();
}

}  // namespace granary::kv
