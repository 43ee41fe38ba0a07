#include "engine/segment_scanner.h"

#include <algorithm>
#include <cstring>

namespace granary::engine {
namespace {
constexpr uint64_t kReadAhead = 1 << 20;
}  // namespace

SegmentScanner::SegmentScanner(io::File* file, uint64_t start, uint64_t end, bool load_values)
    : file_(file), pos_(start), end_(end), load_values_(load_values) {}

bool SegmentScanner::Fill(uint64_t pos, uint64_t n) {
  if (pos + n > end_) return false;
  if (pos >= buf_start_ && pos + n <= buf_start_ + buf_len_) return true;
  uint64_t want = std::min(end_ - pos, std::max<uint64_t>(n, kReadAhead));
  if (buf_.size() < want) buf_.resize(want);
  Result<size_t> got = file_->Read(pos, want, buf_.data());
  if (!got.ok()) {
    status_ = got.status();
    return false;
  }
  buf_start_ = pos;
  buf_len_ = *got;
  return buf_len_ >= n;
}

SegmentScanner::Outcome SegmentScanner::Next(ScannedRecord* out) {
  out->offset = pos_;
  if (pos_ + kHeaderSize > end_) return Outcome::kEnd;
  if (!Fill(pos_, kHeaderSize)) return status_.ok() ? Outcome::kEnd : Outcome::kIOError;
  Result<RecordHeader> fixed = DecodeHeader(At(pos_), {});
  if (!fixed.ok()) return Outcome::kBadHeader;
  const RecordHeader& h = *fixed;
  if (pos_ + h.size() > end_) return Outcome::kBadHeader;
  // Read the whole record when values are wanted, else the header and key only.
  uint64_t need = load_values_ ? h.size() : kHeaderSize + h.key_len;
  if (!Fill(pos_, need)) return status_.ok() ? Outcome::kBadHeader : Outcome::kIOError;
  std::string_view key(At(pos_) + kHeaderSize, h.key_len);
  Result<RecordHeader> full = DecodeHeader(At(pos_), key);
  if (!full.ok()) return Outcome::kBadHeader;
  out->header = *full;
  out->key = key;
  out->value = {};
  if (load_values_) {
    const char* rec = At(pos_);
    out->value = std::string_view(rec + h.value_offset, h.value_len);
    const auto* crcs = reinterpret_cast<const uint32_t*>(rec + h.value_offset + h.value_len);
    Status st = VerifyValueBlocks(out->value.data(), h.value_len, 0, ValueBlocks(h.value_len),
                                  crcs);
    if (!st.ok()) {
      pos_ += h.size();
      return Outcome::kBadValue;
    }
  }
  pos_ += h.size();
  return Outcome::kRecord;
}

SegmentScanner::Outcome SegmentScanner::NextReadable(ScannedRecord* out) {
  for (;;) {
    Outcome o = Next(out);
    if (o != Outcome::kBadHeader) return o;
    std::optional<uint64_t> next = FindNextHeader(out->offset + 8);
    if (!next) return status_.ok() ? Outcome::kEnd : Outcome::kIOError;
    Seek(*next);
  }
}

bool SegmentScanner::ValidHeaderAt(uint64_t pos) {
  if (!Fill(pos, kHeaderSize)) return false;
  Result<RecordHeader> fixed = DecodeHeader(At(pos), {});
  if (!fixed.ok() || pos + fixed->size() > end_) return false;
  if (!Fill(pos, kHeaderSize + fixed->key_len)) return false;
  std::string_view key(At(pos) + kHeaderSize, fixed->key_len);
  return DecodeHeader(At(pos), key).ok();
}

std::optional<uint64_t> SegmentScanner::FindNextHeader(uint64_t from, uint64_t* last_nonzero) {
  uint64_t pos = AlignUp(from, 8);
  while (pos + 8 <= end_ && Fill(pos, 8)) {
    // Walk the buffered window 8 bytes at a time; ValidHeaderAt may move the window, which
    // then starts at `pos`, so the bound is re-read every step.
    for (; pos + 8 <= buf_start_ + buf_len_; pos += 8) {
      uint64_t word;
      std::memcpy(&word, At(pos), 8);
      if (word != 0 && last_nonzero != nullptr) *last_nonzero = pos + 8;
      if (static_cast<uint32_t>(word) == kRecordMagic && ValidHeaderAt(pos)) return pos;
    }
  }
  return std::nullopt;
}

}  // namespace granary::engine
