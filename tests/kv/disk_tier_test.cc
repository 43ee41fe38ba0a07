// The disk tier: write-through, spill of evicted blocks, promotion of disk hits, its own budget
// and eviction, and what a reopen finds.
#include "kv/disk_tier.h"

#include <gtest/gtest.h>

#include "kv/pool.h"
#include "kv_test_util.h"

namespace granary::kv {
namespace {

using testing::OpenOrDie;
using testing::TempDir;
using testing::TieredOptions;
using testing::ValueFor;

std::string Key(int i) { return std::string(1, static_cast<char>('a' + i)); }

TEST(KvDiskTierTest, EvictedBlocksAreReadFromDiskAndPromoted) {
  TempDir dir;
  auto pool = OpenOrDie(TieredOptions(dir, 2, 100));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool->Put(Key(i), ValueFor(i)).ok());
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_blocks, 2u);
  EXPECT_EQ(s.disk_blocks, 5u);
  EXPECT_EQ(s.dram_evictions, 3u);
  EXPECT_EQ(s.spills, 0u);  // written through already
  std::vector<std::string_view> chain = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(pool->LongestPrefix(chain), 5u);

  auto got = pool->Get("a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, ValueFor(0));
  s = pool->Stats();
  EXPECT_EQ(s.disk_hits, 1u);
  EXPECT_EQ(s.promotions, 1u);
  // Promoted: the next read is a DRAM hit.
  std::string buf(testing::kBlockBytes, '\0');
  ASSERT_TRUE(pool->GetInto("a", buf).ok());
  EXPECT_EQ(buf, ValueFor(0));
  EXPECT_EQ(pool->Stats().dram_hits, 1u);

  // A batch read of blocks on disk promotes them as well.
  std::vector<std::string_view> keys = {"b", "c"};
  std::vector<std::string> bufs(2, std::string(testing::kBlockBytes, '\0'));
  std::vector<std::span<char>> spans = {bufs[0], bufs[1]};
  auto r = pool->BatchGetInto(keys, spans);
  ASSERT_TRUE(r[0].ok() && r[1].ok());
  EXPECT_EQ(bufs[0], ValueFor(1));
  EXPECT_EQ(bufs[1], ValueFor(2));
  s = pool->Stats();
  EXPECT_EQ(s.promotions, 3u);
  EXPECT_LE(s.dram_bytes, s.dram_budget_bytes);
}

TEST(KvDiskTierTest, TheDiskTierHasItsOwnBudget) {
  TempDir dir;
  auto pool = OpenOrDie(TieredOptions(dir, 2, 3));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(pool->Put(Key(i), ValueFor(i)).ok());
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.disk_blocks, 3u);
  EXPECT_EQ(s.disk_evictions, 3u);
  EXPECT_LE(s.disk_bytes, s.disk_budget_bytes);
  EXPECT_TRUE(pool->Get("a").status().IsNotFound());
  EXPECT_EQ(*pool->Get("d"), ValueFor(3));
  EXPECT_EQ(*pool->Get("f"), ValueFor(5));
}

TEST(KvDiskTierTest, ABlockWhoseDiskCopyWasEvictedIsSpilledWhenItLeavesDram) {
  TempDir dir;
  auto pool = OpenOrDie(TieredOptions(dir, 3, 2));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool->Put(Key(i), ValueFor(i)).ok());
  // The disk holds b, c; DRAM holds a, b, c. d evicts a from DRAM: a is written to disk again.
  ASSERT_TRUE(pool->Put("d", ValueFor(3)).ok());
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.spills, 1u);
  EXPECT_LE(s.disk_bytes, s.disk_budget_bytes);
  auto got = pool->Get("a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, ValueFor(0));
  EXPECT_EQ(pool->Stats().disk_hits, 1u);
}

TEST(KvDiskTierTest, ReopenFindsTheDiskTier) {
  TempDir dir;
  {
    auto pool = OpenOrDie(TieredOptions(dir, 2, 100, EvictionPolicyKind::kPrefixAware));
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(pool->Put(Key(i), ValueFor(i)).ok());
    ASSERT_TRUE(pool->Remove("j").ok());
    ASSERT_TRUE(pool->Close().ok());
  }
  auto pool = OpenOrDie(TieredOptions(dir, 2, 100, EvictionPolicyKind::kPrefixAware));
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_blocks, 0u);
  EXPECT_EQ(s.disk_blocks, 9u);
  EXPECT_EQ(s.disk_bytes, 9 * DiskTier::ChargeOf(1, testing::kBlockBytes));
  for (int i = 0; i < 9; ++i) {
    auto got = pool->Get(Key(i));
    ASSERT_TRUE(got.ok()) << Key(i) << ": " << got.status().ToString();
    EXPECT_EQ(*got, ValueFor(i));
  }
  EXPECT_TRUE(pool->Get("j").status().IsNotFound());
  // The put of a block found on disk is a no-op.
  ASSERT_TRUE(pool->Put("a", ValueFor(0)).ok());
  EXPECT_EQ(pool->Put("a", "short").code(), Code::kAlreadyExists);
}

TEST(KvDiskTierTest, ReopenWithASmallerBudgetEvictsTheOldestBlocks) {
  TempDir dir;
  {
    auto pool = OpenOrDie(TieredOptions(dir, 2, 100));
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(pool->Put(Key(i), ValueFor(i)).ok());
  }
  auto pool = OpenOrDie(TieredOptions(dir, 2, 4));
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.disk_blocks, 4u);
  EXPECT_LE(s.disk_bytes, s.disk_budget_bytes);
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(pool->Exists(Key(i))) << Key(i);
  for (int i = 6; i < 10; ++i) EXPECT_EQ(*pool->Get(Key(i)), ValueFor(i));
}

TEST(KvDiskTierTest, PinnedBlocksAreKeptOnDisk) {
  TempDir dir;
  PoolOptions o = TieredOptions(dir, 2, 3);
  o.pin_limit_bytes = o.dram_budget_bytes;
  auto pool = OpenOrDie(o);
  ASSERT_TRUE(pool->Put("a", ValueFor(0)).ok());
  ASSERT_TRUE(pool->Pin("a").ok());
  for (int i = 1; i < 8; ++i) ASSERT_TRUE(pool->Put(Key(i), ValueFor(i)).ok());
  EXPECT_EQ(pool->Stats().disk_blocks, 3u);
  ASSERT_TRUE(pool->Unpin("a").ok());
  ASSERT_TRUE(pool->Close().ok());
  // Still on disk after a restart: the pin kept the disk tier from evicting it.
  pool = OpenOrDie(TieredOptions(dir, 2, 3));
  EXPECT_EQ(*pool->Get("a"), ValueFor(0));
}

}  // namespace
}  // namespace granary::kv
