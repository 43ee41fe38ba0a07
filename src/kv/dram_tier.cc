#include "kv/dram_tier.h"

#include <string>

namespace granary::kv {
namespace {

// What the tier's own bookkeeping costs per block beyond the Block itself: the index's node and
// bucket, the policy's list or tree node.
constexpr uint64_t kIndexOverheadBytes = 96;

std::string Bytes(uint64_t n) { return std::to_string(n) + " bytes"; }

}  // namespace

DramTier::DramTier(const DramTierOptions& options, Arena* arena)
    : options_(options), arena_(arena), policy_(MakeEvictionPolicy(options.policy)) {
  const double budget = static_cast<double>(options.budget_bytes);
  const double high = std::min(1.0, std::max(0.0, options.high_watermark));
  const double low = std::min(high, std::max(0.0, options.low_watermark));
  high_bytes_ = static_cast<uint64_t>(budget * high);
  low_bytes_ = static_cast<uint64_t>(budget * low);
}

DramTier::~DramTier() = default;

uint64_t DramTier::ChargeOf(size_t key_size, uint64_t value_size) {
  const uint64_t pages = Arena::PagesFor(value_size);
  return sizeof(Block) + kIndexOverheadBytes + key_size +
         pages * (arena_format::kPageSize + sizeof(Extent));
}

Block* DramTier::Find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : it->second.get();
}

Result<Block*> DramTier::Reserve(std::string_view key, uint64_t value_size, uint64_t now,
                                 const SpillCheck& must_spill,
                                 std::vector<std::unique_ptr<Block>>* evicted) {
  const uint64_t charge = ChargeOf(key.size(), value_size);
  if (charge > options_.budget_bytes) {
    return Status::InvalidArgument(
        "a value of " + Bytes(value_size) + " does not fit in the pool's DRAM budget of " +
        Bytes(options_.budget_bytes) + ": raise dram_budget_bytes or store smaller blocks");
  }
  if (used_ + charge > high_bytes_) {
    UnparkExpired(now);
    while (used_ + charge > low_bytes_) {
      Block* v = policy_->Victim();
      if (v == nullptr) break;
      if (v->readers > 0) {
        LeaveCandidates(v);  // back when its last reader lets go (DropReader)
        continue;
      }
      if (Protected(v, now)) {
        Park(v);
        continue;
      }
      policy_->Evict(v);
      v->place = Block::Place::kNone;
      Unlink(v);
      --ready_blocks_;
      ++evictions_;
      auto it = index_.find(std::string_view(v->key));
      std::unique_ptr<Block> owned = std::move(it->second);
      index_.erase(it);
      if (must_spill && must_spill(owned->key)) {
        evicted->push_back(std::move(owned));  // charged until spilled (Forget)
      } else {
        Release(owned.get());
      }
    }
  }
  if (used_ + charge > options_.budget_bytes) {
    return Status::NoSpace("the KV pool's DRAM tier is full: " + Bytes(used_) + " of " +
                           Bytes(options_.budget_bytes) + " are held by " +
                           std::to_string(pinned_blocks_) + " pinned blocks (" +
                           Bytes(pinned_bytes_) + "), " + std::to_string(parked_.size()) +
                           " leased blocks, and blocks being read or written; unpin blocks, "
                           "retry when leases end, or raise dram_budget_bytes");
  }
  Result<std::vector<Extent>> extents = arena_->Allocate(value_size);
  if (!extents.ok()) {
    return Status::Internal("the KV pool's DRAM tier charges " + Bytes(used_ + charge) +
                            " of its budget of " + Bytes(options_.budget_bytes) +
                            " but its arena has no pages left for it (" +
                            extents.status().message() + "): a bug in the tier's accounting");
  }
  auto owned = std::make_unique<Block>();
  Block* b = owned.get();
  b->key.assign(key);
  b->size = value_size;
  b->extents = std::move(extents).value();
  b->charge = charge;
  b->id = next_id_++;
  used_ += charge;
  index_.emplace(std::string_view(b->key), std::move(owned));
  return b;
}

void DramTier::Commit(Block* b, Block* parent, uint64_t tick) {
  b->state = Block::State::kReady;
  b->last_tick = tick;
  b->accesses = 1;
  ++ready_blocks_;
  if (parent != nullptr) Link(b, parent);
  MaybeCandidate(b);
}

void DramTier::Abort(Block* b) {
  Release(b);
  index_.erase(std::string_view(b->key));
}

void DramTier::Touch(Block* b, uint64_t now, uint64_t tick, bool lease) {
  b->last_tick = tick;
  if (b->accesses < UINT32_MAX) ++b->accesses;
  if (lease && options_.lease_nanos > 0) {
    b->lease_until = now + options_.lease_nanos;
    // The newest lease ends last: to the back of the parked list.
    if (b->place == Block::Place::kParked) parked_.splice(parked_.end(), parked_, b->parked_pos);
  }
  if (b->place == Block::Place::kPolicy) policy_->Touched(b);
}

