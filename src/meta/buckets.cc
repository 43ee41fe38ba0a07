// Buckets: their records, and the replica count their blobs' names carry.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "common/names.h"
#include "meta/keys.h"
#include "meta/object_store.h"
#include "meta/rocks.h"
#include "proto/meta.pb.h"

namespace granary::meta {

Status ObjectStore::CheckBucket(std::string_view bucket) {
  return BucketReplicas(bucket).status();
}

Result<uint32_t> ObjectStore::BucketReplicas(std::string_view bucket) {
  ASSIGN_OR_RETURN(BucketInfo info, HeadBucket(bucket));
  if (info.replicas < 0 || static_cast<size_t>(info.replicas) >= blob_prefixes_.size()) {
    return Status::Corruption("bucket \"" + std::string(bucket) + "\" has " +
                              std::to_string(info.replicas) + " replicas");
  }
  return static_cast<uint32_t>(info.replicas);
}

std::string ObjectStore::BlobKeyOf(const proto::DataRun& run, uint64_t chunk) const {
  const uint32_t r = run.replicas() < blob_prefixes_.size() ? run.replicas() : 0;
  return BlobKey(blob_prefixes_[r], run.version(), static_cast<uint32_t>(chunk));
}

Status ObjectStore::CreateBucket(std::string_view bucket, const BucketOptions& options) {
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  RETURN_IF_ERROR(ValidateBucketReplicas(options.replicas));
  if (!options_.blob_prefix && options.replicas > 1) {
    return Status::InvalidArgument(
        "this server keeps one copy of every object: a bucket of " +
        std::to_string(options.replicas) + " replicas needs a cluster (granary node)");
  }
  MutexLock lock(&bucket_mu_);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), BucketKey(bucket), &value);
  if (s.ok()) {
    return Status::AlreadyExists("bucket \"" + std::string(bucket) + "\" already exists");
  }
  if (!s.IsNotFound()) return FromRocks(s, "reading bucket");
  proto::BucketRecord record;
  record.set_created_ns(NowNs());
  record.set_replicas(static_cast<uint32_t>(options.replicas));
  rocksdb::WriteBatch batch;
  batch.Put(BucketKey(bucket), record.SerializeAsString());
  return WriteSynced(&batch);
}

Status ObjectStore::CheckBucketEmpty(std::string_view bucket) {
  for (const std::string& prefix : {ObjectPrefix(bucket), UploadPrefix(bucket)}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(prefix);
    if (it->Valid() && it->key().starts_with(prefix)) {
      return Status(Code::kBucketNotEmpty,
                    "bucket \"" + std::string(bucket) + "\" is not empty: delete its objects" +
                        (prefix[0] == 'U' ? " and abort its multipart uploads" : "") + " first");
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning bucket"));
  }
  return Status::OK();
}

Status ObjectStore::DeleteBucket(std::string_view bucket) {
  RETURN_IF_ERROR(CheckBucket(bucket));
  MutexLock lock(&bucket_mu_);
  RETURN_IF_ERROR(CheckBucketEmpty(bucket));
  rocksdb::WriteBatch batch;
  batch.Delete(BucketKey(bucket));
  ASSIGN_OR_RETURN(std::vector<uint32_t> shards, Shards(bucket));
  for (uint32_t chain : shards) batch.Delete(ShardKey(bucket, chain));
  return WriteSynced(&batch);
}

Status ObjectStore::AdoptBucket(std::string_view bucket, const BucketInfo& info) {
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  RETURN_IF_ERROR(ValidateBucketReplicas(info.replicas));
  MutexLock lock(&bucket_mu_);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), BucketKey(bucket), &value);
  if (s.ok()) return Status::OK();
  if (!s.IsNotFound()) return FromRocks(s, "reading bucket");
  proto::BucketRecord record;
  record.set_created_ns(info.created_ns);
  record.set_replicas(static_cast<uint32_t>(info.replicas));
  record.set_shard(true);
  rocksdb::WriteBatch batch;
  batch.Put(BucketKey(bucket), record.SerializeAsString());
  return WriteSynced(&batch);
}

Result<BucketInfo> ObjectStore::AddShard(std::string_view bucket, uint32_t chain) {
  ReaderLock lock(&bucket_mu_);  // DeleteBucket removes the notes with the bucket
  ASSIGN_OR_RETURN(BucketInfo info, HeadBucket(bucket));
  const std::string key = ShardKey(bucket, chain);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
  if (s.ok()) return info;
  if (!s.IsNotFound()) return FromRocks(s, "reading a shard note");
  rocksdb::WriteBatch batch;
  batch.Put(key, "");
  RETURN_IF_ERROR(WriteSynced(&batch));
  return info;
}

Result<std::vector<uint32_t>> ObjectStore::Shards(std::string_view bucket) {
  std::vector<uint32_t> out;
  const std::string prefix = ShardPrefix(bucket);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() != prefix.size() + 4) return Status::Corruption("a shard note's key");
    out.push_back(GetBigEndian32(std::string_view(key.data() + prefix.size(), 4)));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing shards"));
  return out;
}

Result<BucketInfo> ObjectStore::HeadBucket(std::string_view bucket) {
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), BucketKey(bucket), &value);
  if (s.IsNotFound()) {
    return Status::NoSuchBucket("bucket \"" + std::string(bucket) + "\" does not exist");
  }
  RETURN_IF_ERROR(FromRocks(s, "reading bucket"));
  proto::BucketRecord record;
  if (!record.ParseFromString(value)) return Status::Corruption("bucket record does not parse");
  return BucketInfo{std::string(bucket), record.created_ns(), static_cast<int>(record.replicas())};
}

Result<std::vector<BucketInfo>> ObjectStore::ListBuckets() {
  std::vector<BucketInfo> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::string prefix(1, kBucketKind);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    proto::BucketRecord record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("bucket record does not parse");
    }
    if (record.shard()) continue;
    out.push_back({it->key().ToString().substr(1), record.created_ns(),
                   static_cast<int>(record.replicas())});
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing buckets"));
  return out;
}

}  // namespace granary::meta
