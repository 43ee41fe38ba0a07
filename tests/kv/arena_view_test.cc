// ArenaView (src/kv_shm/) on hand-built arena files: it reads the documented version 1 layout
// (docs/formats/kv-arena.md), refuses malformed files, and never reads outside the file.
#include "kv_shm/arena_view.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "engine/test_util.h"

namespace granary::kv {
namespace {

using granary::testing::TempDir;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kArenaId = 0x0123456789abcdefull;

// A version 1 arena of `pages` data pages, byte by byte as the format page describes it.
std::string V1Arena(uint64_t pages) {
  const uint64_t table_pages = (pages * 8 + kPage - 1) / kPage;
  std::string f((1 + table_pages + pages) * kPage, '\0');
  auto put64 = [&](size_t at, uint64_t v) { std::memcpy(f.data() + at, &v, 8); };
  std::memcpy(f.data(), "GRKVAREN", 8);
  const uint32_t version = 1;
  std::memcpy(f.data() + 8, &version, 4);
  put64(16, kPage);
  put64(24, pages);
  put64(32, kPage);
  put64(40, (1 + table_pages) * kPage);
  put64(48, kArenaId);
  return f;
}

class KvArenaViewTest : public ::testing::Test {
 protected:
  // Writes `bytes` to a file and maps it.
  Result<std::unique_ptr<ArenaView>> MapBytes(const std::string& bytes) {
    const std::string path = dir_.Sub("arena-" + std::to_string(files_++));
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pwrite(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
    return ArenaView::Map(fd);
  }
  TempDir dir_;
  int files_ = 0;
};

TEST_F(KvArenaViewTest, ReadsAHandBuiltVersion1Arena) {
  std::string f = V1Arena(4);
  const uint64_t data = 2 * kPage;
  // A block of 5000 bytes on data pages 2 and 0, in that order; page 2's generation is 7.
  std::string v(5000, '\0');
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<char>('a' + i % 26);
  std::memcpy(f.data() + data + 2 * kPage, v.data(), kPage);
  std::memcpy(f.data() + data, v.data() + kPage, v.size() - kPage);
  const uint64_t seven = 7;
  std::memcpy(f.data() + kPage + 2 * 8, &seven, 8);
  auto view = MapBytes(f);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ((*view)->page_count(), 4u);
  EXPECT_EQ((*view)->page_size(), kPage);
  EXPECT_EQ((*view)->file_bytes(), f.size());
  EXPECT_EQ((*view)->arena_id(), kArenaId);

  BlockLocation loc;
  loc.size = v.size();
  loc.extents = {{data + 2 * kPage, kPage}, {data, v.size() - kPage}};
  loc.generations = {7, 0};
  std::string out(v.size() + 3, '\0');
  auto n = (*view)->CopyOut(loc, out);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, v.size());
  EXPECT_EQ(out.substr(0, v.size()), v);

  // Another generation than the page's: the block changed.
  loc.generations = {6, 0};
  Status changed = (*view)->CopyOut(loc, out).status();
  EXPECT_TRUE(ArenaView::IsBlockChanged(changed)) << changed.ToString();
  EXPECT_NE(changed.message().find("socket"), std::string::npos);

