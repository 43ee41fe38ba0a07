// Recovery and maintenance regressions: each test pins down a way a damaged or crashed log
// was once misread.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/hash.h"
#include "engine/engine.h"
#include "engine/format.h"
#include "engine/index.h"
#include "engine/test_util.h"
#include "io/fault_fs.h"

namespace granary::engine {
namespace {

namespace fs = std::filesystem;
using granary::testing::TempDir;

std::string SegPath(const std::string& dir, int id) {
  char name[32];
  std::snprintf(name, sizeof(name), "/seg-%08d.log", id);
  return dir + name;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.read(&c, 1);
  c ^= 0x10;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

struct RawRecord {
  uint64_t offset, size, value_len;
  std::string key;
};

// Walks a segment's records the simple way (no recovery logic), for tests to aim at.
std::vector<RawRecord> ParseSegment(const std::string& path, uint64_t* end = nullptr) {
  std::ifstream f(path, std::ios::binary);
  std::string d((std::istreambuf_iterator<char>(f)), {});
  std::vector<RawRecord> out;
  uint64_t p = 0;
  while (p + kHeaderSize <= d.size() && HasMagic(d.data() + p)) {
    auto h = DecodeHeader(d.data() + p, {});
    if (!h.ok()) break;
    out.push_back({p, h->size(), h->value_len, d.substr(p + kHeaderSize, h->key_len)});
    p += h->size();
  }
  if (end) *end = p;
  return out;
}

EngineOptions Opts() {
  EngineOptions o;
  o.preallocate_bytes = 0;
  o.background_compaction = false;
  o.checkpoint_interval_bytes = 0;
  return o;
}

std::unique_ptr<BlobEngine> Open(const std::string& dir, EngineOptions o = Opts()) {
  auto e = BlobEngine::Open(dir, std::move(o));
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

// A value that fails its checksum during replay is indexed under its own key (the scanner's
// buffer is reused while looking past it), so the key reports corruption, not an older value.
TEST(RecoveryTest, CorruptLargeValueReportsCorruptionNotStaleValue) {
  TempDir dir;
  std::string big(2 << 20, 'b');
  {
    auto e = Open(dir.path());
    ASSERT_TRUE(e->Put("k", "OLD-VALUE").ok());
    ASSERT_TRUE(e->Put("k", big).ok());
    ASSERT_TRUE(e->Put("x", "xval").ok());
    ASSERT_TRUE(e->Close().ok());
  }
  fs::remove(dir.Sub("index.ckpt"));
  for (const RawRecord& r : ParseSegment(SegPath(dir.path(), 1))) {
    if (r.key == "k" && r.value_len == big.size()) FlipByte(SegPath(dir.path(), 1), r.offset + 4096 + 100);
  }
  auto e = Open(dir.path());
  EXPECT_TRUE(e->Get("k").status().IsCorruption()) << e->Get("k").status().ToString();
  EXPECT_EQ(*e->Get("x"), "xval");
  EXPECT_EQ(e->Stats().corruptions_detected, 2u);  // once at replay, once at the Get
}

// A bad header in the first record must not make the next, durable group look torn.
TEST(RecoveryTest, BadFirstHeaderIsCorruptionNotATornTail) {
  TempDir dir;
  {
    auto e = Open(dir.path());
    ASSERT_TRUE(e->Put("a", std::string(100, 'A')).ok());
    ASSERT_TRUE(e->Put("b", std::string(100, 'B')).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  fs::remove(dir.Sub("index.ckpt"));
  FlipByte(SegPath(dir.path(), 1), 16);
  auto e = Open(dir.path());
  EXPECT_EQ(*e->Get("b"), std::string(100, 'B'));
  EXPECT_EQ(e->Stats().truncated_bytes, 0u);
  EXPECT_EQ(e->Stats().corruptions_detected, 1u);
}

// Padding has its own sequence number, so a bad direct-record header after valid padding is
// not taken for the start of the next group.
TEST(RecoveryTest, BadDirectHeaderAfterPaddingIsCorruption) {
  TempDir dir;
  {
    auto e = Open(dir.path());
    ASSERT_TRUE(e->Put("a", std::string(100, 'A')).ok());
    ASSERT_TRUE(e->Put("big", std::string(300 << 10, 'Z')).ok());
    ASSERT_TRUE(e->Put("c", std::string(100, 'C')).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  fs::remove(dir.Sub("index.ckpt"));
  for (const RawRecord& r : ParseSegment(SegPath(dir.path(), 1))) {
    if (r.key == "big") FlipByte(SegPath(dir.path(), 1), r.offset + 16);
  }
  auto e = Open(dir.path());
  EXPECT_EQ(*e->Get("c"), std::string(100, 'C'));
  EXPECT_EQ(e->Stats().truncated_bytes, 0u);
  EXPECT_GE(e->Stats().corruptions_detected, 1u);
}

// The pre-zeroing thread never writes into a segment after it is sealed.
TEST(RecoveryTest, SealedSegmentsEndAtTheirLastRecord) {
  TempDir dir;
  EngineOptions o = Opts();
  o.segment_size = 1 << 20;
  o.preallocate_bytes = 64 << 20;
  o.sync = false;
  {
    auto e = Open(dir.path(), o);
    std::string v(60 << 10, 'v');
    for (int i = 0; i < 1500; ++i) ASSERT_TRUE(e->Put("key" + std::to_string(i % 50), v).ok());
    ASSERT_TRUE(e->Close().ok());
  }
  int segments = 0;
  for (const auto& p : fs::directory_iterator(dir.path())) {
    if (p.path().filename().string().starts_with("seg-")) segments++;
  }
  ASSERT_GT(segments, 10);
  for (int id = 1; id <= segments; ++id) {
    uint64_t end = 0;
    ParseSegment(SegPath(dir.path(), id), &end);
    EXPECT_EQ(fs::file_size(SegPath(dir.path(), id)), end) << "segment " << id;
  }
  auto e = Open(dir.path(), o);
  EXPECT_EQ(e->Stats().corruptions_detected, 0u);
  EXPECT_TRUE(e->Compact().ok());
}

// Without sync, a checkpoint taken while writes go on must not point at records that a power
// loss then takes away.
TEST(RecoveryTest, UnsyncedCheckpointSurvivesPowerLoss) {
  TempDir dir;
  auto ffs = std::make_shared<io::FaultInjectionFileSystem>(io::DefaultFileSystem());
  EngineOptions o = Opts();
  o.sync = false;
  o.fs = ffs;
  std::string hot;
  for (int i = 0;; ++i) {  // a key in the last shard, which the checkpoint copies last
    hot = "hot" + std::to_string(i);
    if ((HashKey(hot).hi >> 56) == 255) break;
  }
  {
    auto e = Open(dir.path(), o);
    WriteBatch b;
    for (int i = 0; i < 100000; ++i) {
      b.Put("fill" + std::to_string(i), "x");
      if (b.size() == 10000) {
        ASSERT_TRUE(e->Write(b).ok());
        b.Clear();
      }
    }
    ASSERT_TRUE(e->Put(hot, "FLUSHED").ok());
    ASSERT_TRUE(e->Flush().ok());
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      for (int n = 0; !stop; ++n) (void)e->Put(hot, "unflushed-" + std::to_string(n));
    });
    ASSERT_TRUE(e->Checkpoint().ok());
    stop = true;
    writer.join();
    ASSERT_TRUE(ffs->DropUnsyncedData().ok());  // power loss
    ffs->TearNthWrite(1, 0);                    // the old engine writes nothing more
    e.reset();
    ffs->Revive();
  }
  auto e = Open(dir.path(), o);
  auto got = e->Get(hot);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == "FLUSHED" || got->starts_with("unflushed-")) << *got;
}

TEST(RecoveryTest, ConcurrentCheckpointsLeaveAValidFile) {
  TempDir dir;
  auto e = Open(dir.path());
  WriteBatch b;
  for (int i = 0; i < 50000; ++i) b.Put("fill" + std::to_string(i), "x");
  ASSERT_TRUE(e->Write(b).ok());
  std::atomic<int> errors{0}, invalid{0};
  auto checkpoints = [&] {
    for (int i = 0; i < 10; ++i) {
      if (!e->Checkpoint().ok()) errors++;
      KeyIndex index;
      if (!index.LoadCheckpoint(*io::DefaultFileSystem(), dir.Sub("index.ckpt")).ok()) invalid++;
    }
  };
  std::thread t1(checkpoints), t2(checkpoints);
  t1.join();
  t2.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(invalid.load(), 0);
}

TEST(RecoveryTest, CallbackMayNotCallBackIntoTheEngine) {
  TempDir dir;
  auto e = Open(dir.path());
  std::atomic<bool> done{false};
  Status inner;
  WriteBatch b;
  b.Put("a", "b");
  e->WriteAsync(std::move(b), [&](Status st) {
    EXPECT_TRUE(st.ok());
    inner = e->Put("c", "d");
    done = true;
    done.notify_one();
  });
  done.wait(false);
  EXPECT_EQ(inner.code(), Code::kInvalidArgument);
  EXPECT_TRUE(e->Put("c", "d").ok());
}

}  // namespace
}  // namespace granary::engine
