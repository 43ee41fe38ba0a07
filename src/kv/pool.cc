// kv::Pool: opening and closing, lookups without data (Exists, LongestPrefix), Remove, pins and
// statistics. Puts are in pool_write.cc, reads in pool_read.cc.
#include "kv/pool.h"

#include <utility>

namespace granary::kv {
namespace {

DramTierOptions DramOptionsOf(const PoolOptions& o) {
  DramTierOptions d;
  d.budget_bytes = o.dram_budget_bytes;
  d.high_watermark = o.high_watermark;
  d.low_watermark = o.low_watermark;
  d.policy = o.eviction;
  d.lease_nanos = o.lease.count() > 0 ? static_cast<uint64_t>(o.lease.count()) : 0;
  d.pin_limit_bytes = o.pin_limit_bytes;
  return d;
}

}  // namespace

Status CheckKvKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeySize) {
    return Status::InvalidArgument("a KV key must be 1 to " + std::to_string(kMaxKeySize) +
                                   " bytes long, not " + std::to_string(key.size()));
  }
  return Status::OK();
}

Result<std::unique_ptr<Pool>> Pool::Open(PoolOptions options) {
  const std::string where = "KV pool \"" + options.name + "\": ";
  if (options.dram_budget_bytes == 0) {
    return Status::InvalidArgument(where + "dram_budget_bytes must be above 0");
  }
  if (!(options.low_watermark > 0 && options.low_watermark <= options.high_watermark &&
        options.high_watermark <= 1.0)) {
    return Status::InvalidArgument(
        where + "watermarks must satisfy 0 < low <= high <= 1, not low " +
        std::to_string(options.low_watermark) + " high " + std::to_string(options.high_watermark));
  }
  if (!options.disk_dir.empty() && options.disk_budget_bytes == 0) {
    return Status::InvalidArgument(where + "a disk tier needs disk_budget_bytes above 0");
  }
  auto arena = Arena::Create(options.name, options.dram_budget_bytes);
  if (!arena.ok()) return arena.status().WithContext(where + "arena");
  if (options.prefault_dram) (*arena)->Prefault(/*in_background=*/true);
  std::unique_ptr<Pool> pool(new Pool(std::move(options), std::move(arena).value()));
  if (!pool->options_.disk_dir.empty()) {
    auto disk = DiskTier::Open(pool->options_.disk_dir, pool->options_.disk_budget_bytes,
                               pool->options_.engine);
    if (!disk.ok()) return disk.status().WithContext(where + "disk tier");
    pool->disk_ = std::move(disk).value();
  }
  return pool;
}

Pool::Pool(PoolOptions options, std::unique_ptr<Arena> arena)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : SystemClock::Default()),
      arena_(std::move(arena)),
      dram_(DramOptionsOf(options_), arena_.get()),
      memo_(options_.chain_memo_keys) {}

Pool::~Pool() { Close().IgnoreError(); }

Status Pool::Close() {
  {
    MutexLock l(&mu_);
    if (closed_) return Status::OK();
    closed_ = true;
  }
  return disk_ ? disk_->Close() : Status::OK();
}

Block* Pool::ParentFor(std::string_view key, std::string_view predecessor) {
  if (predecessor.empty()) {
    std::optional<std::string_view> remembered = memo_.PredecessorOf(key);
    if (!remembered) return nullptr;
    predecessor = *remembered;
  }
  Block* p = dram_.Find(predecessor);
  return p != nullptr && p->state == Block::State::kReady ? p : nullptr;
}

bool Pool::Exists(std::string_view key) {
  {
    MutexLock l(&mu_);
    if (closed_) return false;
    Block* b = dram_.Find(key);
    if (b != nullptr && b->state == Block::State::kReady) return true;
  }
  return disk_ != nullptr && disk_->Contains(key);
}

std::vector<bool> Pool::BatchExists(std::span<const std::string_view> keys) {
  std::vector<bool> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) out[i] = Exists(keys[i]);
  return out;
}

