// What keeps a block from being evicted: leases (driven by a ManualClock, no sleeps), live
// BlockViews, and pins up to the pool's limit.
#include <gtest/gtest.h>

#include "kv/pool.h"
#include "kv_test_util.h"

namespace granary::kv {
namespace {

using std::chrono::seconds;
using testing::CountingOptions;
using testing::OpenOrDie;
using testing::ValueFor;

PoolOptions Leased(uint64_t blocks, ManualClock* clock) {
  PoolOptions o = CountingOptions(blocks, EvictionPolicyKind::kLru);
  o.lease = seconds(1);
  o.clock = clock;
  return o;
}

TEST(KvProtectionTest, ALeaseKeepsABlockFromEviction) {
  ManualClock clock(1'000'000'000);
  auto pool = OpenOrDie(Leased(2, &clock));
  ASSERT_TRUE(pool->Put("a", ValueFor(1)).ok());
  ASSERT_TRUE(pool->Put("b", ValueFor(2)).ok());
  std::vector<std::string_view> request = {"a"};
  ASSERT_EQ(pool->LongestPrefix(request), 1u);    // leases a
  ASSERT_TRUE(pool->Put("b", ValueFor(2)).ok());  // a use of b without a lease: a is LRU
  ASSERT_TRUE(pool->Put("c", ValueFor(3)).ok());
  EXPECT_TRUE(pool->Exists("a"));
  EXPECT_FALSE(pool->Exists("b"));
  EXPECT_EQ(pool->Stats().parked_blocks, 1u);

  // Within the lease a stays whatever comes.
  clock.Advance(std::chrono::milliseconds(900));
  ASSERT_TRUE(pool->Put("d", ValueFor(4)).ok());
  EXPECT_TRUE(pool->Exists("a"));
  EXPECT_FALSE(pool->Exists("c"));

  // Once it has ended, a is evictable again.
  clock.Advance(std::chrono::milliseconds(200));
  ASSERT_TRUE(pool->Put("e", ValueFor(5)).ok());
  ASSERT_TRUE(pool->Put("f", ValueFor(6)).ok());
  EXPECT_FALSE(pool->Exists("a"));
  EXPECT_EQ(pool->Stats().parked_blocks, 0u);
}

TEST(KvProtectionTest, APutFailsWhenEveryBlockIsLeasedAndSucceedsOnceLeasesEnd) {
  ManualClock clock(1'000'000'000);
  auto pool = OpenOrDie(Leased(2, &clock));
  ASSERT_TRUE(pool->Put("a", ValueFor(1)).ok());
  ASSERT_TRUE(pool->Put("b", ValueFor(2)).ok());
  ASSERT_TRUE(pool->Get("a").ok());
  ASSERT_TRUE(pool->Get("b").ok());
  Status st = pool->Put("c", ValueFor(3));
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_NE(st.message().find("leased"), std::string::npos) << st.ToString();
  EXPECT_FALSE(pool->Exists("c"));
  EXPECT_EQ(pool->Stats().put_failures, 1u);
  clock.Advance(seconds(2));
  EXPECT_TRUE(pool->Put("c", ValueFor(3)).ok());
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_blocks, 2u);
  EXPECT_LE(s.dram_bytes, s.dram_budget_bytes);
}

TEST(KvProtectionTest, ABlockViewKeepsTheBytesEvenThroughRemove) {
  auto pool = OpenOrDie(CountingOptions(2, EvictionPolicyKind::kLru));
  ASSERT_TRUE(pool->Put("a", ValueFor(1)).ok());
  auto view = pool->Acquire("a");
  ASSERT_TRUE(view.ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pool->Put(std::to_string(i), ValueFor(i + 10)).ok());
  }
  EXPECT_TRUE(pool->Exists("a"));
  ASSERT_TRUE(pool->Remove("a").ok());
  EXPECT_FALSE(pool->Exists("a"));
  // Still charged while the view lives: the pool holds one block besides it.
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_bytes, s.dram_budget_bytes);
  EXPECT_EQ(s.dram_blocks, 1u);
  EXPECT_EQ(testing::Joined(*view), ValueFor(1));
  view->Release();
  EXPECT_LT(pool->Stats().dram_bytes, s.dram_budget_bytes);
}

TEST(KvProtectionTest, PinsAreNeverEvictedAndHaveALimit) {
  PoolOptions o = CountingOptions(4, EvictionPolicyKind::kPrefixAware);
  o.pin_limit_bytes = 2 * DramTier::ChargeOf(1, testing::kBlockBytes);
  auto pool = OpenOrDie(o);
  for (const char* k : {"a", "b", "c"}) ASSERT_TRUE(pool->Put(k, ValueFor(k[0])).ok());
  ASSERT_TRUE(pool->Pin("a").ok());
  ASSERT_TRUE(pool->Pin("a").ok());  // a no-op
  ASSERT_TRUE(pool->Pin("b").ok());
  Status st = pool->Pin("c");
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_NE(st.message().find("pin_limit_bytes"), std::string::npos) << st.ToString();
  EXPECT_TRUE(pool->Pin("zz").IsNotFound());
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.pinned_blocks, 2u);
  EXPECT_EQ(s.pinned_bytes, o.pin_limit_bytes);

  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pool->Put("n" + std::to_string(i), ValueFor(i)).ok());
  }
  EXPECT_TRUE(pool->Exists("a"));
  EXPECT_TRUE(pool->Exists("b"));
  EXPECT_FALSE(pool->Exists("c"));

  ASSERT_TRUE(pool->Unpin("a").ok());
  ASSERT_TRUE(pool->Unpin("a").ok());
  ASSERT_TRUE(pool->Unpin("never-pinned").ok());
  for (int i = 20; i < 40; ++i) {
    ASSERT_TRUE(pool->Put("n" + std::to_string(i), ValueFor(i)).ok());
  }
  EXPECT_FALSE(pool->Exists("a"));
  EXPECT_TRUE(pool->Exists("b"));
  // Removing a pinned block releases its pin.
  ASSERT_TRUE(pool->Remove("b").ok());
  EXPECT_EQ(pool->Stats().pinned_bytes, 0u);
}

TEST(KvProtectionTest, PinnedBlocksFillingThePoolMakePutsFail) {
  PoolOptions o = CountingOptions(2, EvictionPolicyKind::kLru);
  o.pin_limit_bytes = o.dram_budget_bytes;
  auto pool = OpenOrDie(o);
  ASSERT_TRUE(pool->Put("a", ValueFor(1)).ok());
  ASSERT_TRUE(pool->Put("b", ValueFor(2)).ok());
  ASSERT_TRUE(pool->Pin("a").ok());
  ASSERT_TRUE(pool->Pin("b").ok());
  Status st = pool->Put("c", ValueFor(3));
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_NE(st.message().find("2 pinned blocks"), std::string::npos) << st.ToString();
  ASSERT_TRUE(pool->Unpin("a").ok());
  EXPECT_TRUE(pool->Put("c", ValueFor(3)).ok());
  EXPECT_FALSE(pool->Exists("a"));
}

}  // namespace
}  // namespace granary::kv
