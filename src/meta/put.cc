// Writes: the streaming writer of objects and parts, and batches of small objects.
//
// A writer keeps the first inline_max_bytes in memory; an object that stays that small is stored
// inline in its record. Past that, it takes a version, records an intent, and stores the data in
// chunks of chunk_bytes, several in flight at once (on different disks where there are several),
// then commits the record once every chunk is durable.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>

#include "common/logging.h"
#include "common/md5.h"
#include "common/names.h"
#include "meta/keys.h"
#include "meta/object_store.h"
#include "meta/records.h"
#include "meta/rocks.h"

namespace granary::meta {

class ObjectStore::Writer final : public ObjectWriter {
 public:
  static constexpr size_t kHashPiece = 256 << 10;

  struct Part {
    std::string upload_id;
    int number = 0;
  };

  Writer(ObjectStore* store, std::string bucket, std::string key, uint32_t replicas,
         PutOptions options, std::optional<Part> part)
      : store_(store),
        bucket_(std::move(bucket)),
        key_(std::move(key)),
        replicas_(replicas),
        options_(std::move(options)),
        part_(std::move(part)),
        chunk_bytes_(store->options_.chunk_bytes),
        inline_max_(part_ ? 0 : store->options_.inline_max_bytes),
        md5_(&store->md5_lanes_) {}

  ~Writer() override {
    md5_.Sync();  // before the bytes it reads go
    if (committed_ || version_ == 0) return;
    WaitForChunks();
    store_->AbandonIntent(Span(intent_chunks_));
  }

  Status Append(std::string_view data) override {
    if (committed_) return Status::InvalidArgument("the upload was already committed");
    RETURN_IF_ERROR(failed_);
    size_ += data.size();
    if (size_ > kMaxSinglePutBytes) {
      failed_ = Status::InvalidArgument("EntityTooLarge: a single upload is limited to 5 GiB; use "
                                        "a multipart upload for larger objects");
      return failed_;
    }
    if (version_ == 0) {
      if (buffer_.size() + data.size() <= inline_max_) {
        buffer_.append(data);
        return Status::OK();
      }
      RETURN_IF_ERROR(Start());
    }
    while (!data.empty()) {
      size_t take = std::min<size_t>(data.size(), chunk_bytes_ - buffer_.size());
      buffer_.append(data.data(), take);
      data.remove_prefix(take);
      if (buffer_.size() == chunk_bytes_) RETURN_IF_ERROR(SubmitChunk());
    }
    if (buffer_.size() - hashed_ >= kHashPiece) HashBuffer(false);
    return Status::OK();
  }

  Result<ObjectInfo> Commit() override {
    if (committed_) return Status::InvalidArgument("the upload was already committed");
    RETURN_IF_ERROR(failed_);
    HashBuffer(true);
    std::string md5 = md5_.Finish();
    if (!options_.content_md5.empty()) {
      Status st = CheckContentMd5(options_.content_md5, md5);
      if (!st.ok()) {
        failed_ = st;
        return st;
      }
    }
    if (options_.expected_size != UINT64_MAX && options_.expected_size != size_) {
      failed_ = Status::InvalidArgument("IncompleteBody: received " + std::to_string(size_) +
                                        " bytes of the " + std::to_string(options_.expected_size) +
                                        " announced");
      return failed_;
    }
    if (version_ == 0 && size_ > inline_max_) RETURN_IF_ERROR(Start());
    if (version_ != 0 && (!buffer_.empty() || chunks_ == 0)) RETURN_IF_ERROR(SubmitChunk());
    if (part_) {
      WaitForChunks();
      RETURN_IF_ERROR(failed_);
    }
    // An object's commit waits for its last chunks itself, overlapping their sync with its own.
    Result<ObjectInfo> info = part_ ? CommitPart(md5) : CommitObject(md5);
    if (info.ok()) committed_ = true;
    return info;
  }

 private:
  // The object outgrew the inline limit: take a version and announce the upload.
  Status Start() {
    ASSIGN_OR_RETURN(version_, store_->NextVersion());
    uint64_t expected_chunks =
        options_.expected_size == UINT64_MAX
            ? 64
            : std::max<uint64_t>(1, (options_.expected_size + chunk_bytes_ - 1) / chunk_bytes_);
    intent_chunks_ = expected_chunks;
    Status st = store_->WriteIntent(Span(intent_chunks_), Target());
    if (!st.ok()) {
      version_ = 0;
      failed_ = st;
      return st;
    }
    buffer_.reserve(chunk_bytes_);
    return Status::OK();
  }

