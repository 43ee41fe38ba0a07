// DramTier: a KV pool's blocks in memory, their byte accounting, chain links, protection
// (pins, leases, readers) and eviction.
//
// Memory: the values lie in the pool's arena (kv/arena.h); Reserve allocates a block's pages and
// they return to the arena when the block's charge is released (freed, or Forget after a spill).
//
// Accounting: every block is charged ChargeOf(key, value) bytes, its value's whole pages plus
// the tier's own bookkeeping, from the moment it is reserved (pending) until it is freed. An
// evicted block is freed at once, unless it must be spilled to the disk tier first: then it stays
// charged until the Pool calls Forget. A removed block stays charged until its last reader lets go.
// So the charged total bounds the memory the tier holds, and it never exceeds the budget: a
// reservation that cannot fit after evicting every candidate fails with kNoSpace. Since a block
// is charged at least its pages, a charged total within the budget always finds its pages in an
// arena of ceil(budget / page size) pages; an allocation that fails all the same is a bug
// (kInternal).
//
// Eviction: when a reservation would take the total above the high watermark, candidates are
// evicted, in the policy's order, until the total plus the reservation is at most the low
// watermark. Pinned blocks, pending blocks and blocks with readers are never candidates. A
// candidate chosen while its lease runs is parked (set aside, in lease order) and returns to the
// policy once the lease has ended.
//
// Thread-safety: none; every call is made under the Pool's mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "kv/arena.h"
#include "kv/block.h"
#include "kv/eviction.h"

namespace granary::kv {

struct DramTierOptions {
  uint64_t budget_bytes = 0;
  double high_watermark = 1.0;  // fractions of the budget
  double low_watermark = 1.0;
  EvictionPolicyKind policy = EvictionPolicyKind::kPrefixAware;
  uint64_t lease_nanos = 0;
  uint64_t pin_limit_bytes = 0;
};

class DramTier {
 public:
  // `arena` holds the values; it has at least ceil(budget_bytes / page size) pages and outlives
  // the tier.
  DramTier(const DramTierOptions& options, Arena* arena);
  ~DramTier();
  DramTier(const DramTier&) = delete;
  DramTier& operator=(const DramTier&) = delete;

  // Bytes a block of this key and value size is charged: the value's pages, one Extent per page
  // (the most its extent list can hold), the key, the Block and the index's bookkeeping.
  static uint64_t ChargeOf(size_t key_size, uint64_t value_size);

  // The block of `key` in the index, pending or ready; null if none.
  Block* Find(std::string_view key) const;

  // Called for each evicted block: true when it must be spilled before it is freed.
  using SpillCheck = std::function<bool(std::string_view key)>;
  // Reserves a pending block for `key` (Find returns it, pending), evicting as needed. Evicted
  // blocks are freed, except those `must_spill` claims: they are appended to `evicted` and stay
  // charged until Forget. kNoSpace when the block cannot fit; kInvalidArgument when it exceeds
  // the budget; kInternal when the arena has no pages for it although the charge fit (a bug).
  // The block's `size` and `extents` are set: the caller copies the value into them.
  // REQUIRES: Find(key) == nullptr.
  Result<Block*> Reserve(std::string_view key, uint64_t value_size, uint64_t now,
                         const SpillCheck& must_spill,
                         std::vector<std::unique_ptr<Block>>* evicted);
  // Makes a pending block ready (a candidate unless protected) and links it after `parent`
  // (may be null).
  void Commit(Block* b, Block* parent, uint64_t tick);
  // Drops a pending block whose put failed.
  void Abort(Block* b);

  // Records an access of ready block `b` at `tick`; renews its lease when `lease`.
  void Touch(Block* b, uint64_t now, uint64_t tick, bool lease);
  // `child` follows `parent` (both ready and in the index) in an ordered call.
  void Link(Block* child, Block* parent);

  // Reader references: a block with readers is never evicted or freed.
  void AddReader(Block* b) { ++b->readers; }
  void DropReader(Block* b);

  // kNoSpace when the pin limit would be passed. Pinning a pinned block is a no-op.
  Status Pin(Block* b);
  void Unpin(Block* b);

  // Takes ready block `b` out of the index; its bytes are freed now or when its last reader
  // lets go.
  void Remove(Block* b);
  // Releases the charge and the pages of an evicted block that Reserve handed out for spilling.
  void Forget(Block* evicted);

  uint64_t used_bytes() const { return used_; }
  uint64_t budget_bytes() const { return options_.budget_bytes; }
  uint64_t pinned_bytes() const { return pinned_bytes_; }
  uint64_t pinned_blocks() const { return pinned_blocks_; }
  uint64_t ready_blocks() const { return ready_blocks_; }
  uint64_t evictions() const { return evictions_; }
  uint64_t parked_blocks() const { return parked_.size(); }

 private:
  bool Protected(const Block* b, uint64_t now) const {
    return b->readers > 0 || b->lease_until > now;
  }
  // Makes `b` a candidate if nothing protects it but a lease (checked at eviction time).
  void MaybeCandidate(Block* b);
  void LeaveCandidates(Block* b);
  void Park(Block* b);
  void UnparkExpired(uint64_t now);
  void Unlink(Block* b);
  void LinkUnder(Block* child, Block* parent);
  void Free(Block* b);
  // Releases `b`'s charge and returns its pages to the arena.
  void Release(Block* b);

  DramTierOptions options_;
  Arena* const arena_;
  uint64_t high_bytes_;
  uint64_t low_bytes_;
  std::unique_ptr<EvictionPolicy> policy_;
  // Keys are views of Block::key; every Block lives in exactly one of index_ and zombies_ until
  // it is evicted (handed to the Pool) or freed.
  std::unordered_map<std::string_view, std::unique_ptr<Block>> index_;
  std::unordered_map<Block*, std::unique_ptr<Block>> zombies_;
  std::list<Block*> parked_;  // in lease_until order
  uint64_t used_ = 0;
  uint64_t pinned_bytes_ = 0;
  uint64_t pinned_blocks_ = 0;
  uint64_t ready_blocks_ = 0;
  uint64_t evictions_ = 0;
  uint64_t next_id_ = 1;
};

}  // namespace granary::kv
