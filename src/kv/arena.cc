#include "kv/arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older C libraries do not name it
#endif

namespace granary::kv {
namespace {

namespace fmt = arena_format;

template <typename T>
void Store(char* at, T v) {
  std::memcpy(at, &v, sizeof(v));
}

// memfd names are at most 249 bytes; the name is only for people reading /proc/<pid>/maps.
constexpr size_t kMaxNameBytes = 200;

// 4 PiB of values: far beyond any host's memory, and far from overflowing the layout's offsets.
constexpr uint64_t kMaxPages = uint64_t{1} << 40;

uint64_t NewArenaId() {
  std::random_device random;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{random()} << 32) ^ random();
  return id;
}

}  // namespace

Result<std::unique_ptr<Arena>> Arena::Create(std::string_view name, uint64_t data_bytes) {
  if (PagesFor(data_bytes) > kMaxPages) {
    return Status::InvalidArgument("a KV pool's DRAM tier may hold at most " +
                                   std::to_string(kMaxPages * fmt::kPageSize) + " bytes, not " +
                                   std::to_string(data_bytes) + ": lower dram_budget_bytes");
  }
  fmt::Layout layout = fmt::LayoutFor(PagesFor(data_bytes));
  layout.arena_id = NewArenaId();
  const std::string memfd_name =
      "granary-kv-" + std::string(name.substr(0, std::min(name.size(), kMaxNameBytes)));
  const int rw = ::memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (rw < 0) return Status::FromErrno(errno, "memfd_create of the KV pool's arena");
  auto fail = [&](int err, std::string_view what) {
    ::close(rw);
    return Status::FromErrno(err, what);
  };
  if (::ftruncate(rw, static_cast<off_t>(layout.file_bytes)) != 0) {
    const int err = errno;
    return fail(err, "ftruncate of the KV pool's arena to " + std::to_string(layout.file_bytes) +
                         " bytes (lower dram_budget_bytes?)");
  }
  // Clients map the file: once sealed, nobody can shrink it under their mappings (SIGBUS).
  // Best effort: a kernel without seals still works.
  (void)::fcntl(rw, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  void* base = ::mmap(nullptr, layout.file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
  if (base == MAP_FAILED) {
    const int err = errno;
    return fail(err,
                "mmap of the KV pool's arena (" + std::to_string(layout.file_bytes) + " bytes)");
  }
  // The descriptor clients get: read-only, so that they cannot map the pool's memory writable.
  int fd = rw;
  const std::string self = "/proc/self/fd/" + std::to_string(rw);
  if (const int ro = ::open(self.c_str(), O_RDONLY | O_CLOEXEC); ro >= 0) {
    ::close(rw);
    fd = ro;
  }
  char* b = static_cast<char*>(base);
  Store<uint64_t>(b + fmt::kMagicOffset, fmt::kMagic);
  Store<uint32_t>(b + fmt::kVersionOffset, fmt::kVersion);
  Store<uint32_t>(b + fmt::kReservedOffset, 0);
  Store<uint64_t>(b + fmt::kPageSizeOffset, layout.page_size);
  Store<uint64_t>(b + fmt::kPageCountOffset, layout.page_count);
  Store<uint64_t>(b + fmt::kGenerationsOffsetOffset, layout.generations_offset);
  Store<uint64_t>(b + fmt::kDataOffsetOffset, layout.data_offset);
  Store<uint64_t>(b + fmt::kArenaIdOffset, layout.arena_id);
  return std::unique_ptr<Arena>(new Arena(fd, b, layout));
}

Arena::Arena(int fd, char* base, const fmt::Layout& layout)
    : fd_(fd),
      base_(base),
      layout_(layout),
      generations_(reinterpret_cast<uint64_t*>(base + layout.generations_offset)) {
  if (layout_.page_count > 0) AddFreeRun(0, layout_.page_count);
}

Arena::~Arena() {
  if (prefault_.joinable()) {
    prefault_.request_stop();
    prefault_.join();
  }
  ::munmap(base_, layout_.file_bytes);
  ::close(fd_);
}

void Arena::Prefault(bool in_background) {
  auto populate = [this](std::stop_token stop) {
    constexpr uint64_t kStep = uint64_t{32} << 20;
    const uint64_t end = layout_.data_offset + layout_.page_count * layout_.page_size;
    for (uint64_t at = layout_.data_offset; at < end && !stop.stop_requested(); at += kStep) {
      const uint64_t n = std::min(kStep, end - at);
      if (::madvise(base_ + at, n, MADV_POPULATE_WRITE) != 0) return;  // best effort
    }
  };
  if (in_background) {
    prefault_ = std::jthread(populate);
  } else {
    populate(std::stop_token());
  }
}

Result<std::vector<Extent>> Arena::Allocate(uint64_t bytes) {
  uint64_t pages = PagesFor(bytes);
  std::vector<Extent> out;
  if (pages == 0) return out;
  if (pages > free_pages_) {
    return Status::NoSpace("the KV pool's arena has " + std::to_string(free_pages_) +
                           " free pages of " + std::to_string(layout_.page_count) +
                           ", too few for a value of " + std::to_string(bytes) + " bytes");
  }
  while (pages > 0) {
    // The smallest run that holds the rest, else the largest run (and go on with the rest).
    auto run = free_by_size_.lower_bound({pages, 0});
    if (run == free_by_size_.end()) run = std::prev(free_by_size_.end());
    const uint64_t take = std::min(pages, run->first);
    Extent e = Take(run, take, bytes);
    pages -= take;
    bytes -= e.length;
    out.push_back(e);
  }
  out.shrink_to_fit();  // the charge counts one Extent per page at most (DramTier::ChargeOf)
  return out;
}

Extent Arena::Take(std::set<std::pair<uint64_t, uint64_t>>::iterator run, uint64_t pages,
                   uint64_t bytes) {
  const auto [run_pages, first] = *run;
  free_by_size_.erase(run);
  free_by_start_.erase(first);
  if (run_pages > pages) {
    free_by_start_.emplace(first + pages, run_pages - pages);
    free_by_size_.emplace(run_pages - pages, first + pages);
  }
  free_pages_ -= pages;
  return Extent{layout_.data_offset + first * layout_.page_size,
                std::min(bytes, pages * layout_.page_size)};
}

void Arena::Free(std::span<const Extent> extents) {
  if (extents.empty()) return;
  for (const Extent& e : extents) {
    const uint64_t first = PageOf(e.offset);
    const uint64_t pages = PagesFor(e.length);
    for (uint64_t p = first; p < first + pages; ++p) {
      std::atomic_ref<uint64_t> g(generations_[p]);
      g.store(g.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
  }
  // Whoever is given these pages next writes them after the bumps are visible.
  std::atomic_thread_fence(std::memory_order_release);
  for (const Extent& e : extents) {
    if (e.length > 0) AddFreeRun(PageOf(e.offset), PagesFor(e.length));
  }
}

void Arena::AddFreeRun(uint64_t first, uint64_t pages) {
  free_pages_ += pages;
  auto next = free_by_start_.lower_bound(first);
  assert(next == free_by_start_.end() || next->first >= first + pages);  // no double free
  if (next != free_by_start_.end() && next->first == first + pages) {
    pages += next->second;
    free_by_size_.erase({next->second, next->first});
    next = free_by_start_.erase(next);
  }
  if (next != free_by_start_.begin()) {
    auto prev = std::prev(next);
    assert(prev->first + prev->second <= first);
    if (prev->first + prev->second == first) {
      first = prev->first;
      pages += prev->second;
      free_by_size_.erase({prev->second, prev->first});
      free_by_start_.erase(prev);
    }
  }
  free_by_start_.emplace(first, pages);
  free_by_size_.emplace(pages, first);
}

uint64_t Arena::GenerationAt(uint64_t offset) const {
  return std::atomic_ref<uint64_t>(generations_[PageOf(offset)]).load(std::memory_order_acquire);
}

void Arena::CopyIn(std::span<const Extent> extents, std::span<const char> src) {
  size_t at = 0;
  for (const Extent& e : extents) {
    std::memcpy(base_ + e.offset, src.data() + at, e.length);
    at += e.length;
  }
  assert(at == src.size());
}

void Arena::CopyOut(std::span<const Extent> extents, std::span<char> dst) const {
  size_t at = 0;
  for (const Extent& e : extents) {
    assert(at + e.length <= dst.size());
    std::memcpy(dst.data() + at, base_ + e.offset, e.length);
    at += e.length;
  }
}

}  // namespace granary::kv
