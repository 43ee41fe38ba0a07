// kv::Pool: one KV-cache pool on one node, in process: a DRAM tier bounded by a byte budget and,
// optionally, a disk tier (a BlobEngine in its own directory with its own budget). The network
// service, the Python binding and the shared-memory path sit on top of this class.
//
// Keys are byte strings of 1..1024 bytes (usually hashes of token-prefix blocks); values are
// immutable blobs. Calls that take several keys in order (BatchPut, BatchGetInto, LongestPrefix)
// take them in prefix order: the chain of blocks a request touches. The prefix-aware policy
// learns chains from that order (docs/design/kv-eviction.md).
//
// Contract of every call:
// - Thread-safe: any number of threads may call any method at once, except Close() and the
//   destructor, which REQUIRE that no other call is running and that every BlockView is gone.
// - A missing key is a normal result, not a failure: reads return kNotFound, which callers
//   treat as a miss (the Python binding returns None). Other non-OK codes are failures.
// - Put of a key already stored is a no-op that returns OK when the size matches (values are
//   immutable: the stored bytes are kept) and kAlreadyExists when it does not (Remove first).
// - Acknowledged: when a Put returns OK the block is readable by every later call; with a disk
//   tier it is also durable in the disk tier's engine (fdatasync, group-committed), so after a
//   crash (kill -9 included) and a reopen it is readable byte for byte unless it was evicted
//   from the disk tier or removed. Without a disk tier nothing survives Close.
// - Memory: the DRAM tier's values lie in the pool's arena, a memfd of ceil(dram_budget_bytes /
//   4096) pages of 4096 bytes plus a header page and a table of one 8-byte generation per page
//   (docs/formats/kv-arena.md). The bytes charged to the DRAM tier (each value rounded up to
//   whole pages, keys and per-block bookkeeping) never exceed dram_budget_bytes. A put that does
//   not fit after evicting every unprotected block fails with kNoSpace; one that could never fit
//   fails with kInvalidArgument.
// - Eviction: when a put or promotion would pass the high watermark, blocks are evicted down to
//   the low watermark in the policy's order. An evicted block goes to the disk tier when there
//   is one (it is usually there already: puts write through), else it is dropped. A read that
//   misses DRAM and hits the disk tier promotes the block back into DRAM.
// - Protection: pinned blocks (up to pin_limit_bytes per pool) and blocks with a live
//   BlockView or a copy in progress are never evicted; a block that was read is protected for
//   `lease` after the read (by the pool's Clock), so that a caller that found it with
//   LongestPrefix can read it.
// - Shared memory: a client on the same host maps arena_fd() read-only (kv_shm/arena_view.h)
//   and copies the blocks BatchLocate locates for it. No reference is held for it: a located
//   block is protected only by its lease, and Remove frees a block nobody reads at once (as
//   does eviction once the lease has ended). Its pages may then be reused by the next put; the
//   client detects that from the pages' generations (ArenaView::CopyOut fails) and reads the
//   block with a normal call instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "engine/engine.h"
#include "kv/arena.h"
#include "kv/chain_memo.h"
#include "kv/disk_tier.h"
#include "kv/dram_tier.h"
#include "kv/eviction.h"
#include "kv_shm/arena_format.h"

