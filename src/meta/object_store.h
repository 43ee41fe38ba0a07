// ObjectStore: the namespace of buckets and objects, kept in RocksDB, over a BlobStore that
// holds the data. It implements ObjectApi (include/granary/object_api.h) in-process; the S3
// gateway and the native protocol's service call it on a single node.
//
// Records and keys are specified in docs/formats/meta.md. In short: every key of a bucket starts
// with the bucket's name, so one bucket (later: one partition) is one contiguous key range, and
// listing a prefix, with or without a delimiter, is one range scan. An object's record holds its
// size, ETag, content type, metadata, times and where its data is: inline in the record (up to
// inline_max_bytes), or runs of blobs of chunk_bytes each.
//
// A write stores its data first, then commits the record with one synced RocksDB write; a reader
// sees the old object or the new one, never a mix. Data that no record refers to any more (an
// overwritten or deleted object, an abandoned upload) becomes garbage, deleted in the background
// once no open reader can still need it. An upload in progress is announced by an intent record
// before its first blob is written, so that after a crash its blobs are found and reclaimed.
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/md5.h"
#include "common/mutex.h"
#include "granary/object_api.h"
#include "replication/blob_store.h"

namespace rocksdb {
struct Options;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace granary::proto {
class IntentRecord;
class UploadRecord;
class ObjectRecord;
class DataRun;
}  // namespace granary::proto

namespace granary::meta {

struct ObjectStoreOptions {
  std::string dir;  // the RocksDB directory of the namespace
  // When set, the namespace lives in this database instead (a partition of a cluster's,
  // meta/replicated_db.h), which the caller keeps open while the store is and closes after it;
  // `dir` then holds only the intents of uploads.
  rocksdb::DB* db = nullptr;
  std::shared_ptr<replication::BlobStore> blobs;
  // Close() closes the blob store too (false when others share it).
  bool close_blobs = true;
  Clock* clock = nullptr;  // SystemClock when null
  // Objects up to this size live inline in their record.
  uint64_t inline_max_bytes = 4096;
  // Larger objects are stored in blobs of this many bytes (the last one shorter).
  uint64_t chunk_bytes = 4ull << 20;
  // Blobs of one upload being written at once.
  int chunks_in_flight = 4;
  // Sync RocksDB's log at every commit (acknowledged writes survive power loss).
  bool sync = true;
  // RocksDB block cache.
  uint64_t block_cache_bytes = 256ull << 20;
  // Run the background reclaimer; when false, only ReclaimGarbage() deletes garbage.
  bool background_reclaim = true;
  // What names a bucket's blobs besides their version and chunk (docs/formats/meta.md), given
  // the bucket's replica count: in a cluster, its chains and this namespace partition, so that
  // every partition's blobs have names of their own. Unset on a single server: no prefix, and
  // buckets of more than one replica are refused.
  std::function<std::string(uint32_t replicas)> blob_prefix;
};

struct ObjectStoreStats {
  uint64_t buckets = 0;
  uint64_t objects = 0;           // RocksDB's estimate
  uint64_t meta_disk_bytes = 0;   // RocksDB's files
  uint64_t meta_memory_bytes = 0; // memtables, block cache and table readers
  // Of the tables on disk: index and Bloom filter blocks (what must stay in memory for every
  // lookup to take one disk read), and the raw sizes of keys and records.
  uint64_t meta_index_bytes = 0;
  uint64_t meta_filter_bytes = 0;
  uint64_t meta_raw_key_bytes = 0;
  uint64_t meta_raw_value_bytes = 0;
  uint64_t garbage_records = 0;   // pending reclaim
  uint64_t reclaimed_blobs = 0;   // since open
  replication::BlobStoreStats blobs;
};

// The RocksDB options of a namespace's database.
rocksdb::Options NamespaceDbOptions(uint64_t block_cache_bytes);

class ObjectStore final : public ObjectApi {
 public:
  // Opens the namespace in options.dir (creating it), turns the intents of uploads interrupted
  // by a crash into garbage, and starts the reclaimer.
  static Result<std::unique_ptr<ObjectStore>> Open(ObjectStoreOptions options);
  ~ObjectStore() override;

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

