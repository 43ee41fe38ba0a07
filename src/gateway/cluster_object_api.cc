#include "gateway/cluster_object_api.h"

#include <algorithm>
#include <set>

#include "cluster/by_partition.h"
#include "gateway/routed_io.h"
#include "gateway/router.h"

namespace granary::gateway {
namespace {

using cluster::ClusterMap;

// Bytes moved at a time by a copy across partitions.
constexpr uint64_t kCopyBufferBytes = 4ull << 20;

// Whether every item of a batch failed alike, as a whole request does, with a code that
// `retryable` accepts; returns that failure, OK otherwise.
template <typename T>
Status WholeBatchFailure(const std::vector<T>& results, bool (*retryable)(const Status&)) {
  if (results.empty()) return Status::OK();
  const Status& first = cluster::StatusOf(results.front());
  if (first.ok() || !retryable(first)) return Status::OK();
  for (const T& result : results) {
    if (cluster::StatusOf(result).code() != first.code()) return Status::OK();
  }
  return first;
}

bool IsStaleMap(const Status& status) { return status.code() == Code::kStaleMap; }

// A batch of `items` of `bucket`, split by partition (cluster::ByPartition): each
// partition's share goes to its head as `call(Client&, share)`, which returns one result per item
// of the share. A share is sent again with a fresh map when the head refused it whole with a code
// `retryable` accepts.
template <typename T, typename Item, typename F>
std::vector<T> Batch(Router& router, std::string_view bucket, std::span<const Item> items,
                     bool (*retryable)(const Status&), F call) {
  if (items.empty()) return {};
  // A key's partition is fixed for the life of the cluster; any map tells.
  const std::shared_ptr<const ClusterMap> map = router.maps().Get();
  return cluster::ByPartition<T>(*map, bucket, items, [&](std::span<const Item> share) {
    Result<std::vector<T>> done =
        router.OnHead(bucket, cluster::BatchKey(share.front()),
                      [&](const NodeClient& head) -> Result<std::vector<T>> {
                        std::vector<T> results = call(*head.client, share);
                        RETURN_IF_ERROR(WholeBatchFailure(results, retryable));
                        return results;
                      });
    if (done.ok()) return std::move(*done);
    return std::vector<T>(share.size(), T(done.status()));
  });
}

// The destination's options of a copy of `source`: ObjectApi::Copy's metadata directive.
PutOptions CopyPutOptions(const ObjectInfo& source, const CopyOptions& options) {
  PutOptions put;
  if (options.replace_metadata) {
    put = options.put;
  } else {
    put.content_type = source.content_type;
    put.user_metadata = source.user_metadata;
    put.headers = source.headers;
    put.conditions = options.put.conditions;
  }
  put.content_md5.clear();  // a copy has no body of the caller's to check
  put.expected_size = source.size;
  return put;
}

}  // namespace

Result<std::unique_ptr<ClusterObjectApi>> ClusterObjectApi::Open(ClusterObjectApiOptions options) {
  if (options.retry_ms < 0) {
    return Status::InvalidArgument("ClusterObjectApiOptions::retry_ms must not be negative");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cluster::MapCache> maps, cluster::MapCache::Open(options.etcd));
  auto router = std::make_unique<Router>(
      std::move(maps), Credentials{std::move(options.access_key), std::move(options.secret_key)},
      options.client, options.retry_ms);
  return std::unique_ptr<ClusterObjectApi>(new ClusterObjectApi(std::move(router)));
}

ClusterObjectApi::ClusterObjectApi(std::unique_ptr<Router> router) : router_(std::move(router)) {}
ClusterObjectApi::~ClusterObjectApi() = default;

std::shared_ptr<const ClusterMap> ClusterObjectApi::map() const { return router_->maps().Get(); }

Status ClusterObjectApi::CreateBucket(std::string_view bucket, const BucketOptions& options) {
  return router_->OnHead(bucket, [&](const NodeClient& head) {
    return head.client->CreateBucket(bucket, options);
  });
}

Status ClusterObjectApi::DeleteBucket(std::string_view bucket) {
  return router_->OnHead(bucket,
                         [&](const NodeClient& head) { return head.client->DeleteBucket(bucket); });
}

Result<BucketInfo> ClusterObjectApi::HeadBucket(std::string_view bucket) {
  return router_->OnHead(bucket,
                         [&](const NodeClient& head) { return head.client->HeadBucket(bucket); });
}

Result<std::vector<BucketInfo>> ClusterObjectApi::ListBuckets() {
  return router_->WithRetries([&](const ClusterMap& map) -> Result<std::vector<BucketInfo>> {
    std::vector<BucketInfo> all;
    std::set<std::string> asked;
    // A node lists the buckets of the partitions it heads: ask each head once.
    for (const cluster::Chain& chain : map.Partitions()) {
      ASSIGN_OR_RETURN(const cluster::NodeInfo* head, cluster::LiveHead(map, chain));
      if (!asked.insert(head->address).second) continue;
      ASSIGN_OR_RETURN(NodeClient node, router_->clients().Of(map, *head));
      Result<std::vector<BucketInfo>> listed = node.client->ListBuckets();
      if (!listed.ok()) {
        router_->clients().Forget(node, listed.status());
        return listed.status();
      }
      std::move(listed->begin(), listed->end(), std::back_inserter(all));
    }
    // While a partition moves, its old and new head may both list a bucket.
    std::sort(all.begin(), all.end(),
              [](const BucketInfo& a, const BucketInfo& b) { return a.name < b.name; });
    auto dup = std::unique(all.begin(), all.end(), [](const BucketInfo& a, const BucketInfo& b) {
      return a.name == b.name;
    });
    all.erase(dup, all.end());
    return all;
  });
}

Result<std::unique_ptr<ObjectWriter>> ClusterObjectApi::BeginPut(std::string_view bucket,
                                                                 std::string_view key,
                                                                 PutOptions options) {
  return RoutedWriter(
      *router_, std::string(bucket), std::string(key),
      [bucket = std::string(bucket), key = std::string(key),
       options = std::move(options)](Client& head) { return head.BeginPut(bucket, key, options); });
}

Result<ObjectInfo> ClusterObjectApi::PutBytes(std::string_view bucket, std::string_view key,
                                              std::string_view data, PutOptions options) {
  if (!options.conditions.empty()) {
    return ObjectApi::PutBytes(bucket, key, data, std::move(options));
  }
  return router_->OnHead(bucket, key, [&](const NodeClient& head) {
    return head.client->Put(bucket, key, data, options);
  });
}

Result<std::unique_ptr<ObjectReader>> ClusterObjectApi::Open(std::string_view bucket,
                                                             std::string_view key,
                                                             const GetOptions& options) {
  return router_->OnHead(bucket, key,
                         [&](const NodeClient& head) -> Result<std::unique_ptr<ObjectReader>> {
                           ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader,
                                            head.client->Open(bucket, key, options));
                           return RoutedReader(*router_, head, std::move(reader));
                         });
}

