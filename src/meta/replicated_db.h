// ReplicatedDb: one namespace partition's RocksDB, replicated down its chain
// (docs/design/cluster.md, "The namespace").
//
// Every change is an entry of the partition's log, numbered 1, 2, 3... and tagged with its term
// (the chain version the head wrote it under, and how many times that member began writing:
// see TermAt):
//
// - At the head, Write() gathers the batches of concurrent writers into one entry (group
//   commit), applies it here with one synced write while sending it to the next member, and
//   returns once both are done and every member has it. An ObjectStore opened over this database (ObjectStoreOptions::db)
//   therefore acknowledges nothing the chain's tail lacks.
// - Other members Apply() the entries they are sent, in number order, sending each on while
//   applying it, and answer once both are done. A member that lacks earlier entries says so;
//   its sender first sends those, from its log.
// - Every member keeps its last `log_entries` entries, written in the same batch as the entry
//   itself, and the number and term of the last one applied.
//
// Reads through this DB see a snapshot taken when the last entry was acknowledged by the tail:
// never an entry a head applied alone and then failed to pass on, which the member taking over
// from it would not have.
//
// A member joining the chain (or one whose log diverged from the head's) fills itself from a
// serving member: Pull() the entries after its last, or, if those are gone from the source's
// log, Reset() and copy every key (Scan() on the source, InstallCopy() here), then pull the
// entries from the number the copy started at. Replaying entries over a copy taken while they
// were being applied is safe: entries hold only puts and deletes of whole values.
//
// Thread-safe.
#pragma once

#include <rocksdb/utilities/stackable_db.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace granary::meta {

// A log entry as it travels between members. `seq` 0 is no entry: it tells the next member that
// it lacks entries the sender's log no longer has, so it must refill itself.
struct LogEntry {
  uint64_t seq = 0;
  uint64_t term = 0;
  std::string data;  // a serialized rocksdb::WriteBatch
  // The term of entry seq - 1 at the sender (0: none, or no longer in its log): a member whose
  // own entry seq - 1 has another term diverged from the sender.
  uint64_t prev_term = 0;
};

struct ReplicatedDbOptions {
  // Called before the head applies an entry: the chain version it heads the chain at (and holds
  // its lease), which its entries' terms carry, or why it may not write now.
  std::function<Result<uint64_t>()> admit;
  // Sends an entry to the next member (which sends it on) and waits for the whole chain. Returns
  // the next member's last applied entry: `entry.seq` or more once it has it, less when it lacks
  // entries before it (and applied nothing). With no next member it returns `entry.seq`.
  std::function<Result<uint64_t>(const LogEntry& entry)> send;
  // Entries kept for members that fall behind.
  uint64_t log_entries = 20'000;
  // A copy (Scan from the start) keeps the entries after the point it copies from, so that the
  // copying member can pull them when it is done, until this long after its last page or pull.
  int copy_pin_ms = 60'000;
};

class ReplicatedDb final : public rocksdb::StackableDB {
 public:
  // Takes ownership of `base` (closed and deleted with this).
  ReplicatedDb(rocksdb::DB* base, ReplicatedDbOptions options);
  ~ReplicatedDb() override;

  // The number and term of the last entry applied here.
  std::pair<uint64_t, uint64_t> Applied() const;

  // Head: makes every member hold every entry this one has (an empty entry, sent down the chain
  // with whatever the next members lack), then reads see all of them. A new head calls it before
  // it serves, and after every change of its chain.
  Status Barrier();

  // An entry was applied here but did not reach every member: whether it commits is unknown
  // until a Barrier() succeeds, and until then every Write() is refused (the ObjectStore over
  // this database must be reopened: its writers' outcomes are unknown, and their intents are
  // resolved by the next store's recovery).
  bool poisoned() const;
  // Reads see the latest state again, and the acknowledged snapshot is released (a head that
  // stepped down).
  void ForgetAcknowledged();

  // Any member but the head: applies `entry` if it is the next one and sends it on. Returns the
  // last entry applied here (less than entry.seq when earlier ones are missing).
  // kPreconditionFailed when this member applied a different entry under that number, or under
  // the one before (its log diverged: it must be refilled).
  Result<uint64_t> Apply(const LogEntry& entry);

