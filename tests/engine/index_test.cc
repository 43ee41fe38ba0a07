// Tests of KeyIndex (src/engine/index.cc): map semantics, growth, deletion under collisions, a
// differential test against std::unordered_map, concurrency, memory per entry, and the checkpoint
// file (docs/formats/engine.md, "Index checkpoint").
#include "engine/index.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/crc32c.h"
#include "common/hash.h"
#include "engine/mem_fs.h"
#include "io/fault_fs.h"
#include "io/file_system.h"

namespace granary::engine {
namespace {

using CheckpointInfo = KeyIndex::CheckpointInfo;

struct KeyHashHasher {
  size_t operator()(const KeyHash& h) const { return h.lo ^ (h.hi * 0x9E3779B97F4A7C15ull); }
};
using Model = std::unordered_map<KeyHash, Location, KeyHashHasher>;

KeyHash RandomHash(std::mt19937_64& rng) { return KeyHash{rng(), rng()}; }

Location Loc(uint32_t i) { return Location{i, i * 3 + 1, i % 1000 + 1}; }

// Hashes that share one shard and one home bucket. The index picks the shard from the top 8
// bits of `hi` and the bucket by scaling `lo` to the table's capacity, so tiny values of `lo`
// all land in bucket 0 and values near 2^64 in the last bucket, from where probes wrap around.
// (If that mapping changes, these stay valid keys; the test just collides less.)
KeyHash Colliding(uint64_t i, bool wrap) {
  return KeyHash{wrap ? ~uint64_t{0} - i : i, (uint64_t{7} << 56) | i};
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::map<std::pair<uint64_t, uint64_t>, Location> Contents(const KeyIndex& index) {
  std::map<std::pair<uint64_t, uint64_t>, Location> out;
  index.ForEach([&](const KeyHash& h, const Location& loc) {
    EXPECT_TRUE(out.emplace(std::make_pair(h.lo, h.hi), loc).second) << "key listed twice";
  });
  return out;
}

TEST(KeyIndexTest, UpsertFindEraseReplaceIf) {
  KeyIndex index;
  KeyHash a = HashKey("a"), b = HashKey("b");
  EXPECT_EQ(index.size(), 0u);
  EXPECT_FALSE(index.Find(a));
  EXPECT_FALSE(index.Erase(a));

  EXPECT_FALSE(index.Upsert(a, Loc(1)));
  EXPECT_EQ(index.Find(a), Loc(1));
  EXPECT_FALSE(index.Find(b));
  EXPECT_EQ(index.Upsert(a, Loc(2)), Loc(1));  // replace returns the old location
  EXPECT_EQ(index.Find(a), Loc(2));
  EXPECT_EQ(index.size(), 1u);

  EXPECT_FALSE(index.ReplaceIf(a, Loc(1), Loc(3)));  // stale expectation: a newer write won
  EXPECT_EQ(index.Find(a), Loc(2));
  EXPECT_TRUE(index.ReplaceIf(a, Loc(2), Loc(3)));
  EXPECT_EQ(index.Find(a), Loc(3));
  EXPECT_FALSE(index.ReplaceIf(b, Loc(0), Loc(4)));  // absent: nothing to move
  EXPECT_FALSE(index.Find(b));

  EXPECT_EQ(index.Erase(a), Loc(3));
  EXPECT_FALSE(index.Find(a));
  EXPECT_FALSE(index.Erase(a));
  EXPECT_EQ(index.size(), 0u);
}

TEST(KeyIndexTest, AllZeroAndAllOnesHashesAreKeys) {
  KeyIndex index;
  KeyHash zero{0, 0}, ones{~uint64_t{0}, ~uint64_t{0}};
  EXPECT_FALSE(index.Upsert(zero, Loc(5)));
  EXPECT_FALSE(index.Upsert(ones, Loc(6)));
  EXPECT_EQ(index.Find(zero), Loc(5));
  EXPECT_EQ(index.Find(ones), Loc(6));
  EXPECT_EQ(index.Erase(zero), Loc(5));
  EXPECT_FALSE(index.Find(zero));
  EXPECT_EQ(index.Find(ones), Loc(6));
}

TEST(KeyIndexTest, LargestLocationRoundTrips) {
  KeyIndex index;
  Location max{~0u, ~0u, ~0u};
  EXPECT_FALSE(index.Upsert(HashKey("k"), max));
  EXPECT_EQ(index.Find(HashKey("k")), max);
  EXPECT_EQ(max.offset(), (uint64_t{1} << 35) - 8);
}

TEST(KeyIndexTest, GrowsAndShrinksThroughManySizes) {
  const size_t kEmptyBytes = KeyIndex().MemoryBytes();
  std::mt19937_64 rng(1);
  for (size_t n : {1, 2, 15, 16, 17, 100, 1000, 4095, 12345, 100000, 300000}) {
    SCOPED_TRACE(n);
    KeyIndex index;
    std::vector<KeyHash> keys(n);
    for (size_t i = 0; i < n; ++i) {
      keys[i] = RandomHash(rng);
      ASSERT_FALSE(index.Upsert(keys[i], Loc(i)));
      ASSERT_EQ(index.size(), i + 1);
    }
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(index.Find(keys[i]), Loc(i)) << i;
    for (int i = 0; i < 1000; ++i) ASSERT_FALSE(index.Find(RandomHash(rng)));
    EXPECT_GE(index.MemoryBytes(), kEmptyBytes + n * 28);

    for (size_t i = 0; i < n; i += 2) ASSERT_EQ(index.Erase(keys[i]), Loc(i));
    for (size_t i = 0; i < n; ++i) {
      if (i % 2 == 0) {
        ASSERT_FALSE(index.Find(keys[i])) << i;
      } else {
        ASSERT_EQ(index.Find(keys[i]), Loc(i)) << i;
      }
    }
    for (size_t i = 1; i < n; i += 2) ASSERT_EQ(index.Erase(keys[i]), Loc(i));
    EXPECT_EQ(index.size(), 0u);
    // Emptied tables shrink back to their smallest size.
    EXPECT_LE(index.MemoryBytes(), kEmptyBytes + 256 * 16 * 28);
    index.Clear();
    EXPECT_EQ(index.MemoryBytes(), kEmptyBytes);
  }
}

TEST(KeyIndexTest, EraseShiftsCollidingRunsBack) {
  // Two clusters in one shard: one homed at bucket 0 and one homed at the last bucket, whose run
  // wraps around into the first. Erase in random order, checking everything after each step.
  for (int seed = 0; seed < 20; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    KeyIndex index;
    std::vector<KeyHash> keys;
    const int n = 10 + seed * 7;  // up to 143 keys: several growth steps
    for (int i = 0; i < n; ++i) {
      keys.push_back(Colliding(i, /*wrap=*/i % 3 == 0));
      ASSERT_FALSE(index.Upsert(keys.back(), Loc(i)));
    }
    // Replacements inside the run.
    for (int i = 0; i < n; i += 5) ASSERT_EQ(index.Upsert(keys[i], Loc(1000 + i)), Loc(i));
    for (int i = 1; i < n; i += 5) ASSERT_TRUE(index.ReplaceIf(keys[i], Loc(i), Loc(1000 + i)));
    std::vector<Location> want(n);
    for (int i = 0; i < n; ++i) want[i] = (i % 5 <= 1) ? Loc(1000 + i) : Loc(i);

    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<bool> present(n, true);
    for (int k = 0; k < n; ++k) {
      int victim = order[k];
      ASSERT_EQ(index.Erase(keys[victim]), want[victim]);
      present[victim] = false;
      if (k % 4 == 0) {  // a second erase finds nothing
        ASSERT_FALSE(index.Erase(keys[victim]));
      }
      for (int i = 0; i < n; ++i) {
        if (present[i]) {
          ASSERT_EQ(index.Find(keys[i]), want[i]) << "after erasing " << victim;
        } else {
          ASSERT_FALSE(index.Find(keys[i])) << "after erasing " << victim;
        }
      }
      ASSERT_EQ(index.size(), static_cast<size_t>(n - k - 1));
    }
  }
}

TEST(KeyIndexTest, DifferentialAgainstUnorderedMap) {
  std::mt19937_64 rng(42);
  KeyIndex index;
  Model model;
  // Random keys, plus colliding ones so that long runs, wrap-around and shifts are exercised.
  std::vector<KeyHash> pool;
  for (int i = 0; i < 200000; ++i) pool.push_back(RandomHash(rng));
  for (int i = 0; i < 2000; ++i) pool.push_back(Colliding(i, i % 2 == 0));
  std::shuffle(pool.begin(), pool.end(), rng);

  const int kOps = 1000000;
  uint32_t next_loc = 1;
  for (int op = 0; op < kOps; ++op) {
    // The working set and the mix drift, so the tables grow, shrink and grow again.
    size_t window = 1000 + (pool.size() - 1000) * ((op / 100000) % 5) / 4;
    const KeyHash& k = pool[rng() % window];
    int dice = static_cast<int>(rng() % 100);
    bool shrinking = (op / 50000) % 3 == 2;
    auto it = model.find(k);
    std::optional<Location> old;
    if (it != model.end()) old = it->second;
    if (dice < (shrinking ? 20 : 45)) {
      Location loc = Loc(next_loc++);
      ASSERT_EQ(index.Upsert(k, loc), old) << "op " << op;
      model[k] = loc;
    } else if (dice < 75) {
      ASSERT_EQ(index.Erase(k), old) << "op " << op;
      model.erase(k);
    } else if (dice < 90) {
      ASSERT_EQ(index.Find(k), old) << "op " << op;
    } else {
      Location expected = (old && rng() % 4 != 0) ? *old : Loc(next_loc++);
      Location desired = Loc(next_loc++);
      bool replaced = old && *old == expected;
      ASSERT_EQ(index.ReplaceIf(k, expected, desired), replaced) << "op " << op;
      if (replaced) model[k] = desired;
    }
    if (op % 10007 == 0) {
      ASSERT_EQ(index.size(), model.size()) << "op " << op;
    }
  }
  ASSERT_EQ(index.size(), model.size());
  size_t seen = 0;
  index.ForEach([&](const KeyHash& h, const Location& loc) {
    ++seen;
    auto it = model.find(h);
    ASSERT_NE(it, model.end());
    EXPECT_EQ(it->second, loc);
  });
  EXPECT_EQ(seen, model.size());
  for (const auto& [h, loc] : model) ASSERT_EQ(index.Find(h), loc);
}

TEST(KeyIndexTest, ConcurrentReadersSeeOldOrNewLocation) {
  KeyIndex index;
  std::mt19937_64 rng(7);
  // Stable keys are always present and flip between two locations; churn keys are inserted and
  // erased around them, which grows, shrinks and shifts the tables under the readers.
  const int kStable = 2000;
  std::vector<KeyHash> stable(kStable);
  auto old_loc = [](int i) { return Location{1, uint32_t(i), 1}; };
  auto new_loc = [](int i) { return Location{2, uint32_t(i), 2}; };
  auto valid = [&](int i, const std::optional<Location>& l) {
    return l && (*l == old_loc(i) || *l == new_loc(i));
  };
  std::unordered_map<KeyHash, int, KeyHashHasher> which;
  for (int i = 0; i < kStable; ++i) {
    stable[i] = i % 10 == 0 ? Colliding(i, false) : RandomHash(rng);
    ASSERT_FALSE(index.Upsert(stable[i], old_loc(i)));
    which[stable[i]] = i;
  }
  // Every stable key exactly once and in one of its two states, in a walk or a checkpoint.
  auto check_walk = [&](const auto& walk) {
    uint64_t errors = 0;
    std::vector<int> seen(kStable, 0);
    walk([&](const KeyHash& h, const Location& loc) {
      auto it = which.find(h);
      if (it == which.end()) return;
      ++seen[it->second];
      if (!valid(it->second, loc)) ++errors;
    });
    for (int s : seen) errors += s != 1;
    return errors;
  };

  // The threads are paced by the writer's progress (never by time): a reader may run at most a
  // few finds ahead of the writer's operations, so that they overlap all along even when the
  // CPUs are oversubscribed and a reader-preferring lock would let readers crowd the writer out.
  std::atomic<uint64_t> progress{0};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0}, walks{0}, saves{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      uint64_t n = 0;
      for (int i = t; !done.load(); i = (i + 3) % kStable) {
        while (n >= 4 * (progress.load() + 1) && !done.load()) std::this_thread::yield();
        if (!valid(i, index.Find(stable[i]))) bad.fetch_add(1);
        ++n;
      }
      reads.fetch_add(n);
    });
  }
  threads.emplace_back([&] {
    while (!done.load()) {
      if (walks.load() > progress.load() / 2000) {
        std::this_thread::yield();
        continue;
      }
      bad.fetch_add(check_walk([&](const auto& fn) { index.ForEach(fn); }));
      walks.fetch_add(1);
    }
  });
  // Checkpoints taken while the writer runs hold every untouched entry.
  threads.emplace_back([&] {
    test::MemFileSystem fs;
    while (!done.load()) {
      if (saves.load() > progress.load() / 100000) {
        std::this_thread::yield();
        continue;
      }
      KeyIndex copy;
      if (!index.SaveCheckpoint(fs, "/ckpt", {}).ok() || !copy.LoadCheckpoint(fs, "/ckpt").ok()) {
        bad.fetch_add(1);
      }
      bad.fetch_add(check_walk([&](const auto& fn) { copy.ForEach(fn); }));
      saves.fetch_add(1);
    }
  });

