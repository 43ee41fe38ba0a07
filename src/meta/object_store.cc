// ObjectStore: opening, buckets, commits, versions, garbage and the reclaimer (intents and
// recovery: intents.cc).
#include "meta/object_store.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include "common/hash.h"
#include "common/logging.h"
#include "common/names.h"
#include "meta/keys.h"
#include "meta/records.h"
#include "meta/rocks.h"

namespace granary::meta {
namespace {

// Versions are reserved in blocks, persisted once per block, so that a version is never reused
// across restarts while costing one synced write per million versions.
constexpr uint64_t kVersionBlock = 1 << 20;

}  // namespace

ObjectStore::ObjectStore(ObjectStoreOptions options)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : SystemClock::Default()) {
  if (options_.blob_prefix) {
    for (uint32_t r = 0; r < blob_prefixes_.size(); ++r) blob_prefixes_[r] = options_.blob_prefix(r);
  }
}

ObjectStore::~ObjectStore() { Close().IgnoreError(); }

Result<std::unique_ptr<ObjectStore>> ObjectStore::Open(ObjectStoreOptions options) {
  if (!options.blobs) return Status::InvalidArgument("ObjectStore needs a BlobStore");
  if (options.chunk_bytes < 64 * 1024 || options.chunk_bytes > (1ull << 30)) {
    return Status::InvalidArgument("chunk size must be between 64 KiB and 1 GiB");
  }
  if (options.inline_max_bytes > 64 * 1024) {
    return Status::InvalidArgument("inline objects are limited to 64 KiB");
  }
  std::unique_ptr<ObjectStore> store(new ObjectStore(std::move(options)));
  RETURN_IF_ERROR(store->Init());
  return store;
}

rocksdb::Options NamespaceDbOptions(uint64_t block_cache_bytes) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.max_background_jobs = 2;
  opts.bytes_per_sync = 1 << 20;
  // Commits are small synced writes: reusing log files keeps fdatasync from also journaling a
  // growing file's size, and pipelining lets one group's log write overlap the next one's.
  opts.recycle_log_file_num = 4;
  opts.enable_pipelined_write = true;
  opts.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return opts;
}