  // Source of a fill: the entries after `after` (whose term must be `after_term` here), up to
  // about `max_bytes`. kNotFound when they are no longer all in the log, or the member asking
  // diverged from this one: it must copy every key instead.
  Result<std::vector<LogEntry>> Pull(uint64_t after, uint64_t after_term, size_t max_bytes);
  // Source of a copy: keys after `after` (all from the start when empty), up to about
  // `max_bytes`, and the last entry applied when they were read. The log itself is not copied;
  // a copy from the start keeps the entries after its first page's `applied` in the log (see
  // copy_pin_ms), however many are written meanwhile.
  struct CopyPage {
    uint64_t applied = 0;
    uint64_t applied_term = 0;
    std::vector<std::pair<std::string, std::string>> items;
    bool done = false;
  };
  Result<CopyPage> Scan(const std::string& after, size_t max_bytes);

  // Member being filled: forgets every key and entry (it copies all of them next).
  Status Reset();
  // Member being filled: stores copied keys; with `applied` set, the copy is complete and its
  // entries are those up to `applied` (pulling resumes after it).
  Status InstallCopy(const std::vector<std::pair<std::string, std::string>>& items,
                     std::optional<std::pair<uint64_t, uint64_t>> applied);
  // Member being filled: applies pulled entries in order (not sent on).
  Status ApplyPulled(const std::vector<LogEntry>& entries);

  // Every write goes down the chain as an entry; it returns once the tail has it.
  using rocksdb::StackableDB::Write;
  rocksdb::Status Write(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch) override;
  using rocksdb::StackableDB::Put;
  rocksdb::Status Put(const rocksdb::WriteOptions& options, rocksdb::ColumnFamilyHandle* cf,
                      const rocksdb::Slice& key, const rocksdb::Slice& value) override;
  using rocksdb::StackableDB::Delete;
  rocksdb::Status Delete(const rocksdb::WriteOptions& options, rocksdb::ColumnFamilyHandle* cf,
                         const rocksdb::Slice& key) override;
  using rocksdb::StackableDB::SingleDelete;
  rocksdb::Status SingleDelete(const rocksdb::WriteOptions& options,
                               rocksdb::ColumnFamilyHandle* cf, const rocksdb::Slice& key) override;
  using rocksdb::StackableDB::DeleteRange;
  rocksdb::Status DeleteRange(const rocksdb::WriteOptions& options, rocksdb::ColumnFamilyHandle* cf,
                              const rocksdb::Slice& begin, const rocksdb::Slice& end) override;
  using rocksdb::StackableDB::Merge;
  rocksdb::Status Merge(const rocksdb::WriteOptions& options, rocksdb::ColumnFamilyHandle* cf,
                        const rocksdb::Slice& key, const rocksdb::Slice& value) override;

  // Reads at the acknowledged snapshot unless the caller names one.
  using rocksdb::StackableDB::Get;
  rocksdb::Status Get(const rocksdb::ReadOptions& options, rocksdb::ColumnFamilyHandle* cf,
                      const rocksdb::Slice& key, rocksdb::PinnableSlice* value) override;
  using rocksdb::StackableDB::MultiGet;
  std::vector<rocksdb::Status> MultiGet(const rocksdb::ReadOptions& options,
                                        const std::vector<rocksdb::ColumnFamilyHandle*>& cfs,
                                        const std::vector<rocksdb::Slice>& keys,
                                        std::vector<std::string>* values) override;
  using rocksdb::StackableDB::NewIterator;
  rocksdb::Iterator* NewIterator(const rocksdb::ReadOptions& options,
                                 rocksdb::ColumnFamilyHandle* cf) override;

 private:
  struct Waiter;
  using SnapshotRef = std::shared_ptr<const rocksdb::Snapshot>;

