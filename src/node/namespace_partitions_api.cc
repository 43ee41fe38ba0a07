// NamespacePartitions as an ObjectApi: each call goes to the store of its bucket's partition
// (kStaleMap when this node does not head it).
#include "node/namespace_partitions.h"

#include <algorithm>
#include <filesystem>

#include "cluster/by_partition.h"
#include "common/kept_alive.h"
#include "common/names.h"
#include "meta/object_store.h"

namespace granary::node {

// A batch split by the partition of each key (cluster::ByPartition); `run(store, share)` runs
// one partition's share.
template <typename T, typename Item, typename Run>
std::vector<T> NamespacePartitions::PerPartition(std::string_view bucket,
                                                 std::span<const Item> items, Run run) {
  auto m = map();
  if (m == nullptr || m->chains.empty()) {
    return std::vector<T>(items.size(), T(Status::Unavailable("this node has no cluster map yet")));
  }
  return cluster::ByPartition<T>(*m, bucket, items, [&](std::span<const Item> share) {
    Result<std::shared_ptr<meta::ObjectStore>> store =
        StoreFor(bucket, cluster::BatchKey(share.front()));
    if (!store.ok()) return std::vector<T>(share.size(), T(store.status()));
    return run(**store, share);
  });
}

// A bucket's count is its data's chain set.
static_assert(kMaxReplicas == cluster::kMaxChainReplicas);

Status NamespacePartitions::CreateBucket(std::string_view bucket, const BucketOptions& options) {
  RETURN_IF_ERROR(ValidateBucketReplicas(options.replicas));
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket));
  // An existing bucket asks for no chains (CreateBucket checks again under its lock).
  Result<BucketInfo> existing = store->HeadBucket(bucket);
  if (existing.ok()) {
    return Status::AlreadyExists("bucket \"" + std::string(bucket) + "\" already exists");
  }
  if (existing.status().code() != Code::kNoSuchBucket) return existing.status();
  RETURN_IF_ERROR(AwaitSet(options.replicas));
  return store->CreateBucket(bucket, options);
}

Result<BucketInfo> NamespacePartitions::HeadBucket(std::string_view bucket) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket));
  return store->HeadBucket(bucket);
}

Result<std::vector<BucketInfo>> NamespacePartitions::ListBuckets() {
  auto m = map();
  if (m == nullptr) return Status::Unavailable("this node has no cluster map yet");
  std::vector<BucketInfo> all;
  for (const cluster::Chain& chain : m->Partitions()) {
    if (chain.members.empty() || chain.members.front() != options_.node_id) continue;
    // A partition never written holds no bucket (every member has every acknowledged entry).
    if (!std::filesystem::exists(options_.dir + "/" + std::to_string(chain.id) + "/db")) {
      continue;
    }
    ASSIGN_OR_RETURN(auto store, StoreOf(chain));
    ASSIGN_OR_RETURN(std::vector<BucketInfo> buckets, store->ListBuckets());
    all.insert(all.end(), buckets.begin(), buckets.end());
  }
  std::sort(all.begin(), all.end(),
            [](const BucketInfo& a, const BucketInfo& b) { return a.name < b.name; });
  return all;
}

Result<std::unique_ptr<ObjectWriter>> NamespacePartitions::BeginPut(std::string_view bucket,
                                                                    std::string_view key,
                                                                    PutOptions options) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  ASSIGN_OR_RETURN(auto writer, store->BeginPut(bucket, key, std::move(options)));
  return KeepingAlive(std::move(writer), std::move(store));
}

Result<std::unique_ptr<ObjectReader>> NamespacePartitions::Open(std::string_view bucket,
                                                                std::string_view key,
                                                                const GetOptions& options) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  ASSIGN_OR_RETURN(auto reader, store->Open(bucket, key, options));
  return KeepingAlive(std::move(reader), std::move(store));
}

Result<ObjectInfo> NamespacePartitions::Head(std::string_view bucket, std::string_view key,
                                             const GetOptions& options) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  return store->Head(bucket, key, options);
}

Status NamespacePartitions::Delete(std::string_view bucket, std::string_view key) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  return store->Delete(bucket, key);
}

Result<ObjectInfo> NamespacePartitions::Copy(std::string_view src_bucket,
                                             std::string_view src_key,
                                             std::string_view dst_bucket,
                                             std::string_view dst_key,
                                             const CopyOptions& options) {
  auto m = map();
  if (m == nullptr || m->chains.empty()) {
    return Status::Unavailable("this node has no cluster map yet");
  }
  if (m->PartitionOf(src_bucket, src_key).id != m->PartitionOf(dst_bucket, dst_key).id) {
    return Status::NotSupported("objects " + std::string(src_bucket) + "/" + std::string(src_key) +
                                " and " + std::string(dst_bucket) + "/" + std::string(dst_key) +
                                " are in different namespace partitions: copy through a gateway");
  }
  // The source's bucket too must be known to the partition (a shard of it).
  RETURN_IF_ERROR(StoreFor(src_bucket, src_key).status());
  ASSIGN_OR_RETURN(auto store, StoreFor(dst_bucket, dst_key));
  return store->Copy(src_bucket, src_key, dst_bucket, dst_key, options);
}

std::vector<Result<ObjectInfo>> NamespacePartitions::PutMany(std::string_view bucket,
                                                             std::span<const PutItem> items) {
  return PerPartition<Result<ObjectInfo>>(
      bucket, items, [&](meta::ObjectStore& store, std::span<const PutItem> share) {
        return store.PutMany(bucket, share);
      });
}

std::vector<Result<std::string>> NamespacePartitions::GetMany(std::string_view bucket,
                                                              std::span<const std::string> keys) {
  return PerPartition<Result<std::string>>(
      bucket, keys, [&](meta::ObjectStore& store, std::span<const std::string> share) {
        return store.GetMany(bucket, share);
      });
}

std::vector<Status> NamespacePartitions::DeleteMany(std::string_view bucket,
                                                    std::span<const std::string> keys) {
  return PerPartition<Status>(
      bucket, keys, [&](meta::ObjectStore& store, std::span<const std::string> share) {
        return store.DeleteMany(bucket, share);
      });
}

Result<std::string> NamespacePartitions::CreateMultipartUpload(std::string_view bucket,
                                                               std::string_view key,
                                                               PutOptions options) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  return store->CreateMultipartUpload(bucket, key, std::move(options));
}

Result<std::unique_ptr<ObjectWriter>> NamespacePartitions::UploadPart(
    std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
    std::string content_md5, uint64_t expected_size) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  ASSIGN_OR_RETURN(auto writer, store->UploadPart(bucket, key, upload_id, part_number,
                                                  std::move(content_md5), expected_size));
  return KeepingAlive(std::move(writer), std::move(store));
}

Result<ObjectInfo> NamespacePartitions::CompleteMultipartUpload(
    std::string_view bucket, std::string_view key, std::string_view upload_id,
    std::span<const CompletedPart> parts, const Conditions& conditions) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  return store->CompleteMultipartUpload(bucket, key, upload_id, parts, conditions);
}

Status NamespacePartitions::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                                 std::string_view upload_id) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  return store->AbortMultipartUpload(bucket, key, upload_id);
}

Result<ListPartsResult> NamespacePartitions::ListParts(std::string_view bucket,
                                                       std::string_view key,
                                                       std::string_view upload_id,
                                                       int part_number_marker, int max_parts) {
  ASSIGN_OR_RETURN(auto store, StoreFor(bucket, key));
  return store->ListParts(bucket, key, upload_id, part_number_marker, max_parts);
}

}  // namespace granary::node
