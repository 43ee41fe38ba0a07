#include "kv/belady.h"

#include <gtest/gtest.h>

namespace granary::kv {
namespace {

TEST(KvBeladyTest, HandCheckedTrace) {
  // Capacity 2. Request 1 stores 1 and 2. Request 2 finds 1 (a prefix hit of 1); 3 is needed
  // never again and 2 is needed by request 3, so 3 is not admitted. Request 3 finds 1 and 2.
  // LRU would have evicted 2 for 3 and hit 1 block, not 2, in request 3.
  const BlockTrace trace = {{1, 2}, {1, 3}, {1, 2}};
  PrefixHits h = SimulateBelady(trace, 2);
  EXPECT_EQ(h.references, 6u);
  EXPECT_EQ(h.prefix_hits, 3u);
  EXPECT_DOUBLE_EQ(h.Rate(), 0.5);
}

TEST(KvBeladyTest, EvictsTheBlockNeededFurthestAway) {
  // Capacity 2, after {1}, {2}: 3 is needed next (request 4), then 2, then 1, so request 3
  // evicts 1: requests 4 and 5 hit, request 6 misses.
  const BlockTrace trace = {{1}, {2}, {3}, {3}, {2}, {1}};
  PrefixHits h = SimulateBelady(trace, 2);
  EXPECT_EQ(h.references, 6u);
  EXPECT_EQ(h.prefix_hits, 2u);
  // A block needed later than every cached one is not admitted: 3 never is, 1 and 2 stay.
  EXPECT_EQ(SimulateBelady({{1}, {2}, {3}, {2}, {1}}, 2).prefix_hits, 2u);
}

TEST(KvBeladyTest, AHitAfterAMissIsNotAPrefixHit) {
  // Capacity 1 holds 2; request 2 misses 1, so its 2 does not count.
  const BlockTrace trace = {{2}, {1, 2}};
  PrefixHits h = SimulateBelady(trace, 1);
  EXPECT_EQ(h.references, 3u);
  EXPECT_EQ(h.prefix_hits, 0u);
}

TEST(KvBeladyTest, UnboundedAndEmptyCaches) {
  const BlockTrace trace = {{1, 2, 3}, {1, 2, 4}, {5}, {1, 2, 3}};
  EXPECT_EQ(DistinctBlocks(trace), 5u);
  PrefixHits all = SimulateBelady(trace, DistinctBlocks(trace));
  EXPECT_EQ(all.references, 10u);
  EXPECT_EQ(all.prefix_hits, 5u);  // 2 in request 2, 3 in request 4
  EXPECT_EQ(SimulateBelady(trace, 0).prefix_hits, 0u);
  EXPECT_EQ(SimulateBelady({}, 4).references, 0u);
}

}  // namespace
}  // namespace granary::kv
