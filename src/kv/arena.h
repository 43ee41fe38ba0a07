// Arena: the shared-memory file (a memfd) that holds a KV pool's DRAM-tier values, and the
// allocator of its pages. Layout: docs/formats/kv-arena.md (constants in kv_shm/arena_format.h).
//
// The pool hands fd() to clients on the same host, which map it read-only (kv_shm/arena_view.h)
// and copy the blocks the server locates for them, with no socket copy.
//
// Allocation: a value of n bytes takes ceil(n / page_size) pages as a short list of extents
// (runs of contiguous pages), in the value's order: the smallest free run that holds them all
// when there is one (best fit), otherwise the largest free runs until they are covered, so that
// fragmentation never makes an allocation fail while enough pages are free. Every extent but the
// last fills whole pages; the last one's length is what is left of the value. A value of 0 bytes
// takes no pages. Freed runs coalesce with their free neighbours.
//
// Reuse detection: Free increments the generation counter of every freed page (release) before
// the pages can be allocated again, so that a reader that copied a block's bytes and then finds
// the generation of each extent's first page unchanged knows that they were the block's.
//
// Thread-safety: Allocate, Free and free_pages() need external synchronization (the Pool's
// mutex). CopyIn, CopyOut, At and GenerationAt only touch the mapping; they may run at any time
// on extents the caller holds allocated.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kv_shm/arena_format.h"

namespace granary::kv {

class Arena {
 public:
  // Creates an arena for `data_bytes` of values: ceil(data_bytes / page_size) data pages, in a
  // memfd named "granary-kv-<name>" whose size is sealed. kIOError (saying which call failed)
  // when the memfd cannot be created, sized or mapped.
  [[nodiscard]] static Result<std::unique_ptr<Arena>> Create(std::string_view name,
                                                             uint64_t data_bytes);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // The descriptor to hand to clients; the arena keeps ownership. A read-only descriptor of the
  // memfd (reopened through /proc/self/fd) so that clients cannot write into the pool, or the
  // memfd's own read-write descriptor where /proc is not mounted.
  int fd() const { return fd_; }
  uint64_t file_bytes() const { return layout_.file_bytes; }
  uint64_t page_size() const { return layout_.page_size; }
  uint64_t page_count() const { return layout_.page_count; }
  uint64_t data_offset() const { return layout_.data_offset; }
  uint64_t free_pages() const { return free_pages_; }
  // Random and never 0; no two arenas of a host share one (arena_format.h).
  uint64_t arena_id() const { return layout_.arena_id; }

  // Commits the data pages' memory (MADV_POPULATE_WRITE, in order from the first page, which
  // allocations take first), so that filling a new pool does not pay a page fault per 4 KiB:
  // now, or in a background thread that stops when the arena is destroyed. Values written
  // meanwhile are not disturbed. Best effort: a kernel without MADV_POPULATE_WRITE (before 5.14)
  // faults pages in as they are first written. Call at most once.
  void Prefault(bool in_background);

  // Pages a value of `bytes` takes.
  static uint64_t PagesFor(uint64_t bytes) {
    return bytes / arena_format::kPageSize + (bytes % arena_format::kPageSize != 0 ? 1 : 0);
  }

  // Allocates the pages of a value of `bytes` (see the top of this file). kNoSpace when fewer
  // than PagesFor(bytes) pages are free.
  [[nodiscard]] Result<std::vector<Extent>> Allocate(uint64_t bytes);
  // Bumps the generation of every page of `extents` (release), then makes them free.
  // REQUIRES: extents returned by Allocate and not freed since.
  void Free(std::span<const Extent> extents);

  // The generation of the page at file offset `offset` now. REQUIRES: a data page's offset.
  uint64_t GenerationAt(uint64_t offset) const;

  // Copies src into the pages of `extents`. REQUIRES: src.size() is the extents' total length.
  void CopyIn(std::span<const Extent> extents, std::span<const char> src);
  // The writable bytes of extent `e`, for filling a block that is being stored.
  std::span<char> Writable(const Extent& e) { return {base_ + e.offset, e.length}; }
  // Copies the bytes of `extents`, in order, into dst. REQUIRES: dst is at least their length.
  void CopyOut(std::span<const Extent> extents, std::span<char> dst) const;
  // The mapped byte at file offset `offset`.
  const char* At(uint64_t offset) const { return base_ + offset; }

 private:
  Arena(int fd, char* base, const arena_format::Layout& layout);
  uint64_t PageOf(uint64_t offset) const {
    return (offset - layout_.data_offset) / layout_.page_size;
  }
  Extent Take(std::set<std::pair<uint64_t, uint64_t>>::iterator run, uint64_t pages,
              uint64_t bytes);
  void AddFreeRun(uint64_t first, uint64_t pages);

  const int fd_;
  char* const base_;
  const arena_format::Layout layout_;
  uint64_t* const generations_;
  // Free runs of pages, by first page (for coalescing) and by (pages, first page) (for fits).
  std::map<uint64_t, uint64_t> free_by_start_;
  std::set<std::pair<uint64_t, uint64_t>> free_by_size_;
  uint64_t free_pages_ = 0;
  std::jthread prefault_;  // stopped and joined before the mapping goes
};

}  // namespace granary::kv
