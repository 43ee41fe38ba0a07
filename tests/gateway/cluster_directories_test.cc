// A bucket split by top-level directory over the namespace partitions of a real cluster (etcd,
// three nodes and a manager in this process), used through the gateway's ClusterObjectApi:
// docs/design/cluster.md, "Directories".
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "gateway/cluster_object_api.h"
#include "node/cluster_node_fixture.h"

namespace granary::node {
namespace {

class ClusterDirectoriesTest : public ClusterNodeTest {
 protected:
  // Three nodes on three racks, 8 chains of 3, and api_ over them.
  void SetUp() override {
    ClusterNodeTest::SetUp();
    StartThreeRacks();
    ASSERT_TRUE(WaitFor([&] { return Settled(3); }));
    gateway::ClusterObjectApiOptions options;
    options.etcd = etcd_.url();
    options.access_key = kAccess;
    options.secret_key = kSecret;
    auto api = gateway::ClusterObjectApi::Open(options);
    ASSERT_TRUE(api.ok()) << api.status().ToString();
    api_ = std::move(*api);
  }
  void TearDown() override {
    api_.reset();
    ClusterNodeTest::TearDown();
  }

  // Top-level directories of `bucket` whose partitions are not the bucket's own, and one that
  // is (when `own`), `count` in all.
  std::vector<std::string> Directories(const std::string& bucket, int count, bool own) {
    const cluster::ClusterMap map = Map();
    std::vector<std::string> dirs;
    bool have_own = !own;
    for (int i = 0; static_cast<int>(dirs.size()) < count || !have_own; ++i) {
      const std::string dir = "dir" + std::to_string(i) + "/";
      const bool at_root = map.PartitionOf(bucket, dir).id == map.PartitionOf(bucket).id;
      if (at_root && !have_own) {
        dirs.push_back(dir);
        have_own = true;
      } else if (!at_root && static_cast<int>(dirs.size()) + (have_own ? 0 : 1) < count) {
        dirs.push_back(dir);
      }
    }
    return dirs;
  }

  // Every key of a listing of `bucket` with `options`, page by page of `page` names.
  std::vector<std::string> ListAll(const std::string& bucket, ListOptions options, uint32_t page,
                                   std::vector<std::string>* prefixes = nullptr) {
    std::vector<std::string> keys;
    options.max_keys = page;
    for (int pages = 0; pages < 1000; ++pages) {
      Result<ListResult> listed = api_->List(bucket, options);
      EXPECT_TRUE(listed.ok()) << listed.status().ToString();
      if (!listed.ok()) break;
      EXPECT_LE(listed->objects.size() + listed->common_prefixes.size(), page);
      for (const ObjectInfo& o : listed->objects) keys.push_back(o.key);
      if (prefixes != nullptr) {
        prefixes->insert(prefixes->end(), listed->common_prefixes.begin(),
                         listed->common_prefixes.end());
      }
      if (!listed->truncated) break;
      options.continuation_token = listed->next_continuation_token;
    }
    return keys;
  }

  // The address of the head of the partition holding `key` of `bucket`.
  std::string HeadOfKey(const std::string& bucket, const std::string& key) {
    const cluster::ClusterMap map = Map();
    return map.FindNode(map.PartitionOf(bucket, key).members.front())->address;
  }

  std::unique_ptr<Client> Connect(const std::string& address) {
    auto client = Client::Connect(address, Credentials{kAccess, kSecret});
    return client.ok() ? std::move(*client) : nullptr;
  }

