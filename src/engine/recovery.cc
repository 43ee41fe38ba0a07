// Opening an engine: load the newest index checkpoint, replay the log written after it, cut a
// torn tail, and report (never return) records that fail their checksums.
//
// Telling a torn tail from corruption: groups are written one at a time and each is synced
// before the next starts, so bad bytes can be "torn" (never acknowledged) only if they belong
// to the last group in the log. Every record carries the sequence number of its group's first
// record; if a valid record of a later group follows the bad bytes, they were durable once and
// are corruption; otherwise they are the torn tail and are cut.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "common/logging.h"
#include "engine/engine_impl.h"
#include "engine/segment_scanner.h"

namespace granary::engine {
namespace {

constexpr char kCheckpointName[] = "index.ckpt";

bool ParseSegmentName(const std::string& name, uint32_t* id) {
  unsigned v = 0;
  char tail[8] = {};
  if (name.size() != 16 || std::sscanf(name.c_str(), "seg-%8u.%3s", &v, tail) != 2) return false;
  if (std::string(tail) != "log") return false;
  *id = v;
  return true;
}

// The largest group number of any valid record in [from, end) of a segment.
uint64_t MaxGroupFrom(io::File* file, uint64_t from, uint64_t end) {
  SegmentScanner scanner(file, from, end, /*load_values=*/false);
  uint64_t max_group = 0;
  ScannedRecord r;
  for (;;) {
    SegmentScanner::Outcome o = scanner.NextReadable(&r);
    if (o != SegmentScanner::Outcome::kRecord && o != SegmentScanner::Outcome::kBadValue) break;
    max_group = std::max(max_group, r.header.group);
  }
  return max_group;
}

}  // namespace

Status EngineImpl::Recover() {
  RETURN_IF_ERROR(fs_->CreateDir(dir_));
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir_));
  std::vector<uint32_t> ids;
  for (const std::string& name : names) {
    uint32_t id;
    if (ParseSegmentName(name, &id)) {
      ids.push_back(id);
    } else if (name.size() > 4 && name.ends_with(".tmp")) {
      fs_->Remove(io::JoinPath(dir_, name)).IgnoreError();  // an interrupted checkpoint
    }
  }
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : ids) {
    auto seg = std::make_shared<Segment>();
    seg->id = id;
    seg->path = SegmentPath(id);
    ASSIGN_OR_RETURN(std::unique_ptr<io::File> file, fs_->Open(seg->path, io::OpenOptions{}));
    seg->file = std::move(file);
    ASSIGN_OR_RETURN(uint64_t size, seg->file->Size());
    seg->end = size;
    seg->sealed = true;
    MutexLock l(&seg_mu_);
    segments_[id] = std::move(seg);
  }

  // The checkpoint, if there is a good one, says where replay starts.
  uint32_t start_segment = ids.empty() ? 1 : ids.front();
  uint64_t start_offset = 0;
  Result<KeyIndex::CheckpointInfo> ckpt =
      index_.LoadCheckpoint(*fs_, io::JoinPath(dir_, kCheckpointName));
  if (ckpt.ok()) {
    start_segment = ckpt->replay_segment;
    start_offset = ckpt->replay_offset;
    next_sequence_ = std::max<uint64_t>(1, ckpt->next_sequence);
    index_.ForEach([&](const KeyHash&, const Location& loc) {
      AddLive(loc, static_cast<int64_t>(loc.size()));
    });
  } else {
    if (!ckpt.status().IsNotFound()) {
      GLOG_WARN("blob engine in {}: ignoring index checkpoint ({}); rebuilding from the log",
                dir_, ckpt.status().ToString());
    }
    index_.Clear();
    start_offset = 0;
    start_segment = ids.empty() ? 1 : ids.front();
  }

  ReplayState state;
  state.last_sequence = next_sequence_ - 1;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < start_segment) continue;
    uint64_t from = ids[i] == start_segment ? start_offset : 0;
    RETURN_IF_ERROR(ReplaySegment(FindSegment(ids[i]), from, i + 1 == ids.size(), &state));
  }

  // The process that wrote the newest segment may have died before syncing it: what replay
  // just made visible must be durable before anything is served or appended.
  if (!ids.empty()) RETURN_IF_ERROR(FindSegment(ids.back())->file->Sync());

  // Entries the replay did not confirm: a key whose checkpointed record sits in a segment that
  // compaction removed after deleting the key (its tombstone went with the oldest segment), or,
  // without sync, a record that never became durable. The key is gone either way.
  std::vector<KeyHash> gone;
  index_.ForEach([&](const KeyHash& h, const Location& loc) {
    std::shared_ptr<Segment> seg = FindSegment(loc.segment);
    if (!seg || loc.offset() + loc.size() > seg->end) gone.push_back(h);
  });
  for (const KeyHash& h : gone) {
    std::optional<Location> loc = index_.Erase(h);
    if (loc) AddLive(*loc, -static_cast<int64_t>(loc->size()));
  }
  if (!gone.empty()) {
    GLOG_WARN("blob engine in {}: dropped {} index entries whose records are gone", dir_,
              gone.size());
  }

  // A segment whose creation was never made durable (its directory sync failed before a crash)
  // would vanish at the next power loss with everything written into it from now on.
  RETURN_IF_ERROR(fs_->SyncDir(dir_));

  if (ids.empty()) {
    RETURN_IF_ERROR(OpenNewSegment(1, 0));
  } else {
    active_ = FindSegment(ids.back());
    active_->sealed = false;
  }
  std::lock_guard<std::mutex> l(applied_mu_);
  applied_segment_ = active_->id;
  applied_end_ = active_->end;
  applied_sequence_ = next_sequence_;
  return Status::OK();
}

