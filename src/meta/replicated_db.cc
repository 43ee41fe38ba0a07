#include "meta/replicated_db.h"

#include <rocksdb/write_batch.h>

#include "meta/keys.h"
#include "meta/rocks.h"

namespace granary::meta {
namespace {

// The last entry applied: 8-byte number, 8-byte term (docs/formats/meta.md).
constexpr std::string_view kAppliedKey = "R";
constexpr char kLogKind = 'L';
// How many times this member has begun writing entries (8 bytes): part of its terms.
constexpr std::string_view kIncarnationKey = "RI";

std::string LogKey(uint64_t seq) {
  std::string key(1, kLogKind);
  PutBigEndian64(&key, seq);
  return key;
}

bool IsReplicationKey(const rocksdb::Slice& key) {
  return (key.size() == 9 && key[0] == kLogKind) || key == rocksdb::Slice(kAppliedKey.data(), 1) ||
         key == rocksdb::Slice(kIncarnationKey.data(), kIncarnationKey.size());
}

// Copies the operations of a batch into another (a group's entry).
class Copier final : public rocksdb::WriteBatch::Handler {
 public:
  explicit Copier(rocksdb::WriteBatch* to) : to_(to) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    if (cf != 0) return rocksdb::Status::NotSupported("column families are not replicated");
    return to_->Put(key, value);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    if (cf != 0) return rocksdb::Status::NotSupported("column families are not replicated");
    return to_->Delete(key);
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    return DeleteCF(cf, key);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    if (cf != 0) return rocksdb::Status::NotSupported("column families are not replicated");
    return to_->DeleteRange(begin, end);
  }
  rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
    return rocksdb::Status::NotSupported("merges are not replicated");
  }

 private:
  rocksdb::WriteBatch* to_;
};

}  // namespace

struct ReplicatedDb::Waiter {
  rocksdb::WriteBatch* batch;
  Status status;
  bool done = false;
};

ReplicatedDb::ReplicatedDb(rocksdb::DB* base, ReplicatedDbOptions options)
    : rocksdb::StackableDB(base), options_(std::move(options)) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), std::string(kAppliedKey), &value);
  if (s.ok() && value.size() == 16) {
    applied_ = GetBigEndian64(value);
    applied_term_ = GetBigEndian64(std::string_view(value).substr(8));
  }
  // The oldest entry still in the log (none: everything applied is trimmed).
  trimmed_below_ = applied_ + 1;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(LogKey(0));
  if (it->Valid() && it->key().size() == 9 && it->key()[0] == kLogKind) {
    trimmed_below_ = GetBigEndian64(std::string_view(it->key().data() + 1, 8));
  }
}

ReplicatedDb::~ReplicatedDb() {
  {
    std::lock_guard<std::mutex> lock(local_mu_);
    local_stop_ = true;
  }
  local_cv_.notify_all();
  if (local_thread_.joinable()) local_thread_.join();
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  acknowledged_.reset();  // before the base database goes
}

std::pair<uint64_t, uint64_t> ReplicatedDb::Applied() const {
  std::lock_guard<std::mutex> lock(apply_mu_);
  return {applied_, applied_term_};
}

rocksdb::Status ReplicatedDb::Write(const rocksdb::WriteOptions&, rocksdb::WriteBatch* batch) {
  Waiter me{batch, Status::OK(), false};
  std::unique_lock<std::mutex> lock(queue_mu_);
  queue_.push_back(&me);
  queue_cv_.wait(lock, [&] { return me.done || !leading_; });
  if (!me.done) {
    // Lead: commit every batch waiting now (this one among them) as one entry.
    leading_ = true;
    std::vector<Waiter*> group(queue_.begin(), queue_.end());
    queue_.clear();
    lock.unlock();
    std::vector<rocksdb::WriteBatch*> batches;
    batches.reserve(group.size());
    for (Waiter* w : group) batches.push_back(w->batch);
    const Status status = Commit(batches);
    lock.lock();
    for (Waiter* w : group) {
      w->status = status;
      w->done = true;
    }
    leading_ = false;
    queue_cv_.notify_all();
  }
  if (me.status.ok()) return rocksdb::Status::OK();
  // The caller turns this back into a Status (FromRocks): keep the reason readable.
  if (me.status.code() == Code::kStaleMap || me.status.code() == Code::kUnavailable) {
    return rocksdb::Status::Busy(me.status.ToString());
  }
  return rocksdb::Status::IOError(me.status.ToString());
}