  IntentTarget Target() const {
    if (part_) return {bucket_, key_, part_->upload_id, static_cast<uint32_t>(part_->number)};
    return {bucket_, key_, {}, 0};
  }

  Status SubmitChunk() {
    if (chunks_ >= intent_chunks_) {
      // The upload is longer than announced: extend its intent before writing past it.
      intent_chunks_ = std::max(intent_chunks_ * 2, chunks_ + 1);
      RETURN_IF_ERROR(store_->WriteIntent(Span(intent_chunks_), Target()));
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return in_flight_ < store_->options_.chunks_in_flight; });
      ++in_flight_;
    }
    HashBuffer(true);
    md5_.Sync();
    hashed_ = 0;
    std::string chunk = std::move(buffer_);
    buffer_ = std::string();
    buffer_.reserve(chunk_bytes_);
    store_->options_.blobs->PutAsync(
        store_->BlobKeyOf(Run(), chunks_), std::move(chunk), [this](Status st) {
          std::lock_guard<std::mutex> lock(mu_);
          if (!st.ok() && chunk_error_.ok()) chunk_error_ = st;
          --in_flight_;
          cv_.notify_all();
        });
    ++chunks_;
    return Status::OK();
  }

  // Queues the buffered bytes not hashed yet for the MD5 lanes: whole blocks only, unless `all`.
  // Bytes are queued in large pieces and hashed later, so that the uploads being written at once
  // meet in the lanes (common/md5.h); buffer_ does not move meanwhile (it is reserved whole).
  void HashBuffer(bool all) {
    size_t n = buffer_.size() - hashed_;
    if (!all) n &= ~size_t{63};
    md5_.UpdateLater(std::string_view(buffer_).substr(hashed_, n));
    hashed_ += n;
  }

  void WaitForChunks() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
    if (!chunk_error_.ok() && failed_.ok()) failed_ = chunk_error_;
  }

  proto::DataRun Run() const {
    proto::DataRun run;
    run.set_version(version_);
    run.set_size(size_);
    run.set_chunk_bytes(chunk_bytes_);
    run.set_replicas(replicas_);
    return run;
  }

  // The run as far as `chunks` whole chunks: what an intent covers.
  proto::DataRun Span(uint64_t chunks) const {
    proto::DataRun run = Run();
    run.set_size(chunk_bytes_ * chunks);
    return run;
  }

  Result<ObjectInfo> CommitObject(const std::string& md5) {
    proto::ObjectRecord record;
    record.set_size(size_);
    record.set_md5(md5);
    record.set_content_type(options_.content_type);
    record.set_mtime_ns(store_->NowNs());
    record.mutable_user_metadata()->insert(options_.user_metadata.begin(),
                                           options_.user_metadata.end());
    record.mutable_headers()->insert(options_.headers.begin(), options_.headers.end());
    std::vector<uint64_t> intents;
    if (version_ == 0) {
      ASSIGN_OR_RETURN(uint64_t version, store_->NextVersion());
      record.set_version(version);
      record.set_inline_data(std::move(buffer_));
    } else {
      record.set_version(version_);
      *record.add_runs() = Run();
      intents.push_back(version_);
    }
    std::function<Status()> await_data;
    if (version_ != 0) {
      await_data = [this] {
        WaitForChunks();
        return failed_;
      };
    }
    return store_->CommitObject(bucket_, key_, std::move(record), options_.conditions, intents,
                                nullptr, await_data);
  }

  Result<ObjectInfo> CommitPart(const std::string& md5);

  ObjectStore* const store_;
  const std::string bucket_;
  const std::string key_;
  const uint32_t replicas_;  // the bucket's
  const PutOptions options_;
  const std::optional<Part> part_;
  const uint64_t chunk_bytes_;
  const uint64_t inline_max_;

  Md5Stream md5_;
  uint64_t size_ = 0;
  std::string buffer_;
  size_t hashed_ = 0;  // bytes of buffer_ already in md5_
  uint64_t version_ = 0;        // 0 until the data outgrows the inline limit
  uint64_t chunks_ = 0;         // chunks submitted
  uint64_t intent_chunks_ = 0;  // chunks the intent covers
  bool committed_ = false;
  Status failed_;

  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;   // GUARDED_BY(mu_)
  Status chunk_error_;  // GUARDED_BY(mu_)
};