  std::unique_ptr<gateway::ClusterObjectApi> api_;
};

TEST_F(ClusterDirectoriesTest, KeysLiveInTheirTopLevelDirectorysPartition) {
  const std::string bucket = "data";
  ASSERT_TRUE(api_->CreateBucket(bucket).ok());
  const std::vector<std::string> dirs = Directories(bucket, 4, /*own=*/true);
  std::vector<std::string> keys = {"top-a", "top-b"};
  for (const std::string& dir : dirs) {
    for (int i = 0; i < 3; ++i) keys.push_back(dir + "sub/obj-" + std::to_string(i));
    keys.push_back(dir + "leaf");
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(api_->Put(bucket, keys[i], Value(static_cast<int>(i))).ok()) << keys[i];
  }
  std::sort(keys.begin(), keys.end());
  // Each key's record is at its directory's head, and a head of another partition refuses it.
  const cluster::ClusterMap map = Map();
  for (const std::string& dir : dirs) {
    const std::string key = dir + "leaf";
    const std::string head = HeadOfKey(bucket, key), root = HeadOfKey(bucket, "");
    auto client = Connect(head);
    ASSERT_NE(client, nullptr);
    EXPECT_TRUE(client->Head(bucket, key, {}).ok()) << key;
    if (map.PartitionOf(bucket, key).id != map.PartitionOf(bucket).id && root != head) {
      EXPECT_EQ(Connect(root)->Head(bucket, key, {}).status().code(), Code::kStaleMap) << key;
    }
  }
  // Whole-bucket listings merge every partition's keys in order, page after page.
  for (uint32_t page : {1u, 3u, 1000u}) {
    EXPECT_EQ(ListAll(bucket, {}, page), keys) << page;
  }
  // Delimited at the root: the keys without '/' and one common prefix per directory.
  ListOptions delimited;
  delimited.delimiter = "/";
  std::vector<std::string> prefixes;
  EXPECT_EQ(ListAll(bucket, delimited, 2, &prefixes),
            (std::vector<std::string>{"top-a", "top-b"}));
  std::vector<std::string> want_prefixes = dirs;
  std::sort(want_prefixes.begin(), want_prefixes.end());
  EXPECT_EQ(prefixes, want_prefixes);
  // Within a directory, its partition alone.
  ListOptions under;
  under.prefix = dirs[1];
  under.delimiter = "/";
  prefixes.clear();
  EXPECT_EQ(ListAll(bucket, under, 1, &prefixes), (std::vector<std::string>{dirs[1] + "leaf"}));
  EXPECT_EQ(prefixes, (std::vector<std::string>{dirs[1] + "sub/"}));
  // A start-after inside a directory.
  ListOptions after;
  after.start_after = dirs[0] + "sub/obj-0";
  const std::vector<std::string> rest = ListAll(bucket, after, 4);
  EXPECT_EQ(rest, std::vector<std::string>(std::upper_bound(keys.begin(), keys.end(),
                                                             after.start_after),
                                            keys.end()));
  // The bucket is listed once.
  auto buckets = api_->ListBuckets();
  ASSERT_TRUE(buckets.ok());
  ASSERT_EQ(buckets->size(), 1u);
  EXPECT_EQ((*buckets)[0].name, bucket);
  // Every object reads back.
  for (size_t i = 0; i < keys.size(); ++i) {
    auto got = api_->Get(bucket, keys[i]);
    ASSERT_TRUE(got.ok()) << keys[i] << ": " << got.status().ToString();
  }
}

TEST_F(ClusterDirectoriesTest, BatchesCopiesAndUploadsSpanDirectories) {
  const std::string bucket = "spread";
  ASSERT_TRUE(api_->CreateBucket(bucket).ok());
  const std::vector<std::string> dirs = Directories(bucket, 3, /*own=*/false);
  std::vector<PutItem> items;
  std::vector<std::string> keys, values;
  for (int i = 0; i < 12; ++i) {
    keys.push_back(i % 4 == 3 ? "root-" + std::to_string(i)
                              : dirs[i % 4] + "item-" + std::to_string(i));
    values.push_back(Value(i));
  }
  for (int i = 0; i < 12; ++i) items.push_back(PutItem{keys[i], values[i], {}});
  for (const auto& put : api_->PutMany(bucket, items)) ASSERT_TRUE(put.ok()) << put.status().ToString();
  std::vector<std::string> asked = keys;
  asked.push_back(dirs[2] + "missing");
  const auto got = api_->GetMany(bucket, asked);
  ASSERT_EQ(got.size(), asked.size());
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(got[i].ok()) << keys[i];
    EXPECT_EQ(*got[i], values[i]) << keys[i];
  }
  EXPECT_EQ(got[12].status().code(), Code::kNotFound);

  // A copy from one directory's partition to another's.
  auto copied = api_->Copy(bucket, keys[0], bucket, dirs[1] + "copy", {});
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(*api_->Get(bucket, dirs[1] + "copy"), values[0]);

  // A multipart upload in a directory, listed from the root.
  const std::string big = dirs[2] + "big";
  auto upload = api_->CreateMultipartUpload(bucket, big, {});
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  auto uploads = api_->ListMultipartUploads(bucket, {});
  ASSERT_TRUE(uploads.ok()) << uploads.status().ToString();
  ASSERT_EQ(uploads->uploads.size(), 1u);
  EXPECT_EQ(uploads->uploads[0].key, big);
  // A bucket with an upload in a directory is not empty.
  for (const Status& s : api_->DeleteMany(bucket, keys)) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(api_->Delete(bucket, dirs[1] + "copy").ok());
  EXPECT_EQ(api_->DeleteBucket(bucket).code(), Code::kBucketNotEmpty);
  auto part = api_->UploadPart(bucket, big, *upload, 1, "", UINT64_MAX);
  ASSERT_TRUE(part.ok());
  ASSERT_TRUE((*part)->Append("the only part").ok());
  auto part_info = (*part)->Commit();
  ASSERT_TRUE(part_info.ok()) << part_info.status().ToString();
  const CompletedPart done{1, part_info->etag};
  ASSERT_TRUE(api_->CompleteMultipartUpload(bucket, big, *upload, std::span(&done, 1), {}).ok());
  EXPECT_EQ(*api_->Get(bucket, big), "the only part");
  EXPECT_EQ(api_->DeleteBucket(bucket).code(), Code::kBucketNotEmpty);
  ASSERT_TRUE(api_->Delete(bucket, big).ok());
  EXPECT_TRUE(ListAll(bucket, {}, 10).empty());

  // Deleted, the bucket is gone from every directory, and a new one of that name starts empty.
  ASSERT_TRUE(api_->DeleteBucket(bucket).ok());
  EXPECT_EQ(api_->HeadBucket(bucket).status().code(), Code::kNoSuchBucket);
  EXPECT_EQ(api_->Put(bucket, dirs[0] + "late", "x").status().code(), Code::kNoSuchBucket);
  EXPECT_EQ(api_->Get(bucket, keys[0]).status().code(), Code::kNoSuchBucket);
  ASSERT_TRUE(api_->CreateBucket(bucket).ok());
  EXPECT_TRUE(ListAll(bucket, {}, 10).empty());
  ASSERT_TRUE(api_->Put(bucket, dirs[0] + "again", "y").ok());
  EXPECT_EQ(ListAll(bucket, {}, 10), std::vector<std::string>{dirs[0] + "again"});
}

}  // namespace
}  // namespace granary::node
