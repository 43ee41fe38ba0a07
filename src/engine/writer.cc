// The log writer: one thread that takes every waiting write request, lays their records out at
// the end of the active segment, writes them (small records through the page cache in one
// pwrite, large ones with direct I/O), makes them durable with one fdatasync (group commit),
// applies them to the index in log order and completes the requests.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "common/logging.h"
#include "engine/engine_impl.h"

namespace granary::engine {

thread_local const EngineImpl* EngineImpl::t_writing_engine = nullptr;

namespace {

// A group takes at most this many bytes of requests, so one huge batch does not hold back
// the latency of many small ones for long.
constexpr uint64_t kMaxGroupBytes = 64ull << 20;
constexpr uint64_t kZeroChunk = 256 * 1024;
// Groups larger than this on average turn pre-zeroing off.
constexpr uint64_t kPrezeroMaxGroupBytes = 1 << 20;

struct KeyHashHasher {
  size_t operator()(const KeyHash& h) const { return static_cast<size_t>(h.lo); }
};

// Appends a padding record of `size` bytes (a multiple of 8, at least kHeaderSize).
void AppendPadding(std::string* buf, uint64_t size, uint64_t sequence, uint64_t group) {
  size_t at = buf->size();
  buf->resize(at + size, '\0');
  RecordHeader h;
  h.type = RecordType::kPadding;
  h.size8 = static_cast<uint32_t>(size / 8);
  h.sequence = sequence;
  h.group = group;
  h.value_offset = kHeaderSize;
  EncodeHeader(h, {}, buf->data() + at);
}

}  // namespace

// Takes the queued requests that fit in one group. REQUIRES: queue_mu_ held.
void EngineImpl::TakeGroup(std::vector<WriteRequest*>* group) {
  uint64_t bytes = 0;
  while (!queue_.empty() && (group->empty() || bytes + queue_.front()->bytes <= kMaxGroupBytes)) {
    bytes += queue_.front()->bytes;
    group->push_back(queue_.front());
    queue_.pop_front();
  }
}

void EngineImpl::WriterLoop() {
  std::vector<WriteRequest*> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [&] { return (!queue_.empty() && !busy_) || (stopping_ && !busy_); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      TakeGroup(&group);
      busy_ = true;
    }
    ProcessGroup(group);
    group.clear();
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      busy_ = false;
    }
  }
}

bool EngineImpl::TryWriteInline(WriteRequest* req) {
  std::vector<WriteRequest*> group;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (busy_ || !queue_.empty() || stopping_) return false;
    busy_ = true;
  }
  group.push_back(req);
  ProcessGroup(group);  // completes req
  bool more;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    busy_ = false;
    more = !queue_.empty() || stopping_;
  }
  if (more) queue_cv_.notify_all();
  return true;
}

void EngineImpl::ProcessGroup(std::vector<WriteRequest*>& group) {
  // Marks this thread as inside the engine's write path while callbacks run.
  struct Mark {
    const EngineImpl* prev;
    explicit Mark(const EngineImpl* e) : prev(t_writing_engine) { t_writing_engine = e; }
    ~Mark() { t_writing_engine = prev; }
  } mark(this);
  Status st = writer_error_;
  if (st.ok()) {
    st = WriteGroup(group);
    if (!st.ok()) {
      GLOG_ERROR("blob engine in {}: write failed, refusing further writes: {}", dir_,
                 st.ToString());
      writer_error_ = Status(st.code(), "the blob engine in " + dir_ +
                                            " stopped writing after a failed write (" +
                                            st.message() + "); reopen it to recover");
    }
  }
  for (WriteRequest* req : group) req->done(st);  // req may be gone after this
}

