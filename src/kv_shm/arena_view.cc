#include "kv_shm/arena_view.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace granary::kv {
namespace {

namespace fmt = arena_format;

template <typename T>
T Load(const char* at) {
  T v;
  std::memcpy(&v, at, sizeof(v));
  return v;
}

Status Bad(uint64_t file_bytes, const std::string& what) {
  return Status::Corruption("the KV arena (a file of " + std::to_string(file_bytes) +
                            " bytes) is not a well-formed Granary KV arena: " + what +
                            "; map the descriptor the pool's service sent, unchanged");
}

// a + b <= limit, without overflow.
bool FitsIn(uint64_t a, uint64_t b, uint64_t limit) { return a <= limit && b <= limit - a; }

// Checks the header of an arena of `file_bytes` mapped at `base`; its layout on success.
Result<fmt::Layout> CheckHeader(const char* base, uint64_t file_bytes) {
  if (Load<uint64_t>(base + fmt::kMagicOffset) != fmt::kMagic) {
    return Bad(file_bytes, "it does not start with the magic \"GRKVAREN\"");
  }
  const uint32_t version = Load<uint32_t>(base + fmt::kVersionOffset);
  if (version != fmt::kVersion) {
    return Status::NotSupported("the KV arena has format version " + std::to_string(version) +
                                " but this build reads version " + std::to_string(fmt::kVersion) +
                                ": use a client of the same Granary version as the server");
  }
  fmt::Layout l;
  l.page_size = Load<uint64_t>(base + fmt::kPageSizeOffset);
  l.page_count = Load<uint64_t>(base + fmt::kPageCountOffset);
  l.generations_offset = Load<uint64_t>(base + fmt::kGenerationsOffsetOffset);
  l.data_offset = Load<uint64_t>(base + fmt::kDataOffsetOffset);
  l.arena_id = Load<uint64_t>(base + fmt::kArenaIdOffset);
  l.file_bytes = file_bytes;
  if (l.arena_id == 0) return Bad(file_bytes, "its arena id is 0");
  const uint64_t ps = l.page_size;
  if (ps < fmt::kGenerationBytes || (ps & (ps - 1)) != 0 || ps > (uint64_t{1} << 30)) {
    return Bad(file_bytes, "its page size " + std::to_string(ps) + " is not a power of two");
  }
  if (l.generations_offset < ps || l.generations_offset % ps != 0 || l.data_offset % ps != 0) {
    return Bad(file_bytes, "its generation table (at " + std::to_string(l.generations_offset) +
                               ") or data (at " + std::to_string(l.data_offset) +
                               ") does not start on a page after the header");
  }
  if (l.page_count > file_bytes / fmt::kGenerationBytes ||
      !FitsIn(l.generations_offset, l.page_count * fmt::kGenerationBytes, l.data_offset)) {
    return Bad(file_bytes, "its generation table of " + std::to_string(l.page_count) +
                               " pages does not fit between offsets " +
                               std::to_string(l.generations_offset) + " and " +
                               std::to_string(l.data_offset));
  }
  if (l.page_count > file_bytes / ps || !FitsIn(l.data_offset, l.page_count * ps, file_bytes)) {
    return Bad(file_bytes, std::to_string(l.page_count) + " data pages of " + std::to_string(ps) +
                               " bytes from offset " + std::to_string(l.data_offset) +
                               " do not fit in the file");
  }
  return l;
}

}  // namespace

Result<std::unique_ptr<ArenaView>> ArenaView::Map(int fd) {
  if (fd < 0) {
    return Status::InvalidArgument("the KV arena descriptor " + std::to_string(fd) +
                                   " is not a file descriptor: pass the one the pool's service "
                                   "sent");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "fstat of the KV arena descriptor");
  }
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || file_bytes < fmt::kPageSize) {
    ::close(fd);
    return Bad(file_bytes, "it is not a regular file of at least one header page");
  }
  void* base = ::mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err,
                             "mmap of the KV arena (" + std::to_string(file_bytes) + " bytes)");
  }
  Result<fmt::Layout> layout = CheckHeader(static_cast<const char*>(base), file_bytes);
  if (!layout.ok()) {
    ::munmap(base, file_bytes);
    ::close(fd);
    return layout.status();
  }
  return std::unique_ptr<ArenaView>(
      new ArenaView(fd, static_cast<const char*>(base), file_bytes, *layout));
}

ArenaView::~ArenaView() {
  ::munmap(const_cast<char*>(base_), file_bytes_);
  ::close(fd_);
}

uint64_t ArenaView::GenerationAt(uint64_t offset) const {
  const uint64_t page = (offset - layout_.data_offset) / layout_.page_size;
  // The table is page-aligned, so each counter is 8-aligned; an 8-byte atomic load is a plain
  // load and does not write, which a read-only mapping needs.
  auto* counter = reinterpret_cast<uint64_t*>(
      const_cast<char*>(base_ + layout_.generations_offset + page * fmt::kGenerationBytes));
  return std::atomic_ref<uint64_t>(*counter).load(std::memory_order_relaxed);
}

Result<size_t> ArenaView::CopyOut(const BlockLocation& location, std::span<char> dst) const {
  if (location.generations.size() != location.extents.size()) {
    return Status::InvalidArgument(
        "the block location has " + std::to_string(location.extents.size()) + " extents but " +
        std::to_string(location.generations.size()) + " generations: it needs one per extent");
  }
  if (dst.size() < location.size) {
    return Status::InvalidArgument("the buffer of " + std::to_string(dst.size()) +
                                   " bytes is too small for the value of " +
                                   std::to_string(location.size) + " bytes");
  }
  const uint64_t data_end = layout_.data_offset + layout_.page_count * layout_.page_size;
  uint64_t total = 0;
  bool adds_up = true;
  for (const Extent& e : location.extents) {
    if (e.offset < layout_.data_offset || e.offset >= data_end ||
        (e.offset - layout_.data_offset) % layout_.page_size != 0 ||
        !FitsIn(e.offset, e.length, data_end)) {
      return Status::Corruption(
          "the block location's extent of " + std::to_string(e.length) + " bytes at offset " +
          std::to_string(e.offset) + " does not lie on the arena's data pages (offsets " +
          std::to_string(layout_.data_offset) + " to " + std::to_string(data_end) + ")");
    }
    if (FitsIn(total, e.length, location.size)) {
      total += e.length;
    } else {
      adds_up = false;
    }
  }
  if (!adds_up || total != location.size) {
    return Status::Corruption("the block location's extents do not add up to its size of " +
                              std::to_string(location.size) + " bytes");
  }
  size_t at = 0;
  for (const Extent& e : location.extents) {
    std::memcpy(dst.data() + at, base_ + e.offset, e.length);
    at += e.length;
  }
  // Seqlock read side: the copy above happens before the generations are read again. The server
  // bumps a page's generation (release) before it reuses the page.
  std::atomic_thread_fence(std::memory_order_acquire);
  for (size_t i = 0; i < location.extents.size(); ++i) {
    if (GenerationAt(location.extents[i].offset) != location.generations[i]) {
      return Status::Unavailable(
          "the block changed while it was copied (the pool freed its pages): read it over the "
          "socket");
    }
  }
  return static_cast<size_t>(location.size);
}

}  // namespace granary::kv
