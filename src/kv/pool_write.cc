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
  std::vector<std::string_view> keys;
  std::vector<uint64_t> sizes;
  keys.reserve(items.size());
  sizes.reserve(items.size());
  for (const KeyValue& item : items) {
    keys.push_back(item.key);
    sizes.push_back(item.value.size());
  }
  // The values as one stream: item `at`, `offset` bytes into it.
  size_t at = 0;
  size_t offset = 0;
  auto read = [&](std::span<char> dst) -> Status {
    size_t filled = 0;
    while (filled < dst.size()) {
      while (at < items.size() && offset == items[at].value.size()) {
        ++at;
        offset = 0;
      }
      if (at == items.size()) return Status::Internal("read past the end of the batch's values");
      const size_t n = std::min(dst.size() - filled, items[at].value.size() - offset);
      std::memcpy(dst.data() + filled, items[at].value.data() + offset, n);
      filled += n;
      offset += n;
    }
    return Status::OK();
  };
  return BatchPutFrom(keys, sizes, read);
}

struct Pool::PutBatch {
  std::span<const std::string_view> keys;
  std::span<const uint64_t> sizes;
  const ValueReader& read;
  std::vector<Status> out;
  // Items whose key another put is storing: retried with the value kept once it has settled.
  std::vector<std::shared_future<void>> waits;
  std::vector<std::string> kept;
  Status stream;  // the reader's error, which ends the batch
  std::vector<char> skip;

  // Reads and drops the next `bytes` of the stream.
  Status Skip(uint64_t bytes) {
    if (skip.empty()) skip.resize(std::min<uint64_t>(bytes, 256 * 1024));
    while (bytes > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(bytes, skip.size()));
      RETURN_IF_ERROR(read(std::span<char>(skip.data(), n)));
      bytes -= n;
    }
    return Status::OK();
  }
};

std::vector<Status> Pool::BatchPutFrom(std::span<const std::string_view> keys,
                                       std::span<const uint64_t> sizes, const ValueReader& read) {
  const size_t n = keys.size();
  PutBatch batch{keys, sizes, read, std::vector<Status>(n), {}, {}, {}, {}};
  batch.waits.resize(n);
  batch.kept.resize(n);
  for (size_t i = 0; i < n; ++i) {
    batch.out[i] = i < sizes.size() ? CheckKvKey(keys[i])
                                    : Status::InvalidArgument("no size for this key");
    if (batch.out[i].ok() && sizes[i] > engine::kMaxValueSize) {
      batch.out[i] = Status::InvalidArgument("a KV value may be at most " +
                                             std::to_string(engine::kMaxValueSize) +
                                             " bytes, not " + std::to_string(sizes[i]));
    }
  }
  // A batch larger than what DRAM can hold pending at once is stored in several rounds.
  for (size_t begin = 0; begin < n;) begin = PutRound(batch, begin);
  for (size_t i = 0; i < n; ++i) {
    if (!batch.waits[i].valid()) continue;
    batch.waits[i].wait();
    batch.out[i] = Put(keys[i], batch.kept[i]);
  }
  return std::move(batch.out);
}

