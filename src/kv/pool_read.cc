// kv::Pool reads: a DRAM hit takes a reader reference under the mutex and copies out of the arena
// outside it; a DRAM miss reads the disk tier and promotes the block back into DRAM. BatchLocate
// answers where blocks lie instead, for clients that copy them out of the arena themselves.
#include <cstring>
#include <future>

#include "kv/pool.h"

namespace granary::kv {
namespace {

Status BufferTooSmall(size_t have, size_t need) {
  return Status::InvalidArgument("the buffer of " + std::to_string(have) +
                                 " bytes is too small for the value of " + std::to_string(need) +
                                 " bytes");
}

Status Miss() { return Status::NotFound("not cached"); }

// One result per item: values[i] (moved out) where status[i] is OK, else status[i].
template <typename T>
std::vector<Result<T>> Outcomes(const std::vector<Status>& status, std::vector<T>& values) {
  std::vector<Result<T>> out;
  out.reserve(status.size());
  for (size_t i = 0; i < status.size(); ++i) {
    if (status[i].ok()) {
      out.emplace_back(std::move(values[i]));
    } else {
      out.emplace_back(status[i]);
    }
  }
  return out;
}

}  // namespace

Result<std::string> Pool::ReadDisk(std::string_view key) {
  Result<std::string> v = disk_->Get(key);
  if (v.ok()) return v;
  if (v.status().IsNotFound() || v.status().IsCorruption()) {
    if (v.status().IsCorruption()) {
      // A cache may lose a block but never returns bad bytes: drop it and miss.
      disk_->Remove(key).IgnoreError();
    }
    MutexLock l(&mu_);
    ++stats_.misses;
    if (v.status().IsCorruption()) ++stats_.disk_corruptions;
    return Miss();
  }
  return v.status();
}

Result<Pool::Fetched> Pool::Fetch(std::string_view key, std::string_view predecessor) {
  RETURN_IF_ERROR(CheckKvKey(key));
  {
    MutexLock l(&mu_);
    if (closed_) return Status::Unavailable("the KV pool is closed");
    ++tick_;
    Block* b = dram_.Find(key);
    if (b != nullptr && b->state == Block::State::kReady) {
      dram_.Touch(b, Now(), tick_, /*lease=*/true);
      if (!predecessor.empty()) {
        if (Block* p = ParentFor(key, predecessor)) dram_.Link(b, p);
      }
      dram_.AddReader(b);
      ++stats_.dram_hits;
      return Fetched{b, false, {}};
    }
    if (disk_ == nullptr) {
      ++stats_.misses;
      return Miss();
    }
  }
  Result<std::string> v = ReadDisk(key);
  if (!v.ok()) return v.status();
  Fetched f;
  f.from_disk = true;
  f.value = std::move(v).value();
  f.block = Promote(key, f.value, predecessor);
  return f;
}

Block* Pool::Promote(std::string_view key, std::string_view value, std::string_view predecessor) {
  std::vector<std::unique_ptr<Block>> evicted;
  Block* b = nullptr;
  std::promise<void> done;
  {
    MutexLock l(&mu_);
    ++stats_.disk_hits;
    Block* existing = dram_.Find(key);
    if (existing != nullptr) {
      // Promoted or put by another thread meanwhile; a pending block is not readable yet.
      if (existing->state != Block::State::kReady) return nullptr;
      dram_.Touch(existing, Now(), tick_, /*lease=*/true);
      dram_.AddReader(existing);
      return existing;
    }
    Result<Block*> r = dram_.Reserve(key, value.size(), Now(), SpillPredicate(), &evicted);
    if (r.ok()) {
      b = *r;
      b->settled = done.get_future().share();  // a put of the key meanwhile waits for it
    }
  }
  // Pending: no other thread reads or frees the block.
  if (b != nullptr) arena_->CopyIn(b->extents, value);
  FinishEvictions(std::move(evicted));
  if (b != nullptr) {
    MutexLock l(&mu_);
    dram_.Commit(b, ParentFor(key, predecessor), tick_);
    ++stats_.promotions;
    dram_.Touch(b, Now(), tick_, /*lease=*/true);
    dram_.AddReader(b);
  }
  done.set_value();
  return b;
}

Result<std::string> Pool::Get(std::string_view key) {
  ASSIGN_OR_RETURN(Fetched f, Fetch(key, {}));
  if (f.from_disk) {
    if (f.block != nullptr) ReleaseReader(f.block);
    return std::move(f.value);
  }
  std::string out(f.block->size, '\0');
  arena_->CopyOut(f.block->extents, out);
  ReleaseReader(f.block);
  return out;
}

Result<size_t> Pool::GetInto(std::string_view key, std::span<char> dst) {
  ASSIGN_OR_RETURN(Fetched f, Fetch(key, {}));
  const size_t size = f.from_disk ? f.value.size() : f.block->size;
  Status st = size <= dst.size() ? Status::OK() : BufferTooSmall(dst.size(), size);
  if (st.ok()) {
    if (f.from_disk) {
      std::memcpy(dst.data(), f.value.data(), size);
    } else {
      arena_->CopyOut(f.block->extents, dst);
    }
  }
  if (f.block != nullptr) ReleaseReader(f.block);
  if (!st.ok()) return st;
  return size;
}

Result<BlockView> Pool::Acquire(std::string_view key) {
  ASSIGN_OR_RETURN(Fetched f, Fetch(key, {}));
  if (f.block == nullptr) return BlockView(std::move(f.value));  // not promoted: the copy read
  return BlockView(this, f.block);
}

void Pool::LookUpChain(std::span<const std::string_view> keys, std::vector<Status>& status,
                       std::vector<bool>& try_disk,
                       const std::function<void(size_t, Block*)>& hit) {
  MutexLock l(&mu_);
  if (closed_) {
    for (Status& st : status) st = Status::Unavailable("the KV pool is closed");
    return;
  }
  const uint64_t tick = ++tick_;
  const uint64_t now = Now();
  Block* prev = nullptr;
  for (size_t i = 0; i < keys.size(); ++i) {
    Block* b = status[i].ok() ? dram_.Find(keys[i]) : nullptr;
    if (b == nullptr || b->state != Block::State::kReady) {
      prev = nullptr;
      if (!status[i].ok()) continue;
      if (disk_) {
        try_disk[i] = true;
      } else {
        ++stats_.misses;
        status[i] = Miss();
      }
      continue;
    }
    dram_.Touch(b, now, tick, /*lease=*/true);
    if (prev != nullptr) dram_.Link(b, prev);
    prev = b;
    ++stats_.dram_hits;
    hit(i, b);
  }
}

std::vector<Result<size_t>> Pool::BatchGetInto(std::span<const std::string_view> keys,
                                               std::span<const std::span<char>> buffers) {
  const size_t n = keys.size();
  std::vector<Status> status(n);
  std::vector<Block*> held(n, nullptr);
  std::vector<bool> try_disk(n, false);
  std::vector<size_t> sizes(n, 0);
  for (size_t i = 0; i < n; ++i) {
    status[i] = i < buffers.size() ? CheckKvKey(keys[i])
                                   : Status::InvalidArgument("no buffer for this key");
  }
  LookUpChain(keys, status, try_disk, [&](size_t i, Block* b) REQUIRES(mu_) {
    if (b->size > buffers[i].size()) {
      status[i] = BufferTooSmall(buffers[i].size(), b->size);
      return;
    }
    dram_.AddReader(b);
    held[i] = b;
  });
  for (size_t i = 0; i < n; ++i) {
    if (held[i] == nullptr) continue;
    sizes[i] = held[i]->size;
    arena_->CopyOut(held[i]->extents, buffers[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    if (!try_disk[i]) continue;
    Result<std::string> v = ReadDisk(keys[i]);
    if (!v.ok()) {
      status[i] = v.status();
      continue;
    }
    if (v->size() > buffers[i].size()) {
      status[i] = BufferTooSmall(buffers[i].size(), v->size());
      continue;
    }
    sizes[i] = v->size();
    std::memcpy(buffers[i].data(), v->data(), v->size());
    held[i] = Promote(keys[i], *v, i > 0 ? keys[i - 1] : std::string_view());
  }
  {
    MutexLock l(&mu_);
    for (size_t i = 0; i < n; ++i) {
      if (held[i] != nullptr) dram_.DropReader(held[i]);
    }
  }
  return Outcomes(status, sizes);
}

BlockLocation Pool::LocationOf(const Block& b) const {
  BlockLocation loc;
  loc.size = b.size;
  loc.extents = b.extents;
  loc.generations.reserve(b.extents.size());
  for (const Extent& e : b.extents) loc.generations.push_back(arena_->GenerationAt(e.offset));
  return loc;
}

std::vector<Result<BlockLocation>> Pool::BatchLocate(
    std::span<const std::string_view> keys, std::vector<std::optional<std::string>>* unplaced) {
  const size_t n = keys.size();
  if (unplaced != nullptr) unplaced->assign(n, std::nullopt);
  std::vector<Status> status(n);
  std::vector<BlockLocation> where(n);
  std::vector<bool> try_disk(n, false);
  for (size_t i = 0; i < n; ++i) status[i] = CheckKvKey(keys[i]);
  LookUpChain(keys, status, try_disk,
              [&](size_t i, Block* b) REQUIRES(mu_) { where[i] = LocationOf(*b); });
  for (size_t i = 0; i < n; ++i) {
    if (!try_disk[i]) continue;
    Result<std::string> v = ReadDisk(keys[i]);
    if (!v.ok()) {
      status[i] = v.status();
      continue;
    }
    Block* b = Promote(keys[i], *v, i > 0 ? keys[i - 1] : std::string_view());
    if (b == nullptr) {
      if (unplaced != nullptr) (*unplaced)[i] = std::move(*v);
      status[i] = Status::Unavailable(
          "the block is on disk and the DRAM tier has no room for it (full of protected "
          "blocks): read it with Get or GetInto");
      continue;
    }
    MutexLock l(&mu_);
    where[i] = LocationOf(*b);
    dram_.DropReader(b);  // from now on only its lease protects it
  }
  return Outcomes(status, where);
}

}  // namespace granary::kv
