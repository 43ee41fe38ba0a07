// The shared-memory read path: Pool::BatchLocate, and a client's ArenaView copying the located
// blocks out of the pool's arena, in this process and in a forked one.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <random>
#include <thread>

#include "kv/pool.h"
#include "kv_shm/arena_view.h"
#include "kv_test_util.h"

namespace granary::kv {
namespace {

using testing::OpenOrDie;
using testing::TempDir;
using testing::ValueFor;

constexpr uint64_t kPage = 4096;

std::unique_ptr<ArenaView> ViewOf(const Pool& pool) {
  auto view = ArenaView::Map(::dup(pool.arena_fd()));
  EXPECT_TRUE(view.ok()) << view.status().ToString();
  return view.ok() ? std::move(view).value() : nullptr;
}

Result<BlockLocation> LocateOne(Pool& pool, std::string_view key) {
  std::vector<std::string_view> keys = {key};
  return std::move(pool.BatchLocate(keys)[0]);
}

// Copies a located block out of the view.
Result<std::string> CopyOf(const ArenaView& view, const BlockLocation& loc) {
  std::string out(loc.size, '\0');
  ASSIGN_OR_RETURN(size_t n, view.CopyOut(loc, out));
  out.resize(n);
  return out;
}

PoolOptions Plain(uint64_t budget) {
  PoolOptions o;
  o.dram_budget_bytes = budget;
  o.high_watermark = 1.0;
  o.low_watermark = 1.0;
  o.lease = std::chrono::nanoseconds(0);
  return o;
}

TEST(KvLocateTest, RoundTripsValuesOfEverySize) {
  auto pool = OpenOrDie(Plain(8 << 20));
  EXPECT_EQ(pool->arena_bytes() % kPage, 0u);
  EXPECT_GE(pool->arena_bytes(), uint64_t{8} << 20);
  const std::vector<size_t> sizes = {0, 1, 4095, 4096, 4097, 1 << 20};
  std::vector<std::string> keys, values;
  for (size_t i = 0; i < sizes.size(); ++i) {
    keys.push_back("k" + std::to_string(sizes[i]));
    values.push_back(ValueFor(i + 1, sizes[i]));
  }
  for (const Status& st : pool->BatchPut(testing::Items(keys, values))) {
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  auto view = ViewOf(*pool);
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->file_bytes(), pool->arena_bytes());

  auto want = testing::Views(keys);
  want.push_back("missing");
  auto found = pool->BatchLocate(want);
  ASSERT_EQ(found.size(), sizes.size() + 1);
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_TRUE(found[i].ok()) << found[i].status().ToString();
    const BlockLocation& loc = *found[i];
    EXPECT_EQ(loc.size, sizes[i]);
    EXPECT_EQ(loc.extents.size(), sizes[i] == 0 ? 0u : 1u);  // a fresh arena: one run each
    EXPECT_EQ(loc.generations.size(), loc.extents.size());
    auto copy = CopyOf(*view, loc);
    ASSERT_TRUE(copy.ok()) << copy.status().ToString();
    EXPECT_EQ(*copy, values[i]) << "size " << sizes[i];
  }
  EXPECT_TRUE(found.back().status().IsNotFound());
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_hits, sizes.size());
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(pool->BatchLocate(std::vector<std::string_view>{""})[0].status().code(),
            Code::kInvalidArgument);
}

TEST(KvLocateTest, AScatteredValueIsLocatedAndViewedInPieces) {
  // Ten one-page blocks fill the pool's pages; removing every other one leaves no run of three.
  const uint64_t charge = DramTier::ChargeOf(2, kPage);
  auto pool = OpenOrDie(Plain(10 * charge));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pool->Put("k" + std::to_string(i), ValueFor(i, kPage)).ok());
  }
  for (int i : {1, 3, 5}) ASSERT_TRUE(pool->Remove("k" + std::to_string(i)).ok());
  const std::string big = ValueFor(99, 3 * kPage - 10);
  ASSERT_TRUE(pool->Put("big", big).ok());
  EXPECT_EQ(pool->Stats().dram_evictions, 0u);

  auto loc = LocateOne(*pool, "big");
  ASSERT_TRUE(loc.ok()) << loc.status().ToString();
  EXPECT_GT(loc->extents.size(), 1u);
  auto view = ViewOf(*pool);
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(*CopyOf(*view, *loc), big);

  auto block = pool->Acquire("big");
  ASSERT_TRUE(block.ok());
  EXPECT_EQ(block->pieces().size(), loc->extents.size());
  EXPECT_EQ(testing::Joined(*block), big);
  block->Release();
  EXPECT_EQ(*pool->Get("big"), big);
}