  std::vector<KeyHash> churn;
  auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 30; ++round) {
    for (int i = 0; i < kStable; ++i) {
      if (round % 2 == 0) {
        index.Upsert(stable[i], new_loc(i));
      } else {
        EXPECT_TRUE(index.ReplaceIf(stable[i], new_loc(i), old_loc(i)));
      }
      progress.fetch_add(1);
    }
    for (int i = 0; i < 5000; ++i) {
      churn.push_back(i % 8 == 0 ? Colliding(10000 + round * 5000 + i, i % 16 == 0)
                                 : RandomHash(rng));
      index.Upsert(churn.back(), Loc(i + 1));
      progress.fetch_add(1);
    }
    // Erase most of the churn: runs shift back and tables shrink.
    std::shuffle(churn.begin(), churn.end(), rng);
    while (churn.size() > 500) {
      index.Erase(churn.back());
      churn.pop_back();
      progress.fetch_add(1);
    }
  }
  double writer_s = Seconds(start);
  done.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(index.size(), kStable + churn.size());
  EXPECT_GT(saves.load(), 0u);
  std::printf(
      "[ concurrency ] writer: %.2f s for %llu ops, alongside %llu finds, %llu walks "
      "and %llu checkpoints\n",
      writer_s, static_cast<unsigned long long>(progress.load()),
      static_cast<unsigned long long>(reads.load()), static_cast<unsigned long long>(walks.load()),
      static_cast<unsigned long long>(saves.load()));
}

