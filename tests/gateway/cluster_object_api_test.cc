// ClusterObjectApi against a real etcd and fake nodes: each serves a MemoryObjectApi over the
// native protocol, but only the buckets of the partitions it heads in the test's map, and answers
// kStaleMap for the others, as a node of a cluster does.
#include "gateway/cluster_object_api.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "client/client_fixture.h"
#include "cluster/etcd_fixture.h"
#include "cluster/keys.h"

namespace granary::gateway {
namespace {

using cluster::ClusterMap;
using testing::kTestCredentials;
using testing::MemoryObjectApi;

// Which node heads which partition, as the fake nodes see it.
class PartitionView {
 public:
  void Set(const ClusterMap& map) {
    std::lock_guard<std::mutex> lock(mu_);
    map_ = map;
  }
  bool Heads(const std::string& node, std::string_view bucket) {
    std::lock_guard<std::mutex> lock(mu_);
    const cluster::Chain& partition = map_.PartitionOf(bucket);
    return !partition.members.empty() && partition.members.front() == node;
  }

 private:
  std::mutex mu_;
  ClusterMap map_;
};

class FakeNode : public MemoryObjectApi {
 public:
  FakeNode(std::string id, PartitionView& view) : id_(std::move(id)), view_(view) {}

  using MemoryObjectApi::CreateBucket;
  Status CreateBucket(std::string_view bucket, const BucketOptions& options) override {
    RETURN_IF_ERROR(Serves(bucket));
    return MemoryObjectApi::CreateBucket(bucket, options);
  }
  Result<BucketInfo> HeadBucket(std::string_view bucket) override {
    RETURN_IF_ERROR(Serves(bucket));
    return MemoryObjectApi::HeadBucket(bucket);
  }
  Result<std::vector<BucketInfo>> ListBuckets() override {
    ASSIGN_OR_RETURN(std::vector<BucketInfo> all, MemoryObjectApi::ListBuckets());
    std::erase_if(all, [&](const BucketInfo& b) { return !view_.Heads(id_, b.name); });
    return all;
  }
  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view bucket, std::string_view key,
                                                 PutOptions options) override {
    RETURN_IF_ERROR(Serves(bucket));
    return MemoryObjectApi::BeginPut(bucket, key, std::move(options));
  }
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view bucket, std::string_view key,
                                             const GetOptions& options) override {
    RETURN_IF_ERROR(Serves(bucket));
    return MemoryObjectApi::Open(bucket, key, options);
  }
  Result<ObjectInfo> Copy(std::string_view src_bucket, std::string_view src_key,
                          std::string_view dst_bucket, std::string_view dst_key,
                          const CopyOptions& options) override {
    RETURN_IF_ERROR(Serves(src_bucket));
    RETURN_IF_ERROR(Serves(dst_bucket));
    ++copies;
    return MemoryObjectApi::Copy(src_bucket, src_key, dst_bucket, dst_key, options);
  }
  std::vector<Result<std::string>> GetMany(std::string_view bucket,
                                           std::span<const std::string> keys) override {
    Status serves = Serves(bucket);
    if (!serves.ok()) return std::vector<Result<std::string>>(keys.size(), serves);
    return MemoryObjectApi::GetMany(bucket, keys);
  }

  const std::string& id() const { return id_; }
  std::atomic<int> stale_answers{0};
  std::atomic<int> copies{0};  // Copy() calls it served

 private:
  Status Serves(std::string_view bucket) {
    if (view_.Heads(id_, bucket)) return Status::OK();
    ++stale_answers;
    return Status(Code::kStaleMap, "node " + id_ + " does not head the partition of \"" +
                                       std::string(bucket) + "\"");
  }

  const std::string id_;
  PartitionView& view_;
};