TEST(KvLocateTest, DiskHitsArePromotedAndLocated) {
  TempDir dir;
  auto pool = OpenOrDie(testing::TieredOptions(dir, 2, 100));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool->Put(std::string(1, 'a' + i), ValueFor(i)).ok());
  ASSERT_EQ(pool->Stats().dram_blocks, 2u);  // d, e; the rest only on disk

  auto view = ViewOf(*pool);
  ASSERT_NE(view, nullptr);
  std::vector<std::string_view> keys = {"a", "b", "nope"};
  auto found = pool->BatchLocate(keys);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(found[i].ok()) << found[i].status().ToString();
    EXPECT_EQ(*CopyOf(*view, *found[i]), ValueFor(i));
  }
  EXPECT_TRUE(found[2].status().IsNotFound());
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.disk_hits, 2u);
  EXPECT_EQ(s.promotions, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_LE(s.dram_bytes, s.dram_budget_bytes);
  // Both promotions fit (they evicted d and e); a second locate finds them in DRAM.
  auto again = pool->BatchLocate(keys);
  ASSERT_TRUE(again[0].ok() && again[1].ok());
  EXPECT_EQ(again[1]->extents, found[1]->extents);
  EXPECT_EQ(pool->Stats().dram_hits, 2u);
}

TEST(KvLocateTest, ADiskHitWithNoRoomInDramIsReadOnceAndHandedBack) {
  TempDir dir;
  auto pool = OpenOrDie(testing::TieredOptions(dir, 2, 100));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool->Put(std::string(1, 'a' + i), ValueFor(i)).ok());
  // b and c fill DRAM, and readers hold them: a cannot be promoted.
  auto b = pool->Acquire("b");
  auto c = pool->Acquire("c");
  ASSERT_TRUE(b.ok() && c.ok() && b->in_dram() && c->in_dram());
  const PoolStats before = pool->Stats();

  std::vector<std::optional<std::string>> unplaced;
  auto found = pool->BatchLocate(std::vector<std::string_view>{"a", "b"}, &unplaced);
  EXPECT_EQ(found[0].status().code(), Code::kUnavailable);
  ASSERT_TRUE(unplaced[0].has_value());
  EXPECT_EQ(*unplaced[0], ValueFor(0));
  ASSERT_TRUE(found[1].ok());
  EXPECT_FALSE(unplaced[1].has_value());

  auto a = pool->Acquire("a");  // a copy of its own, from one disk read
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FALSE(a->in_dram());
  EXPECT_EQ(testing::Joined(*a), ValueFor(0));

  const PoolStats after = pool->Stats();
  EXPECT_EQ(after.disk_hits - before.disk_hits, 2u);  // one per read of a
  EXPECT_EQ(after.dram_hits - before.dram_hits, 1u);
  EXPECT_EQ(after.promotions, before.promotions);
}