size_t Pool::LongestPrefix(std::span<const std::string_view> keys) {
  MutexLock l(&mu_);
  if (closed_) return 0;
  ++tick_;
  const uint64_t now = Now();
  size_t hits = 0;
  Block* prev = nullptr;
  for (; hits < keys.size(); ++hits) {
    Block* b = dram_.Find(keys[hits]);
    if (b != nullptr && b->state == Block::State::kReady) {
      dram_.Touch(b, now, tick_, /*lease=*/true);
      if (prev != nullptr) dram_.Link(b, prev);
      prev = b;
      continue;
    }
    if (disk_ == nullptr || !disk_->Contains(keys[hits])) break;
    // On disk only: linked when a read promotes it.
    if (hits > 0) memo_.Remember(keys[hits], keys[hits - 1]);
    prev = nullptr;
  }
  // The keys after the prefix are usually put next: remember where they belong.
  for (size_t i = std::max<size_t>(hits, 1); i < keys.size(); ++i) {
    memo_.Remember(keys[i], keys[i - 1]);
  }
  ++stats_.prefix_lookups;
  stats_.prefix_keys += keys.size();
  stats_.prefix_hits += hits;
  return hits;
}

Status Pool::Remove(std::string_view key) {
  RETURN_IF_ERROR(CheckKvKey(key));
  {
    MutexLock l(&mu_);
    if (closed_) return Status::Unavailable("the KV pool is closed");
    Block* b = dram_.Find(key);
    if (b != nullptr && b->state == Block::State::kReady) dram_.Remove(b);
  }
  return disk_ ? disk_->Remove(key) : Status::OK();
}

Status Pool::Pin(std::string_view key) {
  RETURN_IF_ERROR(CheckKvKey(key));
  Result<Fetched> f = Fetch(key, {});
  if (!f.ok()) return f.status();
  if (f->block == nullptr) {
    return Status::NoSpace(
        "cannot pin: the block is on disk and the DRAM tier has no room for "
        "it (full of protected blocks); retry when leases end");
  }
  Status st;
  {
    MutexLock l(&mu_);
    st = dram_.Pin(f->block);
    if (st.ok() && disk_) disk_->SetProtected(key, true);
  }
  ReleaseReader(f->block);
  return st;
}

Status Pool::Unpin(std::string_view key) {
  RETURN_IF_ERROR(CheckKvKey(key));
  MutexLock l(&mu_);
  if (closed_) return Status::Unavailable("the KV pool is closed");
  Block* b = dram_.Find(key);
  if (b != nullptr && b->state == Block::State::kReady && b->pinned) {
    dram_.Unpin(b);
    if (disk_) disk_->SetProtected(key, false);
  }
  return Status::OK();
}

PoolStats Pool::Stats() const {
  PoolStats s;
  {
    MutexLock l(&mu_);
    s = stats_;
    s.dram_blocks = dram_.ready_blocks();
    s.dram_bytes = dram_.used_bytes();
    s.dram_budget_bytes = dram_.budget_bytes();
    s.dram_evictions = dram_.evictions();
    s.pinned_blocks = dram_.pinned_blocks();
    s.pinned_bytes = dram_.pinned_bytes();
    s.parked_blocks = dram_.parked_blocks();
  }
  if (disk_) {
    DiskTierStats d = disk_->Stats();
    s.disk_blocks = d.blocks;
    s.disk_bytes = d.bytes;
    s.disk_budget_bytes = d.budget_bytes;
    s.disk_evictions = d.evictions;
  }
  return s;
}

void Pool::ReleaseReader(Block* b) {
  MutexLock l(&mu_);
  dram_.DropReader(b);
}

BlockView::BlockView(BlockView&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      block_(std::exchange(other.block_, nullptr)),
      copy_(std::move(other.copy_)),
      has_copy_(std::exchange(other.has_copy_, false)) {}

BlockView& BlockView::operator=(BlockView&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::exchange(other.pool_, nullptr);
    block_ = std::exchange(other.block_, nullptr);
    copy_ = std::move(other.copy_);
    has_copy_ = std::exchange(other.has_copy_, false);
  }
  return *this;
}

std::vector<std::span<const char>> BlockView::pieces() const {
  std::vector<std::span<const char>> out;
  if (has_copy_ && !copy_.empty()) out.emplace_back(copy_.data(), copy_.size());
  if (block_ == nullptr) return out;
  out.reserve(block_->extents.size());
  for (const Extent& e : block_->extents) {
    out.emplace_back(pool_->arena_->At(e.offset), e.length);
  }
  return out;
}

size_t BlockView::size() const {
  if (has_copy_) return copy_.size();
  return block_ != nullptr ? block_->size : 0;
}

void BlockView::Release() {
  if (pool_ != nullptr) pool_->ReleaseReader(block_);
  pool_ = nullptr;
  block_ = nullptr;
  copy_.clear();
  copy_.shrink_to_fit();
  has_copy_ = false;
}

}  // namespace granary::kv
