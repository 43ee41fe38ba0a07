// NamespacePartitions: a storage node's share of the cluster's namespace (docs/design/cluster.md,
// "The namespace"). The buckets are partitioned over the chains of the map: bucket B's records
// live in the partition of chain `map.PartitionOf(B)`, a RocksDB on each of that chain's members,
// replicated entry by entry (meta/replicated_db.h).
//
// - The head of a partition's chain serves it: it runs a meta::ObjectStore over the replicated
//   database, with the cluster's blobs (ChainBlobStore) for the data, so every S3 semantic of the
//   single-node server holds. This class is that ObjectApi: a call for a bucket whose partition
//   this node does not head is refused with kStaleMap (the gateway reads the map again).
// - A new head first makes every member hold every entry it has (ReplicatedDb::Barrier).
// - A key under a top-level directory `d/` lives in the partition of "bucket/d" (a shard of the
//   bucket, holding a shard record of it); the bucket's own partition (its root) notes its
//   shards, so that DeleteBucket and a listing of the whole bucket reach every one
//   (namespace_directories.cc; docs/design/cluster.md, "Directories").
// - Other members apply the entries sent down the chain (META_APPLY) and serve fills of new
//   members (META_PULL, META_COPY).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cluster/cluster_map.h"
#include "granary/object_api.h"
#include "replication/blob_store.h"
#include "replication/peer_call.h"
#include "rpc/server.h"

namespace granary::meta {
class ObjectStore;
class ReplicatedDb;
}  // namespace granary::meta

namespace granary::proto {
class MetaBucketRequest;
class MetaBucketResponse;
}  // namespace granary::proto

namespace granary::node {

struct NamespacePartitionsOptions {
  std::string node_id;
  std::string dir;  // partitions live in <dir>/<chain>
  std::string access_key;  // the cluster's credentials, for calls to peers
  std::string secret_key;
  int peer_timeout_ms = 30'000;
  uint64_t block_cache_bytes = 16ull << 20;  // per open partition
  uint64_t log_entries = 20'000;  // of each partition's log (meta::ReplicatedDbOptions)
  // The cluster's blobs, opened when a partition is first served.
  std::function<Result<std::shared_ptr<replication::BlobStore>>()> open_blobs;
  // Asks the manager for a set of chains of this replica count (cluster::keys::WantedSet).
  std::function<Status(int replicas)> want_set;
  // How long creating the first bucket of a new replica count waits for its chains.
  int set_wait_ms = 15'000;
};

class NamespacePartitions final : public ObjectApi {
 public:
  // `writable` says whether the node holds its lease; `refresh` reads the newest map (and calls
  // SetMap) when a request names a chain version newer than this node knows.
  NamespacePartitions(NamespacePartitionsOptions options, std::function<bool()> writable,
                      std::function<void()> refresh);
  ~NamespacePartitions() override;

  // Installs a newer map; partitions this node no longer heads stop being served.
  void SetMap(std::shared_ptr<const cluster::ClusterMap> map);

  bool Handles(uint32_t method) const;
  Status Handle(rpc::ServerCall& call);

  // Fills the partition of `chain` from a serving member (pulling the entries it lacks, or
  // copying every key when those are gone from the source's log). For a member joining the
  // chain, and for one whose log diverged.
  Status Fill(uint32_t chain);
  // Refills partitions found diverged; returns whether it did something.
  bool RefillDiverged();
  // Deletes this node's copy of the partition of `chain` (a chain it left); kUnavailable while
  // it is still in use (try again later).
  Status Drop(uint32_t chain);
  // Heads whose chains changed bring every member up to date (ReplicatedDb::Barrier), so that a
  // member that joined has every acknowledged entry even if no write comes; a head whose last
  // entry did not reach every member closes its store (the next request opens a new one).
  void Settle();
  // Stops serving and closes every partition.
  void Close();

