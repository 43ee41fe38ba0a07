// The DRAM tier's accounting never passes its budget: under a flood of puts of many sizes, from
// one thread and from several at once while readers hold views.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "kv/pool.h"
#include "kv_test_util.h"

namespace granary::kv {
namespace {

using testing::OpenOrDie;
using testing::ValueFor;

PoolOptions FloodOptions(EvictionPolicyKind policy) {
  PoolOptions o;
  o.dram_budget_bytes = 1 << 20;
  o.high_watermark = 0.95;
  o.low_watermark = 0.8;
  o.eviction = policy;
  o.lease = std::chrono::nanoseconds(0);
  return o;
}

class KvBudgetTest : public ::testing::TestWithParam<EvictionPolicyKind> {};

TEST_P(KvBudgetTest, AFloodOfPutsNeverPassesTheBudget) {
  auto pool = OpenOrDie(FloodOptions(GetParam()));
  std::mt19937_64 rng(1);
  uint64_t peak = 0;
  for (int i = 0; i < 5000; ++i) {
    const size_t size = 1 + rng() % (64 * 1024);
    std::vector<std::string> keys = {"f" + std::to_string(i), "g" + std::to_string(i)};
    std::vector<std::string> values = {ValueFor(i, size), ValueFor(i, size / 2)};
    for (const Status& st : pool->BatchPut(testing::Items(keys, values))) {
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    PoolStats s = pool->Stats();
    ASSERT_LE(s.dram_bytes, s.dram_budget_bytes);
    peak = std::max(peak, s.dram_bytes);
  }
  PoolStats s = pool->Stats();
  EXPECT_GT(s.dram_evictions, 1000u);
  EXPECT_GT(peak, s.dram_budget_bytes * 8 / 10);
  // The last block put is readable.
  EXPECT_TRUE(pool->Exists("f4999"));
}

TEST_P(KvBudgetTest, ConcurrentPutsAndViewsNeverPassTheBudget) {
  auto pool = OpenOrDie(FloodOptions(GetParam()));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> over{0}, samples{0}, ok_puts{0}, failed_puts{0};
  std::thread monitor([&] {
    while (!stop.load()) {
      PoolStats s = pool->Stats();
      if (s.dram_bytes > s.dram_budget_bytes) over.fetch_add(1);
      samples.fetch_add(1);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 100);
      for (int i = 0; i < 1500; ++i) {
        const std::string key = std::to_string(t) + "/" + std::to_string(i);
        Status st = pool->Put(key, ValueFor(i, 1 + rng() % (32 * 1024)));
        (st.ok() ? ok_puts : failed_puts).fetch_add(1);
        if (!st.ok()) {
          ASSERT_EQ(st.code(), Code::kNoSpace) << st.ToString();
        }
        // Hold a view of a recent block for a moment, as a shared-memory reader would.
        auto view = pool->Acquire(std::to_string(t) + "/" + std::to_string(i / 2));
        if (view.ok()) {
          ASSERT_GT(view->size(), 0u);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  monitor.join();
  EXPECT_EQ(over.load(), 0u);
  EXPECT_GT(samples.load(), 0u);
  EXPECT_GT(ok_puts.load(), 5900u);  // a NoSpace needs every block to be held: rare
  PoolStats s = pool->Stats();
  EXPECT_LE(s.dram_bytes, s.dram_budget_bytes);
  EXPECT_GT(s.dram_evictions, 1000u);
}

// The tier charges each block at least its pages, so an arena of ceil(budget / page) pages always
// has room for what fits the budget. Given a smaller arena (a bug), Reserve fails, not crashes.
TEST(KvDramTierTest, AnArenaShortOfPagesIsAnInternalError) {
  auto arena = Arena::Create("short", 2 * arena_format::kPageSize);
  ASSERT_TRUE(arena.ok());
  DramTierOptions o;
  o.budget_bytes = 1 << 20;
  DramTier tier(o, arena->get());
  std::vector<std::unique_ptr<Block>> evicted;
  auto fits = tier.Reserve("a", 2 * arena_format::kPageSize, 0, {}, &evicted);
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_EQ((*fits)->extents.size(), 1u);
  auto short_of_pages = tier.Reserve("b", 1, 0, {}, &evicted);
  EXPECT_EQ(short_of_pages.status().code(), Code::kInternal);
  EXPECT_EQ(tier.used_bytes(), DramTier::ChargeOf(1, 2 * arena_format::kPageSize));
  tier.Abort(*fits);
  EXPECT_EQ(tier.used_bytes(), 0u);
  EXPECT_EQ((*arena)->free_pages(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Policies, KvBudgetTest,
                         ::testing::Values(EvictionPolicyKind::kLru,
                                           EvictionPolicyKind::kPrefixAware),
                         [](const auto& info) {
                           return info.param == EvictionPolicyKind::kLru ? "Lru" : "PrefixAware";
                         });

}  // namespace
}  // namespace granary::kv