// A part's record: stored under the upload, replacing an earlier upload of the same number.
Result<ObjectInfo> ObjectStore::Writer::CommitPart(const std::string& md5) {
  proto::PartRecord record;
  record.set_size(size_);
  record.set_md5(md5);
  record.set_mtime_ns(store_->NowNs());
  *record.mutable_run() = Run();
  GarbageScope garbage_scope(store_);
  std::lock_guard<std::mutex> lock(store_->UploadLock(part_->upload_id));
  RETURN_IF_ERROR(store_->GetUpload(bucket_, key_, part_->upload_id).status());
  std::string value;
  rocksdb::WriteBatch batch;
  std::string part_key = PartKey(part_->upload_id, static_cast<uint32_t>(part_->number));
  rocksdb::Status s = store_->db_->Get(rocksdb::ReadOptions(), part_key, &value);
  if (s.ok()) {
    proto::PartRecord old;
    if (old.ParseFromString(value)) store_->AddGarbage(&batch, {&old.run(), 1});
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading part");
  }
  batch.Put(part_key, record.SerializeAsString());
  RETURN_IF_ERROR(store_->WriteSynced(&batch));
  store_->ForgetIntents(std::span<const uint64_t>(&version_, 1));
  ObjectInfo info;
  info.bucket = bucket_;
  info.key = key_;
  info.size = size_;
  info.etag = EtagOf(md5, 0);
  info.mtime_ns = record.mtime_ns();
  info.version = version_;
  info.parts = static_cast<uint32_t>(part_->number);
  return info;
}

Result<std::unique_ptr<ObjectWriter>> ObjectStore::BeginPut(std::string_view bucket,
                                                            std::string_view key,
                                                            PutOptions options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  ASSIGN_OR_RETURN(uint32_t replicas, BucketReplicas(bucket));
  if (options.expected_size != UINT64_MAX && options.expected_size > kMaxSinglePutBytes) {
    return Status::InvalidArgument("EntityTooLarge: a single upload is limited to 5 GiB; use a "
                                   "multipart upload for larger objects");
  }
  return std::unique_ptr<ObjectWriter>(new Writer(this, std::string(bucket), std::string(key),
                                                  replicas, std::move(options), std::nullopt));
}

Result<std::unique_ptr<ObjectWriter>> ObjectStore::UploadPart(
    std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
    std::string content_md5, uint64_t expected_size) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  ASSIGN_OR_RETURN(uint32_t replicas, BucketReplicas(bucket));
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return Status::InvalidArgument("part number " + std::to_string(part_number) +
                                   " is invalid: use 1 to 10000");
  }
  RETURN_IF_ERROR(GetUpload(bucket, key, upload_id).status());
  PutOptions options;
  options.content_md5 = std::move(content_md5);
  options.expected_size = expected_size;
  return std::unique_ptr<ObjectWriter>(
      new Writer(this, std::string(bucket), std::string(key), replicas, std::move(options),
                 Writer::Part{std::string(upload_id), part_number}));
}