TEST(KeyIndexTest, MemoryPerEntry) {
  std::mt19937_64 rng(3);
  KeyIndex index;
  double worst = 0;
  for (size_t i = 1; i <= 2000000; ++i) {
    index.Upsert(RandomHash(rng), Loc(i));
    if (i >= 250000 && i % 50000 == 0) {
      double per = static_cast<double>(index.MemoryBytes()) / index.size();
      worst = std::max(worst, per);
      if (i == 1000000) {
        std::printf("[ memory ] %zu entries: %zu bytes, %.1f bytes/entry\n", index.size(),
                    index.MemoryBytes(), per);
        RecordProperty("bytes_per_entry_1M", std::to_string(per));
        EXPECT_LE(per, 48.0);
        EXPECT_GE(per, 28.0);
      }
    }
  }
  std::printf("[ memory ] worst from 250k to 2M entries: %.1f bytes/entry\n", worst);
  EXPECT_LE(worst, 48.0);
}

// ---- Checkpoint ----

constexpr size_t kHeaderBytes = 40;
constexpr size_t kEntryBytes = 28;

void PutLE(std::string* s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLE(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

// A checkpoint file built by hand from docs/formats/engine.md, independently of index.cc.
std::string BuildCheckpoint(const CheckpointInfo& info,
                            const std::vector<std::pair<KeyHash, Location>>& entries) {
  std::string f = "GRNINDEX";
  PutLE(&f, 1, 4);
  PutLE(&f, info.replay_segment, 4);
  PutLE(&f, info.replay_offset, 8);
  PutLE(&f, info.next_sequence, 8);
  PutLE(&f, entries.size(), 8);
  for (const auto& [h, loc] : entries) {
    PutLE(&f, h.lo, 8);
    PutLE(&f, h.hi, 8);
    PutLE(&f, loc.segment, 4);
    PutLE(&f, loc.offset8, 4);
    PutLE(&f, loc.size8, 4);
  }
  PutLE(&f, crc32c::Value(f), 4);
  return f;
}

// Checks a file against the documented layout and returns its entries.
std::map<std::pair<uint64_t, uint64_t>, Location> ParseCheckpoint(const std::string& f,
                                                                  const CheckpointInfo& info) {
  std::map<std::pair<uint64_t, uint64_t>, Location> out;
  EXPECT_GE(f.size(), kHeaderBytes + 4);
  if (f.size() < kHeaderBytes + 4) return out;
  EXPECT_EQ(f.substr(0, 8), "GRNINDEX");
  EXPECT_EQ(GetLE(f, 8, 4), 1u);
  EXPECT_EQ(GetLE(f, 12, 4), info.replay_segment);
  EXPECT_EQ(GetLE(f, 16, 8), info.replay_offset);
  EXPECT_EQ(GetLE(f, 24, 8), info.next_sequence);
  uint64_t n = GetLE(f, 32, 8);
  EXPECT_EQ(f.size(), kHeaderBytes + n * kEntryBytes + 4);
  EXPECT_EQ(GetLE(f, f.size() - 4, 4), crc32c::Value(f.data(), f.size() - 4));
  for (uint64_t i = 0; i < n && kHeaderBytes + (i + 1) * kEntryBytes <= f.size(); ++i) {
    size_t at = kHeaderBytes + i * kEntryBytes;
    Location loc{uint32_t(GetLE(f, at + 16, 4)), uint32_t(GetLE(f, at + 20, 4)),
                 uint32_t(GetLE(f, at + 24, 4))};
    EXPECT_TRUE(out.emplace(std::make_pair(GetLE(f, at, 8), GetLE(f, at + 8, 8)), loc).second);
  }
  return out;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void Fill(KeyIndex* index, size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    index->Upsert(KeyHash{0, 0}, Loc(0));
    for (size_t i = 1; i < n; ++i) {
      index->Upsert(i % 50 == 0 ? Colliding(i, i % 100 == 0) : RandomHash(rng), Loc(i));
    }
  }

  test::MemFileSystem fs_;
  const std::string path_ = "/db/index.ckpt";
  const CheckpointInfo info_{7, 123456789012ull, 987654321ull};
};

TEST_F(CheckpointTest, RoundTrip) {
  KeyIndex index;
  Fill(&index, 10000, 1);
  ASSERT_TRUE(index.SaveCheckpoint(fs_, path_, info_).ok());
  EXPECT_FALSE(fs_.Contents(path_ + ".tmp"));  // renamed into place
  EXPECT_GE(fs_.syncs(), 1u);
  EXPECT_GE(fs_.dir_syncs(), 1u);
  std::optional<std::string> file = fs_.Contents(path_);
  ASSERT_TRUE(file);
  EXPECT_EQ(ParseCheckpoint(*file, info_), Contents(index));

  // Loading replaces whatever the index held.
  KeyIndex loaded;
  loaded.Upsert(HashKey("not in the checkpoint"), Loc(1));
  Result<CheckpointInfo> got = loaded.LoadCheckpoint(fs_, path_);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->replay_segment, info_.replay_segment);
  EXPECT_EQ(got->replay_offset, info_.replay_offset);
  EXPECT_EQ(got->next_sequence, info_.next_sequence);
  EXPECT_EQ(loaded.size(), index.size());
  EXPECT_EQ(Contents(loaded), Contents(index));
  EXPECT_FALSE(loaded.Find(HashKey("not in the checkpoint")));

  // The loaded index is a normal one.
  EXPECT_EQ(loaded.Erase(KeyHash{0, 0}), Loc(0));
  EXPECT_FALSE(loaded.Upsert(HashKey("new"), Loc(3)));
  EXPECT_EQ(loaded.size(), index.size());
}

TEST_F(CheckpointTest, EmptyIndexRoundTrip) {
  KeyIndex index;
  ASSERT_TRUE(index.SaveCheckpoint(fs_, path_, info_).ok());
  EXPECT_EQ(fs_.Contents(path_)->size(), kHeaderBytes + 4);
  KeyIndex loaded;
  loaded.Upsert(HashKey("x"), Loc(1));
  ASSERT_TRUE(loaded.LoadCheckpoint(fs_, path_).ok());
  EXPECT_EQ(loaded.size(), 0u);
}

TEST_F(CheckpointTest, ReadsFileBuiltFromTheFormatSpec) {
  // Pins the format: a file written from the documentation, not by SaveCheckpoint.
  std::vector<std::pair<KeyHash, Location>> entries = {
      {KeyHash{0, 0}, Location{0, 0, 1}},
      {KeyHash{0x0123456789abcdefull, 0xfedcba9876543210ull}, Location{3, 4096 / 8, 520 / 8}},
      {HashKey("hello"), Location{~0u, ~0u, ~0u}},
  };
  fs_.SetContents(path_, BuildCheckpoint(info_, entries));
  KeyIndex index;
  Result<CheckpointInfo> got = index.LoadCheckpoint(fs_, path_);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->replay_offset, info_.replay_offset);
  EXPECT_EQ(index.size(), entries.size());
  for (const auto& [h, loc] : entries) EXPECT_EQ(index.Find(h), loc);
}