  using ObjectApi::CreateBucket;
  Status CreateBucket(std::string_view bucket, const BucketOptions& options) override;
  Status DeleteBucket(std::string_view bucket) override;
  Result<BucketInfo> HeadBucket(std::string_view bucket) override;
  // The buckets of the partitions this node heads.
  Result<std::vector<BucketInfo>> ListBuckets() override;
  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view bucket, std::string_view key,
                                                 PutOptions options) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view bucket, std::string_view key,
                                             const GetOptions& options) override;
  Result<ObjectInfo> Head(std::string_view bucket, std::string_view key,
                          const GetOptions& options) override;
  Status Delete(std::string_view bucket, std::string_view key) override;
  // Both buckets must be in one partition (kNotSupported otherwise: a gateway copies the bytes).
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

 private:
  struct Partition;

  std::shared_ptr<const cluster::ClusterMap> map() const;
  // The partition of `chain`, its database open (created when new).
  Result<std::shared_ptr<Partition>> Get(uint32_t chain);
  // The store serving `bucket`'s own partition: kStaleMap if this node does not head it.
  Result<std::shared_ptr<meta::ObjectStore>> StoreFor(std::string_view bucket);
  // The store of the partition holding `key` of `bucket` (kStaleMap if this node does not head
  // it). In a shard, the bucket's root is asked for the bucket the first time (kNoSuchBucket if
  // it does not exist) and the shard record written.
  Result<std::shared_ptr<meta::ObjectStore>> StoreFor(std::string_view bucket,
                                                      std::string_view key);
  Result<std::shared_ptr<meta::ObjectStore>> ShardStore(const cluster::ClusterMap& m,
                                                        const cluster::Chain& chain,
                                                        std::string_view bucket);
  template <typename T, typename Item, typename Run>
  std::vector<T> PerPartition(std::string_view bucket, std::span<const Item> items, Run run);
  // A META_BUCKET request, served here when this node heads `chain`, else sent to its head.
  Result<proto::MetaBucketResponse> AskHead(const cluster::ClusterMap& m,
                                            const cluster::Chain& chain,
                                            const proto::MetaBucketRequest& request);
  Result<proto::MetaBucketResponse> ServeBucket(const proto::MetaBucketRequest& request);
  // `request` sent to the head of every shard `root` (the bucket's own partition) notes, at once.
  Result<std::vector<proto::MetaBucketResponse>> AskShards(meta::ObjectStore& root,
                                                           std::string_view bucket,
                                                           const proto::MetaBucketRequest& request);
  Status BucketCall(rpc::ServerCall& call);
  std::mutex& ShardLock(uint32_t chain, std::string_view bucket);
  Result<std::shared_ptr<meta::ObjectStore>> StoreOf(const cluster::Chain& chain);
  // A bucket's data goes to the chains of its replica count. For a count the map has no chains
  // of, asks the manager for them and waits (kUnavailable if they do not come in time,
  // kInvalidArgument if fewer nodes are up than the count).
  Status AwaitSet(int replicas);
  // Stops serving `p` as its head (requests in flight finish). REQUIRES: p->mu held.
  void Retire(Partition* p);
  // Tells the node at `address` that this one heads `chain` now.
  void StepDown(const std::string& address, const cluster::Chain& chain);
  // The partition of `chain` as a source of a fill: kStaleMap unless this node serves the
  // chain, kUnavailable while it is being filled itself.
  Result<std::shared_ptr<Partition>> Source(uint32_t chain);
  // The serving member `chain`'s partition is filled from.
  Result<std::string> FillSource(const cluster::Chain& chain) const;
  Status CopyAll(Partition* p, rpc::ConnectionPool& source, uint32_t chain);

  Status ApplyCall(rpc::ServerCall& call);
  Status PullCall(rpc::ServerCall& call);
  Status CopyCall(rpc::ServerCall& call);

  const NamespacePartitionsOptions options_;
  const std::function<bool()> writable_;
  const std::function<void()> refresh_;
  replication::PeerPools peers_;

  mutable std::mutex mu_;
  std::shared_ptr<const cluster::ClusterMap> map_;          // GUARDED_BY(mu_)
  std::map<uint32_t, std::shared_ptr<Partition>> partitions_;  // GUARDED_BY(mu_)
  std::shared_ptr<replication::BlobStore> blobs_;           // GUARDED_BY(mu_)
  bool closed_ = false;                                     // GUARDED_BY(mu_)

  // Buckets whose root this node heads and is deleting: their shards are being closed, and no
  // new one is admitted. Held across the admission of a shard.
  std::mutex deleting_mu_;
  std::set<std::string, std::less<>> deleting_;  // GUARDED_BY(deleting_mu_)
  // Serialize, per shard and bucket, writing the shard record and closing it.
  static constexpr size_t kShardLocks = 64;
  std::mutex shard_locks_[kShardLocks];
};

}  // namespace granary::node
