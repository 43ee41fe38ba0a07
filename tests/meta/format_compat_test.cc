// Opens a namespace written by an earlier commit (tests/meta/testdata/v1: the RocksDB records and
// the blobs they point to) and checks every bucket, object, upload and part, so that a change to
// the records (proto/meta.proto) or the key layout that breaks old data fails here. To write the
// directory again (only when the format changes on purpose):
//   GRANARY_WRITE_COMPAT_DATA=tests/meta/testdata/v1 build/tests/meta_tests
//       --gtest_filter='MetaFormatCompat.*'  (one command line)
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "engine/test_util.h"
#include "meta/object_store.h"
#include "replication/local_blob_store.h"

namespace granary::meta {
namespace {

std::string Pattern(size_t n, int seed) {
  std::string v(n, '\0');
  for (size_t j = 0; j < n; ++j) v[j] = static_cast<char>((j * 31 + static_cast<size_t>(seed)) % 251);
  return v;
}

Result<std::unique_ptr<ObjectStore>> OpenStore(const std::string& dir) {
  replication::LocalBlobStoreOptions bo;
  bo.disks = {dir + "/disk0"};
  bo.engine.background_compaction = false;
  ASSIGN_OR_RETURN(std::shared_ptr<replication::BlobStore> blobs,
                   replication::OpenLocalBlobStore(bo));
  ObjectStoreOptions o;
  o.dir = dir + "/meta";
  o.blobs = std::move(blobs);
  o.chunk_bytes = 64 * 1024;
  o.background_reclaim = false;
  return ObjectStore::Open(std::move(o));
}

void Write(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto opened = OpenStore(dir);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto store = std::move(*opened);
  ASSERT_TRUE(store->CreateBucket("compat").ok());
  PutOptions o;
  o.content_type = "text/plain";
  o.user_metadata = {{"a", "1"}};
  o.headers = {{"cache-control", "no-cache"}};
  ASSERT_TRUE(store->Put("compat", "inline", Pattern(100, 1), o).ok());
  ASSERT_TRUE(store->Put("compat", "blob", Pattern(10000, 2)).ok());
  ASSERT_TRUE(store->Put("compat", "dir/chunked", Pattern(64 * 1024 * 3 + 5, 3)).ok());
  auto id = std::move(store->CreateMultipartUpload("compat", "multi", {})).value();
  std::vector<CompletedPart> parts;
  for (int n = 1; n <= 2; ++n) {
    // Parts but the last must have 5 MiB: the first one is uploaded twice, the second time
    // small, and only the second part goes into the object... keep the fixture small: one part.
    if (n == 2) break;
    std::string data = Pattern(777, 10 + n);
    auto w = std::move(store->UploadPart("compat", "multi", id, n, "", data.size())).value();
    ASSERT_TRUE(w->Append(data).ok());
    parts.push_back({n, std::move(w->Commit()).value().etag});
  }
  ASSERT_TRUE(store->CompleteMultipartUpload("compat", "multi", id, parts, {}).ok());
  auto pending = std::move(store->CreateMultipartUpload("compat", "pending", {})).value();
  auto w = std::move(store->UploadPart("compat", "pending", pending, 1, "", 5)).value();
  ASSERT_TRUE(w->Append("part1").ok());
  ASSERT_TRUE(w->Commit().ok());
  ASSERT_TRUE(store->Close().ok());
  std::filesystem::remove(dir + "/meta/LOG");
  std::filesystem::remove(dir + "/meta/intents/LOG");
}

TEST(MetaFormatCompat, ReadsTheNamespaceOfVersion1) {
  if (const char* out = std::getenv("GRANARY_WRITE_COMPAT_DATA")) {
    Write(out);
    GTEST_SKIP() << "wrote " << out;
  }
  // Work on a copy: opening writes (recovery, new log files).
  granary::testing::TempDir tmp;
  std::filesystem::copy(GRANARY_SOURCE_DIR "/tests/meta/testdata/v1", tmp.path() + "/v1",
                        std::filesystem::copy_options::recursive);
  auto opened = OpenStore(tmp.path() + "/v1");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& store = *opened;
  auto info = store->Head("compat", "inline", {});
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->content_type, "text/plain");
  EXPECT_EQ(info->user_metadata.at("a"), "1");
  EXPECT_EQ(info->headers.at("cache-control"), "no-cache");
  EXPECT_EQ(*store->Get("compat", "inline"), Pattern(100, 1));
  EXPECT_EQ(*store->Get("compat", "blob"), Pattern(10000, 2));
  EXPECT_EQ(*store->Get("compat", "dir/chunked"), Pattern(64 * 1024 * 3 + 5, 3));
  auto multi = store->Get("compat", "multi");
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  EXPECT_EQ(*multi, Pattern(777, 11));
  EXPECT_TRUE(store->Head("compat", "multi", {})->etag.ends_with("-1"));
  ListOptions lo;
  lo.delimiter = "/";
  auto list = store->List("compat", lo);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->objects.size(), 3u);
  EXPECT_EQ(list->common_prefixes, std::vector<std::string>{"dir/"});
  auto uploads = store->ListMultipartUploads("compat", {});
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->uploads.size(), 1u);
  EXPECT_EQ(uploads->uploads[0].key, "pending");
  auto listed = store->ListParts("compat", "pending", uploads->uploads[0].upload_id, 0, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->parts.size(), 1u);
  EXPECT_EQ(listed->parts[0].size, 5u);
  // New writes go on after the old versions.
  auto fresh = store->Put("compat", "new", "x");
  ASSERT_TRUE(fresh.ok());
  EXPECT_GT(fresh->version, info->version);
  ASSERT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace granary::meta
