// The on-disk record format of the blob engine (docs/formats/engine.md, "Records").
//
//   offset  size  field
//        0     4  magic 0x4C425247 ("GRBL" as bytes)
//        4     1  format version (1)
//        5     1  type: 1 put, 2 delete (tombstone), 3 padding
//        6     1  flags: bit 0 = more records of the same WriteBatch follow
//        7     1  reserved, 0
//        8     2  key length (0..1024)
//       10     2  reserved, 0
//       12     4  record size / 8 (header, key, value, checksums and padding)
//       16     8  value length
//       24     8  sequence number
//       32     8  group: sequence number of the first record of the group commit
//       40     4  value offset, from the record's start
//       44     4  header CRC32C over bytes 0..43 and the key
//       48     -  key; zero padding up to the value offset; value; one CRC32C per 64 KiB block of
//                 the value; zero padding to a multiple of 8 bytes (of 4096 for direct records)
//
// Records start at offsets that are multiples of 8. All integers are little-endian.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace granary::engine {

inline constexpr uint32_t kRecordMagic = 0x4C425247;
inline constexpr uint8_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 48;
inline constexpr uint64_t kValueBlockSize = 64 * 1024;

enum class RecordType : uint8_t { kPut = 1, kDelete = 2, kPadding = 3 };

inline constexpr uint8_t kFlagBatchContinues = 1;

struct RecordHeader {
  RecordType type = RecordType::kPut;
  uint8_t flags = 0;
  uint16_t key_len = 0;
  uint32_t size8 = 0;
  uint64_t value_len = 0;
  uint64_t sequence = 0;
  uint64_t group = 0;
  uint32_t value_offset = 0;

  uint64_t size() const { return uint64_t{size8} * 8; }
  bool continues_batch() const { return (flags & kFlagBatchContinues) != 0; }
};

inline uint64_t AlignUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

// Number of 64 KiB checksum blocks of a value.
inline uint64_t ValueBlocks(uint64_t value_len) {
  return (value_len + kValueBlockSize - 1) / kValueBlockSize;
}

// The layout a record of `key_len` and `value_len` will have. `direct` records keep their value
// on a 4096-byte boundary and are padded to a multiple of 4096 bytes.
struct RecordLayout {
  uint32_t value_offset = 0;
  uint64_t crcs_offset = 0;  // where the value's block checksums start
  uint64_t size = 0;         // total bytes, padding included
};
RecordLayout LayoutFor(size_t key_len, uint64_t value_len, bool direct);

// Writes the 48-byte header (with its CRC over the header and `key`) to `dst`.
void EncodeHeader(const RecordHeader& h, std::string_view key, char* dst);

// Parses and checks the header at `src` (kHeaderSize bytes) and the key that follows it
// (`key` must point at h.key_len bytes, i.e. src + kHeaderSize). Returns Corruption if the magic,
// version, fields or header CRC are wrong. `key` may be empty to check only the fixed fields,
// in which case the CRC is not checked; call it again with the key to finish.
Result<RecordHeader> DecodeHeader(const char* src, std::string_view key);

// Checks that `head`, the first `got` bytes of a record the index holds under `key`, is a put of
// that key whose record is `size` bytes long, and returns its header; Corruption saying what is
// wrong otherwise.
Result<RecordHeader> DecodeIndexedPut(const char* head, size_t got, std::string_view key,
                                      uint64_t size);

// Whether `src` (at least 4 bytes) starts with the record magic.
bool HasMagic(const char* src);

// Computes the value's block checksums into `crcs` (ValueBlocks(value.size()) entries, stored
// little-endian as they are on disk).
void ComputeValueCrcs(std::string_view value, uint32_t* crcs);

// Checks `data`, the bytes of blocks [first_block, first_block + n) of a value of `value_len`
// bytes, against the stored checksums `crcs` (entries for those blocks only).
Status VerifyValueBlocks(const char* data, uint64_t value_len, uint64_t first_block, uint64_t n,
                         const uint32_t* crcs);

}  // namespace granary::engine