rocksdb::Status ReplicatedDb::Put(const rocksdb::WriteOptions& options,
                                  rocksdb::ColumnFamilyHandle* cf, const rocksdb::Slice& key,
                                  const rocksdb::Slice& value) {
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Put(cf, key, value);
  return s.ok() ? Write(options, &batch) : s;
}

rocksdb::Status ReplicatedDb::Delete(const rocksdb::WriteOptions& options,
                                     rocksdb::ColumnFamilyHandle* cf, const rocksdb::Slice& key) {
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Delete(cf, key);
  return s.ok() ? Write(options, &batch) : s;
}

rocksdb::Status ReplicatedDb::SingleDelete(const rocksdb::WriteOptions& options,
                                           rocksdb::ColumnFamilyHandle* cf,
                                           const rocksdb::Slice& key) {
  return Delete(options, cf, key);
}

rocksdb::Status ReplicatedDb::DeleteRange(const rocksdb::WriteOptions& options,
                                          rocksdb::ColumnFamilyHandle* cf,
                                          const rocksdb::Slice& begin, const rocksdb::Slice& end) {
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.DeleteRange(cf, begin, end);
  return s.ok() ? Write(options, &batch) : s;
}

rocksdb::Status ReplicatedDb::Merge(const rocksdb::WriteOptions&, rocksdb::ColumnFamilyHandle*,
                                    const rocksdb::Slice&, const rocksdb::Slice&) {
  return rocksdb::Status::NotSupported("merges are not replicated");
}

bool ReplicatedDb::poisoned() const {
  std::lock_guard<std::mutex> lock(apply_mu_);
  return poisoned_;
}

void ReplicatedDb::ForgetAcknowledged() {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  acknowledged_.reset();
}

Status ReplicatedDb::Commit(const std::vector<rocksdb::WriteBatch*>& batches, bool barrier) {
  LogEntry entry;
  if (batches.size() == 1) {
    entry.data = batches.front()->Data();
  } else {
    rocksdb::WriteBatch group;
    Copier copier(&group);
    for (rocksdb::WriteBatch* b : batches) {
      RETURN_IF_ERROR(FromRocks(b->Iterate(&copier), "grouping namespace writes"));
    }
    entry.data = group.Data();
  }
  std::lock_guard<std::mutex> lock(apply_mu_);
  RETURN_IF_ERROR(broken_);
  if (poisoned_ && !barrier) {
    return Status::Unavailable("an earlier entry of this namespace partition did not reach every "
                               "member: the partition reopens");
  }
  ASSIGN_OR_RETURN(const uint64_t version, options_.admit());
  ASSIGN_OR_RETURN(entry.term, TermAt(version));
  entry.seq = applied_ + 1;
  entry.prev_term = applied_term_;
  auto [local, sent] = ApplyAndPropagate(entry);
  if (!local.ok()) {
    // The next members may hold this entry: no other may ever be written under its number and
    // term, and this process's terms are all this one.
    broken_ = Status::Unavailable(
        "this member failed to apply namespace entry " + std::to_string(entry.seq) + " (" +
        local.ToString() + "): it writes no more until its process restarts");
    return broken_;
  }
  if (!sent.ok()) {
    // Applied here, perhaps not everywhere: its writers must not act as if it failed (it may
    // commit yet), nor may a later entry build on it until a barrier settles it.
    poisoned_ = true;
    return sent;
  }
  poisoned_ = false;
  MarkAcknowledged();
  return Status::OK();
}

Status ReplicatedDb::Barrier() {
  rocksdb::WriteBatch empty;
  return Commit({&empty}, /*barrier=*/true);
}

Status ReplicatedDb::ApplyLocally(const LogEntry& entry) {
  rocksdb::WriteBatch batch(entry.data);
  std::string marker;
  PutBigEndian64(&marker, entry.seq);
  PutBigEndian64(&marker, entry.term);
  std::string logged;
  PutBigEndian64(&logged, entry.term);
  logged += entry.data;
  RETURN_IF_ERROR(FromRocks(batch.Put(kAppliedKey, marker), "logging an entry"));
  RETURN_IF_ERROR(FromRocks(batch.Put(LogKey(entry.seq), logged), "logging an entry"));
  const uint64_t trimmed_below = TrimLog(entry.seq, &batch);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "applying a namespace entry"));
  applied_ = entry.seq;
  applied_term_ = entry.term;
  trimmed_below_ = trimmed_below;
  return Status::OK();
}