Status ObjectStore::Init() {
  const rocksdb::Options opts = NamespaceDbOptions(options_.block_cache_bytes);
  rocksdb::Status s;
  if (options_.db != nullptr) {
    db_ = options_.db;
    owns_db_ = false;
  } else {
    s = rocksdb::DB::Open(opts, options_.dir, &db_);
  }
  if (!s.ok()) {
    return FromRocks(s, "opening the namespace in " + options_.dir +
                            " (is another server using this data directory?)");
  }
  rocksdb::Options intent_opts;
  intent_opts.create_if_missing = true;
  intent_opts.max_background_jobs = 1;
  intent_opts.recycle_log_file_num = 4;
  s = rocksdb::DB::Open(intent_opts, options_.dir + "/intents", &intents_db_);
  if (!s.ok()) return FromRocks(s, "opening the upload intents in " + options_.dir + "/intents");
  // Versions: start after the last reserved block.
  std::string value;
  s = db_->Get(rocksdb::ReadOptions(), std::string(kVersionKey), &value);
  if (s.ok() && value.size() == 8) {
    next_version_ = version_limit_ = GetBigEndian64(value);
  } else if (s.IsNotFound()) {
    next_version_ = version_limit_ = 1;
  } else {
    return FromRocks(s, "reading the version counter");
  }
  // Garbage sequence: after the last garbage record.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(GarbageKey(UINT64_MAX));
  if (it->Valid() && it->key().size() == 9 && it->key()[0] == kGarbageKind) {
    garbage_seq_ = GetBigEndian64(std::string_view(it->key().data() + 1, 8)) + 1;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning garbage"));
  it.reset();
  overlap_commit_ = owns_db_ && options_.sync;
  RETURN_IF_ERROR(RecoverPendingCommits());
  RETURN_IF_ERROR(RecoverIntents());
  if (options_.background_reclaim) reclaimer_ = std::thread([this] { ReclaimLoop(); });
  {
    std::lock_guard<std::mutex> lock(reclaim_mu_);
    reclaim_wanted_ = true;
  }
  reclaim_cv_.notify_all();
  return Status::OK();
}

Status ObjectStore::Close() {
  if (closed_.exchange(true)) return Status::OK();
  {
    std::lock_guard<std::mutex> lock(reclaim_mu_);
    reclaim_stop_ = true;
  }
  reclaim_cv_.notify_all();
  if (reclaimer_.joinable()) reclaimer_.join();
  Status result;
  if (db_ != nullptr && !owns_db_) {
    db_ = nullptr;
  } else if (db_ != nullptr) {
    rocksdb::Status s = db_->SyncWAL();
    if (!s.ok()) result = FromRocks(s, "syncing the namespace log");
    s = db_->Close();
    if (!s.ok() && result.ok()) result = FromRocks(s, "closing the namespace");
    delete db_;
    db_ = nullptr;
  }
  if (intents_db_ != nullptr) {
    rocksdb::Status s = intents_db_->Close();
    if (!s.ok() && result.ok()) result = FromRocks(s, "closing the upload intents");
    delete intents_db_;
    intents_db_ = nullptr;
  }
  Status b = options_.close_blobs ? options_.blobs->Close() : Status::OK();
  return result.ok() ? b : result;
}

uint64_t ObjectStore::NowNs() const { return clock_->WallMicros() * 1000; }

Result<uint64_t> ObjectStore::NextVersion() {
  std::lock_guard<std::mutex> lock(version_mu_);
  if (next_version_ == version_limit_) {
    std::string value;
    PutBigEndian64(&value, version_limit_ + kVersionBlock);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    RETURN_IF_ERROR(FromRocks(db_->Put(wo, std::string(kVersionKey), value), "reserving versions"));
    version_limit_ += kVersionBlock;
  }
  return next_version_++;
}

std::mutex& ObjectStore::KeyLock(std::string_view bucket, std::string_view key) {
  KeyHash h = HashKey(ObjectKey(bucket, key));
  return key_locks_[h.lo % kKeyLocks];
}

std::mutex& ObjectStore::UploadLock(std::string_view upload_id) {
  return upload_locks_[HashKey(upload_id).lo % kKeyLocks];
}

Status ObjectStore::WriteSynced(rocksdb::WriteBatch* batch) {
  if (closed_) return Status::Unavailable("the object store is closed");
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  return FromRocks(db_->Write(wo, batch), "committing to the namespace");
}

// Records and commits --------------------------------------------------------------------------

Result<std::optional<proto::ObjectRecord>> ObjectStore::GetRecord(std::string_view bucket,
                                                                  std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ObjectKey(bucket, key), &value);
  if (s.IsNotFound()) return std::optional<proto::ObjectRecord>();
  RETURN_IF_ERROR(FromRocks(s, "reading object record"));
  proto::ObjectRecord record;
  if (!record.ParseFromString(value)) {
    return Status::Corruption("the record of object \"" + std::string(key) + "\" does not parse");
  }
  return std::optional<proto::ObjectRecord>(std::move(record));
}