TEST_F(CheckpointTest, ReplacesAStaleTemporaryFile) {
  fs_.SetContents(path_ + ".tmp", std::string(3 << 20, 'x'));  // left by a crashed save
  KeyIndex index;
  Fill(&index, 100, 2);
  ASSERT_TRUE(index.SaveCheckpoint(fs_, path_, info_).ok());
  KeyIndex loaded;
  ASSERT_TRUE(loaded.LoadCheckpoint(fs_, path_).ok());
  EXPECT_EQ(Contents(loaded), Contents(index));
}

TEST_F(CheckpointTest, FailedSaveKeepsThePreviousCheckpoint) {
  KeyIndex index;
  Fill(&index, 100000, 3);  // several buffers of entries
  ASSERT_TRUE(index.SaveCheckpoint(fs_, path_, info_).ok());
  std::string before = *fs_.Contents(path_);

  KeyIndex other;
  Fill(&other, 100000, 4);
  for (uint64_t nth : {1, 2, 4}) {
    fs_.FailNthWrite(nth);
    Status st = other.SaveCheckpoint(fs_, path_, CheckpointInfo{});
    EXPECT_EQ(st.code(), Code::kIOError) << st.ToString();
    EXPECT_NE(st.message().find(path_), std::string::npos) << st.ToString();
    EXPECT_EQ(*fs_.Contents(path_), before);
    EXPECT_FALSE(fs_.Contents(path_ + ".tmp"));
  }
  KeyIndex loaded;
  ASSERT_TRUE(loaded.LoadCheckpoint(fs_, path_).ok());
  EXPECT_EQ(Contents(loaded), Contents(index));
}