void DramTier::Link(Block* child, Block* parent) {
  if (child == parent || child->parent == parent) return;
  if (child->state != Block::State::kReady || parent->state != Block::State::kReady) return;
  if (child->removed || parent->removed) return;
  if (child->parent != nullptr) {
    // Relinked: its successors stay with it, only its own predecessor changes.
    Block* old = child->parent;
    if (child->prev_sibling != nullptr) {
      child->prev_sibling->next_sibling = child->next_sibling;
    } else {
      old->first_child = child->next_sibling;
    }
    if (child->next_sibling != nullptr) child->next_sibling->prev_sibling = child->prev_sibling;
    child->prev_sibling = child->next_sibling = nullptr;
    child->parent = nullptr;
    if (--old->cached_children == 0 && old->place == Block::Place::kPolicy) {
      policy_->ShapeChanged(old);
    }
  }
  LinkUnder(child, parent);
}

void DramTier::LinkUnder(Block* child, Block* parent) {
  child->parent = parent;
  child->next_sibling = parent->first_child;
  if (parent->first_child != nullptr) parent->first_child->prev_sibling = child;
  parent->first_child = child;
  if (++parent->cached_children == 1 && parent->place == Block::Place::kPolicy) {
    policy_->ShapeChanged(parent);
  }
}

void DramTier::Unlink(Block* b) {
  if (b->parent != nullptr) {
    Block* p = b->parent;
    if (b->prev_sibling != nullptr) {
      b->prev_sibling->next_sibling = b->next_sibling;
    } else {
      p->first_child = b->next_sibling;
    }
    if (b->next_sibling != nullptr) b->next_sibling->prev_sibling = b->prev_sibling;
    b->parent = b->prev_sibling = b->next_sibling = nullptr;
    if (--p->cached_children == 0 && p->place == Block::Place::kPolicy) policy_->ShapeChanged(p);
  }
  // Its successors lose their predecessor (amortized O(1): each was linked once).
  for (Block* c = b->first_child; c != nullptr;) {
    Block* next = c->next_sibling;
    c->parent = c->prev_sibling = c->next_sibling = nullptr;
    c = next;
  }
  b->first_child = nullptr;
  b->cached_children = 0;
}

void DramTier::DropReader(Block* b) {
  if (--b->readers > 0) return;
  if (b->removed) {
    Free(b);
    return;
  }
  MaybeCandidate(b);
}

Status DramTier::Pin(Block* b) {
  if (b->pinned) return Status::OK();
  if (pinned_bytes_ + b->charge > options_.pin_limit_bytes) {
    return Status::NoSpace("pinning this block would take the pool's pinned bytes to " +
                           Bytes(pinned_bytes_ + b->charge) + ", above its pin limit of " +
                           Bytes(options_.pin_limit_bytes) +
                           ": unpin other blocks or raise pin_limit_bytes");
  }
  LeaveCandidates(b);
  b->pinned = true;
  pinned_bytes_ += b->charge;
  ++pinned_blocks_;
  return Status::OK();
}

void DramTier::Unpin(Block* b) {
  if (!b->pinned) return;
  b->pinned = false;
  pinned_bytes_ -= b->charge;
  --pinned_blocks_;
  MaybeCandidate(b);
}

void DramTier::Remove(Block* b) {
  b->removed = true;  // before Unpin, so that it does not become a candidate again
  LeaveCandidates(b);
  Unlink(b);
  Unpin(b);
  --ready_blocks_;
  auto it = index_.find(std::string_view(b->key));
  std::unique_ptr<Block> owned = std::move(it->second);
  index_.erase(it);
  if (b->readers > 0) {
    zombies_.emplace(b, std::move(owned));
  } else {
    Release(b);
  }
}

void DramTier::Free(Block* b) {
  Release(b);
  zombies_.erase(b);
}

void DramTier::Forget(Block* evicted) { Release(evicted); }

void DramTier::Release(Block* b) {
  used_ -= b->charge;
  arena_->Free(b->extents);
  b->extents.clear();
}

void DramTier::MaybeCandidate(Block* b) {
  if (b->state != Block::State::kReady || b->removed || b->pinned || b->readers > 0 ||
      b->place != Block::Place::kNone) {
    return;
  }
  b->place = Block::Place::kPolicy;
  policy_->Add(b);
}

void DramTier::LeaveCandidates(Block* b) {
  if (b->place == Block::Place::kPolicy) {
    policy_->Erase(b);
  } else if (b->place == Block::Place::kParked) {
    parked_.erase(b->parked_pos);
  }
  b->place = Block::Place::kNone;
}

void DramTier::Park(Block* b) {
  policy_->Erase(b);
  b->place = Block::Place::kParked;
  // Keep the list in lease order; leases are usually granted in time order, so the walk from
  // the back is short.
  auto pos = parked_.end();
  while (pos != parked_.begin() && (*std::prev(pos))->lease_until > b->lease_until) --pos;
  b->parked_pos = parked_.insert(pos, b);
}

void DramTier::UnparkExpired(uint64_t now) {
  while (!parked_.empty() && parked_.front()->lease_until <= now) {
    Block* b = parked_.front();
    parked_.pop_front();
    b->place = Block::Place::kNone;
    MaybeCandidate(b);
  }
}

}  // namespace granary::kv
