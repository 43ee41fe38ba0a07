#include "replication/local_blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "engine/test_util.h"

namespace granary::replication {
namespace {

Result<std::unique_ptr<BlobStore>> Open(std::vector<std::string> disks) {
  LocalBlobStoreOptions o;
  o.disks = std::move(disks);
  o.engine.background_compaction = false;
  return OpenLocalBlobStore(o);
}

TEST(LocalBlobStoreTest, BlobsSpreadOverDisksAndReadBack) {
  granary::testing::TempDir dir;
  auto store = Open({dir.Sub("a"), dir.Sub("b"), dir.Sub("c")});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::vector<std::pair<std::string, std::string_view>> blobs;
  std::vector<std::string> keys;
  for (int i = 0; i < 60; ++i) keys.push_back("blob" + std::to_string(i));
  for (const auto& k : keys) blobs.emplace_back(k, k);
  ASSERT_TRUE((*store)->PutMany(blobs).ok());
  auto got = (*store)->GetMany(keys);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(got[i].ok());
    EXPECT_EQ(*got[i], keys[i]);
  }
  char buf[4];
  auto n = (*store)->ReadInto("blob12", 2, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "ob12");
  ASSERT_TRUE((*store)->DeleteMany(std::vector<std::string>{"blob1", "nothere"}).ok());
  EXPECT_FALSE((*store)->Exists("blob1"));
  EXPECT_EQ((*store)->Stats().blobs, 59u);
  ASSERT_TRUE((*store)->Close().ok());
  for (const char* d : {"a", "b", "c"}) {
    auto one = Open({dir.Sub(d)});
    EXPECT_FALSE(one.ok()) << "a single disk of three must not open as a store of its own";
  }
}

TEST(LocalBlobStoreTest, DisksMayMoveButNotBeReordered) {
  granary::testing::TempDir dir;
  {
    auto store = Open({dir.Sub("a"), dir.Sub("b")});
    ASSERT_TRUE(store.ok());
    std::vector<std::pair<std::string, std::string_view>> blobs = {{"k1", "v1"}, {"k2", "v2"}};
    ASSERT_TRUE((*store)->PutMany(blobs).ok());
    ASSERT_TRUE((*store)->Close().ok());
  }
  auto swapped = Open({dir.Sub("b"), dir.Sub("a")});
  ASSERT_FALSE(swapped.ok());
  EXPECT_EQ(swapped.status().code(), Code::kInvalidArgument);
  EXPECT_NE(swapped.status().message().find("same --disks"), std::string::npos);
  EXPECT_FALSE(Open({dir.Sub("a"), dir.Sub("b"), dir.Sub("c")}).ok());
  std::filesystem::rename(dir.Sub("a"), dir.Sub("moved-a"));
  auto moved = Open({dir.Sub("moved-a"), dir.Sub("b")});
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*(*moved)->GetMany(std::vector<std::string>{"k1"})[0], "v1");
  EXPECT_EQ(*(*moved)->GetMany(std::vector<std::string>{"k2"})[0], "v2");
}

}  // namespace
}  // namespace granary::replication