// A crash at any write or sync of a save leaves the previous checkpoint or the new one, whole.
TEST_F(CheckpointTest, CrashDuringSaveLeavesOldOrNew) {
  auto base = std::make_shared<test::MemFileSystem>();
  io::FaultInjectionFileSystem fs(base);
  KeyIndex old_index, new_index;
  Fill(&old_index, 60000, 10);  // two buffers of entries: several writes per save
  Fill(&new_index, 70000, 11);
  const auto old_contents = Contents(old_index), new_contents = Contents(new_index);

  uint64_t writes = fs.writes(), syncs = fs.syncs();
  ASSERT_TRUE(new_index.SaveCheckpoint(fs, path_, info_).ok());
  writes = fs.writes() - writes;
  syncs = fs.syncs() - syncs;
  ASSERT_GE(writes, 3u);
  ASSERT_GE(syncs, 2u);  // the file and its directory

  auto check = [&](bool save_ok, const std::string& what) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(fs.DropUnsyncedData().ok());
    fs.Revive();
    KeyIndex loaded;
    Result<CheckpointInfo> got = loaded.LoadCheckpoint(fs, path_);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto contents = Contents(loaded);
    if (save_ok) {
      EXPECT_EQ(contents, new_contents);
    } else {
      EXPECT_TRUE(contents == old_contents || contents == new_contents);
    }
  };
  for (uint64_t nth = 1; nth <= writes; ++nth) {
    ASSERT_TRUE(old_index.SaveCheckpoint(fs, path_, info_).ok());
    fs.TearNthWrite(nth, 1000);
    Status st = new_index.SaveCheckpoint(fs, path_, info_);
    EXPECT_FALSE(st.ok());
    check(st.ok(), "torn write " + std::to_string(nth));
  }
  for (uint64_t nth = 1; nth <= syncs; ++nth) {
    ASSERT_TRUE(old_index.SaveCheckpoint(fs, path_, info_).ok());
    fs.FailNthSync(nth);
    Status st = new_index.SaveCheckpoint(fs, path_, info_);
    EXPECT_FALSE(st.ok());
    check(st.ok(), "failed sync " + std::to_string(nth));
  }
  ASSERT_TRUE(old_index.SaveCheckpoint(fs, path_, info_).ok());
  ASSERT_TRUE(new_index.SaveCheckpoint(fs, path_, info_).ok());
  check(true, "no fault");
}

