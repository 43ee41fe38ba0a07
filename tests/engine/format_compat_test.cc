// Opens an engine directory written by an earlier commit (tests/engine/testdata/v1) and checks
// every blob, so that a change to the record or checkpoint format that breaks old data fails
// here. To write the directory again (only when the format version changes on purpose):
//   GRANARY_WRITE_COMPAT_DATA=tests/engine/testdata/v1 build/tests/engine_tests
//       --gtest_filter='FormatCompat.*'  (one command line)
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "engine/engine.h"
#include "engine/test_util.h"

#ifndef GRANARY_SOURCE_DIR
#define GRANARY_SOURCE_DIR "."
#endif

namespace granary::engine {
namespace {

// The blobs of the compatibility directory: deterministic, so they need not be stored twice.
std::map<std::string, std::string> Expected() {
  std::map<std::string, std::string> m;
  for (int i = 0; i < 40; ++i) {
    std::string v;
    for (int j = 0; j < i * 97; ++j) v.push_back(static_cast<char>('a' + (i + j) % 26));
    m["small/" + std::to_string(i)] = v;
  }
  std::string big(300 * 1024, '\0');
  for (size_t j = 0; j < big.size(); ++j) big[j] = static_cast<char>(j * 7 + 3);
  m["direct/big"] = big;  // a direct (4 KiB-aligned) record
  m["batch/a"] = "first of a batch";
  m["batch/b"] = "second of a batch";
  m["empty"] = "";
  return m;
}

void Write(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  EngineOptions o;
  o.segment_size = 1 << 20;
  o.background_compaction = false;
  auto e = std::move(BlobEngine::Open(dir, o)).value();
  auto m = Expected();
  for (const auto& [k, v] : m) {
    if (k.starts_with("batch/")) continue;
    ASSERT_TRUE(e->Put(k, v).ok());
  }
  WriteBatch b;
  b.Put("batch/a", m["batch/a"]);
  b.Put("batch/b", m["batch/b"]);
  b.Put("deleted", "gone soon");
  ASSERT_TRUE(e->Write(b).ok());
  ASSERT_TRUE(e->Delete("deleted").ok());
  ASSERT_TRUE(e->Put("small/3", m["small/3"]).ok());  // an overwrite
  ASSERT_TRUE(e->Close().ok());
}

void Check(BlobEngine& e) {
  auto m = Expected();
  for (const auto& [k, v] : m) {
    auto got = e.Get(k);
    ASSERT_TRUE(got.ok()) << k << ": " << got.status().ToString();
    EXPECT_EQ(*got, v) << k;
  }
  EXPECT_FALSE(e.Exists("deleted"));
  EXPECT_EQ(e.Stats().live_blobs, m.size());
}

TEST(FormatCompat, OpensVersion1Directory) {
  const std::string source = std::string(GRANARY_SOURCE_DIR) + "/tests/engine/testdata/v1";
  if (const char* out = std::getenv("GRANARY_WRITE_COMPAT_DATA")) {
    Write(out);
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(source)) << source;
  // Work on a copy: opening may cut pre-zeroed space or write a new checkpoint.
  for (bool with_checkpoint : {true, false}) {
    granary::testing::TempDir tmp;
    std::filesystem::copy(source, tmp.path(), std::filesystem::copy_options::recursive |
                                                  std::filesystem::copy_options::overwrite_existing);
    if (!with_checkpoint) std::filesystem::remove(tmp.Sub("index.ckpt"));
    EngineOptions o;
    o.background_compaction = false;
    auto e = BlobEngine::Open(tmp.path(), o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    Check(**e);
    EXPECT_EQ((*e)->Stats().corruptions_detected, 0u);
  }
}

}  // namespace
}  // namespace granary::engine