uint64_t ReplicatedDb::TrimLog(uint64_t seq, rocksdb::WriteBatch* batch) {
  // Keep [seq - log_entries + 1, seq], and whatever a copy in progress will pull.
  uint64_t keep_from = seq > options_.log_entries ? seq - options_.log_entries + 1 : 1;
  if (CopyPinned()) keep_from = std::min(keep_from, pin_floor_);
  if (keep_from <= trimmed_below_) return trimmed_below_;
  constexpr uint64_t kPointDeletes = 64;  // more than this (after a copy): one range tombstone
  if (keep_from - trimmed_below_ <= kPointDeletes) {
    for (uint64_t s = trimmed_below_; s < keep_from; ++s) batch->Delete(LogKey(s));
  } else {
    batch->DeleteRange(LogKey(trimmed_below_), LogKey(keep_from));
  }
  return keep_from;
}

bool ReplicatedDb::CopyPinned() {
  if (pin_floor_ != 0 && std::chrono::steady_clock::now() >= pin_until_) {
    pin_floor_ = 0;  // the copy is over, or gave up
  }
  return pin_floor_ != 0;
}

void ReplicatedDb::ExtendCopyPin() {
  pin_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.copy_pin_ms);
}

Result<uint64_t> ReplicatedDb::TermAt(uint64_t version) {
  if (incarnation_ == 0) {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), std::string(kIncarnationKey), &value);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading the member's incarnation");
    const uint64_t last = s.ok() && value.size() == 8 ? GetBigEndian64(value) : 0;
    std::string next;
    PutBigEndian64(&next, last + 1);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    RETURN_IF_ERROR(
        FromRocks(db_->Put(wo, std::string(kIncarnationKey), next), "counting incarnations"));
    incarnation_ = last + 1;
  }
  return (version << kIncarnationBits) | (incarnation_ & ((uint64_t{1} << kIncarnationBits) - 1));
}

std::pair<Status, Status> ReplicatedDb::ApplyAndPropagate(const LogEntry& entry) {
  if (!local_thread_.joinable()) {
    local_thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(local_mu_);
      for (;;) {
        local_cv_.wait(lock, [&] { return local_stop_ || local_entry_ != nullptr; });
        if (local_entry_ == nullptr) return;
        const LogEntry* entry = local_entry_;
        lock.unlock();
        Status applied = ApplyLocally(*entry);
        lock.lock();
        local_entry_ = nullptr;
        local_result_ = std::move(applied);
        local_cv_.notify_all();
      }
    });
  }
  {
    std::lock_guard<std::mutex> lock(local_mu_);
    local_entry_ = &entry;
    local_result_.reset();
  }
  local_cv_.notify_all();
  Status sent = Propagate(entry);
  std::unique_lock<std::mutex> lock(local_mu_);
  local_cv_.wait(lock, [&] { return local_result_.has_value(); });
  return {*local_result_, sent};
}

Status ReplicatedDb::Propagate(const LogEntry& entry) {
  ASSIGN_OR_RETURN(uint64_t next_has, options_.send(entry));
  if (next_has >= entry.seq) return Status::OK();
  // The next member lacks entries before this one: send those first, in order.
  for (uint64_t seq = next_has + 1; seq < entry.seq; ++seq) {
    Result<LogEntry> missing = ReadLog(seq);
    if (!missing.ok()) {
      (void)options_.send(LogEntry{});  // tells it to refill itself
      return Status::Unavailable("the next member of the chain lacks entry " +
                                 std::to_string(seq) + ", which this member's log no longer has: " +
                                 "it must be refilled");
    }
    ASSIGN_OR_RETURN(uint64_t has, options_.send(*missing));
    if (has < seq) {
      return Status::Unavailable("the next member of the chain did not apply entry " +
                                 std::to_string(seq));
    }
  }
  ASSIGN_OR_RETURN(next_has, options_.send(entry));
  if (next_has < entry.seq) {
    return Status::Unavailable("the next member of the chain did not apply entry " +
                               std::to_string(entry.seq));
  }
  return Status::OK();
}

