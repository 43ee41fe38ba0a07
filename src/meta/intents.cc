// ObjectStore: upload intents (what an upload may have written before it commits) and the
// recovery at open of what a crash left between a write's steps (docs/formats/meta.md "Writes").
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "common/logging.h"
#include "meta/keys.h"
#include "meta/object_store.h"
#include "meta/records.h"
#include "meta/rocks.h"

namespace granary::meta {

void ObjectStore::AddIntent(rocksdb::WriteBatch* batch, const proto::DataRun& span,
                            const IntentTarget& target) {
  proto::IntentRecord intent;
  intent.set_version(span.version());
  intent.set_chunk_bytes(span.chunk_bytes());
  intent.set_max_chunks(ChunkCount(span));
  intent.set_replicas(span.replicas());
  intent.set_started_ns(NowNs());
  intent.set_bucket(std::string(target.bucket));
  intent.set_key(std::string(target.key));
  intent.set_upload_id(std::string(target.upload_id));
  intent.set_part(target.part);
  batch->Put(IntentKey(span.version()), intent.SerializeAsString());
}

Status ObjectStore::WriteIntent(const proto::DataRun& span, const IntentTarget& target) {
  rocksdb::WriteBatch batch;
  AddIntent(&batch, span, target);
  // Not synced: a kill -9 keeps it (RocksDB has written it to its log file before Write returns).
  // See docs/formats/meta.md for what a power loss can leave behind.
  return FromRocks(intents_db_->Write(rocksdb::WriteOptions(), &batch), "recording an upload");
}

void ObjectStore::ForgetIntents(std::span<const uint64_t> versions) {
  if (versions.empty()) return;
  rocksdb::WriteBatch batch;
  for (uint64_t v : versions) batch.Delete(IntentKey(v));
  // A failure leaves an intent of a committed upload, which recovery recognises and drops.
  rocksdb::Status s = intents_db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) GLOG_WARN("forgetting upload intents: {}", s.ToString());
}

Result<bool> ObjectStore::IntentCommitted(const proto::IntentRecord& intent) {
  auto refers = [&](const proto::DataRun& run) { return run.version() == intent.version(); };
  if (!intent.upload_id().empty()) {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), PartKey(intent.upload_id(), intent.part()),
                                 &value);
    if (s.ok()) {
      proto::PartRecord part;
      if (part.ParseFromString(value) && refers(part.run())) return true;
    } else if (!s.IsNotFound()) {
      return FromRocks(s, "reading part");
    }
  }
  // An object's own upload, or a part whose upload was completed into the object.
  ASSIGN_OR_RETURN(std::optional<proto::ObjectRecord> record,
                   GetRecord(intent.bucket(), intent.key()));
  if (!record) return false;
  for (const proto::DataRun& run : record->runs()) {
    if (refers(run)) return true;
  }
  return false;
}

void ObjectStore::AbandonIntent(const proto::DataRun& span) {
  GarbageScope garbage_scope(this);
  rocksdb::WriteBatch batch;
  AddGarbage(&batch, std::span<const proto::DataRun>(&span, 1));
  Status st = FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "abandoning an upload");
  const uint64_t version = span.version();
  if (!st.ok()) {
    GLOG_WARN("abandoned upload {} not reclaimed until restart: {}", version, st.ToString());
    return;
  }
  ForgetIntents(std::span<const uint64_t>(&version, 1));
}

Status ObjectStore::RecoverIntents() {
  GarbageScope garbage_scope(this);
  rocksdb::WriteBatch batch;
  std::vector<uint64_t> done;
  std::unique_ptr<rocksdb::Iterator> it(intents_db_->NewIterator(rocksdb::ReadOptions()));
  uint64_t cut = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    proto::IntentRecord intent;
    if (!intent.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("an upload intent record does not parse");
    }
    done.push_back(intent.version());
    ASSIGN_OR_RETURN(bool committed, IntentCommitted(intent));
    if (committed) continue;
    proto::DataRun run;
    run.set_version(intent.version());
    run.set_chunk_bytes(intent.chunk_bytes());
    run.set_size(intent.chunk_bytes() * intent.max_chunks());
    run.set_replicas(intent.replicas());
    AddGarbage(&batch, std::span<const proto::DataRun>(&run, 1));
    ++cut;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning upload intents"));
  it.reset();
  if (cut > 0) {
    GLOG_INFO("{} uploads were interrupted before they committed: their data is reclaimed", cut);
    RETURN_IF_ERROR(WriteSynced(&batch));
  }
  ForgetIntents(done);
  return Status::OK();
}

// In version order, each applied on its own, so that one applied earlier is the current record a
// later one of the same key replaces (a key has at most one unless commits failed oddly).
Status ObjectStore::RecoverPendingCommits() {
  GarbageScope garbage_scope(this);
  uint64_t applied = 0, dropped = 0;
  const std::string first(1, kPendingCommitKind);
  const std::string end = PrefixSuccessor(first);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(first); it->Valid() && it->key().compare(end) < 0; it->Next()) {
    proto::PendingCommit pending;
    if (!pending.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("a pending commit record does not parse");
    }
    const proto::ObjectRecord& record = pending.record();
    ASSIGN_OR_RETURN(std::optional<proto::ObjectRecord> current,
                     GetRecord(pending.bucket(), pending.key()));
    bool complete = CheckBucket(pending.bucket()).ok() &&
                    (!current || current->version() < record.version());
    for (const proto::DataRun& run : record.runs()) {
      for (uint64_t i = 0; complete && i < ChunkCount(run); ++i) {
        complete = options_.blobs->Exists(BlobKeyOf(run, i));
      }
    }
    rocksdb::WriteBatch batch;
    batch.Delete(it->key());
    if (complete) {
      batch.Put(ObjectKey(pending.bucket(), pending.key()), record.SerializeAsString());
      if (current && current->runs_size() > 0) AddGarbage(&batch, RunsOf(*current));
      ++applied;
    } else {
      ++dropped;  // its blobs, if any, are its intent's garbage (RecoverIntents)
    }
    RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "recovering a commit"));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning pending commits"));
  it.reset();
  if (applied + dropped == 0) return Status::OK();
  GLOG_INFO("{} puts whose data was durable were committed, {} whose data was not were dropped",
            applied, dropped);
  return FromRocks(db_->SyncWAL(), "syncing recovered commits");
}

}  // namespace granary::meta