  // kBucketNotEmpty (saying what to delete) while the bucket holds an object or an upload.
  // DeleteBucket checks again under its lock.
  Status CheckBucketEmpty(std::string_view bucket);

  // Shards of a cluster's buckets (docs/design/cluster.md, "Directories"). A partition that
  // holds records of a bucket whose own record lives in another partition keeps a shard record
  // of it: `info` as the bucket's partition gave it. Idempotent. A shard is removed by
  // DeleteBucket (once it holds no record) and is not listed by ListBuckets.
  Status AdoptBucket(std::string_view bucket, const BucketInfo& info);
  // In the bucket's own partition: notes (once) that partition `chain` holds a shard of it, and
  // returns the bucket; kNoSuchBucket when it does not exist.
  Result<BucketInfo> AddShard(std::string_view bucket, uint32_t chain);
  // The partitions AddShard noted for the bucket, in order.
  Result<std::vector<uint32_t>> Shards(std::string_view bucket);

  // Deletes, now, every garbage record no open reader can need. Returns how many blobs went.
  Result<uint64_t> ReclaimGarbage();
  ObjectStoreStats Stats();
  // Flushes and compacts the whole namespace now (a namespace at rest, for sizing and tests).
  Status CompactNamespace();
  // Stops the reclaimer and closes RocksDB and the blob store. Later calls fail (kUnavailable).
  Status Close();

  // Internal pieces (put.cc, read.cc, multipart.cc) reach the store's helpers through these.
  class Writer;
  class Reader;

 private:
  struct ReaderSlot;
  explicit ObjectStore(ObjectStoreOptions options);
  Status Init();

  // Helpers shared by the operations (object_store.cc).
  uint64_t NowNs() const;
  Result<uint64_t> NextVersion();
  Status CheckBucket(std::string_view bucket);
  // The bucket's replica count (BucketRecord.replicas); kNoSuchBucket if absent.
  Result<uint32_t> BucketReplicas(std::string_view bucket);
  // The key of chunk `chunk` of `run`.
  std::string BlobKeyOf(const proto::DataRun& run, uint64_t chunk) const;
  // The record of an object; nullopt when absent.
  Result<std::optional<proto::ObjectRecord>> GetRecord(std::string_view bucket,
                                                       std::string_view key);
  // Commits `record` as the object (bucket, key): evaluates the write conditions against the
  // current record, and in one synced write stores the record and turns the replaced object's
  // data into garbage; then forgets the intents of `intent_versions`. `extra` is added to the
  // same write.
  //
  // `await_data`, when set, returns once the record's data is durable (or why it is not). Where
  // the namespace is this server's own (not a cluster partition), the record is then made durable
  // while the data is: first as a PendingCommit, synced at the same time as the data's last
  // blobs, then, once they are durable, as the object with a write that needs no sync of its own
  // (docs/formats/meta.md, "Writes"). A put then waits for one sync instead of two in a row.
  Result<ObjectInfo> CommitObject(std::string_view bucket, std::string_view key,
                                  proto::ObjectRecord record, const Conditions& conditions,
                                  std::span<const uint64_t> intent_versions,
                                  rocksdb::WriteBatch* extra = nullptr,
                                  const std::function<Status()>& await_data = {});
  Status WriteSynced(rocksdb::WriteBatch* batch);
  // The record of an object a read may return: kNoSuchBucket, kNotFound, or the conditions' error.
  Result<proto::ObjectRecord> ReadableRecord(std::string_view bucket, std::string_view key,
                                             const Conditions& conditions);
  // The record of a multipart upload: kNoSuchUpload when it was completed, aborted or never was.
  Result<proto::UploadRecord> GetUpload(std::string_view bucket, std::string_view key,
                                        std::string_view upload_id);
  // Adds a garbage record for `runs` to `batch`.
  void AddGarbage(rocksdb::WriteBatch* batch, std::span<const proto::DataRun> runs);
  // Intents live in their own RocksDB (intents_db_), never synced, so that recording one never
  // waits for another writer's commit to sync (RocksDB groups writes of one log). An intent names
  // what its upload would commit; recovery checks that to tell committed uploads from cut ones.
  struct IntentTarget {
    std::string_view bucket, key, upload_id;
    uint32_t part = 0;
  };
  // `span`: the run's version and replicas, chunk_bytes, and its size so far rounded up to
  // whole chunks (the blobs that may exist).
  Status WriteIntent(const proto::DataRun& span, const IntentTarget& target);
  // Adds the intent WriteIntent records to `batch`, to be written to the intents.
  void AddIntent(rocksdb::WriteBatch* batch, const proto::DataRun& span,
                 const IntentTarget& target);
  void ForgetIntents(std::span<const uint64_t> versions);
  // Whether the upload of `intent` was committed (its record refers to its version).
  Result<bool> IntentCommitted(const proto::IntentRecord& intent);
  // The upload's blobs become garbage (a writer that did not commit).
  void AbandonIntent(const proto::DataRun& span);
  // The lock for one object key (or upload), held across the read-check-commit of a write.
  std::mutex& KeyLock(std::string_view bucket, std::string_view key);
  // The lock of one multipart upload (taken before a KeyLock, never after).
  std::mutex& UploadLock(std::string_view upload_id);

