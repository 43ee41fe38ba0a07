// The arena's page allocator (best fit, scatter, coalescing, generations) and the header it
// writes (docs/formats/kv-arena.md).
#include "kv/arena.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace granary::kv {
namespace {

constexpr uint64_t kPage = arena_format::kPageSize;

std::unique_ptr<Arena> ArenaOf(uint64_t pages) {
  auto a = Arena::Create("test", pages * kPage);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? std::move(a).value() : nullptr;
}

// The data page an extent starts on.
uint64_t PageAt(const Arena& a, const Extent& e) { return (e.offset - a.data_offset()) / kPage; }

std::vector<Extent> AllocOrDie(Arena& a, uint64_t bytes) {
  auto r = a.Allocate(bytes);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : std::vector<Extent>{};
}

TEST(KvArenaTest, LayoutAndHeader) {
  auto a = ArenaOf(1000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->page_size(), 4096u);
  EXPECT_EQ(a->page_count(), 1000u);
  EXPECT_EQ(a->free_pages(), 1000u);
  // Header page, two pages of generations (8000 bytes), then the data.
  EXPECT_EQ(a->data_offset(), 3 * kPage);
  EXPECT_EQ(a->file_bytes(), 1003 * kPage);
  struct stat st;
  ASSERT_EQ(::fstat(a->fd(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), a->file_bytes());

  // The header's bytes, as docs/formats/kv-arena.md lists them (host order: little-endian).
  char h[arena_format::kPageSize];
  ASSERT_EQ(::pread(a->fd(), h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
  EXPECT_EQ(std::string(h, 8), "GRKVAREN");
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, h + at, 4);
    return v;
  };
  auto u64 = [&](size_t at) {
    uint64_t v;
    std::memcpy(&v, h + at, 8);
    return v;
  };
  EXPECT_EQ(u32(8), 1u);          // version
  EXPECT_EQ(u32(12), 0u);         // reserved
  EXPECT_EQ(u64(16), 4096u);      // page size
  EXPECT_EQ(u64(24), 1000u);      // page count
  EXPECT_EQ(u64(32), 4096u);      // generation table
  EXPECT_EQ(u64(40), 3 * 4096u);  // data
  EXPECT_EQ(u64(48), a->arena_id());
  EXPECT_NE(a->arena_id(), 0u);
  EXPECT_TRUE(std::all_of(h + 56, h + sizeof(h), [](char c) { return c == 0; }));

  // A budget that is not a page multiple rounds up; every arena has its own id.
  auto b = Arena::Create("odd", 10 * kPage + 1);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->page_count(), 11u);
  EXPECT_NE((*b)->arena_id(), a->arena_id());
}

TEST(KvArenaTest, ClientsGetAReadOnlyDescriptor) {
  auto a = ArenaOf(4);
  ASSERT_NE(a, nullptr);
  if (::access("/proc/self/fd", F_OK) != 0) GTEST_SKIP() << "no /proc: the memfd is handed out";
  EXPECT_EQ(::fcntl(a->fd(), F_GETFL) & O_ACCMODE, O_RDONLY);
  void* w = ::mmap(nullptr, a->file_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, a->fd(), 0);
  EXPECT_EQ(w, MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  // Nor can anyone resize it under the clients' mappings.
  const int seals = ::fcntl(a->fd(), F_GET_SEALS);
  if (seals >= 0) {
    EXPECT_NE(seals & F_SEAL_SHRINK, 0);
  }
}

TEST(KvArenaTest, PrefaultLeavesValuesAloneAndStopsWithTheArena) {
  auto a = ArenaOf(4096);  // 16 MiB
  ASSERT_NE(a, nullptr);
  a->Prefault(/*in_background=*/true);
  // Values written while the pages are committed keep their bytes.
  std::vector<std::pair<std::vector<Extent>, std::string>> stored;
  for (int i = 0; i < 64; ++i) {
    auto e = a->Allocate(64 * 1024);
    ASSERT_TRUE(e.ok());
    std::string v(64 * 1024, static_cast<char>('a' + i % 26));
    a->CopyIn(*e, v);
    stored.emplace_back(std::move(*e), std::move(v));
  }
  for (const auto& [extents, v] : stored) {
    std::string out(v.size(), '\0');
    a->CopyOut(extents, out);
    EXPECT_EQ(out, v);
  }
  a.reset();  // joins the prefault thread, finished or not

  auto big = ArenaOf(uint64_t{1} << 18);  // 1 GiB: destroyed long before it is committed
  ASSERT_NE(big, nullptr);
  big->Prefault(/*in_background=*/true);
  big.reset();
}

TEST(KvArenaTest, ZeroBytesTakeNoPages) {
  auto a = ArenaOf(2);
  ASSERT_NE(a, nullptr);
  std::vector<Extent> e = AllocOrDie(*a, 0);
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(a->free_pages(), 2u);
  a->Free(e);
  EXPECT_EQ(a->free_pages(), 2u);
}

TEST(KvArenaTest, AValueTakesOneRunWithAPartialLastPage) {
  auto a = ArenaOf(8);
  ASSERT_NE(a, nullptr);
  std::vector<Extent> e = AllocOrDie(*a, 2 * kPage + 1);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].offset, a->data_offset());
  EXPECT_EQ(e[0].length, 2 * kPage + 1);
  EXPECT_EQ(a->free_pages(), 5u);
  std::vector<Extent> one = AllocOrDie(*a, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(PageAt(*a, one[0]), 3u);
  EXPECT_EQ(one[0].length, 1u);
}

TEST(KvArenaTest, BestFitPicksTheSmallestRunThatHoldsTheValue) {
  auto a = ArenaOf(16);
  ASSERT_NE(a, nullptr);
  auto p0 = AllocOrDie(*a, 4 * kPage);  // pages 0-3
  auto p4 = AllocOrDie(*a, 2 * kPage);  // 4-5
  auto p6 = AllocOrDie(*a, 3 * kPage);  // 6-8
  auto p9 = AllocOrDie(*a, 1 * kPage);  // 9; 10-15 stay free
  ASSERT_EQ(PageAt(*a, p9[0]), 9u);
  a->Free(p0);
  a->Free(p6);
  // Free runs: 0-3 (4 pages), 6-8 (3), 10-15 (6).
  auto three = AllocOrDie(*a, 3 * kPage);
  ASSERT_EQ(three.size(), 1u);
  EXPECT_EQ(PageAt(*a, three[0]), 6u);
  auto four = AllocOrDie(*a, 3 * kPage + 7);
  ASSERT_EQ(four.size(), 1u);
  EXPECT_EQ(PageAt(*a, four[0]), 0u);
  auto five = AllocOrDie(*a, 5 * kPage);
  ASSERT_EQ(five.size(), 1u);
  EXPECT_EQ(PageAt(*a, five[0]), 10u);
  EXPECT_EQ(a->free_pages(), 1u);
}

TEST(KvArenaTest, FragmentationScattersButNeverFails) {
  auto a = ArenaOf(8);
  ASSERT_NE(a, nullptr);
  std::vector<std::vector<Extent>> pages;
  for (int i = 0; i < 8; ++i) pages.push_back(AllocOrDie(*a, kPage));
  for (int i : {1, 3, 5, 6}) a->Free(pages[i]);
  // Free runs: 1, 3, 5-6; no run holds 4 pages: the largest first, then the rest.
  const uint64_t bytes = 3 * kPage + 100;
  std::vector<Extent> e = AllocOrDie(*a, bytes);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(PageAt(*a, e[0]), 5u);
  EXPECT_EQ(e[0].length, 2 * kPage);
  EXPECT_EQ(e[1].length, kPage);
  EXPECT_EQ(e[2].length, 100u);
  EXPECT_EQ((std::vector<uint64_t>{PageAt(*a, e[1]), PageAt(*a, e[2])}),
            (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(a->free_pages(), 0u);
  EXPECT_EQ(a->Allocate(1).status().code(), Code::kNoSpace);

  // The bytes go in and come out in order across the runs.
  std::string v(bytes, '\0');
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<char>(i * 7 + i / 4096);
  a->CopyIn(e, v);
  std::string back(bytes, '\0');
  a->CopyOut(e, back);
  EXPECT_EQ(back, v);
}

TEST(KvArenaTest, FreedRunsCoalesceAndEveryPageCanBeUsed) {
  auto a = ArenaOf(9);
  ASSERT_NE(a, nullptr);
  std::vector<std::vector<Extent>> pages;
  for (int i = 0; i < 9; ++i) pages.push_back(AllocOrDie(*a, kPage));
  EXPECT_EQ(a->free_pages(), 0u);
  EXPECT_EQ(a->Allocate(1).status().code(), Code::kNoSpace);
  std::mt19937_64 rng(3);
  std::shuffle(pages.begin(), pages.end(), rng);
  for (const auto& p : pages) a->Free(p);
  // One run again: the whole arena in one extent.
  std::vector<Extent> all = AllocOrDie(*a, 9 * kPage);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].offset, a->data_offset());
  EXPECT_EQ(all[0].length, 9 * kPage);
  a->Free(all);
  EXPECT_EQ(a->free_pages(), 9u);
}

TEST(KvArenaTest, FreeBumpsTheGenerationOfEveryPage) {
  auto a = ArenaOf(8);
  ASSERT_NE(a, nullptr);
  auto keep = AllocOrDie(*a, kPage);
  auto e = AllocOrDie(*a, 3 * kPage);
  ASSERT_EQ(e.size(), 1u);
  for (uint64_t p = 0; p < 3; ++p) EXPECT_EQ(a->GenerationAt(e[0].offset + p * kPage), 0u);
  a->Free(e);
  for (uint64_t p = 0; p < 3; ++p) EXPECT_EQ(a->GenerationAt(e[0].offset + p * kPage), 1u);
  EXPECT_EQ(a->GenerationAt(keep[0].offset), 0u);
  // Taken again and freed again: once more.
  auto again = AllocOrDie(*a, 3 * kPage);
  EXPECT_EQ(again, e);
  EXPECT_EQ(a->GenerationAt(e[0].offset), 1u);
  a->Free(again);
  EXPECT_EQ(a->GenerationAt(e[0].offset + 2 * kPage), 2u);
}

TEST(KvArenaTest, RandomAllocationsNeverOverlapAndFailOnlyWhenPagesAreShort) {
  constexpr uint64_t kPages = 64;
  auto a = ArenaOf(kPages);
  ASSERT_NE(a, nullptr);
  std::mt19937_64 rng(7);
  struct Live {
    std::vector<Extent> extents;
    std::string bytes;
  };
  std::vector<Live> live;
  std::vector<int> owner(kPages, -1);  // the model: which live allocation holds each page
  uint64_t used = 0;
  int next_id = 0;
  for (int step = 0; step < 20000; ++step) {
    if (!live.empty() && (rng() % 2 == 0 || used == kPages)) {
      const size_t i = rng() % live.size();
      for (const Extent& e : live[i].extents) {
        for (uint64_t p = 0; p < Arena::PagesFor(e.length); ++p) owner[PageAt(*a, e) + p] = -1;
      }
      // The bytes were never overwritten by another allocation.
      std::string back(live[i].bytes.size(), '\0');
      a->CopyOut(live[i].extents, back);
      ASSERT_EQ(back, live[i].bytes) << "step " << step;
      used -= Arena::PagesFor(live[i].bytes.size());
      a->Free(live[i].extents);
      live.erase(live.begin() + static_cast<ptrdiff_t>(i));
    } else {
      const uint64_t bytes = rng() % (12 * kPage);
      const uint64_t pages = Arena::PagesFor(bytes);
      auto r = a->Allocate(bytes);
      if (pages > kPages - used) {
        ASSERT_EQ(r.status().code(), Code::kNoSpace) << "step " << step;
        continue;
      }
      ASSERT_TRUE(r.ok()) << "step " << step << ": " << r.status().ToString();
      const int id = next_id++;
      uint64_t total = 0;
      for (size_t j = 0; j < r->size(); ++j) {
        const Extent& e = (*r)[j];
        ASSERT_GE(e.offset, a->data_offset());
        ASSERT_EQ((e.offset - a->data_offset()) % kPage, 0u);
        if (j + 1 < r->size()) {
          ASSERT_EQ(e.length % kPage, 0u);  // only the last is partial
        }
        ASSERT_GT(e.length, 0u);
        for (uint64_t p = 0; p < Arena::PagesFor(e.length); ++p) {
          ASSERT_LT(PageAt(*a, e) + p, kPages);
          ASSERT_EQ(owner[PageAt(*a, e) + p], -1) << "step " << step << ": overlap";
          owner[PageAt(*a, e) + p] = id;
        }
        total += e.length;
      }
      ASSERT_EQ(total, bytes);
      used += pages;
      std::string v(bytes, '\0');
      for (auto& c : v) c = static_cast<char>(rng());
      a->CopyIn(*r, v);
      live.push_back({std::move(r).value(), std::move(v)});
    }
    ASSERT_EQ(a->free_pages(), kPages - used);
  }
}

}  // namespace
}  // namespace granary::kv
