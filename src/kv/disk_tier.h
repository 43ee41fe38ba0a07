// DiskTier: a KV pool's second tier, a BlobEngine in its own directory with its own byte budget
// and LRU eviction.
//
// Durability: a put returns OK only once the block is durable in the engine (the engine is
// opened with sync on; one batch is one group-committed write). Evictions are deletes written in
// the same engine batch as the put that needed the room, so after a crash either both are in
// the log or neither is. After a restart (kill -9 included), Open rebuilds the accounting from
// the engine's Scan and every block whose put returned OK and that was not evicted or removed
// is readable, byte for byte.
//
// Accounting: each block is charged its record size (header, key, value). The stored total
// never exceeds the budget once a put has returned; the segment files hold more until the
// engine's compaction reclaims the deleted records.
//
// Per-key order: a key being written or deleted is in flight; a put of a key in flight waits for
// it to settle, so a delete issued for an eviction can never land after a later put of the same
// key. Reads of keys in flight miss.
//
// Thread-safety: every method may be called from any number of threads at once. Engine I/O is
// done outside the tier's mutex.
#pragma once

#include <cstdint>
#include <future>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "engine/engine.h"

namespace granary::kv {

struct DiskTierStats {
  uint64_t blocks = 0;
  uint64_t bytes = 0;  // charged bytes of stored blocks
  uint64_t budget_bytes = 0;
  uint64_t evictions = 0;
  uint64_t blocks_at_open = 0;  // found by the Scan at open
};

class DiskTier {
 public:
  // Opens (or creates) the engine in `dir` and rebuilds the accounting from its Scan, oldest
  // write first in LRU order; evicts down to `budget_bytes` if the blocks found exceed it.
  // `options.sync` is forced on.
  static Result<std::unique_ptr<DiskTier>> Open(const std::string& dir, uint64_t budget_bytes,
                                                engine::EngineOptions options);
  ~DiskTier();
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  static uint64_t ChargeOf(size_t key_size, uint64_t value_size);

  struct Item {
    std::string_view key;
    std::string_view value;
  };
  // Stores each item durably (one engine write for the batch) unless its key is stored already
  // (OK if the size matches, kAlreadyExists if not). kNoSpace for an item that does not fit
  // after evicting every unprotected block; kInvalidArgument for one larger than the budget.
  std::vector<Status> PutBatch(std::span<const Item> items);
  Status Put(std::string_view key, std::string_view value);

  // The stored value: kNotFound when absent (or evicted meanwhile), kCorruption when the record
  // fails its checksum. Counts as a use for LRU.
  Result<std::string> Get(std::string_view key);
  // Size of the stored value, without I/O; nullopt when not stored.
  std::optional<uint64_t> SizeOf(std::string_view key) const;
  bool Contains(std::string_view key) const { return SizeOf(key).has_value(); }
  // A block leaving the DRAM tier: moves its copy to the most recently used end. False when
  // the tier does not hold it (the caller then spills it with Put).
  bool Demote(std::string_view key);
  // Protected blocks (pinned in the pool) are never evicted. No-op for keys not stored.
  void SetProtected(std::string_view key, bool on);
  // Deletes `key`; OK whether or not it was stored. A put in flight is not affected.
  Status Remove(std::string_view key);

  DiskTierStats Stats() const;
  // Closes the engine (writes its checkpoint). Later calls fail with kUnavailable.
  Status Close();

 private:
  enum class State : uint8_t { kPending, kStored, kDeleting };
  struct Entry {
    const std::string* key = nullptr;
    uint64_t size = 0;
    uint64_t charge = 0;
    State state = State::kPending;
    bool is_protected = false;
    bool in_lru = false;
    std::list<Entry*>::iterator lru_pos;
    std::shared_future<void> settled;  // kPending, kDeleting
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;

  DiskTier(std::unique_ptr<engine::BlobEngine> engine, uint64_t budget_bytes);
  // Marks least recently used blocks deleting (adding their deletes to `batch` and their keys to
  // `victims`) until `charge` more bytes fit or nothing is left to evict.
  void MakeRoom(uint64_t charge, const std::shared_future<void>& settled, engine::WriteBatch* batch,
                std::vector<std::string>* victims) REQUIRES(mu_);
  void ToMostRecent(Entry* e) REQUIRES(mu_);
  void LeaveLru(Entry* e) REQUIRES(mu_);

  const std::unique_ptr<engine::BlobEngine> engine_;
  const uint64_t budget_bytes_;
  mutable Mutex mu_;
  Map entries_ GUARDED_BY(mu_);
  std::list<Entry*> lru_ GUARDED_BY(mu_);  // least recently used first
  uint64_t used_ GUARDED_BY(mu_) = 0;
  uint64_t stored_ GUARDED_BY(mu_) = 0;
  uint64_t evictions_ GUARDED_BY(mu_) = 0;
  uint64_t blocks_at_open_ GUARDED_BY(mu_) = 0;
};

}  // namespace granary::kv