Status EngineImpl::ReplaySegment(const std::shared_ptr<Segment>& seg, uint64_t start,
                                 bool is_last, ReplayState* state) {
  ASSIGN_OR_RETURN(uint64_t file_size, seg->file->Size());
  SegmentScanner scanner(seg->file.get(), start, file_size, /*load_values=*/true);
  // Records of a WriteBatch are applied only once its last record is seen.
  std::vector<PendingRecord> batch;
  std::vector<std::string> batch_keys;
  uint64_t batch_start = 0;

  auto apply_batch = [&] {
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].key = batch_keys[i];
      ApplyToIndex(batch[i]);
    }
    batch.clear();
    batch_keys.clear();
  };
  auto add = [&](uint64_t offset, const RecordHeader& h, std::string_view key) {
    next_sequence_ = std::max(next_sequence_, h.sequence + 1);
    state->last_sequence = h.sequence;
    state->last_group = h.group;
    if (h.type == RecordType::kPadding) return;
    if (batch.empty()) batch_start = offset;
    PendingRecord rec;
    rec.type = h.type;
    rec.hash = HashKey(key);
    rec.loc = Location{seg->id, static_cast<uint32_t>(offset / 8), h.size8};
    batch.push_back(std::move(rec));
    batch_keys.emplace_back(key);
    if (!h.continues_batch()) apply_batch();
  };
  auto cut = [&](uint64_t at, uint64_t last_nonzero) -> Status {
    at = batch.empty() ? at : std::min(at, batch_start);
    batch.clear();
    batch_keys.clear();
    uint64_t torn = last_nonzero > at ? last_nonzero - at : 0;
    if (torn > 0) {
      GLOG_WARN("blob engine in {}: cutting a torn tail of {} bytes at {}:{}", dir_, torn,
                seg->id, at);
    }
    counters_.truncated += torn;
    RETURN_IF_ERROR(seg->file->Truncate(at));
    RETURN_IF_ERROR(seg->file->Sync());
    seg->end = at;
    return Status::OK();
  };
  // The next valid header at or after `from` that moves the log forward. A header whose
  // sequence number goes backwards is a record image stored inside a value, not a record.
  auto next_header = [&](uint64_t from, uint64_t* last_nonzero) -> std::optional<uint64_t> {
    for (;;) {
      std::optional<uint64_t> at = scanner.FindNextHeader(from, last_nonzero);
      if (!at) return at;
      SegmentScanner peek_scanner(seg->file.get(), *at, file_size, /*load_values=*/false);
      ScannedRecord peek;
      (void)peek_scanner.Next(&peek);
      if (peek.header.sequence > state->last_sequence) return at;
      from = *at + 8;
    }
  };
  auto group_at = [&](uint64_t offset) {
    SegmentScanner peek_scanner(seg->file.get(), offset, file_size, /*load_values=*/false);
    ScannedRecord peek;
    (void)peek_scanner.Next(&peek);
    return peek.header.group;
  };

  ScannedRecord r;
  for (;;) {
    SegmentScanner::Outcome o = scanner.Next(&r);
    if (o == SegmentScanner::Outcome::kRecord) {
      counters_.replayed += r.header.size();
      add(r.offset, r.header, r.key);
      continue;
    }
    if (o == SegmentScanner::Outcome::kIOError) return scanner.status();
    if (o == SegmentScanner::Outcome::kEnd) {
      if (is_last && !batch.empty()) return cut(scanner.position(), scanner.position());
      apply_batch();
      seg->end = scanner.position();
      return Status::OK();
    }
    // Bad bytes at r.offset. Copy what is known of them first: looking for the next header
    // reuses the scanner's buffer, which r points into.
    const uint64_t bad_at = r.offset;
    const bool header_known = o == SegmentScanner::Outcome::kBadValue;
    const RecordHeader bad_header = r.header;
    const std::string bad_key(header_known ? r.key : std::string_view());
    uint64_t last_nonzero = bad_at;
    std::optional<uint64_t> next =
        next_header(header_known ? bad_at + bad_header.size() : bad_at + 8, &last_nonzero);
    if (header_known) last_nonzero = std::max(last_nonzero, bad_at + bad_header.size());
    bool torn;
    if (!is_last) {
      torn = false;  // sealed segments were synced before the next one was written
    } else if (!next) {
      torn = true;
    } else {
      // The group the bad bytes belong to: from their header, or else the group of the next
      // record, if that group began no later than where the bad bytes are.
      uint64_t bad_group = 0;  // 0: they belong to an earlier, synced group
      if (header_known) {
        bad_group = bad_header.group;
      } else if (uint64_t g = group_at(*next); g <= state->last_sequence + 1) {
        bad_group = g;
      }
      torn = bad_group != 0 && bad_group >= MaxGroupFrom(seg->file.get(), *next, file_size);
    }
    if (torn) return cut(bad_at, last_nonzero);

    counters_.corruptions++;
    GLOG_ERROR("blob engine in {}: corrupt record at {}:{} ({} bytes unreadable); the rest of "
               "the segment is still read",
               dir_, seg->id, bad_at, (next ? *next : file_size) - bad_at);
    if (header_known) {
      // Index it anyway, so that reads of its key report the corruption instead of returning
      // an older value.
      add(bad_at, bad_header, bad_key);
    }
    // A batch interrupted by corruption was durable (it is not the tail): keep what is left.
    apply_batch();
    if (!next) {
      seg->end = file_size;
      return Status::OK();
    }
    scanner.Seek(*next);
  }
}

}  // namespace granary::engine
