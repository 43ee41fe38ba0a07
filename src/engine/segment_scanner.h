// SegmentScanner: reads the records of one segment file in order, through a buffer, for
// recovery, Scan() and compaction. It never trusts a length it has not checked: a record is
// returned only if its header CRC holds, and, when values are verified, every value block CRC.
//
// Not thread-safe: one scanner per thread. The File must outlive it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/format.h"
#include "io/file_system.h"

namespace granary::engine {

struct ScannedRecord {
  uint64_t offset = 0;
  RecordHeader header;
  std::string_view key;    // valid until the next call
  std::string_view value;  // only when values are loaded; valid until the next call
};

class SegmentScanner {
 public:
  enum class Outcome {
    kRecord,    // `out` holds a valid record
    kEnd,       // no bytes left before `end`
    kBadHeader, // the bytes at out->offset are not a valid record header
    kBadValue,  // out holds a record whose header is valid but whose value fails its CRC
    kIOError,   // the file could not be read: see status()
  };

  // Scans [start, end) of `file`. With `load_values`, values are read, verified and returned.
  SegmentScanner(io::File* file, uint64_t start, uint64_t end, bool load_values);

  Outcome Next(ScannedRecord* out);

  // Like Next, but steps over bytes that do not hold a valid header to the next valid one, so
  // it never returns kBadHeader (kEnd when no valid header follows).
  Outcome NextReadable(ScannedRecord* out);

  // Moves to `pos` (a multiple of 8).
  void Seek(uint64_t pos) { pos_ = pos; }
  uint64_t position() const { return pos_; }

  // Looks for the next offset at or after `from` (multiple of 8) holding a record with a valid
  // header; nullopt if none before the end. Also reports the last offset before the end that
  // holds a non-zero byte, so callers can tell written garbage from pre-zeroed space.
  std::optional<uint64_t> FindNextHeader(uint64_t from, uint64_t* last_nonzero = nullptr);

  const Status& status() const { return status_; }

 private:
  // Makes [pos, pos + n) available in the buffer; false at end of range or on error.
  bool Fill(uint64_t pos, uint64_t n);
  const char* At(uint64_t pos) const { return buf_.data() + (pos - buf_start_); }
  bool ValidHeaderAt(uint64_t pos);

  io::File* file_;
  uint64_t pos_;
  uint64_t end_;
  bool load_values_;
  std::string buf_;
  uint64_t buf_start_ = 0;
  uint64_t buf_len_ = 0;
  Status status_;
};

}  // namespace granary::engine