  // Garbage records added by this thread stay "pending" until the scope ends (their batch is
  // written or dropped): a reader that registers meanwhile may have read the record the garbage
  // replaces, so it must be protected from that garbage too.
  class GarbageScope {
   public:
    explicit GarbageScope(ObjectStore* store);
    ~GarbageScope();
    GarbageScope(const GarbageScope&) = delete;
    GarbageScope& operator=(const GarbageScope&) = delete;

   private:
    ObjectStore* store_;
    size_t mark_;
  };

  // Readers pin garbage: a reader registered at sequence S keeps garbage records >= S.
  uint64_t RegisterReader();
  void UnregisterReader(uint64_t seq);

  void ReclaimLoop();
  // Garbage records below this sequence may be reclaimed now. REQUIRES: readers_mu_ held.
  uint64_t ReclaimLimit() const;
  Status RecoverIntents();
  // Applies the PendingCommits a stopped server left (their data complete) or drops them.
  Status RecoverPendingCommits();

  const ObjectStoreOptions options_;
  Clock* const clock_;
  std::array<std::string, kMaxReplicas + 1> blob_prefixes_;  // by replica count
  rocksdb::DB* db_ = nullptr;
  bool owns_db_ = true;
  // CommitObject overlaps the record's sync with the data's (its own database, synced commits).
  bool overlap_commit_ = false;
  rocksdb::DB* intents_db_ = nullptr;
  std::atomic<bool> closed_{false};

  std::mutex version_mu_;
  uint64_t next_version_ = 0;   // GUARDED_BY(version_mu_)
  uint64_t version_limit_ = 0;  // GUARDED_BY(version_mu_): persisted block end

  // Commits take it shared; DeleteBucket takes it exclusively so that no object is committed
  // into a bucket being deleted.
  Mutex bucket_mu_;
  static constexpr size_t kKeyLocks = 256;
  std::mutex key_locks_[kKeyLocks];
  std::mutex upload_locks_[kKeyLocks];

  std::atomic<uint64_t> garbage_seq_{0};  // next garbage record's sequence
  std::mutex readers_mu_;
  std::multiset<uint64_t> readers_;  // GUARDED_BY(readers_mu_)
  std::multiset<uint64_t> pending_garbage_;  // GUARDED_BY(readers_mu_)
  // Every garbage record below this had been reclaimed at the last pass (those committed since
  // wake the reclaimer themselves). A reader that leaves wakes it only when the oldest reader's
  // sequence passes this mark, not at every read.
  uint64_t reclaimed_below_ = 0;  // GUARDED_BY(readers_mu_)

  std::mutex reclaim_mu_;
  std::condition_variable reclaim_cv_;
  bool reclaim_stop_ = false;  // GUARDED_BY(reclaim_mu_)
  bool reclaim_wanted_ = false;  // GUARDED_BY(reclaim_mu_)
  std::atomic<uint64_t> reclaimed_blobs_{0};
  std::thread reclaimer_;

  // The ETags of the objects being written are hashed together (common/md5.h).
  Md5Lanes md5_lanes_;
};

}  // namespace granary::meta
