#include "engine/format.h"

#include <cstring>

#include "common/crc32c.h"

namespace granary::engine {
namespace {

template <typename T>
void Store(char* dst, T v) {
  std::memcpy(dst, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
}

template <typename T>
T Load(const char* src) {
  T v;
  std::memcpy(&v, src, sizeof(T));
  return v;
}

constexpr size_t kHeaderCrcOffset = 44;

}  // namespace

RecordLayout LayoutFor(size_t key_len, uint64_t value_len, bool direct) {
  RecordLayout l;
  uint64_t head = kHeaderSize + key_len;
  l.value_offset = static_cast<uint32_t>(direct ? AlignUp(head, 4096) : head);
  l.crcs_offset = l.value_offset + value_len;
  uint64_t end = l.crcs_offset + 4 * ValueBlocks(value_len);
  l.size = AlignUp(end, direct ? 4096 : 8);
  return l;
}

void EncodeHeader(const RecordHeader& h, std::string_view key, char* dst) {
  Store<uint32_t>(dst + 0, kRecordMagic);
  Store<uint8_t>(dst + 4, kFormatVersion);
  Store<uint8_t>(dst + 5, static_cast<uint8_t>(h.type));
  Store<uint8_t>(dst + 6, h.flags);
  Store<uint8_t>(dst + 7, 0);
  Store<uint16_t>(dst + 8, static_cast<uint16_t>(key.size()));
  Store<uint16_t>(dst + 10, 0);
  Store<uint32_t>(dst + 12, h.size8);
  Store<uint64_t>(dst + 16, h.value_len);
  Store<uint64_t>(dst + 24, h.sequence);
  Store<uint64_t>(dst + 32, h.group);
  Store<uint32_t>(dst + 40, h.value_offset);
  uint32_t crc = crc32c::Extend(0, dst, kHeaderCrcOffset);
  crc = crc32c::Extend(crc, key.data(), key.size());
  Store<uint32_t>(dst + kHeaderCrcOffset, crc);
}

Result<RecordHeader> DecodeIndexedPut(const char* head, size_t got, std::string_view key,
                                      uint64_t size) {
  if (got < kHeaderSize) return Status::Corruption("record is truncated");
  ASSIGN_OR_RETURN(RecordHeader fixed, DecodeHeader(head, {}));
  if (fixed.key_len != key.size() || kHeaderSize + fixed.key_len > got) {
    return Status::Corruption("record does not hold the key it is indexed under");
  }
  std::string_view stored_key(head + kHeaderSize, fixed.key_len);
  ASSIGN_OR_RETURN(RecordHeader h, DecodeHeader(head, stored_key));
  if (stored_key != key) {
    return Status::Corruption("record does not hold the key it is indexed under");
  }
  if (h.type != RecordType::kPut || h.size() != size) {
    return Status::Corruption("indexed record is not a put of the expected size");
  }
  return h;
}

bool HasMagic(const char* src) { return Load<uint32_t>(src) == kRecordMagic; }

Result<RecordHeader> DecodeHeader(const char* src, std::string_view key) {
  if (!HasMagic(src)) return Status::Corruption("record magic missing");
  if (Load<uint8_t>(src + 4) != kFormatVersion) {
    return Status::Corruption("record format version " + std::to_string(Load<uint8_t>(src + 4)) +
                              " is not 1");
  }
  RecordHeader h;
  uint8_t type = Load<uint8_t>(src + 5);
  if (type < 1 || type > 3) return Status::Corruption("record type " + std::to_string(type));
  h.type = static_cast<RecordType>(type);
  h.flags = Load<uint8_t>(src + 6);
  h.key_len = Load<uint16_t>(src + 8);
  h.size8 = Load<uint32_t>(src + 12);
  h.value_len = Load<uint64_t>(src + 16);
  h.sequence = Load<uint64_t>(src + 24);
  h.group = Load<uint64_t>(src + 32);
  h.value_offset = Load<uint32_t>(src + 40);
  if (h.key_len > 1024 || h.value_offset < kHeaderSize + h.key_len ||
      h.value_len > (1ull << 40) ||
      h.size() < h.value_offset + h.value_len + 4 * ValueBlocks(h.value_len)) {
    return Status::Corruption("record header fields are inconsistent");
  }
  if (!key.empty() || h.key_len == 0) {
    if (key.size() != h.key_len) return Status::Corruption("record key length mismatch");
    uint32_t crc = crc32c::Extend(0, src, kHeaderCrcOffset);
    crc = crc32c::Extend(crc, key.data(), key.size());
    if (crc != Load<uint32_t>(src + kHeaderCrcOffset)) {
      return Status::Corruption("record header checksum mismatch");
    }
  }
  return h;
}

void ComputeValueCrcs(std::string_view value, uint32_t* crcs) {
  uint64_t blocks = ValueBlocks(value.size());
  for (uint64_t b = 0; b < blocks; ++b) {
    uint64_t start = b * kValueBlockSize;
    uint64_t n = std::min<uint64_t>(kValueBlockSize, value.size() - start);
    Store<uint32_t>(reinterpret_cast<char*>(crcs + b), crc32c::Value(value.data() + start, n));
  }
}

Status VerifyValueBlocks(const char* data, uint64_t value_len, uint64_t first_block, uint64_t n,
                         const uint32_t* crcs) {
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t b = first_block + i;
    uint64_t start = b * kValueBlockSize;
    uint64_t len = std::min<uint64_t>(kValueBlockSize, value_len - start);
    uint32_t expected = Load<uint32_t>(reinterpret_cast<const char*>(crcs + i));
    if (crc32c::Value(data + i * kValueBlockSize, len) != expected) {
      return Status::Corruption("value block " + std::to_string(b) + " failed its checksum");
    }
  }
  return Status::OK();
}

}  // namespace granary::engine