class ClusterObjectApiTest : public cluster::EtcdTestBase {
 protected:
  static constexpr int kNodes = 3;
  static constexpr int kChains = 8;

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(EtcdTestBase::SetUp());
    for (int i = 0; i < kNodes; ++i) {
      nodes_.push_back(std::make_unique<FakeNode>("n" + std::to_string(i), view_));
      node::RpcServiceOptions options;
      options.listen = "127.0.0.1:0";
      auto service = node::RpcService::Start(*nodes_.back(), testing::TestSecrets(), options);
      ASSERT_TRUE(service.ok()) << service.status().ToString();
      addresses_.push_back("127.0.0.1:" + std::to_string((*service)->port()));
      services_.push_back(std::move(*service));
    }
  }

  // Chain i is headed by node (i + shift) % kNodes, alone.
  ClusterMap MakeMap(uint64_t epoch, int shift = 0) const {
    ClusterMap map;
    map.epoch = epoch;
    map.replicas = 1;
    for (int i = 0; i < kNodes; ++i) {
      cluster::NodeInfo node;
      node.id = nodes_[i]->id();
      node.address = addresses_[i];
      node.host = node.rack = "host" + std::to_string(i);
      map.nodes.push_back(node);
    }
    for (int c = 0; c < kChains; ++c) {
      cluster::Chain chain;
      chain.id = c;
      chain.members = {nodes_[(c + shift) % kNodes]->id()};
      map.chains.push_back(chain);
    }
    return map;
  }

  // Makes `map` the cluster's: the nodes serve by it, and etcd holds it.
  void Publish(const ClusterMap& map) {
    view_.Set(map);
    ASSERT_TRUE(etcd->Put(std::string(cluster::keys::kMap), map.ToJson()).ok());
  }

  // Publishes `map` and opens api_ over it.
  void Start(const ClusterMap& map, int retry_ms = 10'000) {
    Publish(map);
    ClusterObjectApiOptions options;
    options.etcd = etcd_.url();
    options.access_key = kTestCredentials.access_key;
    options.secret_key = kTestCredentials.secret_key;
    options.retry_ms = retry_ms;
    auto api = ClusterObjectApi::Open(options);
    ASSERT_TRUE(api.ok()) << api.status().ToString();
    api_ = std::move(*api);
  }

  FakeNode& HeadOf(const ClusterMap& map, std::string_view bucket) {
    const std::string& id = map.PartitionOf(bucket).members.front();
    for (auto& node : nodes_) {
      if (node->id() == id) return *node;
    }
    std::abort();
  }

  // Creates two buckets whose partitions differ and have different heads (`same`: whose
  // partition is the same) and returns their names.
  std::pair<std::string, std::string> BucketPair(const ClusterMap& map, bool same) {
    for (int i = 0;; ++i) {
      std::string a = "src-" + std::to_string(i), b = "dst-" + std::to_string(i);
      bool same_partition = map.PartitionOf(a).id == map.PartitionOf(b).id;
      if (same ? same_partition : &HeadOf(map, a) != &HeadOf(map, b)) {
        EXPECT_PRED_FORMAT1(testing::IsOk, api_->CreateBucket(a));
        EXPECT_PRED_FORMAT1(testing::IsOk, api_->CreateBucket(b));
        return {a, b};
      }
    }
  }

  PartitionView view_;
  std::vector<std::unique_ptr<FakeNode>> nodes_;
  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<node::RpcService>> services_;  // after nodes_: stopped first
  std::unique_ptr<ClusterObjectApi> api_;
};

TEST_F(ClusterObjectApiTest, OpenWithoutMapIsUnavailable) {
  ClusterObjectApiOptions options;
  options.etcd = etcd_.url();
  auto api = ClusterObjectApi::Open(options);
  ASSERT_FALSE(api.ok());
  EXPECT_EQ(api.status().code(), Code::kUnavailable);
  EXPECT_NE(api.status().message().find("no map yet"), std::string::npos)
      << api.status().ToString();
}