Status EngineImpl::WriteGroup(std::vector<WriteRequest*>& group) {
  const uint64_t group_seq = next_sequence_;
  bool any_moves = false;
  uint64_t total = 0;
  for (WriteRequest* req : group) {
    total += req->bytes;
    for (const PendingRecord& r : req->records) any_moves |= r.move_from || r.tombstone_copy;
  }
  std::unordered_set<KeyHash, KeyHashHasher> touched;
  // Segments sealed by this group become compaction candidates only once the group's records
  // are in the index, or compaction could miss them.
  std::vector<std::shared_ptr<Segment>> sealed_now;

  uint64_t cur = active_->end;
  uint64_t buf_start = cur;
  buffer_.clear();
  bool wrote_any = false;

  // Tells the preparer not to zero where this group may write.
  auto reserve = [&](uint64_t upto) {
    if (upto <= prepared_.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> l(prep_mu_);
    prep_reserved_ = std::max(prep_reserved_, upto);
  };
  auto flush_buffer = [&]() -> Status {
    if (buffer_.empty()) return Status::OK();
    RETURN_IF_ERROR(active_->file->Write(buf_start, buffer_.data(), buffer_.size()));
    buf_start += buffer_.size();
    buffer_.clear();
    return Status::OK();
  };
  // Direct records are written at the end of the group (or before a segment roll), adjacent
  // ones in a single vectored write, so the device sees one large I/O instead of a series.
  std::vector<std::pair<uint64_t, std::span<const char>>> directs;
  auto flush_directs = [&]() -> Status {
    size_t i = 0;
    while (i < directs.size()) {
      std::vector<std::span<const char>> run{directs[i].second};
      uint64_t start = directs[i].first;
      uint64_t next = start + directs[i].second.size();
      size_t j = i + 1;
      for (; j < directs.size() && directs[j].first == next; ++j) {
        run.push_back(directs[j].second);
        next += directs[j].second.size();
      }
      RETURN_IF_ERROR(active_->file->WriteDirectV(start, run));
      i = j;
    }
    directs.clear();
    return Status::OK();
  };
  reserve(cur + total);

  for (WriteRequest* req : group) {
    if (req->flush_only) continue;
    // A batch never spans two segments, so that a torn batch is always the log's last one.
    if (cur > 0 && cur + req->bytes > options_.segment_size) {
      RETURN_IF_ERROR(flush_buffer());
      RETURN_IF_ERROR(flush_directs());
      active_->end = cur;
      sealed_now.push_back(active_);
      RETURN_IF_ERROR(RollSegment(total));
      cur = buf_start = 0;
    }
    for (PendingRecord& rec : req->records) {
      if (any_moves) {
        if (rec.move_from && (touched.count(rec.hash) || index_.Find(rec.hash) != rec.move_from)) {
          rec.skipped = true;
          continue;
        }
        if (rec.tombstone_copy && (touched.count(rec.hash) || index_.Find(rec.hash))) {
          rec.skipped = true;
          continue;
        }
        touched.insert(rec.hash);
      }
      RecordHeader h;
      h.type = rec.type;
      h.flags = rec.flags;
      h.value_len = rec.value.size();
      h.group = group_seq;
      if (rec.direct) {
        uint64_t aligned = AlignUp(cur, io::kDirectAlignment);
        if (aligned != cur && aligned - cur < kHeaderSize) aligned += io::kDirectAlignment;
        if (aligned != cur) AppendPadding(&buffer_, aligned - cur, next_sequence_++, group_seq);
        h.sequence = next_sequence_++;
        RETURN_IF_ERROR(flush_buffer());
        RecordLayout l = LayoutFor(rec.key.size(), rec.value.size(), true);
        h.size8 = static_cast<uint32_t>(l.size / 8);
        h.value_offset = l.value_offset;
        EncodeHeader(h, rec.key, rec.image.get());
        directs.emplace_back(aligned, std::span<const char>(rec.image.get(), l.size));
        rec.loc = Location{active_->id, static_cast<uint32_t>(aligned / 8), h.size8};
        cur = buf_start = aligned + l.size;
      } else {
        h.sequence = next_sequence_++;
        RecordLayout l = LayoutFor(rec.key.size(), rec.value.size(), false);
        h.size8 = static_cast<uint32_t>(l.size / 8);
        h.value_offset = l.value_offset;
        size_t at = buffer_.size();
        buffer_.resize(at + l.size);
        char* p = buffer_.data() + at;
        EncodeHeader(h, rec.key, p);
        std::memcpy(p + kHeaderSize, rec.key.data(), rec.key.size());
        // An empty value or checksum list may have a null data pointer: copy nothing then.
        if (!rec.value.empty()) std::memcpy(p + l.value_offset, rec.value.data(), rec.value.size());
        if (!rec.crcs.empty()) std::memcpy(p + l.crcs_offset, rec.crcs.data(), rec.crcs.size());
        uint64_t tail = l.crcs_offset + rec.crcs.size();
        std::memset(p + tail, 0, l.size - tail);
        rec.loc = Location{active_->id, static_cast<uint32_t>(cur / 8), h.size8};
        cur += l.size;
      }
      wrote_any = true;
    }
  }
  RETURN_IF_ERROR(flush_buffer());
  RETURN_IF_ERROR(flush_directs());
  bool flush_requested = std::any_of(group.begin(), group.end(),
                                     [](const WriteRequest* r) { return r->flush_only; });
  if ((wrote_any && options_.sync) || flush_requested) {
    RETURN_IF_ERROR(active_->file->Sync());
    counters_.syncs++;
  }
  const uint64_t written = cur - active_->end;
  active_->end = cur;

  uint64_t records = 0;
  for (WriteRequest* req : group) {
    for (const PendingRecord& rec : req->records) {
      if (rec.skipped) continue;
      ApplyToIndex(rec);
      records++;
    }
  }
  counters_.records += records;
  for (const std::shared_ptr<Segment>& seg : sealed_now) seg->sealed = true;
  if (!sealed_now.empty()) maint_cv_.notify_one();
  {
    std::lock_guard<std::mutex> l(applied_mu_);
    applied_segment_ = active_->id;
    applied_end_ = cur;
    applied_sequence_ = next_sequence_;
  }
  if (options_.checkpoint_interval_bytes > 0 &&
      (bytes_since_checkpoint_ += written) >= CheckpointThreshold()) {
    maint_cv_.notify_one();
  }
  // Pre-zeroing pays off for small synced groups, whose fdatasync it halves; large groups
  // amortise the size update themselves and would only compete with the zeros for bandwidth.
  group_bytes_avg_ = (group_bytes_avg_.load() * 7 + written) / 8;
  if (options_.preallocate_bytes > 0 && group_bytes_avg_ < kPrezeroMaxGroupBytes &&
      prepared_.load() < cur + options_.preallocate_bytes / 2) {
    {
      std::lock_guard<std::mutex> l(prep_mu_);
      prep_reserved_ = std::max(prep_reserved_, cur);
    }
    prep_cv_.notify_one();
  }
  return Status::OK();
}

void EngineImpl::AddLive(const Location& loc, int64_t delta) {
  std::shared_ptr<Segment> seg = FindSegment(loc.segment);
  if (seg) seg->live_bytes += delta;
}

// Applies one record, in log order, to the index and to the live-byte counts. Used by the
// writer and, identically, by recovery.
void EngineImpl::ApplyToIndex(const PendingRecord& rec) {
  switch (rec.type) {
    case RecordType::kPut: {
      std::optional<Location> old = index_.Upsert(rec.hash, rec.loc);
      if (old) AddLive(*old, -static_cast<int64_t>(old->size()));
      AddLive(rec.loc, static_cast<int64_t>(rec.loc.size()));
      break;
    }
    case RecordType::kDelete: {
      std::optional<Location> old = index_.Erase(rec.hash);
      if (old) AddLive(*old, -static_cast<int64_t>(old->size()));
      break;
    }
    case RecordType::kPadding:
      break;
  }
}

Status EngineImpl::RollSegment(uint64_t reserve) {
  // The old segment is made durable and cut to its records before the new one receives any,
  // so only the newest segment can ever hold a torn write.
  {
    // The preparer must not touch the segment once it is cut.
    std::lock_guard<std::mutex> l(prep_mu_);
    prep_segment_ = nullptr;
  }
  RETURN_IF_ERROR(active_->file->Truncate(active_->end));
  RETURN_IF_ERROR(active_->file->Sync());
  return OpenNewSegment(active_->id + 1, reserve);
}

Status EngineImpl::OpenNewSegment(uint32_t id, uint64_t reserve) {
  auto seg = std::make_shared<Segment>();
  seg->id = id;
  seg->path = SegmentPath(id);
  io::OpenOptions opts;
  opts.create = true;
  opts.exclusive = true;
  ASSIGN_OR_RETURN(std::unique_ptr<io::File> file, fs_->Open(seg->path, opts));
  seg->file = std::move(file);
  RETURN_IF_ERROR(fs_->SyncDir(dir_));
  {
    MutexLock l(&seg_mu_);
    segments_[id] = seg;
  }
  active_ = seg;
  {
    std::lock_guard<std::mutex> l(prep_mu_);
    prep_segment_ = seg;
    prep_reserved_ = reserve;
    prepared_ = 0;
  }
  prep_cv_.notify_one();
  return Status::OK();
}

// Keeps options_.preallocate_bytes of zeros written (and synced) ahead of the log's end in the
// active segment. Overwriting allocated, already-written blocks lets the writer's fdatasync
// flush data alone; appending would also journal the file's new size.
void EngineImpl::PreparerLoop() {
  const std::string zeros(kZeroChunk, '\0');
  std::unique_lock<std::mutex> l(prep_mu_);
  for (;;) {
    auto target = [&] {
      if (group_bytes_avg_.load() >= kPrezeroMaxGroupBytes) return uint64_t{0};  // large writes
      return std::min(options_.segment_size, prep_reserved_ + options_.preallocate_bytes);
    };
    prep_cv_.wait(l, [&] { return prep_stop_ || (prep_segment_ && prepared_ < target()); });
    if (prep_stop_) return;
    std::shared_ptr<Segment> seg = prep_segment_;
    bool wrote = false;
    while (!prep_stop_ && prep_segment_ == seg && prepared_ < target()) {
      uint64_t start = std::max(prepared_.load(), prep_reserved_);
      if (start >= options_.segment_size) {
        prepared_ = options_.segment_size;  // nothing left to zero here; else wait() spins
        break;
      }
      uint64_t n = std::min<uint64_t>(kZeroChunk, options_.segment_size - start);
      // Written under prep_mu_: the writer waits for this chunk before writing past prepared_.
      Status st = seg->file->Write(start, zeros.data(), n);
      if (!st.ok()) {
        GLOG_WARN("blob engine in {}: pre-zeroing stopped: {}", dir_, st.ToString());
        prepared_ = options_.segment_size;  // stop trying for this segment
        break;
      }
      prepared_ = start + n;
      wrote = true;
      // Let the writer in between chunks.
      l.unlock();
      l.lock();
    }
    if (wrote) {
      l.unlock();
      seg->file->Sync().IgnoreError();  // best effort: the writer's own sync covers it anyway
      l.lock();
    }
  }
}

}  // namespace granary::engine
