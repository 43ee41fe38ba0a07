// kv::Pool puts: reserve DRAM (the values' arena pages) under the mutex, copy the values into the
// arena and write them through to the disk tier outside it, then make the blocks readable.
#include <algorithm>
#include <cstring>

#include "kv/pool.h"

namespace granary::kv {

Status Pool::Put(std::string_view key, std::string_view value) {
  KeyValue item{key, value};
  return std::move(BatchPut(std::span<const KeyValue>(&item, 1))[0]);
}

std::vector<Status> Pool::BatchPut(std::span<const KeyValue> items) {
  const size_t n = items.size();
  std::vector<Status> out(n);
  // Items whose key another put is storing: retried once it has settled.
  std::vector<std::shared_future<void>> waits(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = CheckKvKey(items[i].key);
    if (out[i].ok() && items[i].value.size() > engine::kMaxValueSize) {
      out[i] = Status::InvalidArgument("a KV value may be at most " +
                                       std::to_string(engine::kMaxValueSize) + " bytes, not " +
                                       std::to_string(items[i].value.size()));
    }
  }
  // A batch larger than what DRAM can hold pending at once is stored in several rounds.
  for (size_t begin = 0; begin < n;) begin = PutRound(items, begin, &out, &waits);
  for (size_t i = 0; i < n; ++i) {
    if (!waits[i].valid()) continue;
    waits[i].wait();
    out[i] = Put(items[i].key, items[i].value);
  }
  return out;
}

size_t Pool::PutRound(std::span<const KeyValue> items, size_t begin, std::vector<Status>* out,
                      std::vector<std::shared_future<void>>* waits) {
  const size_t n = items.size();
  std::vector<Block*> reserved(n, nullptr);
  std::vector<std::unique_ptr<Block>> evicted;
  std::promise<void> done;
  std::shared_future<void> settled = done.get_future().share();
  size_t end = begin;
  uint64_t tick = 0;
  bool any_reserved = false;
  {
    MutexLock l(&mu_);
    if (closed_) {
      for (size_t i = begin; i < n; ++i) (*out)[i] = Status::Unavailable("the KV pool is closed");
      return n;
    }
    tick = ++tick_;
    const uint64_t now = Now();
    for (; end < n; ++end) {
      const size_t i = end;
      if (!(*out)[i].ok()) continue;
      const KeyValue& item = items[i];
      if (Block* b = dram_.Find(item.key); b != nullptr) {
        if (b->state == Block::State::kPending) {
          (*waits)[i] = b->settled;
        } else if (b->size != item.value.size()) {
          (*out)[i] = Status::AlreadyExists("the KV pool already holds this key with a value of " +
                                            std::to_string(b->size) +
                                            " bytes (values are immutable): remove it first");
        } else {
          dram_.Touch(b, now, tick, /*lease=*/false);
        }
        continue;
      }
      if (disk_) {
        if (std::optional<uint64_t> size = disk_->SizeOf(item.key)) {
          if (*size != item.value.size()) {
            (*out)[i] = Status::AlreadyExists(
                "the KV pool already holds this key with a value of " + std::to_string(*size) +
                " bytes (values are immutable): remove it first");
          } else {
            disk_->Demote(item.key);  // a use of the disk copy
          }
          continue;
        }
      }
      Result<Block*> r =
          dram_.Reserve(item.key, item.value.size(), now, SpillPredicate(), &evicted);
      if (!r.ok()) {
        // Full of this round's own pending blocks: store them, then go on.
        if (r.status().code() == Code::kNoSpace && any_reserved) break;
        (*out)[i] = r.status();
        ++stats_.put_failures;
        continue;
      }
      (*r)->settled = settled;
      reserved[i] = *r;
      any_reserved = true;
    }
  }

  // The reserved blocks are pending: no other thread reads or frees them.
  for (size_t i = begin; i < end; ++i) {
    if (reserved[i] != nullptr) arena_->CopyIn(reserved[i]->extents, items[i].value);
  }
  FinishEvictions(std::move(evicted));
  std::vector<Status> written(n);
  if (disk_ && any_reserved) {
    std::vector<DiskTier::Item> disk_items;
    std::vector<size_t> index;
    for (size_t i = begin; i < end; ++i) {
      if (reserved[i] == nullptr) continue;
      disk_items.push_back({items[i].key, items[i].value});
      index.push_back(i);
    }
    std::vector<Status> st = disk_->PutBatch(disk_items);
    for (size_t j = 0; j < index.size(); ++j) written[index[j]] = std::move(st[j]);
  }

  {
    MutexLock l(&mu_);
    for (size_t i = begin; i < end; ++i) {
      Block* b = reserved[i];
      if (b == nullptr) continue;
      if (!written[i].ok()) {
        dram_.Abort(b);
        (*out)[i] = written[i].WithContext("disk tier");
        ++stats_.put_failures;
        continue;
      }
      dram_.Commit(b, ParentFor(items[i].key, i > 0 ? items[i - 1].key : std::string_view()), tick);
      ++stats_.puts;
      stats_.put_bytes += items[i].value.size();
    }
    // The batch is a chain: link each stored block after the one before it.
    for (size_t i = std::max<size_t>(begin, 1); i < end; ++i) {
      if (reserved[i] != nullptr || !(*out)[i].ok() || (*waits)[i].valid()) continue;
      Block* b = dram_.Find(items[i].key);
      Block* p = dram_.Find(items[i - 1].key);
      if (b != nullptr && p != nullptr) dram_.Link(b, p);
    }
  }
  done.set_value();
  return end;
}

DramTier::SpillCheck Pool::SpillPredicate() {
  if (!disk_) return {};
  // Puts write through, so an evicted block is usually on disk already (this counts as a use of
  // the disk copy); the disk tier may have evicted its copy since, and then it is written again.
  return [this](std::string_view key) { return !disk_->Demote(key); };
}

void Pool::FinishEvictions(std::vector<std::unique_ptr<Block>> evicted) {
  if (evicted.empty()) return;
  // The evicted blocks keep their pages until Forget: their bytes are read in place.
  std::vector<std::string> scratch(evicted.size());
  std::vector<DiskTier::Item> spills;
  for (size_t i = 0; i < evicted.size(); ++i) {
    spills.push_back({evicted[i]->key, ValueOf(*evicted[i], &scratch[i])});
  }
  uint64_t spilled = 0;
  for (const Status& st : disk_->PutBatch(spills)) spilled += st.ok() ? 1 : 0;
  MutexLock l(&mu_);
  for (const auto& b : evicted) dram_.Forget(b.get());
  stats_.spills += spilled;
}

std::string_view Pool::ValueOf(const Block& b, std::string* scratch) const {
  if (b.extents.empty()) return {};
  if (b.extents.size() == 1) return {arena_->At(b.extents[0].offset), b.size};
  scratch->resize(b.size);
  arena_->CopyOut(b.extents, *scratch);
  return *scratch;
}

}  // namespace granary::kv
