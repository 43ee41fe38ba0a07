// Background maintenance: index checkpoints and compaction.
//
// Compaction reads a sealed segment whose live fraction is low, re-appends its live records at
// the log's end through the writer (which copies a record only if the index still points at the
// old place, so a newer write of the key always wins), waits until the copies are durable, and
// then deletes the segment. Tombstones are copied forward while an older segment that may hold
// the deleted value still exists.
#include <algorithm>
#include <chrono>
#include <set>

#include "common/logging.h"
#include "engine/engine_impl.h"
#include "engine/segment_scanner.h"

namespace granary::engine {
namespace {
constexpr char kCheckpointName[] = "index.ckpt";
constexpr uint64_t kCopyBatchBytes = 8ull << 20;
}  // namespace

uint64_t EngineImpl::CheckpointThreshold() const {
  // A checkpoint rewrites the whole index, so write one only after at least twice its size of
  // log: checkpoints then cost at most half the log's bandwidth, and replay stays bounded.
  return std::max<uint64_t>(options_.checkpoint_interval_bytes, 2 * 28 * index_.size());
}

void EngineImpl::MaintenanceLoop() {
  std::set<uint32_t> failed;  // segments whose compaction failed: left for repair
  std::unique_lock<std::mutex> l(maint_mu_);
  while (!maint_stop_) {
    maint_cv_.wait_for(l, std::chrono::seconds(1));
    if (maint_stop_) return;
    l.unlock();
    if (options_.checkpoint_interval_bytes > 0 &&
        bytes_since_checkpoint_.load() >= CheckpointThreshold()) {
      Status st = DoCheckpoint();
      if (!st.ok()) GLOG_WARN("blob engine in {}: checkpoint failed: {}", dir_, st.ToString());
    }
    if (options_.background_compaction) {
      std::lock_guard<std::mutex> c(compact_mu_);
      for (const std::shared_ptr<Segment>& seg : CompactionCandidates()) {
        if (failed.count(seg->id)) continue;
        {
          std::lock_guard<std::mutex> m(maint_mu_);
          if (maint_stop_) break;
        }
        Status st = CompactSegment(seg);
        if (!st.ok()) {
          GLOG_WARN("blob engine in {}: compaction of segment {} failed: {}", dir_, seg->id,
                    st.ToString());
          if (st.IsCorruption()) failed.insert(seg->id);
        }
      }
    }
    l.lock();
  }
}

std::vector<std::shared_ptr<Segment>> EngineImpl::CompactionCandidates() const {
  std::vector<std::pair<double, std::shared_ptr<Segment>>> scored;
  for (const std::shared_ptr<Segment>& seg : SegmentsSnapshot()) {
    if (!seg->sealed) continue;
    uint64_t end = seg->end.load();
    double live = end == 0 ? 0.0 : static_cast<double>(seg->live_bytes.load()) / end;
    if (live < options_.compaction_threshold) scored.emplace_back(live, seg);
  }
  std::sort(scored.begin(), scored.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::shared_ptr<Segment>> out;
  for (auto& [live, seg] : scored) out.push_back(std::move(seg));
  return out;
}

Status EngineImpl::Compact() {
  if (closed_) return Status::Unavailable("the blob engine in " + dir_ + " is closed");
  std::lock_guard<std::mutex> c(compact_mu_);
  for (const std::shared_ptr<Segment>& seg : CompactionCandidates()) {
    RETURN_IF_ERROR(CompactSegment(seg));
  }
  return Status::OK();
}

Status EngineImpl::CompactSegment(const std::shared_ptr<Segment>& seg) {
  bool oldest;
  {
    ReaderLock l(&seg_mu_);
    oldest = segments_.empty() || segments_.begin()->first == seg->id;
  }
  const uint64_t end = seg->end.load();
  SegmentScanner scanner(seg->file.get(), 0, end, /*load_values=*/true);

  // Copies are gathered in a WriteBatch (which owns their bytes) and submitted in chunks.
  WriteBatch copies;
  std::vector<std::optional<Location>> sources;
  auto submit = [&]() -> Status {
    if (copies.empty()) return Status::OK();
    WriteRequest req;
    req.records.resize(copies.size());
    for (size_t i = 0; i < copies.size(); ++i) {
      const WriteBatch::Op& op = copies.ops()[i];
      PendingRecord& rec = req.records[i];
      rec.type = op.is_delete ? RecordType::kDelete : RecordType::kPut;
      rec.key = op.key;
      rec.value = op.value;
      rec.move_from = sources[i];
      rec.tombstone_copy = op.is_delete;
      RETURN_IF_ERROR(PrepareRecord(&rec));
      req.bytes += rec.LogBytes();
    }
    RETURN_IF_ERROR(Submit(&req));
    copies.Clear();
    sources.clear();
    return Status::OK();
  };

  ScannedRecord r;
  for (;;) {
    SegmentScanner::Outcome o = scanner.Next(&r);
    if (o == SegmentScanner::Outcome::kEnd) break;
    if (o == SegmentScanner::Outcome::kIOError) return scanner.status();
    if (o == SegmentScanner::Outcome::kBadHeader) {
      // Zeros to the end (pre-zeroed space left by a crash) are the end of the log.
      uint64_t last_nonzero = r.offset;
      if (!scanner.FindNextHeader(r.offset + 8, &last_nonzero) && last_nonzero <= r.offset) break;
    }
    if (o == SegmentScanner::Outcome::kBadHeader || o == SegmentScanner::Outcome::kBadValue) {
      // Keep the segment, and the evidence, for repair from another replica: copying a bad
      // record would give it fresh checksums over wrong bytes.
      return Status::Corruption("segment " + std::to_string(seg->id) + " has a bad record at " +
                                std::to_string(r.offset) + "; not compacting it");
    }
    if (r.header.type == RecordType::kPadding) continue;
    KeyHash h = HashKey(r.key);
    if (r.header.type == RecordType::kPut) {
      Location here{seg->id, static_cast<uint32_t>(r.offset / 8), r.header.size8};
      if (index_.Find(h) != here) continue;  // superseded or deleted
      copies.Put(r.key, r.value);
      sources.push_back(here);
    } else if (!oldest && !index_.Find(h)) {
      copies.Delete(r.key);
      sources.push_back(std::nullopt);
    }
    if (copies.ApproximateBytes() >= kCopyBatchBytes) RETURN_IF_ERROR(submit());
  }
  RETURN_IF_ERROR(submit());
  // Copies must be durable before the originals go.
  RETURN_IF_ERROR(Flush());
  if (seg->live_bytes.load() != 0) {
    return Status::Internal("segment " + std::to_string(seg->id) + " still has " +
                            std::to_string(seg->live_bytes.load()) +
                            " live bytes after compaction");
  }
  {
    MutexLock l(&seg_mu_);
    segments_.erase(seg->id);
  }
  if (Status st = fs_->Remove(seg->path); !st.ok()) {
    // Keep it known: while its file exists it may hold values that tombstones still hide.
    MutexLock l(&seg_mu_);
    segments_[seg->id] = seg;
    return st;
  }
  RETURN_IF_ERROR(fs_->SyncDir(dir_));
  counters_.compactions++;
  counters_.reclaimed += end;
  GLOG_DEBUG("blob engine in {}: compacted segment {} ({} bytes)", dir_, seg->id, end);
  return Status::OK();
}

Status EngineImpl::Checkpoint() {
  if (closed_) return Status::Unavailable("the blob engine in " + dir_ + " is closed");
  RETURN_IF_ERROR(Flush());
  return DoCheckpoint();
}

// Writes a "fuzzy" checkpoint: the replay position is taken first, then the index is saved
// while writes go on. Replay from that position re-applies every later write in log order, so
// entries saved in a newer state than the position are simply set again.
Status EngineImpl::DoCheckpoint() {
  std::lock_guard<std::mutex> one_at_a_time(checkpoint_mu_);
  KeyIndex::CheckpointInfo info;
  {
    std::lock_guard<std::mutex> l(applied_mu_);
    info.replay_segment = applied_segment_;
    info.replay_offset = applied_end_;
    info.next_sequence = applied_sequence_;
  }
  bytes_since_checkpoint_ = 0;
  // Without sync, entries copied into the checkpoint may point at records not yet durable:
  // flush once every entry is copied, before the checkpoint replaces the old one. (Close()
  // calls this after the writer has stopped and synced.)
  std::function<Status()> flush;
  if (!options_.sync && writer_.joinable()) flush = [this] { return Flush(); };
  return index_.SaveCheckpoint(*fs_, io::JoinPath(dir_, kCheckpointName), info, flush);
}

}  // namespace granary::engine