TEST_F(CheckpointTest, MissingFileIsNotFound) {
  KeyIndex index;
  index.Upsert(HashKey("k"), Loc(1));
  Result<CheckpointInfo> got = index.LoadCheckpoint(fs_, "/db/nothing");
  EXPECT_EQ(got.status().code(), Code::kNotFound) << got.status().ToString();
  EXPECT_NE(got.status().message().find("/db/nothing"), std::string::npos);
  EXPECT_EQ(index.Find(HashKey("k")), Loc(1));
}

// Loads `bytes` into an index holding one marker entry and expects Corruption that names the
// file and leaves the index as it was.
void ExpectCorruption(test::MemFileSystem& fs, const std::string& path, std::string bytes,
                      const std::string& what) {
  SCOPED_TRACE(what);
  fs.SetContents(path, std::move(bytes));
  KeyIndex index;
  index.Upsert(HashKey("marker"), Loc(9));
  Result<CheckpointInfo> got = index.LoadCheckpoint(fs, path);
  ASSERT_EQ(got.status().code(), Code::kCorruption) << got.status().ToString();
  EXPECT_NE(got.status().message().find(path), std::string::npos) << got.status().ToString();
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.Find(HashKey("marker")), Loc(9));
}

TEST_F(CheckpointTest, CorruptedByteIsCorruption) {
  KeyIndex index;
  Fill(&index, 50000, 5);  // more than one read buffer
  ASSERT_TRUE(index.SaveCheckpoint(fs_, path_, info_).ok());
  const std::string good = *fs_.Contents(path_);
  const size_t n = index.size();
  const size_t mid = 40 + 28 * (n / 2) + 5, end = good.size();
  // Magic, version, info, count, first entry, an entry in the middle, last entry, CRC.
  std::vector<size_t> offsets = {0,  7,  8,  11, 12,  16,      24,      32,
                                 39, 40, 56, 67, mid, end - 5, end - 4, end - 1};
  for (size_t at : offsets) {
    for (int bit : {0, 7}) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      ExpectCorruption(fs_, path_, bad,
                       "bit " + std::to_string(bit) + " of byte " + std::to_string(at));
    }
  }
  // A newer format version is refused too.
  std::string v2 = good;
  v2[8] = 2;
  fs_.SetContents(path_, v2);
  Result<CheckpointInfo> got = index.LoadCheckpoint(fs_, path_);
  EXPECT_TRUE(got.status().IsCorruption());
  EXPECT_NE(got.status().message().find("version 2"), std::string::npos) << got.status().ToString();
}