Result<ObjectInfo> ObjectStore::CommitObject(std::string_view bucket, std::string_view key,
                                             proto::ObjectRecord record,
                                             const Conditions& conditions,
                                             std::span<const uint64_t> intent_versions,
                                             rocksdb::WriteBatch* extra,
                                             const std::function<Status()>& await_data) {
  GarbageScope garbage_scope(this);
  ReaderLock bucket_lock(&bucket_mu_);
  RETURN_IF_ERROR(CheckBucket(bucket));
  std::lock_guard<std::mutex> key_lock(KeyLock(bucket, key));
  ASSIGN_OR_RETURN(std::optional<proto::ObjectRecord> old, GetRecord(bucket, key));
  if (!conditions.empty()) {
    std::optional<ObjectInfo> current;
    if (old) current = InfoOf(bucket, key, *old);
    RETURN_IF_ERROR(CheckWriteConditions(current ? &*current : nullptr, conditions));
  }
  rocksdb::WriteBatch local;
  rocksdb::WriteBatch* batch = extra ? extra : &local;
  bool synced = true;
  if (await_data && overlap_commit_) {
    // The record is durable as a PendingCommit while the data's last blobs are synced; once they
    // are, the write below makes it the object and needs no sync: if it is lost, recovery applies
    // the PendingCommit again. Readers see the object only once its data is durable.
    proto::PendingCommit pending;
    pending.set_bucket(std::string(bucket));
    pending.set_key(std::string(key));
    *pending.mutable_record() = record;
    const std::string pending_key = PendingCommitKey(record.version());
    rocksdb::WriteBatch pending_batch;
    pending_batch.Put(pending_key, pending.SerializeAsString());
    RETURN_IF_ERROR(WriteSynced(&pending_batch));
    Status data = await_data();
    if (!data.ok()) {
      // Synced, so that recovery does not apply a put that was answered with an error.
      pending_batch.Clear();
      pending_batch.Delete(pending_key);
      Status dropped = WriteSynced(&pending_batch);
      if (!dropped.ok()) GLOG_WARN("dropping a pending commit: {}", dropped.ToString());
      return data;
    }
    batch->Delete(pending_key);
    synced = false;
  } else if (await_data) {
    RETURN_IF_ERROR(await_data());
  }
  batch->Put(ObjectKey(bucket, key), record.SerializeAsString());
  if (old && old->runs_size() > 0) {
    AddGarbage(batch, RunsOf(*old));
  }
  if (synced) {
    RETURN_IF_ERROR(WriteSynced(batch));
  } else {
    RETURN_IF_ERROR(
        FromRocks(db_->Write(rocksdb::WriteOptions(), batch), "committing to the namespace"));
  }
  ForgetIntents(intent_versions);
  return InfoOf(bucket, key, record);
}

Status ObjectStore::Delete(std::string_view bucket, std::string_view key) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  GarbageScope garbage_scope(this);
  ReaderLock bucket_lock(&bucket_mu_);
  RETURN_IF_ERROR(CheckBucket(bucket));
  std::lock_guard<std::mutex> key_lock(KeyLock(bucket, key));
  ASSIGN_OR_RETURN(std::optional<proto::ObjectRecord> old, GetRecord(bucket, key));
  if (!old) return Status::NotFound("object \"" + std::string(key) + "\" does not exist");
  rocksdb::WriteBatch batch;
  batch.Delete(ObjectKey(bucket, key));
  if (old->runs_size() > 0) {
    AddGarbage(&batch, RunsOf(*old));
  }
  return WriteSynced(&batch);
}