TEST_F(ClusterObjectApiTest, RoutesEachBucketToItsPartitionsHead) {
  const ClusterMap map = MakeMap(1);
  ASSERT_NO_FATAL_FAILURE(Start(map));
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) names.push_back("bucket-" + std::to_string(i));
  for (const std::string& b : names) {
    ASSERT_OK(api_->CreateBucket(b));
    ASSERT_OK(api_->Put(b, "key", "data of " + b).status());
  }
  for (const std::string& b : names) {
    // Stored on the partition's head, and only there.
    for (auto& node : nodes_) {
      EXPECT_EQ(node->object_count(b), node.get() == &HeadOf(map, b) ? 1u : 0u) << b;
    }
    Result<std::string> got = api_->Get(b, "key");
    ASSERT_OK(got.status());
    EXPECT_EQ(*got, "data of " + b);
  }
  for (auto& node : nodes_) EXPECT_EQ(node->stale_answers.load(), 0) << node->id();

  // Every head's buckets, merged and sorted.
  Result<std::vector<BucketInfo>> listed = api_->ListBuckets();
  ASSERT_OK(listed.status());
  std::sort(names.begin(), names.end());
  ASSERT_EQ(listed->size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ((*listed)[i].name, names[i]);

  std::vector<std::string> keys = {"key", "missing"};
  std::vector<Result<std::string>> many = api_->GetMany(names[0], keys);
  ASSERT_EQ(many.size(), 2u);
  ASSERT_OK(many[0].status());
  EXPECT_EQ(*many[0], "data of " + names[0]);
  EXPECT_CODE(many[1].status(), Code::kNotFound);
}

TEST_F(ClusterObjectApiTest, StaleMapIsRetriedWithTheNewMap) {
  const ClusterMap before = MakeMap(1);
  ASSERT_NO_FATAL_FAILURE(Start(before));
  ASSERT_OK(api_->CreateBucket("moving"));
  FakeNode& old_head = HeadOf(before, "moving");

  // The partition moves to another head (which has its bucket); the gateway still routes by
  // epoch 1, and the old head refuses.
  const ClusterMap after = MakeMap(2, 1);
  FakeNode& new_head = HeadOf(after, "moving");
  ASSERT_NE(&old_head, &new_head);
  Publish(after);
  ASSERT_OK(new_head.MemoryObjectApi::CreateBucket("moving"));

  Result<BucketInfo> info = api_->HeadBucket("moving");
  ASSERT_OK(info.status());
  EXPECT_EQ(info->name, "moving");
  EXPECT_EQ(old_head.stale_answers.load(), 1);
  EXPECT_EQ(api_->map()->epoch, 2u);

  ASSERT_OK(api_->Put("moving", "k", "v").status());
  EXPECT_EQ(new_head.object_count("moving"), 1u);
  EXPECT_EQ(old_head.object_count("moving"), 0u);
}

TEST_F(ClusterObjectApiTest, UploadRefusedAsStaleRoutesTheNextByTheNewMap) {
  const ClusterMap before = MakeMap(1);
  ASSERT_NO_FATAL_FAILURE(Start(before));
  const ClusterMap after = MakeMap(2, 1);
  Publish(after);
  ASSERT_OK(HeadOf(after, "uploads").MemoryObjectApi::CreateBucket("uploads"));

  // The upload's bytes cannot be sent again: a refusal after its first bytes went out is
  // returned (S3 clients retry it), and the next upload goes to the new head.
  Result<ObjectInfo> first = api_->Put("uploads", "a", std::string(1 << 20, 'x'));
  if (!first.ok()) {
    EXPECT_CODE(first.status(), Code::kStaleMap);
  }
  ASSERT_OK(api_->Put("uploads", "b", "second").status());
  EXPECT_EQ(api_->Get("uploads", "b").value(), "second");
  EXPECT_EQ(api_->map()->epoch, 2u);
}