Result<LogEntry> ReplicatedDb::ReadLog(uint64_t seq) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), LogKey(seq), &value);
  if (s.IsNotFound() || (s.ok() && value.size() < 8)) {
    return Status::NotFound("entry " + std::to_string(seq) + " is not in the log");
  }
  RETURN_IF_ERROR(FromRocks(s, "reading the log"));
  LogEntry entry;
  entry.seq = seq;
  entry.term = GetBigEndian64(value);
  entry.data = value.substr(8);
  if (seq > 1) {
    std::string before;
    if (db_->Get(rocksdb::ReadOptions(), LogKey(seq - 1), &before).ok() && before.size() >= 8) {
      entry.prev_term = GetBigEndian64(before);
    }
  }
  return entry;
}

Result<uint64_t> ReplicatedDb::Apply(const LogEntry& entry) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  if (entry.seq > applied_ + 1) return applied_;  // the sender sends the missing ones first
  if (entry.seq == applied_ + 1 && applied_ > 0 && entry.prev_term != 0 &&
      entry.prev_term != applied_term_) {
    return Status::PreconditionFailed("entry " + std::to_string(applied_) +
                                      " here was written under another term than the sender's: "
                                      "this member diverged from the head and must be refilled");
  }
  if (entry.seq <= applied_) {
    // Sent again (its sender did not hear back): pass it on if it is the one applied here.
    Result<LogEntry> mine = ReadLog(entry.seq);
    if (mine.ok() && mine->term != entry.term) {
      return Status::PreconditionFailed("entry " + std::to_string(entry.seq) +
                                        " here was written under another term: this member "
                                        "diverged from the head and must be refilled");
    }
    RETURN_IF_ERROR(Propagate(entry));
    return applied_;
  }
  // Both must succeed before the sender hears back, so the head acknowledges only entries
  // every member has made durable. A member may thus hold an entry its predecessor lacks (the
  // predecessor failed while applying it): never acknowledged. Whatever next writes that number
  // (the predecessor as head, or the head restarted) does so under another term, which the
  // term checks catch.
  auto [local, sent] = ApplyAndPropagate(entry);
  RETURN_IF_ERROR(local);
  RETURN_IF_ERROR(sent);
  return applied_;
}

Result<std::vector<LogEntry>> ReplicatedDb::Pull(uint64_t after, uint64_t after_term,
                                                 size_t max_bytes) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  // A copier pulling what its copy left: its entries stay while it pages through them.
  if (CopyPinned()) ExtendCopyPin();
  const Status copy_instead = Status::NotFound("the entries after " + std::to_string(after) +
                                               " are not all in this member's log");
  if (after > applied_) return copy_instead;
  if (after > 0 && !(after == applied_ && after_term == applied_term_)) {
    Result<LogEntry> last = ReadLog(after);
    if (!last.ok() || last->term != after_term) return copy_instead;
  }
  std::vector<LogEntry> entries;
  size_t bytes = 0;
  for (uint64_t seq = after + 1; seq <= applied_ && bytes < max_bytes; ++seq) {
    Result<LogEntry> entry = ReadLog(seq);
    if (!entry.ok()) return copy_instead;
    bytes += entry->data.size();
    entries.push_back(std::move(*entry));
  }
  return entries;
}

Result<ReplicatedDb::CopyPage> ReplicatedDb::Scan(const std::string& after, size_t max_bytes) {
  CopyPage page;
  std::unique_ptr<rocksdb::Iterator> it;
  {
    // The iterator sees exactly the entries up to `applied`.
    std::lock_guard<std::mutex> lock(apply_mu_);
    page.applied = applied_;
    page.applied_term = applied_term_;
    it.reset(db_->NewIterator(rocksdb::ReadOptions()));
    // The copier pulls the entries after its first page's `applied` once done: keep them, and
    // that one (a pull checks its term).
    const uint64_t floor = std::max<uint64_t>(applied_, 1);
    if (after.empty()) pin_floor_ = CopyPinned() ? std::min(pin_floor_, floor) : floor;
    if (pin_floor_ != 0) ExtendCopyPin();
  }
  size_t bytes = 0;
  for (it->Seek(after); it->Valid() && bytes < max_bytes; it->Next()) {
    if (!after.empty() && it->key() == rocksdb::Slice(after)) continue;
    if (IsReplicationKey(it->key())) continue;
    bytes += it->key().size() + it->value().size();
    page.items.emplace_back(it->key().ToString(), it->value().ToString());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "copying the namespace"));
  page.done = !it->Valid();
  return page;
}