// One synced commit for the whole batch, under the locks of all its keys (taken in order).
std::vector<Status> ObjectStore::DeleteMany(std::string_view bucket,
                                            std::span<const std::string> keys) {
  std::vector<Status> out(keys.size());
  std::vector<size_t> stripes;
  for (size_t i = 0; i < keys.size(); ++i) {
    out[i] = ValidateObjectKey(keys[i]);
    if (out[i].ok()) stripes.push_back(static_cast<size_t>(&KeyLock(bucket, keys[i]) - key_locks_));
  }
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  GarbageScope garbage_scope(this);
  ReaderLock bucket_lock(&bucket_mu_);
  Status st = CheckBucket(bucket);
  if (!st.ok()) {
    for (Status& s : out) {
      if (s.ok()) s = st;
    }
    return out;
  }
  for (size_t s : stripes) key_locks_[s].lock();
  rocksdb::WriteBatch batch;
  std::map<std::string_view, size_t> seen;  // a key named twice: the first answer stands
  for (size_t i = 0; i < keys.size() && st.ok(); ++i) {
    if (!out[i].ok()) continue;
    if (auto it = seen.find(keys[i]); it != seen.end()) {
      out[i] = out[it->second];
      continue;
    }
    seen[keys[i]] = i;
    auto old = GetRecord(bucket, keys[i]);
    if (!old.ok()) {
      st = old.status();
      break;
    }
    if (!*old) {
      out[i] = Status::NotFound("object \"" + keys[i] + "\" does not exist");
      continue;
    }
    batch.Delete(ObjectKey(bucket, keys[i]));
    if ((*old)->runs_size() > 0) AddGarbage(&batch, RunsOf(**old));
  }
  if (st.ok() && batch.Count() > 0) st = WriteSynced(&batch);
  for (size_t s : stripes) key_locks_[s].unlock();
  if (!st.ok()) {
    for (Status& s : out) {
      if (s.ok()) s = st;  // deleted in the batch that failed, or not reached
    }
  }
  return out;
}

// Garbage ------------------------------------------------------------------------------------

// Sequences of the garbage records this thread added in its open GarbageScopes.
thread_local std::vector<uint64_t> t_pending_garbage;

ObjectStore::GarbageScope::GarbageScope(ObjectStore* store)
    : store_(store), mark_(t_pending_garbage.size()) {}

ObjectStore::GarbageScope::~GarbageScope() {
  if (t_pending_garbage.size() == mark_) return;
  {
    std::lock_guard<std::mutex> lock(store_->readers_mu_);
    for (size_t i = mark_; i < t_pending_garbage.size(); ++i) {
      auto it = store_->pending_garbage_.find(t_pending_garbage[i]);
      if (it != store_->pending_garbage_.end()) store_->pending_garbage_.erase(it);
    }
  }
  t_pending_garbage.resize(mark_);
  std::lock_guard<std::mutex> lock(store_->reclaim_mu_);
  store_->reclaim_wanted_ = true;
  store_->reclaim_cv_.notify_all();
}

void ObjectStore::AddGarbage(rocksdb::WriteBatch* batch, std::span<const proto::DataRun> runs) {
  proto::GarbageRecord garbage;
  for (const proto::DataRun& run : runs) *garbage.add_runs() = run;
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    seq = garbage_seq_.fetch_add(1);
    pending_garbage_.insert(seq);
  }
  t_pending_garbage.push_back(seq);
  batch->Put(GarbageKey(seq), garbage.SerializeAsString());
  {
    std::lock_guard<std::mutex> lock(reclaim_mu_);
    reclaim_wanted_ = true;
  }
  reclaim_cv_.notify_all();
}

uint64_t ObjectStore::RegisterReader() {
  std::lock_guard<std::mutex> lock(readers_mu_);
  uint64_t seq = garbage_seq_.load();
  if (!pending_garbage_.empty()) seq = std::min(seq, *pending_garbage_.begin());
  readers_.insert(seq);
  return seq;
}

void ObjectStore::UnregisterReader(uint64_t seq) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    auto it = readers_.find(seq);
    if (it != readers_.end()) readers_.erase(it);
    const uint64_t limit = ReclaimLimit();
    wake = limit > seq && limit > reclaimed_below_;
  }
  if (wake) {
    std::lock_guard<std::mutex> lock(reclaim_mu_);
    reclaim_wanted_ = true;
    reclaim_cv_.notify_all();
  }
}

uint64_t ObjectStore::ReclaimLimit() const {
  // Garbage at or after the oldest reader's sequence may hold data that reader still reads;
  // garbage not yet committed is not in the namespace for a pass to find.
  uint64_t limit = readers_.empty() ? garbage_seq_.load() : *readers_.begin();
  if (!pending_garbage_.empty()) limit = std::min(limit, *pending_garbage_.begin());
  return limit;
}