  // Applies and sends one entry made of `batches` (the head). A barrier's entry is sent even
  // when the database is poisoned, and clears that. REQUIRES: apply_mu_ not held.
  Status Commit(const std::vector<rocksdb::WriteBatch*>& batches, bool barrier = false);
  // Adds to `batch` the deletion of log entries older than the last log_entries before `seq`,
  // sparing those a copy in progress needs; returns the new trimmed_below_ to set once the batch
  // is written. REQUIRES: apply_mu_ held.
  uint64_t TrimLog(uint64_t seq, rocksdb::WriteBatch* batch);
  // Whether a copy still pins the log from pin_floor_ (clearing a pin that ran out), and
  // keeping it for another copy_pin_ms. REQUIRES: apply_mu_ held.
  bool CopyPinned();
  void ExtendCopyPin();
  // The term of this member's entries under chain `version`. REQUIRES: apply_mu_ held.
  Result<uint64_t> TermAt(uint64_t version);
  // Applies `entry` here: its batch, the applied marker and the log, in one synced write.
  // REQUIRES: apply_mu_ held.
  Status ApplyLocally(const LogEntry& entry);
  // Sends `entry` down the chain, first sending whatever the next member lacks.
  // REQUIRES: apply_mu_ held.
  Status Propagate(const LogEntry& entry);
  // ApplyLocally and Propagate at once; returns both outcomes (local, sent). The head
  // acknowledges an entry only once every member has applied it, so their order does not matter
  // to readers, and the chain takes about one synced write per entry instead of one per member
  // in turn. REQUIRES: apply_mu_ held.
  std::pair<Status, Status> ApplyAndPropagate(const LogEntry& entry);
  // The entry `seq` from the log; kNotFound when trimmed. REQUIRES: apply_mu_ held.
  Result<LogEntry> ReadLog(uint64_t seq);
  // Reads from now on see everything applied here. REQUIRES: apply_mu_ held.
  void MarkAcknowledged();
  rocksdb::ReadOptions AtSnapshot(const rocksdb::ReadOptions& options, SnapshotRef* keep) const;

  const ReplicatedDbOptions options_;

  // Writers waiting to be committed; one of them at a time (the leader) commits a group.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Waiter*> queue_;  // GUARDED_BY(queue_mu_)
  bool leading_ = false;       // GUARDED_BY(queue_mu_)

  // Orders entries: held while one is applied and sent down the chain.
  mutable std::mutex apply_mu_;
  uint64_t applied_ = 0;       // GUARDED_BY(apply_mu_)
  uint64_t applied_term_ = 0;  // GUARDED_BY(apply_mu_)
  bool poisoned_ = false;      // GUARDED_BY(apply_mu_)
  // The head could not apply an entry it sent on: the next members may hold an entry under a
  // number and term this member lacks, so it writes nothing more in this process.
  Status broken_;              // GUARDED_BY(apply_mu_)
  // Log entries below this number are gone.
  uint64_t trimmed_below_ = 1;  // GUARDED_BY(apply_mu_)
  // While a copy may still pull (until pin_until_), entries from pin_floor_ on stay.
  uint64_t pin_floor_ = 0;                          // GUARDED_BY(apply_mu_)
  std::chrono::steady_clock::time_point pin_until_;  // GUARDED_BY(apply_mu_)
  // Starts of this member's writing, counted durably (the first Commit of each process adds
  // one): a term is the chain version and the incarnation, so a head restarted under the same
  // chain version (within its lease) never writes an entry under a term its members may hold
  // with other contents. Terms are only ever compared for equality.
  static constexpr int kIncarnationBits = 24;
  uint64_t incarnation_ = 0;   // GUARDED_BY(apply_mu_); 0 until the first Commit

  // The thread that applies entries here while ApplyAndPropagate sends them on (started at the
  // first entry). One entry at a time: apply_mu_ orders them.
  std::mutex local_mu_;
  std::condition_variable local_cv_;
  const LogEntry* local_entry_ = nullptr;  // GUARDED_BY(local_mu_): to apply
  std::optional<Status> local_result_;     // GUARDED_BY(local_mu_): of the last one applied
  bool local_stop_ = false;                // GUARDED_BY(local_mu_)
  std::thread local_thread_;               // started under apply_mu_

  mutable std::mutex snapshot_mu_;
  SnapshotRef acknowledged_;  // GUARDED_BY(snapshot_mu_); null: read the latest
};

}  // namespace granary::meta