// Small objects of a batch are committed together: inline ones in the same RocksDB write, others
// after one blob batch.
std::vector<Result<ObjectInfo>> ObjectStore::PutMany(std::string_view bucket,
                                                     std::span<const PutItem> items) {
  std::vector<Result<ObjectInfo>> out(items.size(), Status::Internal("not written"));
  Result<uint32_t> replicas = BucketReplicas(bucket);
  const Status bucket_status = replicas.status();
  // The items of the batch are separate streams: their MD5s are taken together on the lanes.
  std::vector<std::unique_ptr<Md5Stream>> md5(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const PutItem& item = items[i];
    if (!bucket_status.ok()) {
      out[i] = bucket_status;
      continue;
    }
    Status st = ValidateObjectKey(item.key);
    if (!st.ok()) {
      out[i] = st;
      continue;
    }
    if (item.data.size() > options_.chunk_bytes || !item.options.conditions.empty()) {
      out[i] = Put(bucket, item.key, item.data, item.options);
      continue;
    }
    md5[i] = std::make_unique<Md5Stream>(&md5_lanes_);
    md5[i]->UpdateLater(item.data);
  }
  std::vector<std::pair<std::string, std::string_view>> blobs;
  std::vector<proto::ObjectRecord> records(items.size());
  std::vector<bool> batched(items.size(), false);
  rocksdb::WriteBatch intent_batch;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!md5[i]) continue;
    const PutItem& item = items[i];
    std::string digest = md5[i]->Finish();
    if (!item.options.content_md5.empty()) {
      Status st = CheckContentMd5(item.options.content_md5, digest);
      if (!st.ok()) {
        out[i] = st;
        continue;
      }
    }
    auto version = NextVersion();
    if (!version.ok()) {
      out[i] = version.status();
      continue;
    }
    proto::ObjectRecord& r = records[i];
    r.set_size(item.data.size());
    r.set_md5(digest);
    r.set_content_type(item.options.content_type);
    r.set_mtime_ns(NowNs());
    r.set_version(*version);
    r.mutable_user_metadata()->insert(item.options.user_metadata.begin(),
                                      item.options.user_metadata.end());
    r.mutable_headers()->insert(item.options.headers.begin(), item.options.headers.end());
    if (item.data.size() <= options_.inline_max_bytes) {
      r.set_inline_data(std::string(item.data));
    } else {
      proto::DataRun* run = r.add_runs();
      run->set_version(*version);
      run->set_size(item.data.size());
      run->set_chunk_bytes(options_.chunk_bytes);
      run->set_replicas(*replicas);
      blobs.emplace_back(BlobKeyOf(*run, 0), item.data);
      AddIntent(&intent_batch, *run, {bucket, item.key, {}, 0});
    }
    batched[i] = true;
  }
  // The intents of every blob of the batch in one write, before any blob is.
  if (intent_batch.Count() > 0) {
    Status st = FromRocks(intents_db_->Write(rocksdb::WriteOptions(), &intent_batch),
                          "recording uploads");
    if (!st.ok()) {
      for (size_t i = 0; i < items.size(); ++i) {
        if (batched[i] && records[i].runs_size() > 0) {
          batched[i] = false;
          out[i] = st;
        }
      }
      blobs.clear();
    }
  }
  Status blob_status = options_.blobs->PutMany(blobs);
  std::vector<size_t> commit;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!batched[i]) continue;
    if (records[i].runs_size() > 0 && !blob_status.ok()) {
      AbandonIntent(records[i].runs(0));
      out[i] = blob_status;
      continue;
    }
    commit.push_back(i);
  }
  if (commit.empty()) return out;

  // One synced write commits the whole batch, under the locks of all its keys (taken in order).
  std::vector<size_t> stripes;
  for (size_t i : commit) {
    stripes.push_back(static_cast<size_t>(&KeyLock(bucket, items[i].key) - key_locks_));
  }
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  GarbageScope garbage_scope(this);
  ReaderLock bucket_lock(&bucket_mu_);
  for (size_t s : stripes) key_locks_[s].lock();
  rocksdb::WriteBatch batch;
  std::map<std::string_view, size_t> latest;  // key -> item whose record the batch keeps
  Status st = CheckBucket(bucket);
  for (size_t i : commit) {
    if (!st.ok()) break;
    const std::string& key = items[i].key;
    auto earlier = latest.find(key);
    if (earlier != latest.end()) {
      const proto::ObjectRecord& replaced = records[earlier->second];
      AddGarbage(&batch, RunsOf(replaced));
    } else {
      auto old = GetRecord(bucket, key);
      if (!old.ok()) {
        st = old.status();
        break;
      }
      if (*old && (*old)->runs_size() > 0) {
        AddGarbage(&batch, RunsOf(**old));
      }
    }
    latest[key] = i;
    batch.Put(ObjectKey(bucket, key), records[i].SerializeAsString());
  }
  if (st.ok()) st = WriteSynced(&batch);
  if (st.ok()) {
    std::vector<uint64_t> intents;
    for (size_t i : commit) {
      if (records[i].runs_size() > 0) intents.push_back(records[i].version());
    }
    ForgetIntents(intents);
  }
  for (size_t s : stripes) key_locks_[s].unlock();
  for (size_t i : commit) {
    if (st.ok()) {
      out[i] = InfoOf(bucket, items[i].key, records[i]);
    } else {
      if (records[i].runs_size() > 0) AbandonIntent(records[i].runs(0));
      out[i] = st;
    }
  }
  return out;
}

}  // namespace granary::meta
