// ClusterObjectApi: the ObjectApi of a cluster, for a process that holds none of its data (the
// stateless `granary gateway`). It reads the cluster map from etcd and keeps it cached; each call
// goes over the native protocol to the head of the partition holding its key
// (ClusterMap::PartitionOf(bucket, key): a key under a top-level directory lives in that
// directory's partition), calls about a bucket and listings of prefixes without a '/' to the
// head of the bucket's own partition, one granary::Client per node, authenticated with the
// cluster's root credentials. Batches are split by partition.
//
// Retries: a node that no longer heads the partition answers kStaleMap, one that cannot serve
// answers kUnavailable. Calls that may be sent again are then routed again with a fresh map, with
// backoff, until `retry_ms` has passed: the metadata calls (HeadBucket, CreateBucket,
// DeleteBucket, Head, List, Delete, Copy, the multipart calls but UploadPart, GetMany,
// DeleteMany), Open (of a reader) and ListBuckets; PutMany only when the head refused the whole
// batch as stale. BeginPut and UploadPart open their upload at the first Append(), and only that
// step is retried: a later failure, at Commit() too, is returned as it is (an S3 client retries
// the 503 it becomes), after which the next call is routed with a fresh map.
//
// ListBuckets asks the head of every chain (each node once) and merges their buckets, sorted by
// name. Copy within one partition is done by its head; across partitions the gateway reads the
// source from its head and writes it to the destination's head, with ObjectApi::Copy's semantics
// (source conditions, metadata directive, destination conditions).
//
// Thread-safe. Readers and writers it returns must be destroyed before it.
#pragma once

#include <memory>
#include <string>

#include "cluster/cluster_map.h"
#include "granary/client.h"
#include "granary/object_api.h"

namespace granary::gateway {

class Router;

struct ClusterObjectApiOptions {
  std::string etcd;        // comma-separated endpoints: http://HOST:PORT[,...]
  std::string access_key;  // the cluster's root credentials
  std::string secret_key;
  int retry_ms = 30'000;  // how long one call keeps retrying
  // For the client of each node. It does not reconnect by itself: a node that cannot be reached
  // is routed around with a fresh map instead (the manager replaces it within seconds).
  ClientOptions client = [] {
    ClientOptions o;
    o.retries = 0;
    return o;
  }();
};

class ClusterObjectApi final : public ObjectApi {
 public:
  // Reads the map once. kInvalidArgument for a malformed endpoint or option; kUnavailable when
  // etcd cannot be reached or holds no map yet (the message says what to start).
  static Result<std::unique_ptr<ClusterObjectApi>> Open(ClusterObjectApiOptions options);
  ~ClusterObjectApi() override;

  // The cached map (never null): what the next call is routed by.
  std::shared_ptr<const cluster::ClusterMap> map() const;

  using ObjectApi::CreateBucket;
  Status CreateBucket(std::string_view bucket, const BucketOptions& options) override;
  Status DeleteBucket(std::string_view bucket) override;
  Result<BucketInfo> HeadBucket(std::string_view bucket) override;
  Result<std::vector<BucketInfo>> ListBuckets() override;
  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view bucket, std::string_view key,
                                                 PutOptions options) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view bucket, std::string_view key,
                                             const GetOptions& options) override;
  Result<ObjectInfo> Head(std::string_view bucket, std::string_view key,
                          const GetOptions& options) override;
  Status Delete(std::string_view bucket, std::string_view key) override;
  Result<ObjectInfo> Copy(std::string_view src_bucket, std::string_view src_key,
                          std::string_view dst_bucket, std::string_view dst_key,
                          const CopyOptions& options) override;
  Result<ListResult> List(std::string_view bucket, const ListOptions& options) override;
  std::vector<Result<ObjectInfo>> PutMany(std::string_view bucket,
                                          std::span<const PutItem> items) override;
  std::vector<Result<std::string>> GetMany(std::string_view bucket,
                                           std::span<const std::string> keys) override;
  std::vector<Status> DeleteMany(std::string_view bucket,
                                 std::span<const std::string> keys) override;
  Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                            PutOptions options) override;
  Result<std::unique_ptr<ObjectWriter>> UploadPart(std::string_view bucket, std::string_view key,
                                                   std::string_view upload_id, int part_number,
                                                   std::string content_md5,
                                                   uint64_t expected_size) override;
  Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id,
                                             std::span<const CompletedPart> parts,
                                             const Conditions& conditions) override;
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id) override;
  Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key,
                                    std::string_view upload_id, int part_number_marker,
                                    int max_parts) override;
  Result<ListUploadsResult> ListMultipartUploads(std::string_view bucket,
                                                 const ListUploadsOptions& options) override;

 protected:
  // A put of bytes in memory (Put): sent again, with a fresh map, when its partition's head
  // changed or could not serve it (a failover), as the calls without data are. Only when it has
  // no conditions: a put that took effect but whose answer was lost would fail them when sent
  // again. The others stream through BeginPut, once.
  Result<ObjectInfo> PutBytes(std::string_view bucket, std::string_view key,
                              std::string_view data, PutOptions options) override;

 private:
  explicit ClusterObjectApi(std::unique_ptr<Router> router);

  // Copy between buckets of different partitions: read at the source's head, write at the
  // destination's.
  Result<ObjectInfo> CopyAcross(std::string_view src_bucket, std::string_view src_key,
                                std::string_view dst_bucket, std::string_view dst_key,
                                const CopyOptions& options);

  const std::unique_ptr<Router> router_;
};

}  // namespace granary::gateway
