// The layout of a KV pool's shared-memory arena (docs/formats/kv-arena.md) and the description
// of where a block's bytes lie in it. Shared by the server (kv/arena.h, which writes the arena)
// and by clients in other processes (kv_shm/arena_view.h, which map it read-only), so it depends
// on nothing but the standard library.
//
// Integers in the arena are in the host's byte order: the arena is only ever shared between
// processes on one host.
#pragma once

#include <cstdint>
#include <vector>

namespace granary::kv {

// A run of bytes in the arena file: `offset` (from the file's start, page-aligned) and `length`
// bytes from there. Every run of a block but the last fills whole pages.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;

  friend bool operator==(const Extent&, const Extent&) = default;
};

// Where a block's bytes lie in the pool's arena (offsets into the arena file).
struct BlockLocation {
  uint64_t size = 0;                  // the value's bytes
  std::vector<Extent> extents;        // in order; lengths add up to size
  std::vector<uint64_t> generations;  // per extent: the generation of its first page now
};

namespace arena_format {

// The header page, at offset 0 of the file. Offsets of the fields below.
inline constexpr uint64_t kMagicOffset = 0;               // 8 bytes: kMagic
inline constexpr uint64_t kVersionOffset = 8;             // u32: kVersion
inline constexpr uint64_t kReservedOffset = 12;           // u32: 0
inline constexpr uint64_t kPageSizeOffset = 16;           // u64
inline constexpr uint64_t kPageCountOffset = 24;          // u64: data pages
inline constexpr uint64_t kGenerationsOffsetOffset = 32;  // u64: offset of the generation table
inline constexpr uint64_t kDataOffsetOffset = 40;         // u64: offset of data page 0
inline constexpr uint64_t kArenaIdOffset = 48;            // u64: random, never 0 (see below)
inline constexpr uint64_t kHeaderFieldsBytes = 56;        // the rest of the header page is zero

// The bytes "GRKVAREN" read as a host-order (little-endian) u64.
inline constexpr uint64_t kMagic = 0x4E455241564B5247ull;
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kGenerationBytes = 8;  // one u64 per data page

// The arena id names one arena for its whole life: a pool that is deleted and created again, or
// reopened by a restarted server, gets a new arena with a new id. A client sends the id of the
// arena it has mapped with every located read, and the server refuses to locate blocks in any
// other arena, so that offsets are never applied to the wrong memory.

// Where the parts of an arena of `page_count` data pages lie, as this version lays them out: the
// header page, the generation table from the next page (rounded up to whole pages), then the
// data pages.
struct Layout {
  uint64_t page_size = kPageSize;
  uint64_t page_count = 0;
  uint64_t generations_offset = 0;
  uint64_t data_offset = 0;
  uint64_t file_bytes = 0;
  uint64_t arena_id = 0;
};

inline Layout LayoutFor(uint64_t page_count) {
  Layout l;
  l.page_count = page_count;
  l.generations_offset = kPageSize;
  const uint64_t table_pages = (page_count * kGenerationBytes + kPageSize - 1) / kPageSize;
  l.data_offset = l.generations_offset + table_pages * kPageSize;
  l.file_bytes = l.data_offset + page_count * kPageSize;
  return l;
}

}  // namespace arena_format
}  // namespace granary::kv