namespace granary::kv {

inline constexpr size_t kMaxKeySize = 1024;

// OK for a key of 1..kMaxKeySize bytes; kInvalidArgument (saying so) otherwise.
Status CheckKvKey(std::string_view key);

struct PoolOptions {
  std::string name = "default";
  uint64_t dram_budget_bytes = 1ull << 30;
  // Fractions of dram_budget_bytes: eviction starts above `high` and stops at `low`.
  double high_watermark = 0.95;
  double low_watermark = 0.85;
  // The disk tier: off when disk_dir is empty.
  std::string disk_dir;
  uint64_t disk_budget_bytes = 0;
  engine::EngineOptions engine;  // for the disk tier's engine; `sync` is forced on
  EvictionPolicyKind eviction = EvictionPolicyKind::kPrefixAware;
  uint64_t pin_limit_bytes = 0;  // charged bytes of pinned blocks, at most
  std::chrono::nanoseconds lease = std::chrono::seconds(5);
  Clock* clock = nullptr;  // SystemClock when null
  // Commit the DRAM tier's memory in the background once the pool opens (Arena::Prefault),
  // rather than a page at a time as values are first stored. See also Pool::CommitDram.
  bool prefault_dram = false;
  // Keys whose predecessor is remembered for linking later puts (kv-eviction.md).
  size_t chain_memo_keys = 1 << 16;
};

struct PoolStats {
  // Reads (Get, GetInto, BatchGetInto, Acquire), per key.
  uint64_t dram_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t misses = 0;
  // LongestPrefix calls and the keys they were given and found.
  uint64_t prefix_lookups = 0;
  uint64_t prefix_keys = 0;
  uint64_t prefix_hits = 0;
  uint64_t puts = 0;  // blocks stored by puts (no-op puts of stored keys are not counted)
  uint64_t put_bytes = 0;
  // Blocks a put could not store although their key and size were valid: no room in DRAM
  // (kNoSpace), a failed disk-tier write, or a value stream that broke (BatchPutFrom).
  uint64_t put_failures = 0;
  // DRAM tier.
  uint64_t dram_blocks = 0;
  uint64_t dram_bytes = 0;  // charged bytes, <= dram_budget_bytes
  uint64_t dram_budget_bytes = 0;
  uint64_t dram_evictions = 0;
  uint64_t promotions = 0;  // disk hits copied back into DRAM
  uint64_t spills = 0;      // evicted blocks written to the disk tier (not there already)
  uint64_t pinned_blocks = 0;
  uint64_t pinned_bytes = 0;
  uint64_t parked_blocks = 0;  // chosen for eviction while leased
  // Disk tier (zero without one).
  uint64_t disk_blocks = 0;
  uint64_t disk_bytes = 0;
  uint64_t disk_budget_bytes = 0;
  uint64_t disk_evictions = 0;
  uint64_t disk_corruptions = 0;  // records that failed their checksum: dropped, read as misses
};

class Pool;

// A read-only view of a block's bytes in DRAM, without a copy. While it lives, the block is
// neither evicted nor freed (a Remove hides it from later calls; its bytes stay until the view
// goes). Move-only; destroy it before the Pool. The network service sends a value from its
// views' pieces without copying it first.
class BlockView {
 public:
  BlockView() = default;
  BlockView(BlockView&& other) noexcept;
  BlockView& operator=(BlockView&& other) noexcept;
  BlockView(const BlockView&) = delete;
  BlockView& operator=(const BlockView&) = delete;
  ~BlockView() { Release(); }

  // The value's bytes in order: in the pool's arena, one piece per extent (a value of one run of
  // pages has one piece; an empty value none), or the view's own copy. Empty once released.
  std::vector<std::span<const char>> pieces() const;
  size_t size() const;
  // Whether the bytes are the block's in DRAM (else the view owns a copy read from disk).
  bool in_dram() const { return block_ != nullptr; }
  // Lets go of the block now (the destructor does it otherwise).
  void Release();