Result<uint64_t> ObjectStore::ReclaimGarbage() {
  if (closed_) return Status::Unavailable("the object store is closed");
  uint64_t limit;
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    limit = ReclaimLimit();
  }
  uint64_t blobs = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::string prefix(1, kGarbageKind);
  std::string end = GarbageKey(limit);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && it->key().compare(end) < 0;
       it->Next()) {
    proto::GarbageRecord garbage;
    if (!garbage.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      GLOG_ERROR("garbage record does not parse; dropping it");
    }
    std::vector<std::string> keys;
    for (const proto::DataRun& run : garbage.runs()) {
      uint64_t chunks = ChunkCount(run);
      for (uint64_t c = 0; c < chunks; ++c) keys.push_back(BlobKeyOf(run, c));
    }
    RETURN_IF_ERROR(options_.blobs->DeleteMany(keys));
    // The blobs are gone (durably); forgetting the record need not be synced: doing it twice
    // after a crash is harmless.
    RETURN_IF_ERROR(FromRocks(db_->Delete(rocksdb::WriteOptions(), it->key()), "reclaiming"));
    blobs += keys.size();
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning garbage"));
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    reclaimed_below_ = std::max(reclaimed_below_, limit);
  }
  reclaimed_blobs_ += blobs;
  return blobs;
}

void ObjectStore::ReclaimLoop() {
  // A pass that failed (a disk or replica unavailable) is tried again after this long, whether
  // or not anything wakes the reclaimer meanwhile.
  constexpr auto kRetry = std::chrono::seconds(1);
  std::unique_lock<std::mutex> lock(reclaim_mu_);
  bool retry = false;
  while (!reclaim_stop_) {
    auto wanted = [&] { return reclaim_stop_ || reclaim_wanted_; };
    if (retry) {
      reclaim_cv_.wait_for(lock, kRetry, wanted);
    } else {
      reclaim_cv_.wait(lock, wanted);
    }
    if (reclaim_stop_) break;
    reclaim_wanted_ = false;
    lock.unlock();
    auto result = ReclaimGarbage();
    retry = !result.ok();
    if (retry) GLOG_WARN("reclaiming garbage: {}", result.status().ToString());
    lock.lock();
  }
}

Status ObjectStore::CompactNamespace() {
  if (closed_) return Status::Unavailable("the object store is closed");
  RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "flushing the namespace"));
  return FromRocks(db_->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr),
                   "compacting the namespace");
}

ObjectStoreStats ObjectStore::Stats() {
  ObjectStoreStats s;
  if (closed_) return s;
  uint64_t v = 0;
  if (db_->GetIntProperty("rocksdb.estimate-num-keys", &v)) s.objects = v;
  if (db_->GetIntProperty("rocksdb.total-sst-files-size", &v)) s.meta_disk_bytes = v;
  uint64_t mem = 0;
  if (db_->GetIntProperty("rocksdb.cur-size-all-mem-tables", &v)) mem += v;
  if (db_->GetIntProperty("rocksdb.estimate-table-readers-mem", &v)) mem += v;
  if (db_->GetIntProperty("rocksdb.block-cache-usage", &v)) mem += v;
  s.meta_memory_bytes = mem;
  std::map<std::string, std::string> props;
  if (db_->GetMapProperty("rocksdb.aggregated-table-properties", &props)) {
    auto get = [&](const char* name) -> uint64_t {
      auto it = props.find(name);
      return it == props.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
    };
    s.meta_index_bytes = get("index_size");
    s.meta_filter_bytes = get("filter_size");
    s.meta_raw_key_bytes = get("raw_key_size");
    s.meta_raw_value_bytes = get("raw_value_size");
  }
  auto buckets = ListBuckets();
  if (buckets.ok()) s.buckets = buckets->size();
  s.reclaimed_blobs = reclaimed_blobs_;
  s.blobs = options_.blobs->Stats();
  return s;
}

}  // namespace granary::meta