TEST_F(CheckpointTest, EntriesThatPassTheChecksumAreStillChecked) {
  KeyHash k{1, 2};
  ExpectCorruption(fs_, path_, BuildCheckpoint(info_, {{k, Location{1, 2, 0}}}), "size 0");
  ExpectCorruption(fs_, path_, BuildCheckpoint(info_, {{k, Loc(1)}, {k, Loc(2)}}), "duplicate");
}

TEST_F(CheckpointTest, TruncatedOrExtendedFileIsCorruption) {
  KeyIndex index;
  Fill(&index, 1000, 6);
  ASSERT_TRUE(index.SaveCheckpoint(fs_, path_, info_).ok());
  const std::string good = *fs_.Contents(path_);
  for (size_t len :
       {size_t{0}, size_t{1}, size_t{8}, size_t{39}, size_t{40}, size_t{43}, size_t{44},
        good.size() / 2, good.size() - 28, good.size() - 4, good.size() - 1}) {
    ExpectCorruption(fs_, path_, good.substr(0, len), "truncated to " + std::to_string(len));
  }
  ExpectCorruption(fs_, path_, good + std::string(28, '\0'), "extended by an entry");
  ExpectCorruption(fs_, path_, good + "x", "extended by a byte");
}

// Saves and loads `n` entries through `fs` in `dir`, printing the time each takes.
void SaveLoadTimed(io::FileSystem& fs, const std::string& dir, size_t n, const char* what) {
  KeyIndex index;
  std::mt19937_64 rng(8);
  for (size_t i = 0; i < n; ++i) index.Upsert(RandomHash(rng), Loc(i + 1));
  const std::string path = io::JoinPath(dir, "index.ckpt");
  const CheckpointInfo info{3, 4096, 77};

  auto start = std::chrono::steady_clock::now();
  Status st = index.SaveCheckpoint(fs, path, info);
  double save_s = Seconds(start);
  ASSERT_TRUE(st.ok()) << st.ToString();

  KeyIndex loaded;
  start = std::chrono::steady_clock::now();
  Result<CheckpointInfo> got = loaded.LoadCheckpoint(fs, path);
  double load_s = Seconds(start);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->next_sequence, 77u);
  ASSERT_EQ(loaded.size(), n);
  double mb = (40.0 + 28.0 * n + 4) / 1e6;
  std::printf(
      "[ checkpoint ] %s, %zu entries (%.0f MB): save %.3f s (%.0f MB/s), "
      "load %.3f s (%.1f M entries/s); %.1f bytes/entry after load\n",
      what, n, mb, save_s, mb / save_s, load_s, n / load_s / 1e6,
      static_cast<double>(loaded.MemoryBytes()) / n);
  std::mt19937_64 again(8);
  for (size_t i = 0; i < n; ++i) {
    KeyHash h = RandomHash(again);
    if (i % 97 == 0) {
      ASSERT_EQ(loaded.Find(h), Loc(i + 1)) << i;
    }
  }
}

