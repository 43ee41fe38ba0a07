// Block: one cached value of a KV pool's DRAM tier, with everything the tier keeps about it
// (protection, recency and frequency, its place in the chain of blocks requests touch) in one
// allocation, so that eviction needs no lookups.
//
// The value's bytes lie in the pool's shared-memory arena (kv/arena.h), in `extents`.
//
// Ownership: a Block belongs to its DramTier. Every field is read and written only under the
// Pool's mutex, except that `size` and `extents` are set when the block is reserved and never
// change until it is freed, so they may be read without it while the block is held. The bytes
// of `extents` are written once, by the thread that added the block, while the block is pending
// (invisible to readers), and never change once the block is ready; readers copy them outside
// the mutex while they hold a reader reference (`readers`), which keeps the block from being
// evicted or freed. Clients that read the arena directly hold nothing: they detect a freed block
// from the pages' generations (docs/formats/kv-arena.md).
#pragma once

#include <cstdint>
#include <future>
#include <list>
#include <string>
#include <vector>

#include "kv_shm/arena_format.h"

namespace granary::kv {

struct Block {
  enum class State : uint8_t {
    kPending,  // reserved by a put whose value is not stored yet: not readable
    kReady,    // readable
  };
  // Where the block stands with eviction.
  enum class Place : uint8_t {
    kNone,    // not a candidate: pending, pinned, or waiting for its last reader
    kPolicy,  // a candidate of the eviction policy
    kParked,  // chosen as a victim while leased: set aside until the lease ends
  };

  std::string key;
  uint64_t size = 0;            // the value's bytes
  std::vector<Extent> extents;  // where they lie in the arena, in order (Arena::Allocate)
  uint64_t charge = 0;          // bytes counted against the DRAM budget (DramTier::ChargeOf)
  State state = State::kPending;
  // kPending: becomes ready when the put that reserved the block has finished (either way).
  std::shared_future<void> settled;

  // Protection from eviction.
  uint64_t lease_until = 0;  // Clock nanos; a read renews it
  uint32_t readers = 0;      // live reader references (copies in progress, BlockViews)
  bool pinned = false;
  bool removed = false;  // out of the index; freed when the last reader lets go

  Place place = Place::kNone;
  std::list<Block*>::iterator parked_pos;

  // Recency and frequency, for the eviction policies.
  uint64_t id = 0;         // insertion order; breaks ties
  uint64_t last_tick = 0;  // the pool's access counter at the last access
  uint32_t accesses = 0;   // accesses since the block entered DRAM (saturating)

  // Chain structure (kv-eviction.md): the block that preceded this one in the last ordered
  // call that listed both, and the cached blocks that follow this one. Only ready blocks in the
  // index are linked.
  Block* parent = nullptr;
  Block* first_child = nullptr;
  Block* prev_sibling = nullptr;
  Block* next_sibling = nullptr;
  uint32_t cached_children = 0;

  // Policy bookkeeping, owned by the policy the block is a candidate of.
  // Set-ordering keys are copies the policy owns: last_tick and accesses change before the
  // policy hears of it.
  std::list<Block*>::iterator lru_pos;
  double priority = 0;
  uint64_t policy_tick = 0;
  uint64_t policy_seq = 0;
  bool policy_leaf = false;
};

}  // namespace granary::kv
