// The engine's reads of whole small records into the caller's memory, and its multi-key reads:
// MultiGet, Scan and Stats.
#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_map>

#include "common/logging.h"
#include "engine/engine_impl.h"
#include "engine/segment_scanner.h"

namespace granary::engine {

bool EngineImpl::ReadWholeInto(std::string_view key, const Location& loc, io::File& file,
                               char* out, uint64_t cap, uint64_t* value_len, BlobInfo* info) {
  // The record is its header and key, its value, and the value's block checksums padded to 8
  // bytes. Its size fixes the value's length to within the checksums and padding, so all but
  // those last few bytes of the value can land in `out` and the rest in `tail`.
  const uint64_t head_len = kHeaderSize + key.size();
  const uint64_t size = loc.size();
  if (size <= head_len) return false;
  const uint64_t after_head = size - head_len;
  const uint64_t max_blocks = after_head / kValueBlockSize + 1;
  if (after_head <= 4 * max_blocks + 8) return false;
  const uint64_t first = after_head - 4 * max_blocks - 8;  // at most the value's length
  char tail[64];
  std::array<uint32_t, 8> crcs;
  if (first > cap || after_head - first > sizeof(tail) || max_blocks > crcs.size()) return false;
  char head[kHeaderSize + kMaxKeySize];
  const std::span<char> pieces[3] = {{head, head_len}, {out, first}, {tail, after_head - first}};
  Result<size_t> got = file.ReadV(loc.offset(), pieces);
  if (!got.ok() || *got != size) return false;

  Result<RecordHeader> hr = DecodeIndexedPut(head, head_len, key, size);
  if (!hr.ok()) return false;
  const RecordHeader& h = *hr;
  if (h.value_offset != head_len || h.value_len < first || h.value_len > cap) return false;
  const uint64_t rest = h.value_len - first;
  const uint64_t blocks = ValueBlocks(h.value_len);
  if (rest + 4 * blocks > after_head - first) return false;
  std::memcpy(out + first, tail, rest);
  std::memcpy(crcs.data(), tail + rest, 4 * blocks);
  if (!VerifyValueBlocks(out, h.value_len, 0, blocks, crcs.data()).ok()) return false;
  *value_len = h.value_len;
  if (info) *info = BlobInfo{h.value_len, h.sequence};
  return true;
}

std::vector<Result<std::string>> EngineImpl::MultiGet(std::span<const std::string_view> keys) {
  std::vector<Result<std::string>> out(keys.size(), Status::NotFound("key not found"));
  // Small records are read whole, all in one submission per segment; large ones one by one.
  struct Pending {
    size_t index;
    Location loc;
    std::shared_ptr<Segment> seg;
    std::string buf;
  };
  std::vector<Pending> pending;
  pending.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty() || keys[i].size() > kMaxKeySize) {
      out[i] = Get(keys[i]);  // produces the right InvalidArgument
      continue;
    }
    std::optional<Location> loc = index_.Find(HashKey(keys[i]));
    if (!loc) continue;
    std::shared_ptr<Segment> seg = FindSegment(loc->segment);
    if (!seg || loc->size() > 256 * 1024) {
      out[i] = Get(keys[i]);
      continue;
    }
    pending.push_back(Pending{i, *loc, std::move(seg), std::string(loc->size(), '\0')});
  }
  std::unordered_map<Segment*, std::vector<io::ReadOp>> by_segment;
  std::unordered_map<Segment*, std::vector<size_t>> owners;
  for (size_t p = 0; p < pending.size(); ++p) {
    Pending& pd = pending[p];
    by_segment[pd.seg.get()].push_back(
        io::ReadOp{pd.loc.offset(), pd.buf.size(), pd.buf.data(), 0, {}});
    owners[pd.seg.get()].push_back(p);
  }
  for (auto& [seg, ops] : by_segment) {
    Status st = seg->file->ReadBatch(ops);
    const std::vector<size_t>& own = owners[seg];
    for (size_t j = 0; j < ops.size(); ++j) {
      Pending& pd = pending[own[j]];
      Status op_st = st.ok() ? ops[j].status : st;
      if (!op_st.ok() || ops[j].bytes_read != ops[j].n) {
        out[pd.index] = Get(keys[pd.index]);  // let the single-key path report or retry
        continue;
      }
      // Parse and verify the record already in memory.
      const char* rec = pd.buf.data();
      std::string_view key = keys[pd.index];
      Result<RecordHeader> h = DecodeIndexedPut(rec, pd.buf.size(), key, pd.loc.size());
      if (!h.ok()) {
        out[pd.index] = Get(keys[pd.index]);
        continue;
      }
      const char* value = rec + h->value_offset;
      const auto* crcs = reinterpret_cast<const uint32_t*>(value + h->value_len);
      Status vst = VerifyValueBlocks(value, h->value_len, 0, ValueBlocks(h->value_len), crcs);
      if (!vst.ok()) {
        out[pd.index] = Get(keys[pd.index]);  // reports the corruption
        continue;
      }
      out[pd.index] = std::string(value, h->value_len);
    }
  }
  return out;
}

Status EngineImpl::Scan(const std::function<bool(std::string_view, const BlobInfo&)>& visit) {
  if (closed_) return Status::Unavailable("the blob engine in " + dir_ + " is closed");
  // No compaction during a scan: a record it moved past the scan's position would be missed.
  std::lock_guard<std::mutex> no_compaction(compact_mu_);
  for (const std::shared_ptr<Segment>& seg : SegmentsSnapshot()) {
    SegmentScanner scanner(seg->file.get(), 0, seg->end.load(), /*load_values=*/false);
    ScannedRecord r;
    for (;;) {
      SegmentScanner::Outcome o = scanner.NextReadable(&r);
      if (o == SegmentScanner::Outcome::kEnd) break;
      if (o == SegmentScanner::Outcome::kIOError) return scanner.status();
      if (r.header.type != RecordType::kPut) continue;
      Location here{seg->id, static_cast<uint32_t>(r.offset / 8), r.header.size8};
      if (index_.Find(HashKey(r.key)) != here) continue;
      if (!visit(r.key, BlobInfo{r.header.value_len, r.header.sequence})) return Status::OK();
    }
  }
  return Status::OK();
}

EngineStats EngineImpl::Stats() {
  EngineStats s;
  for (const std::shared_ptr<Segment>& seg : SegmentsSnapshot()) {
    s.segments++;
    s.disk_bytes += seg->end.load();
    s.live_bytes += static_cast<uint64_t>(std::max<int64_t>(0, seg->live_bytes.load()));
  }
  s.live_blobs = index_.size();
  s.garbage_bytes = s.disk_bytes > s.live_bytes ? s.disk_bytes - s.live_bytes : 0;
  s.index_memory_bytes = index_.MemoryBytes();
  Result<uint64_t> free_space = fs_->FreeSpace(dir_);
  s.capacity_bytes = (free_space.ok() ? *free_space : 0) + s.disk_bytes;
  s.compactions = counters_.compactions;
  s.compacted_bytes_reclaimed = counters_.reclaimed;
  s.syncs = counters_.syncs;
  s.records_written = counters_.records;
  s.corruptions_detected = counters_.corruptions;
  s.replayed_bytes = counters_.replayed;
  s.truncated_bytes = counters_.truncated;
  return s;
}

}  // namespace granary::engine
