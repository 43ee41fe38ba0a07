#include "kv/disk_tier.h"

#include <algorithm>
#include <tuple>

#include "common/logging.h"
#include "engine/format.h"

namespace granary::kv {

Result<std::unique_ptr<DiskTier>> DiskTier::Open(const std::string& dir, uint64_t budget_bytes,
                                                 engine::EngineOptions options) {
  if (budget_bytes == 0) {
    return Status::InvalidArgument("the KV pool's disk tier in " + dir +
                                   " has a budget of 0 bytes: set disk_budget_bytes");
  }
  options.sync = true;  // a put is acknowledged only once durable
  ASSIGN_OR_RETURN(std::unique_ptr<engine::BlobEngine> eng,
                   engine::BlobEngine::Open(dir, std::move(options)));
  std::unique_ptr<DiskTier> tier(new DiskTier(std::move(eng), budget_bytes));

  // Rebuild the accounting: oldest write first, so that it is the first evicted.
  std::vector<std::tuple<uint64_t, std::string, uint64_t>> found;  // sequence, key, size
  RETURN_IF_ERROR(tier->engine_->Scan([&](std::string_view key, const engine::BlobInfo& info) {
    found.emplace_back(info.sequence, std::string(key), info.size);
    return true;
  }));
  std::sort(found.begin(), found.end());
  engine::WriteBatch batch;
  std::vector<std::string> victims;
  {
    MutexLock l(&tier->mu_);
    for (auto& [seq, key, size] : found) {
      auto [it, inserted] = tier->entries_.try_emplace(std::move(key));
      if (!inserted) continue;  // a key rewritten during the scan is reported twice
      Entry& e = it->second;
      e.key = &it->first;
      e.size = size;
      e.charge = ChargeOf(it->first.size(), size);
      e.state = State::kStored;
      tier->used_ += e.charge;
      ++tier->stored_;
      tier->ToMostRecent(&e);
    }
    tier->blocks_at_open_ = tier->stored_;
    // A budget lowered since the last run: evict down to it now.
    tier->MakeRoom(0, {}, &batch, &victims);
  }
  if (!batch.empty()) {
    RETURN_IF_ERROR(tier->engine_->Write(batch));
    MutexLock l(&tier->mu_);
    for (const std::string& k : victims) tier->entries_.erase(k);
  }
  return tier;
}

DiskTier::DiskTier(std::unique_ptr<engine::BlobEngine> engine, uint64_t budget_bytes)
    : engine_(std::move(engine)), budget_bytes_(budget_bytes) {}

DiskTier::~DiskTier() { Close().IgnoreError(); }

uint64_t DiskTier::ChargeOf(size_t key_size, uint64_t value_size) {
  return engine::kHeaderSize + key_size + value_size;
}

void DiskTier::ToMostRecent(Entry* e) {
  if (e->is_protected) return;
  if (e->in_lru) {
    lru_.splice(lru_.end(), lru_, e->lru_pos);
  } else {
    e->lru_pos = lru_.insert(lru_.end(), e);
    e->in_lru = true;
  }
}

void DiskTier::LeaveLru(Entry* e) {
  if (!e->in_lru) return;
  lru_.erase(e->lru_pos);
  e->in_lru = false;
}

void DiskTier::MakeRoom(uint64_t charge, const std::shared_future<void>& settled,
                        engine::WriteBatch* batch, std::vector<std::string>* victims) {
  while (used_ + charge > budget_bytes_ && !lru_.empty()) {
    Entry* v = lru_.front();
    LeaveLru(v);
    v->state = State::kDeleting;
    v->settled = settled;
    used_ -= v->charge;
    --stored_;
    ++evictions_;
    batch->Delete(*v->key);
    victims->push_back(*v->key);
  }
}

std::vector<Status> DiskTier::PutBatch(std::span<const Item> items) {
  std::vector<Status> out(items.size());
  std::vector<size_t> todo(items.size());
  for (size_t i = 0; i < items.size(); ++i) todo[i] = i;
  while (!todo.empty()) {
    std::promise<void> done;
    std::shared_future<void> settled = done.get_future().share();
    std::vector<std::shared_future<void>> waits;
    std::vector<size_t> retry, mine;
    std::vector<std::string> victims;
    engine::WriteBatch batch;
    {
      MutexLock l(&mu_);
      for (size_t i : todo) {
        const Item& item = items[i];
        auto it = entries_.find(item.key);
        if (it != entries_.end()) {
          Entry& e = it->second;
          if (e.state == State::kStored) {
            if (e.size == item.value.size()) {
              ToMostRecent(&e);
            } else {
              out[i] = Status::AlreadyExists("the KV pool already holds this key with a value of " +
                                             std::to_string(e.size) +
                                             " bytes (values are immutable): remove it first");
            }
          } else {
            waits.push_back(e.settled);
            retry.push_back(i);
          }
          continue;
        }
        const uint64_t charge = ChargeOf(item.key.size(), item.value.size());
        if (charge > budget_bytes_) {
          out[i] = Status::InvalidArgument("a value of " + std::to_string(item.value.size()) +
                                           " bytes does not fit in the pool's disk budget of " +
                                           std::to_string(budget_bytes_) +
                                           " bytes: raise disk_budget_bytes");
          continue;
        }
        MakeRoom(charge, settled, &batch, &victims);
        if (used_ + charge > budget_bytes_) {
          out[i] = Status::NoSpace("the KV pool's disk tier is full of pinned blocks (" +
                                   std::to_string(used_) + " of " + std::to_string(budget_bytes_) +
                                   " bytes): unpin blocks or raise disk_budget_bytes");
          continue;
        }
        auto [pos, inserted] = entries_.try_emplace(std::string(item.key));
        Entry& e = pos->second;
        e.key = &pos->first;
        e.size = item.value.size();
        e.charge = charge;
        e.state = State::kPending;
        e.settled = settled;
        used_ += charge;
        batch.Put(item.key, item.value);
        mine.push_back(i);
      }
    }
    Status st = batch.empty() ? Status::OK() : engine_->Write(batch);
    {
      MutexLock l(&mu_);
      if (!st.ok() && !victims.empty()) {
        // The deletes may not have reached the log; their records stay on disk uncounted until
        // the next open rebuilds the accounting.
        GLOG_WARN("kv disk tier: eviction of {} blocks failed: {}", victims.size(), st.ToString());
      }
      for (const std::string& k : victims) entries_.erase(k);
      for (size_t i : mine) {
        auto it = entries_.find(items[i].key);
        if (st.ok()) {
          it->second.state = State::kStored;
          it->second.settled = {};
          ++stored_;
          ToMostRecent(&it->second);
        } else {
          used_ -= it->second.charge;
          entries_.erase(it);
          out[i] = st;
        }
      }
    }
    done.set_value();
    for (auto& w : waits) w.wait();
    todo = std::move(retry);
  }
  return out;
}

Status DiskTier::Put(std::string_view key, std::string_view value) {
  Item item{key, value};
  return std::move(PutBatch(std::span<const Item>(&item, 1))[0]);
}

Result<std::string> DiskTier::Get(std::string_view key) {
  {
    MutexLock l(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.state != State::kStored) {
      return Status::NotFound("not in the disk tier");
    }
    ToMostRecent(&it->second);
  }
  return engine_->Get(key);
}

std::optional<uint64_t> DiskTier::SizeOf(std::string_view key) const {
  MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::kStored) return std::nullopt;
  return it->second.size;
}

