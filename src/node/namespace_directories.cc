// A bucket split by top-level directory (docs/design/cluster.md, "Directories"). Key `d/...` of
// bucket B lives in the partition of "B/d" (a shard of B); keys without a '/' and B's record in
// B's own partition (its root). The root notes each shard the first time the shard serves B
// (META_BUCKET_ENSURE, which also answers whether B exists), so that:
// - DeleteBucket closes every shard (each removes its shard record if it holds nothing of B, or
//   refuses) before it removes B; while it runs, the root admits no new shard;
// - a listing of a prefix without a '/' merges the root's listing with every shard's
//   (meta/list_merge.h); a listing of a prefix under `d/` reads d's partition alone.
#include <future>
#include <span>
#include <vector>

#include "cluster/map_cache.h"
#include "common/names.h"
#include "meta/list_merge.h"
#include "meta/object_store.h"
#include "node/namespace_partition.h"
#include "proto/chain.pb.h"
#include "rpc/object_convert.h"

namespace granary::node {
using cluster::Chain;
using cluster::ClusterMap;

namespace {

// A whole-bucket listing at the root: the root's own part merged with each shard's answer
// (`part_of` takes the part out of one). The root's part alone when no shard answered.
template <typename Listing, typename PartOf, typename Merge>
Result<Listing> WithShards(Listing own, Result<std::vector<proto::MetaBucketResponse>> answers,
                           const PartOf& part_of, const Merge& merge) {
  RETURN_IF_ERROR(answers.status());
  if (answers->empty()) return own;
  std::vector<Listing> parts;
  parts.push_back(std::move(own));
  for (const proto::MetaBucketResponse& answer : *answers) parts.push_back(part_of(answer));
  return merge(std::span<Listing>(parts));
}

}  // namespace

Result<std::shared_ptr<meta::ObjectStore>> NamespacePartitions::StoreFor(std::string_view bucket,
                                                                         std::string_view key) {
  auto m = map();
  if (m == nullptr || m->chains.empty()) {
    return Status::Unavailable("this node has no cluster map yet");
  }
  const Chain& root = m->PartitionOf(bucket);
  if (cluster::TopDirectory(key).empty()) return StoreOf(root);
  const Chain& chain = m->PartitionOf(bucket, key);
  if (chain.id == root.id) return StoreOf(root);
  return ShardStore(*m, chain, bucket);
}

Result<std::shared_ptr<meta::ObjectStore>> NamespacePartitions::ShardStore(
    const ClusterMap& m, const Chain& chain, std::string_view bucket) {
  ASSIGN_OR_RETURN(std::shared_ptr<meta::ObjectStore> store, StoreOf(chain));
  Result<BucketInfo> shard = store->HeadBucket(bucket);
  if (shard.ok()) return store;
  if (shard.status().code() != Code::kNoSuchBucket) return shard.status();
  // Held until the shard record is written: a close (of a deletion that began after the root
  // admitted this shard) waits for it, and so finds the record.
  std::lock_guard<std::mutex> lock(ShardLock(chain.id, bucket));
  shard = store->HeadBucket(bucket);
  if (shard.ok()) return store;
  if (shard.status().code() != Code::kNoSuchBucket) return shard.status();
  proto::MetaBucketRequest request;
  request.set_op(proto::META_BUCKET_ENSURE);
  request.set_bucket(std::string(bucket));
  request.set_chain(chain.id);
  ASSIGN_OR_RETURN(proto::MetaBucketResponse answer, AskHead(m, m.PartitionOf(bucket), request));
  RETURN_IF_ERROR(store->AdoptBucket(bucket, rpc::FromProto(answer.bucket())));
  return store;
}

Result<proto::MetaBucketResponse> NamespacePartitions::AskHead(
    const ClusterMap& m, const Chain& chain, const proto::MetaBucketRequest& request) {
  ASSIGN_OR_RETURN(const cluster::NodeInfo* head, cluster::LiveHead(m, chain));
  if (head->id == options_.node_id) return ServeBucket(request);
  ASSIGN_OR_RETURN(replication::PeerAnswer answer,
                   replication::CallPeer(peers_.Of(head->address), proto::META_BUCKET, request,
                                         {}, rpc::DeadlineAfterMs(options_.peer_timeout_ms)));
  if (answer.status.code() == Code::kStaleMap) refresh_();
  RETURN_IF_ERROR(answer.status);
  proto::MetaBucketResponse response;
  if (!response.ParseFromString(answer.body)) {
    return Status::Corruption("unreadable answer from the head of namespace partition " +
                              std::to_string(chain.id));
  }
  return response;
}

Result<proto::MetaBucketResponse> NamespacePartitions::ServeBucket(
    const proto::MetaBucketRequest& request) {
  auto m = map();
  if (m == nullptr || m->chains.empty()) {
    return Status::Unavailable("this node has no cluster map yet");
  }
  const std::string& bucket = request.bucket();
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  const Chain& root = m->PartitionOf(bucket);
  if (!m->IsPartition(request.chain()) || request.chain() == root.id) {
    return Status::InvalidArgument("chain " + std::to_string(request.chain()) +
                                   " holds no shard of bucket \"" + bucket + "\"");
  }
  proto::MetaBucketResponse response;
  if (request.op() == proto::META_BUCKET_ENSURE) {
    ASSIGN_OR_RETURN(std::shared_ptr<meta::ObjectStore> store, StoreOf(root));
    // Held while the shard is noted: a deletion reads the shards only once none is admitted.
    std::lock_guard<std::mutex> lock(deleting_mu_);
    if (deleting_.contains(bucket)) {
      return Status::Unavailable("bucket \"" + bucket + "\" is being deleted: retry");
    }
    ASSIGN_OR_RETURN(BucketInfo info, store->AddShard(bucket, request.chain()));
    rpc::ToProto(info, response.mutable_bucket());
    return response;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<meta::ObjectStore> store,
                   StoreOf(m->chains[request.chain()]));
  // A shard without a record of the bucket holds nothing of it.
  auto absent = [](const Status& s) { return s.code() == Code::kNoSuchBucket; };
  switch (request.op()) {
    case proto::META_BUCKET_CLOSE: {
      std::lock_guard<std::mutex> lock(ShardLock(request.chain(), bucket));
      Status closed = store->DeleteBucket(bucket);
      if (!closed.ok() && !absent(closed)) return closed;
      return response;
    }
    case proto::META_BUCKET_LIST: {
      Result<ListResult> listed = store->List(bucket, rpc::FromProto(request.list()));
      if (!listed.ok() && !absent(listed.status())) return listed.status();
      if (listed.ok()) rpc::ToProto(*listed, response.mutable_list());
      return response;
    }
    case proto::META_BUCKET_LIST_UPLOADS: {
      Result<ListUploadsResult> listed =
          store->ListMultipartUploads(bucket, rpc::FromProto(request.list_uploads()));
      if (!listed.ok() && !absent(listed.status())) return listed.status();
      if (listed.ok()) rpc::ToProto(*listed, response.mutable_list_uploads());
      return response;
    }
    default:
      return Status::InvalidArgument("unknown bucket call " + std::to_string(request.op()));
  }
}

std::mutex& NamespacePartitions::ShardLock(uint32_t chain, std::string_view bucket) {
  std::string name = std::to_string(chain);
  name += '/';
  name += bucket;
  return shard_locks_[std::hash<std::string>()(name) % kShardLocks];
}

Status NamespacePartitions::BucketCall(rpc::ServerCall& call) {
  proto::MetaBucketRequest request;
  if (!rpc::ParseBody(call, &request)) {
    return call.Respond(Status::InvalidArgument("unreadable bucket call"));
  }
  Result<proto::MetaBucketResponse> response = ServeBucket(request);
  if (!response.ok()) return call.Respond(response.status());
  return call.Respond(*response);
}

Result<std::vector<proto::MetaBucketResponse>> NamespacePartitions::AskShards(
    meta::ObjectStore& root, std::string_view bucket, const proto::MetaBucketRequest& request) {
  auto m = map();
  if (m == nullptr) return Status::Unavailable("this node has no cluster map yet");
  ASSIGN_OR_RETURN(std::vector<uint32_t> shards, root.Shards(bucket));
  std::vector<std::future<Result<proto::MetaBucketResponse>>> asked;
  for (uint32_t chain : shards) {
    if (!m->IsPartition(chain)) {
      return Status::Corruption("bucket \"" + std::string(bucket) + "\" notes chain " +
                                std::to_string(chain) + " as a shard: not a partition");
    }
    proto::MetaBucketRequest one = request;
    one.set_bucket(std::string(bucket));
    one.set_chain(chain);
    asked.push_back(std::async(std::launch::async, [this, m, chain, one = std::move(one)] {
      return AskHead(*m, m->chains[chain], one);
    }));
  }
  std::vector<proto::MetaBucketResponse> out;
  Status failed;
  for (auto& answer : asked) {
    Result<proto::MetaBucketResponse> r = answer.get();
    if (r.ok()) {
      out.push_back(std::move(*r));
    } else if (failed.ok() || r.status().code() == Code::kBucketNotEmpty) {
      failed = r.status();  // a shard's own answer before another's failure to answer
    }
  }
  RETURN_IF_ERROR(failed);
  return out;
}

Status NamespacePartitions::DeleteBucket(std::string_view bucket) {
  ASSIGN_OR_RETURN(std::shared_ptr<meta::ObjectStore> store, StoreFor(bucket));
  RETURN_IF_ERROR(store->HeadBucket(bucket).status());
  {
    std::lock_guard<std::mutex> lock(deleting_mu_);
    if (!deleting_.emplace(bucket).second) {
      return Status::Unavailable("bucket \"" + std::string(bucket) +
                                 "\" is being deleted by another request: retry");
    }
  }
  Status deleted = [&]() -> Status {
    // A bucket whose own partition holds something is refused before any shard is closed.
    RETURN_IF_ERROR(store->CheckBucketEmpty(bucket));
    proto::MetaBucketRequest close;
    close.set_op(proto::META_BUCKET_CLOSE);
    // A shard that refuses (kBucketNotEmpty) keeps the bucket; shards closed meanwhile are
    // noted again by their next write.
    RETURN_IF_ERROR(AskShards(*store, bucket, close).status());
    return store->DeleteBucket(bucket);
  }();
  std::lock_guard<std::mutex> lock(deleting_mu_);
  deleting_.erase(deleting_.find(bucket));
  return deleted;
}

Result<ListResult> NamespacePartitions::List(std::string_view bucket,
                                             const ListOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<meta::ObjectStore> store, StoreFor(bucket, options.prefix));
  if (!cluster::TopDirectory(options.prefix).empty()) return store->List(bucket, options);
  ASSIGN_OR_RETURN(ListResult own, store->List(bucket, options));
  proto::MetaBucketRequest request;
  request.set_op(proto::META_BUCKET_LIST);
  rpc::ToProto(bucket, options, request.mutable_list());
  return WithShards(
      std::move(own), AskShards(*store, bucket, request),
      [](const proto::MetaBucketResponse& answer) { return rpc::FromProto(answer.list()); },
      [&](std::span<ListResult> parts) { return meta::MergeListings(parts, options.max_keys); });
}

Result<ListUploadsResult> NamespacePartitions::ListMultipartUploads(
    std::string_view bucket, const ListUploadsOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<meta::ObjectStore> store, StoreFor(bucket, options.prefix));
  if (!cluster::TopDirectory(options.prefix).empty()) {
    return store->ListMultipartUploads(bucket, options);
  }
  ASSIGN_OR_RETURN(ListUploadsResult own, store->ListMultipartUploads(bucket, options));
  proto::MetaBucketRequest request;
  request.set_op(proto::META_BUCKET_LIST_UPLOADS);
  rpc::ToProto(bucket, options, request.mutable_list_uploads());
  return WithShards(
      std::move(own), AskShards(*store, bucket, request),
      [](const proto::MetaBucketResponse& answer) { return rpc::FromProto(answer.list_uploads()); },
      [&](std::span<ListUploadsResult> parts) {
        return meta::MergeUploadListings(parts, options.max_uploads);
      });
}

}  // namespace granary::node
