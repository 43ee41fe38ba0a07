// ArenaView: a client's read-only mapping of a KV pool's shared-memory arena
// (docs/formats/kv-arena.md). A client on the pool's host receives the arena's file descriptor
// once, maps it with Map, and then, for each block the server locates (Pool::BatchLocate), copies
// the bytes itself with CopyOut: no socket copy.
//
// The server does not keep a located block for the client: the block is protected only by its
// lease, and a Remove frees it at once. CopyOut detects a block whose pages were freed (and
// perhaps reused) while it copied, from the generation of each extent's first page, and returns
// kUnavailable (Status has no kAborted code; CopyOut returns kUnavailable for nothing else): the
// caller then reads the block over the socket.
//
// Thread-safe: CopyOut may be called from any number of threads at once. Depends only on the
// standard library, POSIX and common/status.h, so that the client library links it without the
// engine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/status.h"
#include "kv_shm/arena_format.h"

namespace granary::kv {

class ArenaView {
 public:
  // Maps `fd` (which the view takes ownership of and closes, on failure too) read-only,
  // MAP_SHARED, and checks the header: magic, version, page size, and that the generation table
  // and the data pages lie inside the file. kInvalidArgument for a bad descriptor, kCorruption
  // for a file that is not a well-formed arena, kNotSupported for an arena of a format version
  // this build does not read, kIOError when fstat or mmap fail.
  [[nodiscard]] static Result<std::unique_ptr<ArenaView>> Map(int fd);
  ~ArenaView();  // munmap, close
  ArenaView(const ArenaView&) = delete;
  ArenaView& operator=(const ArenaView&) = delete;

  // Copies the block at `location` into dst and returns its size. Afterwards re-reads the
  // generation of each extent's first page (after an acquire fence); if any differs from
  // location.generations, the block was freed while it was copied and dst holds garbage:
  // returns kUnavailable ("the block changed while it was copied"; IsBlockChanged is true), and
  // the caller reads it over the socket. kInvalidArgument when dst is smaller than
  // location.size or the location has not one generation per extent; kCorruption when an extent
  // does not lie inside the arena's data pages or the lengths do not add up to the size (it never
  // reads out of bounds).
  [[nodiscard]] Result<size_t> CopyOut(const BlockLocation& location, std::span<char> dst) const;

  // Whether `status` (from CopyOut) says the block changed while it was copied.
  static bool IsBlockChanged(const Status& status) { return status.code() == Code::kUnavailable; }

  uint64_t file_bytes() const { return file_bytes_; }
  uint64_t page_size() const { return layout_.page_size; }
  uint64_t page_count() const { return layout_.page_count; }
  // The arena's id (arena_format.h), which located reads send to the server.
  uint64_t arena_id() const { return layout_.arena_id; }

 private:
  ArenaView(int fd, const char* base, uint64_t file_bytes, const arena_format::Layout& layout)
      : fd_(fd), base_(base), file_bytes_(file_bytes), layout_(layout) {}
  // The generation of the data page at file offset `offset` now. REQUIRES: a data page offset.
  uint64_t GenerationAt(uint64_t offset) const;

  const int fd_;
  const char* const base_;
  const uint64_t file_bytes_;
  const arena_format::Layout layout_;
};

}  // namespace granary::kv
