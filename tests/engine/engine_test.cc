#include "engine/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "engine/test_util.h"

namespace granary::engine {
namespace {

using granary::testing::RandomBytes;
using granary::testing::TempDir;

EngineOptions SmallOptions() {
  EngineOptions o;
  o.segment_size = 1 << 20;  // 1 MiB: many segments in small tests
  o.background_compaction = false;
  o.checkpoint_interval_bytes = 0;
  o.preallocate_bytes = 256 * 1024;
  return o;
}

std::unique_ptr<BlobEngine> OpenOrDie(const std::string& dir, EngineOptions o = SmallOptions()) {
  auto e = BlobEngine::Open(dir, std::move(o));
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? std::move(e).value() : nullptr;
}

TEST(EngineTest, PutGetDeleteExists) {
  TempDir dir;
  auto e = OpenOrDie(dir.path());
  ASSERT_TRUE(e->Put("alpha", "one").ok());
  ASSERT_TRUE(e->Put("beta", "").ok());
  EXPECT_EQ(*e->Get("alpha"), "one");
  EXPECT_EQ(*e->Get("beta"), "");
  EXPECT_TRUE(e->Exists("alpha"));
  EXPECT_FALSE(e->Exists("gamma"));
  EXPECT_TRUE(e->Get("gamma").status().IsNotFound());
  ASSERT_TRUE(e->Put("alpha", "two").ok());
  EXPECT_EQ(*e->Get("alpha"), "two");
  ASSERT_TRUE(e->Delete("alpha").ok());
  EXPECT_TRUE(e->Get("alpha").status().IsNotFound());
  EXPECT_TRUE(e->Delete("never-there").ok());
  auto info = e->Stat("beta");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 0u);
}

TEST(EngineTest, RejectsBadKeysAndValues) {
  TempDir dir;
  auto e = OpenOrDie(dir.path());
  EXPECT_EQ(e->Put("", "x").code(), Code::kInvalidArgument);
  EXPECT_EQ(e->Put(std::string(1025, 'k'), "x").code(), Code::kInvalidArgument);
  EXPECT_TRUE(e->Put(std::string(1024, 'k'), "x").ok());
  EXPECT_EQ(e->Get("").status().code(), Code::kInvalidArgument);
  Status st = e->Put("", "x");
  EXPECT_NE(st.message().find("1 to 1024"), std::string::npos) << st.ToString();
}

TEST(EngineTest, ValuesOfManySizesAndRanges) {
  TempDir dir;
  auto e = OpenOrDie(dir.path(), [] {
    EngineOptions o = SmallOptions();
    o.segment_size = 16 << 20;
    return o;
  }());
  std::mt19937_64 rng(7);
  std::map<std::string, std::string> want;
  for (size_t size : {0ul, 1ul, 7ul, 4096ul, 65535ul, 65536ul, 65537ul, 300000ul, 1ul << 20,
                      (4ul << 20) + 3}) {
    std::string key = "k" + std::to_string(size);
    want[key] = RandomBytes(rng, size);
    ASSERT_TRUE(e->Put(key, want[key]).ok());
  }
  for (const auto& [k, v] : want) {
    auto got = e->Get(k);
    ASSERT_TRUE(got.ok()) << k << " " << got.status().ToString();
    EXPECT_EQ(*got, v) << k;
    if (v.size() > 10) {
      for (uint64_t off : {0ul, 1ul, v.size() / 3, v.size() - 5}) {
        auto r = e->GetRange(k, off, 70000);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(*r, v.substr(off, 70000)) << k << "@" << off;
      }
      std::string buf(v.size(), '\0');
      auto n = e->ReadInto(k, 0, std::span<char>(buf));
      ASSERT_TRUE(n.ok());
      EXPECT_EQ(*n, v.size());
      EXPECT_EQ(buf, v);
      // A larger buffer keeps its bytes past the value; a smaller one gets the value's start.
      std::string roomy(v.size() + 100, '#');
      n = e->ReadInto(k, 0, std::span<char>(roomy));
      ASSERT_TRUE(n.ok());
      EXPECT_EQ(*n, v.size());
      EXPECT_TRUE(roomy.compare(0, v.size(), v) == 0) << k;
      EXPECT_EQ(roomy.substr(v.size()), std::string(100, '#')) << k;
      std::string tight(v.size() - 3, '\0');
      n = e->ReadInto(k, 0, std::span<char>(tight));
      ASSERT_TRUE(n.ok());
      EXPECT_EQ(*n, tight.size());
      EXPECT_TRUE(v.compare(0, tight.size(), tight) == 0) << k;
      auto info = e->Stat(k);
      ASSERT_TRUE(info.ok());
      EXPECT_EQ(info->size, v.size());
    }
    EXPECT_EQ(e->GetRange(k, v.size() + 1, 1).status().code(), Code::kInvalidArgument);
  }
}

// A caller whose buffer changes while a read fills it (memory it shares with another process)
// gets a copy of the value, never a corruption report: the engine reads again into memory of its
// own before it calls a record damaged. Large values are read block by block into the buffer,
// small ones whole (value straight into the buffer): both are checked.
void ExpectScribbledReadsAreNotCorruption(size_t value_size, int reads) {
  TempDir dir;
  EngineOptions o = SmallOptions();
  o.segment_size = 8 << 20;
  auto e = OpenOrDie(dir.path(), o);
  ASSERT_NE(e, nullptr);
  std::mt19937_64 rng(value_size);
  const std::string v = RandomBytes(rng, value_size);
  ASSERT_TRUE(e->Put("k", v).ok());
  std::string buf(v.size(), '\0');
  std::atomic<bool> stop{false};
  std::thread scribbler([&] {
    volatile char* p = buf.data();
    while (!stop.load(std::memory_order_relaxed)) {
      for (size_t i = 0; i < buf.size(); i += 512) p[i] = static_cast<char>(p[i] ^ 1);
    }
  });
  for (int i = 0; i < reads; ++i) {
    auto n = e->ReadInto("k", 0, std::span<char>(buf));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
  }
  stop = true;
  scribbler.join();
  EXPECT_EQ(e->Stats().corruptions_detected, 0u);
  auto n = e->ReadInto("k", 0, std::span<char>(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(buf == v);
}

TEST(EngineTest, ABufferChangedDuringAReadIsNotCorruption) {
  ExpectScribbledReadsAreNotCorruption(2 << 20, 100);
  ExpectScribbledReadsAreNotCorruption(64 << 10, 200);
}

TEST(EngineTest, BatchesAndMultiGet) {
  TempDir dir;
  auto e = OpenOrDie(dir.path());
  WriteBatch b;
  for (int i = 0; i < 100; ++i) b.Put("key" + std::to_string(i), "value" + std::to_string(i));
  b.Delete("key5");
  ASSERT_TRUE(e->Write(b).ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 102; ++i) keys.push_back("key" + std::to_string(i));
  std::vector<std::string_view> views(keys.begin(), keys.end());
  auto got = e->MultiGet(views);
  ASSERT_EQ(got.size(), keys.size());
  for (int i = 0; i < 102; ++i) {
    if (i == 5 || i >= 100) {
      EXPECT_TRUE(got[i].status().IsNotFound()) << i;
    } else {
      ASSERT_TRUE(got[i].ok()) << i;
      EXPECT_EQ(*got[i], "value" + std::to_string(i));
    }
  }
}

TEST(EngineTest, WriteAsyncCompletes) {
  TempDir dir;
  auto e = OpenOrDie(dir.path());
  std::atomic<int> done{0};
  for (int i = 0; i < 64; ++i) {
    WriteBatch b;
    b.Put("a" + std::to_string(i), std::string(4096, 'x'));
    e->WriteAsync(std::move(b), [&](Status st) {
      EXPECT_TRUE(st.ok());
      done++;
      done.notify_one();
    });
  }
  for (int v = done.load(); v < 64; v = done.load()) done.wait(v);
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(e->Exists("a" + std::to_string(i)));
}

TEST(EngineTest, ReopenKeepsEverythingWithAndWithoutCheckpoint) {
  TempDir dir;
  std::mt19937_64 rng(1);
  std::map<std::string, std::string> want;
  {
    auto e = OpenOrDie(dir.path());
    for (int i = 0; i < 500; ++i) {
      std::string k = "k" + std::to_string(rng() % 200);
      if (rng() % 5 == 0) {
        ASSERT_TRUE(e->Delete(k).ok());
        want.erase(k);
      } else {
        want[k] = RandomBytes(rng, rng() % 20000);
        ASSERT_TRUE(e->Put(k, want[k]).ok());
      }
    }
    ASSERT_TRUE(e->Close().ok());
  }
  auto check = [&](BlobEngine& e) {
    for (int i = 0; i < 200; ++i) {
      std::string k = "k" + std::to_string(i);
      auto got = e.Get(k);
      if (want.count(k)) {
        ASSERT_TRUE(got.ok()) << k << got.status().ToString();
        EXPECT_EQ(*got, want[k]);
      } else {
        EXPECT_TRUE(got.status().IsNotFound()) << k;
      }
    }
    size_t scanned = 0;
    ASSERT_TRUE(e.Scan([&](std::string_view key, const BlobInfo& info) {
                   EXPECT_EQ(want.at(std::string(key)).size(), info.size);
                   scanned++;
                   return true;
                 }).ok());
    EXPECT_EQ(scanned, want.size());
  };
  {
    auto e = OpenOrDie(dir.path());
    check(*e);
    EXPECT_EQ(e->Stats().replayed_bytes, 0u);  // the checkpoint covered everything
  }
  // Without the checkpoint the whole log is replayed, with the same result.
  std::filesystem::remove(dir.Sub("index.ckpt"));
  {
    auto e = OpenOrDie(dir.path());
    check(*e);
    EXPECT_GT(e->Stats().replayed_bytes, 0u);
  }
}

TEST(EngineTest, CompactionReclaimsSpaceAndKeepsData) {
  TempDir dir;
  auto e = OpenOrDie(dir.path());
  std::mt19937_64 rng(3);
  std::map<std::string, std::string> want;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 100; ++i) {
      std::string k = "k" + std::to_string(i);
      want[k] = RandomBytes(rng, 8000);
      ASSERT_TRUE(e->Put(k, want[k]).ok());
    }
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(e->Delete("k" + std::to_string(i)).ok());
    want.erase("k" + std::to_string(i));
  }
  EngineStats before = e->Stats();
  ASSERT_GT(before.garbage_bytes, before.live_bytes);
  ASSERT_TRUE(e->Compact().ok());
  EngineStats after = e->Stats();
  EXPECT_GT(after.compactions, 0u);
  EXPECT_LT(after.disk_bytes, before.disk_bytes / 2);
  for (int i = 0; i < 100; ++i) {
    std::string k = "k" + std::to_string(i);
    auto got = e->Get(k);
    if (want.count(k)) {
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_EQ(*got, want[k]);
    } else {
      EXPECT_TRUE(got.status().IsNotFound());
    }
  }
  // Deleted keys stay deleted across a reopen without the checkpoint (full replay).
  ASSERT_TRUE(e->Close().ok());
  std::filesystem::remove(dir.Sub("index.ckpt"));
  auto e2 = OpenOrDie(dir.path());
  for (int i = 0; i < 100; ++i) {
    std::string k = "k" + std::to_string(i);
    EXPECT_EQ(e2->Exists(k), want.count(k) == 1) << k;
  }
}

TEST(EngineTest, ConcurrentWritersAndReaders) {
  TempDir dir;
  auto e = OpenOrDie(dir.path(), [] {
    EngineOptions o = SmallOptions();
    o.background_compaction = true;
    o.compaction_threshold = 0.9;
    return o;
  }());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 300; ++i) {
        std::string k = "t" + std::to_string(t) + "-" + std::to_string(rng() % 50);
        std::string v = k + std::string(rng() % 5000, 'v');
        ASSERT_TRUE(e->Put(k, v).ok());
        auto got = e->Get(k);
        ASSERT_TRUE(got.ok());
        EXPECT_EQ(*got, v);  // each thread owns its keys: it reads its own write
      }
    });
  }
  std::thread reader([&] {
    while (!stop) {
      auto got = e->Get("t0-1");
      EXPECT_TRUE(got.ok() || got.status().IsNotFound()) << got.status().ToString();
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  reader.join();
  EXPECT_GT(e->Stats().syncs, 0u);
}

TEST(EngineTest, UnsyncedModeFlush) {
  TempDir dir;
  EngineOptions o = SmallOptions();
  o.sync = false;
  auto e = OpenOrDie(dir.path(), o);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(e->Put("k" + std::to_string(i), "v").ok());
  EXPECT_EQ(e->Stats().syncs, 0u);
  ASSERT_TRUE(e->Flush().ok());
  EXPECT_EQ(e->Stats().syncs, 1u);
}

TEST(EngineTest, ClosedEngineRefusesCalls) {
  TempDir dir;
  auto e = OpenOrDie(dir.path());
  ASSERT_TRUE(e->Close().ok());
  EXPECT_EQ(e->Put("a", "b").code(), Code::kUnavailable);
  EXPECT_EQ(e->Get("a").status().code(), Code::kUnavailable);
}

TEST(EngineTest, CorruptValueIsReportedNotReturned) {
  TempDir dir;
  {
    auto e = OpenOrDie(dir.path());
    ASSERT_TRUE(e->Put("victim", std::string(10000, 'a')).ok());
    ASSERT_TRUE(e->Put("bystander", std::string(100, 'b')).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  // Flip a byte inside victim's value (the first record; its value starts after the header
  // and the key).
  {
    std::string path = dir.Sub("seg-00000001.log");
    FILE* f = fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    fseek(f, 48 + 6 + 5000, SEEK_SET);
    fputc('Z', f);
    fclose(f);
  }
  auto e = OpenOrDie(dir.path());
  auto got = e->Get("victim");
  EXPECT_TRUE(got.status().IsCorruption()) << got.status().ToString();
  std::string buf(10000, '\0');
  auto into = e->ReadInto("victim", 0, std::span<char>(buf));
  EXPECT_TRUE(into.status().IsCorruption()) << into.status().ToString();
  EXPECT_EQ(*e->Get("bystander"), std::string(100, 'b'));
  EXPECT_GE(e->Stats().corruptions_detected, 1u);
}

// Values of 16 KiB and more are read whole straight into the caller's memory: a damaged value
// byte, or a damaged checksum, is still reported and never returned.
TEST(EngineTest, CorruptionInAWholeReadIsReportedNotReturned) {
  const std::string value(40000, 'v');
  const uint64_t value_at = 48 + 6;  // the first record: header, key "victim", value
  for (uint64_t at : {value_at + 30000, value_at + value.size() + 1}) {
    TempDir dir;
    {
      auto e = OpenOrDie(dir.path());
      ASSERT_TRUE(e->Put("victim", value).ok());
      ASSERT_TRUE(e->Close().ok());
    }
    {
      std::string path = dir.Sub("seg-00000001.log");
      FILE* f = fopen(path.c_str(), "r+b");
      ASSERT_NE(f, nullptr);
      fseek(f, static_cast<long>(at), SEEK_SET);
      int c = fgetc(f);
      fseek(f, static_cast<long>(at), SEEK_SET);
      fputc(c ^ 0x20, f);
      fclose(f);
    }
    auto e = OpenOrDie(dir.path());
    auto got = e->Get("victim");
    EXPECT_TRUE(got.status().IsCorruption()) << at << ": " << got.status().ToString();
    std::string buf(value.size(), '\0');
    auto into = e->ReadInto("victim", 0, std::span<char>(buf));
    EXPECT_TRUE(into.status().IsCorruption()) << at << ": " << into.status().ToString();
    EXPECT_GE(e->Stats().corruptions_detected, 2u);
  }
}

TEST(EngineTest, TornTailIsCut) {
  TempDir dir;
  {
    auto e = OpenOrDie(dir.path());
    ASSERT_TRUE(e->Put("a", std::string(3000, 'a')).ok());
    ASSERT_TRUE(e->Put("b", std::string(3000, 'b')).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  std::string path = dir.Sub("seg-00000001.log");
  std::filesystem::remove(dir.Sub("index.ckpt"));
  // Cut the last record in half, as a crash in the middle of its write would.
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 1500);
  auto e = OpenOrDie(dir.path());
  EXPECT_EQ(*e->Get("a"), std::string(3000, 'a'));
  EXPECT_TRUE(e->Get("b").status().IsNotFound());
  EXPECT_GT(e->Stats().truncated_bytes, 0u);
  EXPECT_EQ(e->Stats().corruptions_detected, 0u);
  // And the engine keeps writing after the cut.
  ASSERT_TRUE(e->Put("c", "c").ok());
  EXPECT_EQ(*e->Get("c"), "c");
}

}  // namespace
}  // namespace granary::engine