TEST(KvLocateTest, ABlockRemovedAndReusedIsDetected) {
  auto pool = OpenOrDie(Plain(1 << 20));
  auto view = ViewOf(*pool);
  ASSERT_NE(view, nullptr);
  ASSERT_TRUE(pool->Put("a", ValueFor(1, 2 * kPage)).ok());
  ASSERT_TRUE(pool->Put("keep", ValueFor(2, kPage)).ok());
  auto a = LocateOne(*pool, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*CopyOf(*view, *a), ValueFor(1, 2 * kPage));

  // Removed: nobody held it, so its pages are free at once; the copy no longer counts.
  ASSERT_TRUE(pool->Remove("a").ok());
  Status st = CopyOf(*view, *a).status();
  EXPECT_TRUE(ArenaView::IsBlockChanged(st)) << st.ToString();

  // And reused by the next put of the same size (best fit: exactly its pages).
  ASSERT_TRUE(pool->Put("b", ValueFor(3, 2 * kPage)).ok());
  auto b = LocateOne(*pool, "b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->extents, a->extents);
  EXPECT_NE(b->generations, a->generations);
  st = CopyOf(*view, *a).status();
  EXPECT_TRUE(ArenaView::IsBlockChanged(st)) << st.ToString();
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(*CopyOf(*view, *b), ValueFor(3, 2 * kPage));
}

TEST(KvLocateTest, AChildProcessReadsWhatTheParentWrote) {
  auto pool = OpenOrDie(Plain(1 << 20));
  const std::string v = ValueFor(5, 3 * kPage + 17);
  ASSERT_TRUE(pool->Put("a", v).ok());
  auto loc = LocateOne(*pool, "a");
  ASSERT_TRUE(loc.ok());
  const int fd = pool->arena_fd();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Another process: only the descriptor and the location cross over.
    auto view = ArenaView::Map(::dup(fd));
    if (!view.ok()) ::_exit(2);
    std::string out(loc->size, '\0');
    auto n = (*view)->CopyOut(*loc, out);
    if (!n.ok()) ::_exit(3);
    ::_exit(out == v ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(KvLocateTest, AFloodOfPutsAndLocatesNeverPassesTheBudget) {
  PoolOptions o = Plain(1 << 20);
  o.high_watermark = 0.95;
  o.low_watermark = 0.8;
  auto pool = OpenOrDie(o);
  auto view = ViewOf(*pool);
  ASSERT_NE(view, nullptr);
  std::mt19937_64 rng(11);
  std::vector<size_t> sizes;
  uint64_t copied = 0, changed = 0;
  for (int i = 0; i < 3000; ++i) {
    const size_t size = rng() % (64 * 1024);
    sizes.push_back(size);
    ASSERT_TRUE(pool->Put("f" + std::to_string(i), ValueFor(i, size)).ok());
    PoolStats s = pool->Stats();
    ASSERT_LE(s.dram_bytes, s.dram_budget_bytes);
    // Locate a few recent blocks, put more, then copy; now and then the puts between cycle the
    // whole pool, and the located blocks are gone.
    if (i % 4 == 3) {
      std::vector<std::string> keys;
      for (int j = i - 3; j <= i; ++j) keys.push_back("f" + std::to_string(j));
      auto found = pool->BatchLocate(testing::Views(keys));
      for (int j = 0; j < (i % 40 == 39 ? 20 : 1); ++j) {
        const std::string key = "x" + std::to_string(i) + "/" + std::to_string(j);
        ASSERT_TRUE(pool->Put(key, ValueFor(i, 60 * 1024)).ok());
        ASSERT_LE(pool->Stats().dram_bytes, o.dram_budget_bytes);
      }
      for (int j = 0; j < 4; ++j) {
        if (!found[j].ok()) {
          ASSERT_TRUE(found[j].status().IsNotFound()) << found[j].status().ToString();
          continue;
        }
        auto copy = CopyOf(*view, *found[j]);
        if (copy.ok()) {
          ++copied;
          ASSERT_EQ(*copy, ValueFor(i - 3 + j, sizes[i - 3 + j]));
        } else {
          ++changed;
          ASSERT_TRUE(ArenaView::IsBlockChanged(copy.status())) << copy.status().ToString();
        }
      }
    }
  }
  PoolStats s = pool->Stats();
  EXPECT_GT(s.dram_evictions, 1000u);
  EXPECT_GT(copied, 100u);
  EXPECT_GT(changed, 0u);
}

TEST(KvLocateTest, ConcurrentCopiesReturnTheBlockOrSayItChanged) {
  // Writers churn a small pool while readers locate and copy without holding anything: every
  // copy that succeeds must hold exactly the block's bytes.
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a seqlock: the copies race with puts by design, and TSan says so";
#endif
  PoolOptions o = Plain(256 * 1024);
  o.high_watermark = 0.9;
  o.low_watermark = 0.7;
  auto pool = OpenOrDie(o);
  auto view = ViewOf(*pool);
  ASSERT_NE(view, nullptr);
  constexpr uint64_t kKeys = 200;
  auto key_of = [](uint64_t id) { return "c/" + std::to_string(id); };
  auto size_of = [](uint64_t id) { return static_cast<size_t>(100 + (id * 7919) % 20000); };
  std::atomic<uint64_t> good{0}, changed{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 4000; ++i) {
        const uint64_t id = rng() % kKeys;
        if (rng() % 4 == 0) {
          pool->Remove(key_of(id)).IgnoreError();
        } else {
          Status st = pool->Put(key_of(id), ValueFor(id, size_of(id)));
          if (!st.ok() && st.code() != Code::kNoSpace) bad.fetch_add(1);
        }
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      std::string buf(32 * 1024, '\0');
      for (int i = 0; i < 4000; ++i) {
        const uint64_t id = rng() % kKeys;
        const std::string key = key_of(id);
        std::vector<std::string_view> keys = {key};
        auto found = pool->BatchLocate(keys);
        if (!found[0].ok()) continue;
        auto n = view->CopyOut(*found[0], buf);
        if (n.ok()) {
          good.fetch_add(1);
          if (std::string_view(buf.data(), *n) != ValueFor(id, size_of(id))) bad.fetch_add(1);
        } else if (ArenaView::IsBlockChanged(n.status())) {
          changed.fetch_add(1);
        } else {
          bad.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(good.load(), 100u);
  PoolStats s = pool->Stats();
  EXPECT_LE(s.dram_bytes, s.dram_budget_bytes);
}

}  // namespace
}  // namespace granary::kv