size_t Pool::PutRound(PutBatch& batch, size_t begin) {
  const size_t n = batch.keys.size();
  std::vector<Status>& out = batch.out;
  std::vector<Block*> reserved(n, nullptr);
  std::vector<std::unique_ptr<Block>> evicted;
  std::promise<void> done;
  std::shared_future<void> settled = done.get_future().share();
  size_t end = begin;
  uint64_t tick = 0;
  bool any_reserved = false;
  bool closed = false;
  {
    MutexLock l(&mu_);
    closed = closed_;
    tick = ++tick_;
    const uint64_t now = Now();
    for (; end < n && !closed; ++end) {
      const size_t i = end;
      if (!out[i].ok()) continue;
      const std::string_view key = batch.keys[i];
      const uint64_t size = batch.sizes[i];
      if (Block* b = dram_.Find(key); b != nullptr) {
        if (b->state == Block::State::kPending) {
          batch.waits[i] = b->settled;
        } else if (b->size != size) {
          out[i] = Status::AlreadyExists("the KV pool already holds this key with a value of " +
                                         std::to_string(b->size) +
                                         " bytes (values are immutable): remove it first");
        } else {
          dram_.Touch(b, now, tick, /*lease=*/false);
        }
        continue;
      }
      if (disk_) {
        if (std::optional<uint64_t> stored = disk_->SizeOf(key)) {
          if (*stored != size) {
            out[i] = Status::AlreadyExists(
                "the KV pool already holds this key with a value of " + std::to_string(*stored) +
                " bytes (values are immutable): remove it first");
          } else {
            disk_->Demote(key);  // a use of the disk copy
          }
          continue;
        }
      }
      Result<Block*> r = dram_.Reserve(key, size, now, SpillPredicate(), &evicted);
      if (!r.ok()) {
        // Full of this round's own pending blocks: store them, then go on.
        if (r.status().code() == Code::kNoSpace && any_reserved) break;
        out[i] = r.status();
        ++stats_.put_failures;
        continue;
      }
      (*r)->settled = settled;
      reserved[i] = *r;
      any_reserved = true;
    }
  }
  if (closed) {
    for (size_t i = begin; i < n; ++i) out[i] = Status::Unavailable("the KV pool is closed");
    end = n;
  }

  // The values of this round, in order: into the reserved blocks' pages (pending: no other
  // thread reads or frees them), kept for a retry, or dropped.
  for (size_t i = begin; i < end && batch.stream.ok(); ++i) {
    if (reserved[i] != nullptr) {
      for (const Extent& e : reserved[i]->extents) {
        batch.stream = batch.read(arena_->Writable(e));
        if (!batch.stream.ok()) break;
      }
    } else if (batch.waits[i].valid()) {
      batch.kept[i].resize(batch.sizes[i]);
      batch.stream = batch.read(batch.kept[i]);
    } else {
      batch.stream = batch.Skip(i < batch.sizes.size() ? batch.sizes[i] : 0);
    }
    if (!batch.stream.ok()) {
      // Nothing from here on is stored: the rest of the stream cannot be read.
      for (size_t j = i; j < n; ++j) {
        if (out[j].ok() || j == i) out[j] = batch.stream;
        batch.waits[j] = {};
      }
    }
  }
  FinishEvictions(std::move(evicted));
  std::vector<Status> written(n);
  std::vector<std::string> scratch(n);
  if (disk_ && any_reserved && batch.stream.ok()) {
    std::vector<DiskTier::Item> disk_items;
    std::vector<size_t> index;
    for (size_t i = begin; i < end; ++i) {
      if (reserved[i] == nullptr) continue;
      disk_items.push_back({batch.keys[i], ValueOf(*reserved[i], &scratch[i])});
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
      if (!batch.stream.ok() || !written[i].ok()) {
        dram_.Abort(b);
        out[i] = batch.stream.ok() ? written[i].WithContext("disk tier") : batch.stream;
        ++stats_.put_failures;
        continue;
      }
      const std::string_view predecessor = i > 0 ? batch.keys[i - 1] : std::string_view();
      dram_.Commit(b, ParentFor(batch.keys[i], predecessor), tick);
      ++stats_.puts;
      stats_.put_bytes += batch.sizes[i];
    }
    // The batch is a chain: link each stored block after the one before it.
    for (size_t i = std::max<size_t>(begin, 1); i < end; ++i) {
      if (reserved[i] != nullptr || !out[i].ok() || batch.waits[i].valid()) continue;
      Block* b = dram_.Find(batch.keys[i]);
      Block* p = dram_.Find(batch.keys[i - 1]);
      if (b != nullptr && p != nullptr) dram_.Link(b, p);
    }
  }
  done.set_value();
  return batch.stream.ok() ? end : n;
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