 private:
  friend class Pool;
  BlockView(Pool* pool, Block* block) : pool_(pool), block_(block) {}
  explicit BlockView(std::string copy) : copy_(std::move(copy)), has_copy_(true) {}
  Pool* pool_ = nullptr;
  Block* block_ = nullptr;
  std::string copy_;
  bool has_copy_ = false;
};

struct KeyValue {
  std::string_view key;
  std::string_view value;
};

class Pool {
 public:
  // Opens a pool; with a disk tier, opens (or creates) its engine and rebuilds the disk tier's
  // accounting from what is there. kInvalidArgument for inconsistent options.
  static Result<std::unique_ptr<Pool>> Open(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  const PoolOptions& options() const { return options_; }

  // Stores `value` under `key` (see the contract above for keys already stored).
  Status Put(std::string_view key, std::string_view value);
  // Puts of a chain of blocks in prefix order, one disk write for all; a status per item.
  std::vector<Status> BatchPut(std::span<const KeyValue> items);
  // Reads the next dst.size() bytes of a stream into dst (all of them, or an error).
  using ValueReader = std::function<Status(std::span<char> dst)>;
  // BatchPut of values that arrive as a stream, back to back in item order (sizes[i] bytes for
  // keys[i]), read straight into the DRAM tier's arena: the network service puts values with no
  // copy of its own. Every item's bytes are read from the stream, stored or not. When `read`
  // fails, the items not yet stored fail with its error (the stream is then of no further use).
  // REQUIRES: as many sizes as keys.
  std::vector<Status> BatchPutFrom(std::span<const std::string_view> keys,
                                   std::span<const uint64_t> sizes, const ValueReader& read);

  // The value of `key`; kNotFound on a miss.
  Result<std::string> Get(std::string_view key);
  // Copies the value into `dst` and returns its size; kNotFound on a miss, kInvalidArgument
  // when `dst` is smaller than the value (the message gives the size).
  Result<size_t> GetInto(std::string_view key, std::span<char> dst);
  // GetInto of a chain of keys in prefix order; a result per key. REQUIRES: as many buffers as
  // keys.
  std::vector<Result<size_t>> BatchGetInto(std::span<const std::string_view> keys,
                                           std::span<const std::span<char>> buffers);
  // A view of the value: in DRAM, without a copy (promoting it from disk first), or, for a
  // disk-tier hit that cannot be brought into DRAM (full of protected blocks, or another call is
  // storing the key), a copy the view owns. kNotFound on a miss. One read of either tier.
  Result<BlockView> Acquire(std::string_view key);

  // The arena that holds the DRAM tier's values, for clients on this host: a read-only
  // descriptor of the memfd (the pool keeps ownership; dup it to keep it) and the file's size.
  int arena_fd() const { return arena_->fd(); }
  uint64_t arena_bytes() const { return arena_->file_bytes(); }
  uint64_t arena_id() const { return arena_->arena_id(); }
  // Commits the DRAM tier's memory now (Arena::Prefault), so that filling the pool does not
  // pay a page fault per 4 KiB; calls may run meanwhile. Not with prefault_dram.
  void CommitDram() { arena_->Prefault(/*in_background=*/false); }
  // Like BatchGetInto (prefix order, the same stats, touches, chain links, lease renewal, and
  // disk-tier hits promoted into DRAM) but returns where each block lies in the arena instead
  // of copying it. No reader reference is left behind: the block is protected only by its lease
  // from the time of the call (see Shared memory above). kNotFound on a miss; kUnavailable when
  // a disk hit could not be promoted (DRAM full of protected blocks, or another call is storing
  // the key); then, when `unplaced` is not null, (*unplaced)[i] holds the value read, so that the
  // caller can send it without reading the disk again. Otherwise read it with Get or GetInto.
  std::vector<Result<BlockLocation>> BatchLocate(
      std::span<const std::string_view> keys,
      std::vector<std::optional<std::string>>* unplaced = nullptr);

  // Whether a read of `key` would hit now (either tier). Neither a use nor a lease.
  bool Exists(std::string_view key);
  std::vector<bool> BatchExists(std::span<const std::string_view> keys);
  // How many leading keys of `keys` (a chain in prefix order) are all cached, in either tier.
  // The DRAM blocks found are leased and count as used.
  size_t LongestPrefix(std::span<const std::string_view> keys);

  // Removes `key` from both tiers; OK whether or not it was there. A put of it in flight is not
  // affected (it is ordered after the remove).
  Status Remove(std::string_view key);

  // Pins a cached block (promoting it from disk if needed): it is never evicted from either
  // tier until Unpin or Remove. kNotFound when not cached; kNoSpace when the pin limit would
  // be passed. Pins live in memory: a restart forgets them.
  Status Pin(std::string_view key);
  // OK whether or not the key was pinned.
  Status Unpin(std::string_view key);

  PoolStats Stats() const;

  // Closes the disk tier (its engine writes a checkpoint). Later calls fail with kUnavailable;
  // Exists and LongestPrefix find nothing. The destructor calls it.
  Status Close();

 private:
  friend class BlockView;
  Pool(PoolOptions options, std::unique_ptr<Arena> arena);

  // A read's outcome: the block in DRAM with a reader reference taken (unless a disk hit could
  // not be promoted) and, for a disk hit, the value read.
  struct Fetched {
    Block* block = nullptr;
    bool from_disk = false;
    std::string value;  // when from_disk
  };
  // Looks `key` up in DRAM (touch, lease, reader reference) and, on a DRAM miss, reads the disk
  // tier and promotes, linking the block after `predecessor` (may be empty). kNotFound on a
  // miss.
  Result<Fetched> Fetch(std::string_view key, std::string_view predecessor) EXCLUDES(mu_);
  // The DRAM half of a batched read of a chain of keys (items whose status is not OK are
  // skipped): touches, leases and links the ready blocks found and calls `hit(i, block)` for
  // each under the mutex; marks in `try_disk` the keys to look for in the disk tier, or, without
  // one, fails them as misses.
  void LookUpChain(std::span<const std::string_view> keys, std::vector<Status>& status,
                   std::vector<bool>& try_disk, const std::function<void(size_t, Block*)>& hit)
      EXCLUDES(mu_);
  // Copies a block read from disk into DRAM and takes a reader reference on it; null when it
  // cannot fit (or a put or promotion of it is in flight).
  Block* Promote(std::string_view key, std::string_view value, std::string_view predecessor)
      EXCLUDES(mu_);
  // Where ready block `b` lies, with its pages' generations now.
  BlockLocation LocationOf(const Block& b) const REQUIRES(mu_);
  // The value of a block this thread holds, as one view when it is one extent (or empty), else
  // assembled in `scratch`.
  std::string_view ValueOf(const Block& b, std::string* scratch) const;
  // BatchPutFrom's state: the items, where their values come from, and their outcomes.
  struct PutBatch;
  // Stores items [begin..) until DRAM is full of this round's own pending blocks, reading their
  // values from the stream; returns where it stopped (the item count when done).
  size_t PutRound(PutBatch& batch, size_t begin) EXCLUDES(mu_);
  // For DramTier::Reserve: whether an evicted block must be spilled (is not in the disk tier).
  DramTier::SpillCheck SpillPredicate();
  // Spills evicted blocks that are not in the disk tier, then releases their charge.
  void FinishEvictions(std::vector<std::unique_ptr<Block>> evicted) EXCLUDES(mu_);
  // The resident, ready predecessor block: `predecessor` if given, else the remembered one.
  Block* ParentFor(std::string_view key, std::string_view predecessor) REQUIRES(mu_);
  void ReleaseReader(Block* b) EXCLUDES(mu_);
  // Reads `key` from the disk tier; kNotFound on a miss, counted (a corrupt record is dropped).
  Result<std::string> ReadDisk(std::string_view key) EXCLUDES(mu_);
  uint64_t Now() const { return clock_->NowNanos(); }

  const PoolOptions options_;
  Clock* const clock_;
  const std::unique_ptr<Arena> arena_;  // before dram_, which allocates from it
  std::unique_ptr<DiskTier> disk_;      // null without a disk tier; set by Open only
  mutable Mutex mu_;
  DramTier dram_ GUARDED_BY(mu_);
  ChainMemo memo_ GUARDED_BY(mu_);
  PoolStats stats_ GUARDED_BY(mu_);
  uint64_t tick_ GUARDED_BY(mu_) = 0;
  bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace granary::kv