Result<ObjectInfo> ClusterObjectApi::Head(std::string_view bucket, std::string_view key,
                                          const GetOptions& options) {
  return router_->OnHead(bucket, key, [&](const NodeClient& head) {
    return head.client->Head(bucket, key, options);
  });
}

Status ClusterObjectApi::Delete(std::string_view bucket, std::string_view key) {
  return router_->OnHead(bucket, key,
                         [&](const NodeClient& head) { return head.client->Delete(bucket, key); });
}

Result<ObjectInfo> ClusterObjectApi::Copy(std::string_view src_bucket, std::string_view src_key,
                                          std::string_view dst_bucket, std::string_view dst_key,
                                          const CopyOptions& options) {
  // A key's partition is fixed for the life of the cluster; any map tells.
  const std::shared_ptr<const ClusterMap> map = router_->maps().Get();
  if (map->PartitionOf(src_bucket, src_key).id == map->PartitionOf(dst_bucket, dst_key).id) {
    return router_->OnHead(dst_bucket, dst_key, [&](const NodeClient& head) {
      return head.client->Copy(src_bucket, src_key, dst_bucket, dst_key, options);
    });
  }
  return CopyAcross(src_bucket, src_key, dst_bucket, dst_key, options);
}

Result<ObjectInfo> ClusterObjectApi::CopyAcross(std::string_view src_bucket,
                                                std::string_view src_key,
                                                std::string_view dst_bucket,
                                                std::string_view dst_key,
                                                const CopyOptions& options) {
  // The source is read again by each attempt, so the whole copy may be retried.
  return router_->WithRetries([&](const ClusterMap& map) -> Result<ObjectInfo> {
    ASSIGN_OR_RETURN(NodeClient src, router_->HeadOf(map, src_bucket, src_key));
    ASSIGN_OR_RETURN(NodeClient dst, router_->HeadOf(map, dst_bucket, dst_key));
    auto failed = [&](const NodeClient& node, Status status) {
      router_->clients().Forget(node, status);
      return status;
    };
    GetOptions get;
    get.conditions = options.source_conditions;
    Result<std::unique_ptr<ObjectReader>> opened = src.client->Open(src_bucket, src_key, get);
    if (opened.status().code() == Code::kNotModified) {
      // A copy has nothing to answer "not modified" with: S3 fails it as a precondition.
      return Status::PreconditionFailed("the source object " + opened.status().message());
    }
    if (!opened.ok()) return failed(src, opened.status());
    ObjectReader& reader = **opened;
    Result<std::unique_ptr<ObjectWriter>> begun =
        dst.client->BeginPut(dst_bucket, dst_key, CopyPutOptions(reader.info(), options));
    if (!begun.ok()) return failed(dst, begun.status());
    ObjectWriter& writer = **begun;
    std::string buf(std::min(reader.length(), kCopyBufferBytes), '\0');
    for (uint64_t left = reader.length(); left > 0;) {
      Result<size_t> n = reader.Read(buf);
      if (!n.ok()) return failed(src, n.status());
      if (*n == 0) return Status::Corruption("the source object ended before its length");
      Status appended = writer.Append(std::string_view(buf.data(), *n));
      if (!appended.ok()) return failed(dst, appended);
      left -= *n;
    }
    Result<ObjectInfo> info = writer.Commit();
    if (!info.ok()) return failed(dst, info.status());
    return info;
  });
}