TEST_F(ClusterObjectApiTest, CopyAcrossPartitionsKeepsCopySemantics) {
  const ClusterMap map = MakeMap(1);
  ASSERT_NO_FATAL_FAILURE(Start(map));
  auto [src, dst] = BucketPair(map, false);
  PutOptions put;
  put.content_type = "text/plain";
  put.user_metadata["colour"] = "blue";
  const std::string data = testing::Pattern(3 << 20);
  Result<ObjectInfo> original = api_->Put(src, "obj", data, put);
  ASSERT_OK(original.status());

  CopyOptions keep;  // the COPY directive: the source's metadata
  keep.put.content_type = "ignored/without-replace";
  Result<ObjectInfo> copied = api_->Copy(src, "obj", dst, "copy", keep);
  ASSERT_OK(copied.status());
  EXPECT_EQ(copied->etag, original->etag);
  Result<ObjectInfo> head = api_->Head(dst, "copy", {});
  ASSERT_OK(head.status());
  EXPECT_EQ(head->content_type, "text/plain");
  EXPECT_EQ(head->user_metadata, put.user_metadata);
  EXPECT_EQ(api_->Get(dst, "copy").value(), data);
  EXPECT_EQ(HeadOf(map, dst).object_count(dst), 1u);

  CopyOptions replace;
  replace.replace_metadata = true;
  replace.put.content_type = "application/x-new";
  ASSERT_OK(api_->Copy(src, "obj", dst, "replaced", replace).status());
  head = api_->Head(dst, "replaced", {});
  EXPECT_EQ(head->content_type, "application/x-new");
  EXPECT_TRUE(head->user_metadata.empty());

  CopyOptions if_match;
  if_match.source_conditions.if_match = "\"0123\"";
  EXPECT_CODE(api_->Copy(src, "obj", dst, "no", if_match).status(), Code::kPreconditionFailed);
  CopyOptions if_none_match;  // a read's "not modified" fails a copy as a precondition
  if_none_match.source_conditions.if_none_match = original->etag;
  EXPECT_CODE(api_->Copy(src, "obj", dst, "no", if_none_match).status(), Code::kPreconditionFailed);
  CopyOptions dst_condition;  // the destination's conditions hold under COPY too
  dst_condition.put.conditions.if_none_match = "*";
  EXPECT_CODE(api_->Copy(src, "obj", dst, "copy", dst_condition).status(),
              Code::kPreconditionFailed);
  EXPECT_CODE(api_->Copy(src, "missing", dst, "no", keep).status(), Code::kNotFound);
  EXPECT_CODE(api_->Head(dst, "no", {}).status(), Code::kNotFound);
  for (auto& node : nodes_) EXPECT_EQ(node->copies.load(), 0);
}

TEST_F(ClusterObjectApiTest, CopyWithinAPartitionIsDoneByItsHead) {
  const ClusterMap map = MakeMap(1);
  ASSERT_NO_FATAL_FAILURE(Start(map));
  auto [src, dst] = BucketPair(map, true);
  ASSERT_OK(api_->Put(src, "obj", "bytes").status());
  ASSERT_OK(api_->Copy(src, "obj", dst, "copy", {}).status());
  EXPECT_EQ(api_->Get(dst, "copy").value(), "bytes");
  EXPECT_EQ(HeadOf(map, src).copies.load(), 1);
}

TEST_F(ClusterObjectApiTest, PartitionWithoutLiveHeadIsUnavailable) {
  ClusterMap map = MakeMap(1);
  const std::string head = map.PartitionOf("orphan").members.front();
  map.FindNode(head)->state = cluster::NodeState::kDown;
  ASSERT_NO_FATAL_FAILURE(Start(map, /*retry_ms=*/200));
  Status st = api_->CreateBucket("orphan");
  EXPECT_CODE(st, Code::kUnavailable);
  EXPECT_NE(st.message().find("no live head"), std::string::npos) << st.ToString();
  EXPECT_CODE(api_->ListBuckets().status(), Code::kUnavailable);
}

}  // namespace
}  // namespace granary::gateway