bool DiskTier::Demote(std::string_view key) {
  MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::kStored) return false;
  ToMostRecent(&it->second);
  return true;
}

void DiskTier::SetProtected(std::string_view key, bool on) {
  MutexLock l(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::kStored) return;
  Entry& e = it->second;
  if (e.is_protected == on) return;
  if (on) {
    LeaveLru(&e);
    e.is_protected = true;
  } else {
    e.is_protected = false;
    ToMostRecent(&e);
  }
}

Status DiskTier::Remove(std::string_view key) {
  std::promise<void> done;
  {
    MutexLock l(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.state != State::kStored) return Status::OK();
    Entry& e = it->second;
    LeaveLru(&e);
    e.state = State::kDeleting;
    e.settled = done.get_future().share();
    used_ -= e.charge;
    --stored_;
  }
  Status st = engine_->Delete(key);
  {
    MutexLock l(&mu_);
    entries_.erase(entries_.find(key));
  }
  done.set_value();
  return st;
}

DiskTierStats DiskTier::Stats() const {
  MutexLock l(&mu_);
  DiskTierStats s;
  s.blocks = stored_;
  s.bytes = used_;
  s.budget_bytes = budget_bytes_;
  s.evictions = evictions_;
  s.blocks_at_open = blocks_at_open_;
  return s;
}

Status DiskTier::Close() { return engine_->Close(); }

}  // namespace granary::kv