Result<ListResult> ClusterObjectApi::List(std::string_view bucket, const ListOptions& options) {
  // A prefix under a top-level directory is listed by that directory's partition alone; any
  // other by the bucket's own, which merges its shards' listings.
  return router_->OnHead(bucket, options.prefix, [&](const NodeClient& head) {
    return head.client->List(bucket, options);
  });
}

std::vector<Result<ObjectInfo>> ClusterObjectApi::PutMany(std::string_view bucket,
                                                          std::span<const PutItem> items) {
  // Only a share refused whole as stale is sent again: nothing of it was stored.
  return Batch<Result<ObjectInfo>>(
      *router_, bucket, items, IsStaleMap,
      [&](Client& head, std::span<const PutItem> share) { return head.PutMany(bucket, share); });
}

std::vector<Result<std::string>> ClusterObjectApi::GetMany(std::string_view bucket,
                                                           std::span<const std::string> keys) {
  return Batch<Result<std::string>>(*router_, bucket, keys, cluster::RetryableWithNewMap,
                                    [&](Client& head, std::span<const std::string> share) {
                                      return head.GetMany(bucket, share);
                                    });
}

std::vector<Status> ClusterObjectApi::DeleteMany(std::string_view bucket,
                                                 std::span<const std::string> keys) {
  return Batch<Status>(*router_, bucket, keys, cluster::RetryableWithNewMap,
                       [&](Client& head, std::span<const std::string> share) {
                         return head.DeleteMany(bucket, share);
                       });
}

Result<std::string> ClusterObjectApi::CreateMultipartUpload(std::string_view bucket,
                                                            std::string_view key,
                                                            PutOptions options) {
  return router_->OnHead(bucket, key, [&](const NodeClient& head) {
    return head.client->CreateMultipartUpload(bucket, key, options);
  });
}

Result<std::unique_ptr<ObjectWriter>> ClusterObjectApi::UploadPart(
    std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
    std::string content_md5, uint64_t expected_size) {
  return RoutedWriter(
      *router_, std::string(bucket), std::string(key),
      [bucket = std::string(bucket), key = std::string(key), upload_id = std::string(upload_id),
       part_number, content_md5 = std::move(content_md5), expected_size](Client& head) {
        return head.UploadPart(bucket, key, upload_id, part_number, content_md5, expected_size);
      });
}

Result<ObjectInfo> ClusterObjectApi::CompleteMultipartUpload(std::string_view bucket,
                                                             std::string_view key,
                                                             std::string_view upload_id,
                                                             std::span<const CompletedPart> parts,
                                                             const Conditions& conditions) {
  return router_->OnHead(bucket, key, [&](const NodeClient& head) {
    return head.client->CompleteMultipartUpload(bucket, key, upload_id, parts, conditions);
  });
}

Status ClusterObjectApi::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                              std::string_view upload_id) {
  return router_->OnHead(bucket, key, [&](const NodeClient& head) {
    return head.client->AbortMultipartUpload(bucket, key, upload_id);
  });
}

Result<ListPartsResult> ClusterObjectApi::ListParts(std::string_view bucket, std::string_view key,
                                                    std::string_view upload_id,
                                                    int part_number_marker, int max_parts) {
  return router_->OnHead(bucket, key, [&](const NodeClient& head) {
    return head.client->ListParts(bucket, key, upload_id, part_number_marker, max_parts);
  });
}

Result<ListUploadsResult> ClusterObjectApi::ListMultipartUploads(
    std::string_view bucket, const ListUploadsOptions& options) {
  return router_->OnHead(bucket, options.prefix, [&](const NodeClient& head) {
    return head.client->ListMultipartUploads(bucket, options);
  });
}

}  // namespace granary::gateway
