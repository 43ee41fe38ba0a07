// Eviction order of the two policies, observed through a Pool that holds a fixed number of
// blocks and evicts one at a time.
#include <gtest/gtest.h>

#include "kv/pool.h"
#include "kv_test_util.h"

namespace granary::kv {
namespace {

using testing::CountingOptions;
using testing::OpenOrDie;
using testing::ValueFor;

std::string Cached(Pool& pool, const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) {
    if (pool.Exists(k)) s += k;
  }
  return s;
}

void PutChain(Pool& pool, const std::vector<std::string>& keys) {
  std::vector<std::string> values;
  for (size_t i = 0; i < keys.size(); ++i) values.push_back(ValueFor(i));
  for (const Status& st : pool.BatchPut(testing::Items(keys, values))) {
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
}

TEST(KvEvictionTest, LruEvictsTheLeastRecentlyUsed) {
  auto pool = OpenOrDie(CountingOptions(3, EvictionPolicyKind::kLru));
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(pool->Put(k, ValueFor(0)).ok());
  ASSERT_TRUE(pool->Get("a").ok());
  {
    Status st = pool->Put("d", ValueFor(0));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(Cached(*pool, {"a", "b", "c", "d"}), "acd");
  ASSERT_TRUE(pool->Put("e", ValueFor(0)).ok());
  EXPECT_EQ(Cached(*pool, {"a", "b", "c", "d", "e"}), "ade");
  EXPECT_EQ(pool->Stats().dram_evictions, 2u);
}

TEST(KvEvictionTest, LruEvictsTheHeadOfAChainFirst) {
  // What the prefix-aware policy is for: LRU drops the chain's first block, which makes the
  // rest of the chain useless to every request.
  auto pool = OpenOrDie(CountingOptions(3, EvictionPolicyKind::kLru));
  PutChain(*pool, {"a", "b", "c"});
  ASSERT_TRUE(pool->Put("x", ValueFor(9)).ok());
  EXPECT_EQ(Cached(*pool, {"a", "b", "c", "x"}), "bcx");
}

TEST(KvEvictionTest, PrefixAwareEvictsChainTailsFirst) {
  auto pool = OpenOrDie(CountingOptions(3, EvictionPolicyKind::kPrefixAware));
  PutChain(*pool, {"a", "b", "c"});
  ASSERT_TRUE(pool->Put("x", ValueFor(9)).ok());
  EXPECT_EQ(Cached(*pool, {"a", "b", "c", "x"}), "abx");
  std::vector<std::string_view> chain = {"a", "b", "c"};
  EXPECT_EQ(pool->LongestPrefix(chain), 2u);
  // b is now the chain's tail; x is a tail too, and older than b's last use: it goes first.
  ASSERT_TRUE(pool->Put("y", ValueFor(10)).ok());
  EXPECT_EQ(Cached(*pool, {"a", "b", "x", "y"}), "aby");
  // Then the chain is eaten from its tail, never from its head.
  ASSERT_TRUE(pool->Put("z", ValueFor(11)).ok());
  EXPECT_TRUE(pool->Exists("a"));
  EXPECT_FALSE(pool->Exists("b") && pool->Exists("y"));
}

TEST(KvEvictionTest, PrefixAwareKeepsFrequentTailsAndAgesThemOut) {
  auto pool = OpenOrDie(CountingOptions(3, EvictionPolicyKind::kPrefixAware));
  ASSERT_TRUE(pool->Put("x", ValueFor(1)).ok());
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(pool->Get("x").ok());
  ASSERT_TRUE(pool->Put("y", ValueFor(2)).ok());
  ASSERT_TRUE(pool->Put("z", ValueFor(3)).ok());
  // LRU would evict x, the least recently used; x was used eight times, y once.
  ASSERT_TRUE(pool->Put("w", ValueFor(4)).ok());
  EXPECT_EQ(Cached(*pool, {"w", "x", "y", "z"}), "wxz");
  // Each eviction raises the pool's age, so blocks that are not used again fall behind new
  // ones, however often they were used before.
  int puts = 0;
  for (; pool->Exists("x") && puts < 30; ++puts) {
    ASSERT_TRUE(pool->Put(std::string(1, static_cast<char>('A' + puts)), ValueFor(5)).ok());
  }
  EXPECT_FALSE(pool->Exists("x"));
  EXPECT_LE(puts, 12);  // x's bonus is 2 x log2(9) = 6.3 ages; each age is two new blocks
}

TEST(KvEvictionTest, PrefixAwareLearnsChainsFromLongestPrefix) {
  auto pool = OpenOrDie(CountingOptions(3, EvictionPolicyKind::kPrefixAware));
  ASSERT_TRUE(pool->Put("a", ValueFor(1)).ok());
  // A request for a, b finds a; the put of b that follows links b after a.
  std::vector<std::string_view> request = {"a", "b"};
  EXPECT_EQ(pool->LongestPrefix(request), 1u);
  ASSERT_TRUE(pool->Put("b", ValueFor(2)).ok());
  ASSERT_TRUE(pool->Put("c", ValueFor(3)).ok());
  // a is the oldest block, but b follows it: b and c are the tails.
  ASSERT_TRUE(pool->Put("d", ValueFor(4)).ok());
  EXPECT_TRUE(pool->Exists("a"));
  EXPECT_EQ(Cached(*pool, {"a", "b", "c", "d"}), "acd");
}

TEST(KvEvictionTest, PrefixAwareFallsBackToInteriorBlocks) {
  // A chain longer than the pool: once nothing else is left, interior blocks go too (LRU).
  auto pool = OpenOrDie(CountingOptions(2, EvictionPolicyKind::kPrefixAware));
  PutChain(*pool, {"a", "b", "c", "d"});
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_blocks, 2u);
  EXPECT_EQ(s.dram_evictions, 2u);
  EXPECT_LE(s.dram_bytes, s.dram_budget_bytes);
}

TEST(KvEvictionTest, WatermarksEvictFromHighToLow) {
  PoolOptions o;
  o.dram_budget_bytes = testing::BudgetFor(100);
  o.high_watermark = 0.9;
  o.low_watermark = 0.5;
  o.eviction = EvictionPolicyKind::kLru;
  o.lease = std::chrono::nanoseconds(0);
  auto pool = OpenOrDie(o);
  const uint64_t charge = DramTier::ChargeOf(2, testing::kBlockBytes);
  int i = 0;
  for (; pool->Stats().dram_evictions == 0; ++i) {
    ASSERT_TRUE(pool->Put("k" + std::to_string(i % 10) + std::to_string(i / 10), ValueFor(i)).ok());
    ASSERT_LT(i, 200);
  }
  PoolStats s = pool->Stats();
  // Evicted down to the low watermark, the new block included.
  EXPECT_LE(s.dram_bytes, o.dram_budget_bytes / 2 + charge);
  EXPECT_GE(s.dram_bytes + charge, o.dram_budget_bytes / 2 - charge);
  EXPECT_GT(s.dram_evictions, 30u);
}

}  // namespace
}  // namespace granary::kv