Status ReplicatedDb::Reset() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  rocksdb::WriteBatch batch;
  // Keys begin with a kind byte below 0xff. The incarnation stays: terms are never reused.
  RETURN_IF_ERROR(FromRocks(batch.DeleteRange(std::string(), std::string(1, '\xff')),
                            "forgetting the namespace"));
  std::string incarnation;
  rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), std::string(kIncarnationKey), &incarnation);
  if (got.ok()) {
    RETURN_IF_ERROR(FromRocks(batch.Put(kIncarnationKey, incarnation), "forgetting the namespace"));
  } else if (!got.IsNotFound()) {
    return FromRocks(got, "reading the member's incarnation");
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "forgetting the namespace"));
  applied_ = applied_term_ = 0;
  trimmed_below_ = 1;
  std::lock_guard<std::mutex> snap(snapshot_mu_);
  acknowledged_.reset();
  return Status::OK();
}

Status ReplicatedDb::InstallCopy(const std::vector<std::pair<std::string, std::string>>& items,
                                 std::optional<std::pair<uint64_t, uint64_t>> applied) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  rocksdb::WriteBatch batch;
  for (const auto& [key, value] : items) {
    RETURN_IF_ERROR(FromRocks(batch.Put(key, value), "copying the namespace"));
  }
  std::string marker;
  if (applied) {
    PutBigEndian64(&marker, applied->first);
    PutBigEndian64(&marker, applied->second);
    RETURN_IF_ERROR(FromRocks(batch.Put(kAppliedKey, marker), "copying the namespace"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = applied.has_value();
  RETURN_IF_ERROR(FromRocks(db_->Write(wo, &batch), "copying the namespace"));
  if (applied) {
    std::tie(applied_, applied_term_) = *applied;
    trimmed_below_ = applied_ + 1;  // a copy brings no log
  }
  return Status::OK();
}

Status ReplicatedDb::ApplyPulled(const std::vector<LogEntry>& entries) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  for (const LogEntry& entry : entries) {
    if (entry.seq <= applied_) continue;
    if (entry.seq != applied_ + 1) {
      return Status::Internal("pulled entry " + std::to_string(entry.seq) + " after " +
                              std::to_string(applied_));
    }
    RETURN_IF_ERROR(ApplyLocally(entry));
  }
  return Status::OK();
}

void ReplicatedDb::MarkAcknowledged() {
  rocksdb::DB* base = db_;
  SnapshotRef snapshot(base->GetSnapshot(),
                       [base](const rocksdb::Snapshot* s) { base->ReleaseSnapshot(s); });
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  acknowledged_ = std::move(snapshot);
}

rocksdb::ReadOptions ReplicatedDb::AtSnapshot(const rocksdb::ReadOptions& options,
                                              SnapshotRef* keep) const {
  rocksdb::ReadOptions ro = options;
  if (ro.snapshot == nullptr) {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    *keep = acknowledged_;
    ro.snapshot = keep->get();
  }
  return ro;
}

rocksdb::Status ReplicatedDb::Get(const rocksdb::ReadOptions& options,
                                  rocksdb::ColumnFamilyHandle* cf, const rocksdb::Slice& key,
                                  rocksdb::PinnableSlice* value) {
  SnapshotRef keep;
  return db_->Get(AtSnapshot(options, &keep), cf, key, value);
}

std::vector<rocksdb::Status> ReplicatedDb::MultiGet(
    const rocksdb::ReadOptions& options, const std::vector<rocksdb::ColumnFamilyHandle*>& cfs,
    const std::vector<rocksdb::Slice>& keys, std::vector<std::string>* values) {
  SnapshotRef keep;
  return db_->MultiGet(AtSnapshot(options, &keep), cfs, keys, values);
}

rocksdb::Iterator* ReplicatedDb::NewIterator(const rocksdb::ReadOptions& options,
                                             rocksdb::ColumnFamilyHandle* cf) {
  SnapshotRef keep;
  rocksdb::Iterator* it = db_->NewIterator(AtSnapshot(options, &keep), cf);
  if (keep != nullptr) {
    // The snapshot lives as long as the iterator.
    it->RegisterCleanup(
        [](void* arg, void*) { delete static_cast<SnapshotRef*>(arg); },
        new SnapshotRef(std::move(keep)), nullptr);
  }
  return it;
}

}  // namespace granary::meta