size_t LargeEntries() {
  const char* env = getenv("GRANARY_INDEX_TEST_ENTRIES");  // e.g. 10000000 for a bigger run
  return env ? std::stoull(env) : 2000000;
}

TEST_F(CheckpointTest, LargeInMemory) { SaveLoadTimed(fs_, "/db", LargeEntries(), "memory fs"); }

class PosixCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "index_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::shared_ptr<io::FileSystem> fs_ = io::DefaultFileSystem();
  std::string dir_;
};

TEST_F(PosixCheckpointTest, RoundTripAndErrors) {
  KeyIndex index;
  for (int i = 0; i < 5000; ++i) index.Upsert(HashKey("key" + std::to_string(i)), Loc(i + 1));
  const std::string path = io::JoinPath(dir_, "index.ckpt");
  const CheckpointInfo info{1, 2, 3};
  ASSERT_TRUE(index.SaveCheckpoint(*fs_, path, info).ok());
  ASSERT_TRUE(index.SaveCheckpoint(*fs_, path, info).ok());  // over an existing one
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(std::filesystem::file_size(path), 40u + 28u * 5000 + 4);

  KeyIndex loaded;
  Result<CheckpointInfo> got = loaded.LoadCheckpoint(*fs_, path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(Contents(loaded), Contents(index));

  EXPECT_EQ(loaded.LoadCheckpoint(*fs_, path + ".missing").status().code(), Code::kNotFound);
  std::filesystem::resize_file(path, 1000);
  Result<CheckpointInfo> cut = loaded.LoadCheckpoint(*fs_, path);
  EXPECT_TRUE(cut.status().IsCorruption()) << cut.status().ToString();
  EXPECT_EQ(Contents(loaded), Contents(index));

  Status st = index.SaveCheckpoint(*fs_, io::JoinPath(dir_, "no/such/dir/index.ckpt"), info);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no/such/dir/index.ckpt"), std::string::npos) << st.ToString();
}

TEST_F(PosixCheckpointTest, Large) { SaveLoadTimed(*fs_, dir_, LargeEntries(), "posix fs"); }

}  // namespace
}  // namespace granary::engine