  // An empty block has no extents.
  BlockLocation empty;
  EXPECT_EQ(*(*view)->CopyOut(empty, std::span<char>()), 0u);
}

TEST_F(KvArenaViewTest, RefusesBadLocationsWithoutReadingOutOfBounds) {
  auto view = MapBytes(V1Arena(2));
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  const uint64_t data = 2 * kPage;
  std::string out(3 * kPage, '\0');
  auto copy = [&](std::vector<Extent> extents, uint64_t size) {
    BlockLocation loc;
    loc.size = size;
    loc.extents = std::move(extents);
    loc.generations.assign(loc.extents.size(), 0);
    return (*view)->CopyOut(loc, out).status();
  };
  EXPECT_TRUE(copy({{data, kPage}}, kPage).ok());
  EXPECT_TRUE(copy({{data + kPage, kPage}}, kPage).ok());
  EXPECT_EQ(copy({{data + kPage, kPage + 1}}, kPage + 1).code(), Code::kCorruption);  // past end
  EXPECT_EQ(copy({{data + 2 * kPage, 1}}, 1).code(), Code::kCorruption);  // past the data
  EXPECT_EQ(copy({{0, 10}}, 10).code(), Code::kCorruption);               // the header
  EXPECT_EQ(copy({{kPage, 10}}, 10).code(), Code::kCorruption);           // the generations
  EXPECT_EQ(copy({{data + 1, 10}}, 10).code(), Code::kCorruption);        // not a page start
  EXPECT_EQ(copy({{UINT64_MAX - 5, 10}}, 10).code(), Code::kCorruption);  // wraps around
  EXPECT_EQ(copy({{data, 10}}, 11).code(), Code::kCorruption);            // does not add up
  EXPECT_EQ(copy({{data, UINT64_MAX}, {data, 2}}, 1).code(), Code::kCorruption);

  BlockLocation loc;
  loc.size = 10;
  loc.extents = {{data, 10}};
  EXPECT_EQ((*view)->CopyOut(loc, out).status().code(), Code::kInvalidArgument);  // no generation
  loc.generations = {0};
  Status small = (*view)->CopyOut(loc, std::span<char>(out.data(), 9)).status();
  EXPECT_EQ(small.code(), Code::kInvalidArgument);
  EXPECT_NE(small.message().find("too small"), std::string::npos) << small.ToString();
}

TEST_F(KvArenaViewTest, RefusesFilesThatAreNotArenas) {
  EXPECT_EQ(ArenaView::Map(-1).status().code(), Code::kInvalidArgument);

  auto tiny = MapBytes("GRKVAREN");
  EXPECT_EQ(tiny.status().code(), Code::kCorruption);

  std::string f = V1Arena(2);
  f[0] = 'X';
  Status magic = MapBytes(f).status();
  EXPECT_EQ(magic.code(), Code::kCorruption);
  EXPECT_NE(magic.message().find("magic"), std::string::npos) << magic.ToString();

  f = V1Arena(2);
  f[8] = 2;
  Status version = MapBytes(f).status();
  EXPECT_EQ(version.code(), Code::kNotSupported);
  EXPECT_NE(version.message().find("version 2"), std::string::npos) << version.ToString();

  // No arena id: every arena has one, so that servers can refuse stale mappings.
  f = V1Arena(2);
  std::memset(f.data() + 48, 0, 8);
  Status no_id = MapBytes(f).status();
  EXPECT_EQ(no_id.code(), Code::kCorruption);
  EXPECT_NE(no_id.message().find("arena id"), std::string::npos) << no_id.ToString();

  // More pages than the file holds (a truncated file).
  f = V1Arena(4);
  f.resize(f.size() - kPage);
  Status truncated = MapBytes(f).status();
  EXPECT_EQ(truncated.code(), Code::kCorruption);
  EXPECT_NE(truncated.message().find("do not fit"), std::string::npos) << truncated.ToString();

  // A page count so large that it would overflow the offsets.
  f = V1Arena(2);
  const uint64_t huge = UINT64_MAX / 2;
  std::memcpy(f.data() + 24, &huge, 8);
  EXPECT_EQ(MapBytes(f).status().code(), Code::kCorruption);

  // A page size that is not a power of two; data overlapping the generation table.
  f = V1Arena(2);
  const uint64_t odd = 4097;
  std::memcpy(f.data() + 16, &odd, 8);
  EXPECT_EQ(MapBytes(f).status().code(), Code::kCorruption);
  f = V1Arena(2);
  const uint64_t overlap = kPage;
  std::memcpy(f.data() + 40, &overlap, 8);
  EXPECT_EQ(MapBytes(f).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace granary::kv
