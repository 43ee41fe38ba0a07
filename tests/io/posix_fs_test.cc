#include "io/posix_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "io/file_system.h"
#include "io/test_util.h"

namespace granary::io {
namespace {

using testing::MakeReadOp;
using testing::SlurpFile;
using testing::TempDir;

constexpr long kTmpfsMagic = 0x01021994;

struct AlignedFree {
  void operator()(char* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<char, AlignedFree>;

AlignedBuffer AlignedFill(size_t n, char c) {
  AlignedBuffer buf(static_cast<char*>(std::aligned_alloc(kDirectAlignment, n)));
  std::fill(buf.get(), buf.get() + n, c);
  return buf;
}

OpenOptions Create() {
  OpenOptions o;
  o.create = true;
  return o;
}

class PosixFsTest : public ::testing::Test {
 protected:
  std::unique_ptr<File> MustOpen(const std::string& path, OpenOptions options = Create()) {
    Result<std::unique_ptr<File>> f = fs_.Open(path, options);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(*f) : nullptr;
  }

  TempDir dir_;
  PosixFileSystem fs_;
};

TEST_F(PosixFsTest, WriteThenReadBack) {
  auto f = MustOpen(dir_.Child("a"));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->path(), dir_.Child("a"));
  ASSERT_TRUE(f->Write(0, "hello", 5).ok());
  ASSERT_TRUE(f->Write(5, " world", 6).ok());
  ASSERT_TRUE(f->Sync().ok());
  EXPECT_EQ(*f->Size(), 11u);
  char buf[32] = {};
  Result<size_t> n = f->Read(0, 11, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "hello world");
  // Short only at end of file; nothing past it.
  n = f->Read(6, 20, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "world");
  n = f->Read(100, 5, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(SlurpFile(dir_.Child("a")), "hello world");
}

TEST_F(PosixFsTest, ReadVFillsPiecesBackToBack) {
  auto f = MustOpen(dir_.Child("v"));
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->Write(0, "abcdefghij", 10).ok());
  char a[3], b[1], c[5];
  std::span<char> pieces[3] = {{a, 3}, {b, 0}, {c, 5}};
  Result<size_t> n = f->ReadV(1, pieces);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 8u);
  EXPECT_EQ(std::string(a, 3), "bcd");
  EXPECT_EQ(std::string(c, 5), "efghi");
  // Short only at the end of the file: the pieces past it are not touched.
  char d[4] = {'-', '-', '-', '-'};
  std::span<char> past[2] = {{c, 5}, {d, 4}};
  n = f->ReadV(4, past);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 6u);
  EXPECT_EQ(std::string(c, 5), "efghi");
  EXPECT_EQ(std::string(d, 4), "j---");
  n = f->ReadV(20, past);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_F(PosixFsTest, OpenErrors) {
  Result<std::unique_ptr<File>> missing = fs_.Open(dir_.Child("missing"), OpenOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find(dir_.Child("missing")), std::string::npos);

  OpenOptions exclusive = Create();
  exclusive.exclusive = true;
  ASSERT_NE(MustOpen(dir_.Child("x"), exclusive), nullptr);
  Result<std::unique_ptr<File>> again = fs_.Open(dir_.Child("x"), exclusive);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
  // Without exclusive, create opens the existing file.
  EXPECT_NE(MustOpen(dir_.Child("x")), nullptr);

  Result<std::unique_ptr<File>> no_dir = fs_.Open(dir_.Child("nodir/f"), Create());
  ASSERT_FALSE(no_dir.ok());
  EXPECT_TRUE(no_dir.status().IsNotFound());
}

TEST_F(PosixFsTest, ReadOnlyRefusesWrites) {
  {
    auto f = MustOpen(dir_.Child("ro"));
    ASSERT_TRUE(f->Write(0, "data", 4).ok());
  }
  OpenOptions ro;
  ro.read_only = true;
  auto f = MustOpen(dir_.Child("ro"), ro);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Write(0, "x", 1).code(), Code::kInvalidArgument);
  EXPECT_EQ(f->Truncate(0).code(), Code::kInvalidArgument);
  char buf[4];
  EXPECT_EQ(*f->Read(0, 4, buf), 4u);
  EXPECT_EQ(SlurpFile(dir_.Child("ro")), "data");
}

TEST_F(PosixFsTest, DescriptorsAreCloseOnExec) {
  auto f = MustOpen(dir_.Child("c"));
  auto* pf = dynamic_cast<PosixFile*>(f.get());
  ASSERT_NE(pf, nullptr);
  int flags = ::fcntl(pf->fd(), F_GETFD);
  ASSERT_GE(flags, 0);
  EXPECT_NE(flags & FD_CLOEXEC, 0);
}

TEST_F(PosixFsTest, TruncateShrinksAndGrows) {
  auto f = MustOpen(dir_.Child("t"));
  ASSERT_TRUE(f->Write(0, "0123456789", 10).ok());
  ASSERT_TRUE(f->Truncate(4).ok());
  EXPECT_EQ(*f->Size(), 4u);
  EXPECT_EQ(SlurpFile(dir_.Child("t")), "0123");
  ASSERT_TRUE(f->Truncate(6).ok());
  EXPECT_EQ(SlurpFile(dir_.Child("t")), std::string("0123\0\0", 6));
}

TEST_F(PosixFsTest, WriteDirectAligned) {
  auto f = MustOpen(dir_.Child("d"));
  const size_t n = 3 * kDirectAlignment;
  AlignedBuffer buf = AlignedFill(n, 'd');
  ASSERT_TRUE(f->Write(0, "head", 4).ok());
  ASSERT_TRUE(f->WriteDirect(kDirectAlignment, buf.get(), n).ok());
  ASSERT_TRUE(f->Sync().ok());
  EXPECT_EQ(*f->Size(), kDirectAlignment + n);
  std::string expect = "head" + std::string(kDirectAlignment - 4, '\0') + std::string(n, 'd');
  EXPECT_EQ(SlurpFile(dir_.Child("d")), expect);
  // Reads through the page cache see the direct write.
  std::string back(n, '\0');
  EXPECT_EQ(*f->Read(kDirectAlignment, n, back.data()), n);
  EXPECT_EQ(back, std::string(n, 'd'));
}

TEST_F(PosixFsTest, WriteDirectRejectsMisalignment) {
  auto f = MustOpen(dir_.Child("m"));
  AlignedBuffer buf = AlignedFill(2 * kDirectAlignment, 'm');
  Status off = f->WriteDirect(512, buf.get(), kDirectAlignment);
  EXPECT_EQ(off.code(), Code::kInvalidArgument);
  EXPECT_NE(off.message().find("not aligned"), std::string::npos) << off.message();
  EXPECT_EQ(f->WriteDirect(0, buf.get(), 100).code(), Code::kInvalidArgument);
  EXPECT_EQ(f->WriteDirect(0, buf.get() + 1, kDirectAlignment).code(), Code::kInvalidArgument);
  EXPECT_EQ(*f->Size(), 0u);
}

TEST_F(PosixFsTest, WriteDirectFollowsTheFileAcrossRename) {
  auto f = MustOpen(dir_.Child("before"));
  ASSERT_TRUE(fs_.Rename(dir_.Child("before"), dir_.Child("after")).ok());
  AlignedBuffer buf = AlignedFill(kDirectAlignment, 'r');
  ASSERT_TRUE(f->WriteDirect(0, buf.get(), kDirectAlignment).ok());
  EXPECT_EQ(SlurpFile(dir_.Child("after")), std::string(kDirectAlignment, 'r'));
  EXPECT_FALSE(*fs_.Exists(dir_.Child("before")));
}

TEST_F(PosixFsTest, WriteDirectFallsBackOnTmpfs) {
  struct statfs sfs {};
  if (::statfs("/dev/shm", &sfs) != 0 || sfs.f_type != kTmpfsMagic) {
    GTEST_SKIP() << "no tmpfs at /dev/shm";
  }
  char tmpl[] = "/dev/shm/granary-io-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/f";
  {
    auto f = MustOpen(path);
    AlignedBuffer buf = AlignedFill(kDirectAlignment, 's');
    Status st = f->WriteDirect(0, buf.get(), kDirectAlignment);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(f->WriteDirect(kDirectAlignment, buf.get(), kDirectAlignment).ok());
    EXPECT_TRUE(f->Sync().ok());
  }
  EXPECT_EQ(SlurpFile(path), std::string(2 * kDirectAlignment, 's'));
  EXPECT_TRUE(fs_.Remove(path).ok());
  EXPECT_TRUE(fs_.Remove(tmpl).ok());
}

TEST_F(PosixFsTest, DropCacheKeepsData) {
  auto f = MustOpen(dir_.Child("cache"));
  std::string data(1 << 16, 'c');
  ASSERT_TRUE(f->Write(0, data.data(), data.size()).ok());
  ASSERT_TRUE(f->Sync().ok());
  f->DropCache(0, data.size());
  std::string back(data.size(), '\0');
  EXPECT_EQ(*f->Read(0, back.size(), back.data()), back.size());
  EXPECT_EQ(back, data);
}

TEST_F(PosixFsTest, Directories) {
  const std::string sub = dir_.Child("sub");
  ASSERT_TRUE(fs_.CreateDir(sub).ok());
  EXPECT_TRUE(fs_.CreateDir(sub).ok()) << "already existing is fine";
  EXPECT_TRUE(*fs_.Exists(sub));
  EXPECT_TRUE(fs_.CreateDir(dir_.Child("no/parent")).IsNotFound());

  MustOpen(sub + "/one");
  MustOpen(sub + "/two");
  Result<std::vector<std::string>> names = fs_.ListDir(sub);
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(fs_.ListDir(dir_.Child("nope")).status().IsNotFound());

  // A file in the way of a directory.
  EXPECT_EQ(fs_.CreateDir(sub + "/one").code(), Code::kAlreadyExists);

  ASSERT_TRUE(fs_.SyncDir(sub).ok());
  EXPECT_TRUE(fs_.SyncDir(dir_.Child("nope")).IsNotFound());

  ASSERT_TRUE(fs_.Remove(sub + "/one").ok());
  EXPECT_TRUE(fs_.Remove(sub + "/one").IsNotFound());
  EXPECT_FALSE(*fs_.Exists(sub + "/one"));
  ASSERT_TRUE(fs_.Remove(sub + "/two").ok());
  ASSERT_TRUE(fs_.Remove(sub).ok()) << "an empty directory can be removed";
  EXPECT_FALSE(*fs_.Exists(sub));
}

TEST_F(PosixFsTest, RenameReplacesTarget) {
  {
    auto a = MustOpen(dir_.Child("a"));
    ASSERT_TRUE(a->Write(0, "new", 3).ok());
    auto b = MustOpen(dir_.Child("b"));
    ASSERT_TRUE(b->Write(0, "old!", 4).ok());
  }
  ASSERT_TRUE(fs_.Rename(dir_.Child("a"), dir_.Child("b")).ok());
  EXPECT_FALSE(*fs_.Exists(dir_.Child("a")));
  EXPECT_EQ(SlurpFile(dir_.Child("b")), "new");
  EXPECT_TRUE(fs_.Rename(dir_.Child("a"), dir_.Child("c")).IsNotFound());
}

TEST_F(PosixFsTest, FreeSpace) {
  Result<uint64_t> free = fs_.FreeSpace(dir_.path());
  ASSERT_TRUE(free.ok()) << free.status().ToString();
  EXPECT_GT(*free, 0u);
  EXPECT_TRUE(fs_.FreeSpace(dir_.Child("nope")).status().IsNotFound());
}

// ReadBatch must give the same answers with io_uring (small rings force several submissions)
// and with the pread fallback.
class ReadBatchTest : public ::testing::TestWithParam<bool> {};

TEST_P(ReadBatchTest, ReadsEveryOp) {
  TempDir dir;
  PosixOptions options;
  options.use_io_uring = GetParam();
  options.ring_depth = 8;
  PosixFileSystem fs(options);
  std::string data(1 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : data) c = static_cast<char>(rng());
  {
    auto f = *fs.Open(dir.Child("f"), Create());
    ASSERT_TRUE(f->Write(0, data.data(), data.size()).ok());
  }
  auto f = *fs.Open(dir.Child("f"), OpenOptions{});

  const size_t kOps = 100;  // > ring depth
  std::vector<std::string> bufs(kOps + 3);
  std::vector<ReadOp> ops(kOps + 3);
  for (size_t i = 0; i < kOps; ++i) {
    ops[i].offset = rng() % data.size();
    ops[i].n = 1 + rng() % 8192;
  }
  ops[kOps].offset = data.size() - 10;  // crosses the end: short
  ops[kOps].n = 100;
  ops[kOps + 1].offset = data.size() + 5;  // past the end: empty
  ops[kOps + 1].n = 10;
  ops[kOps + 2].offset = 0;  // zero-length
  ops[kOps + 2].n = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    bufs[i].assign(ops[i].n + 1, '\0');
    ops[i].dst = bufs[i].data();
    ops[i].bytes_read = 12345;  // overwritten
  }
  ASSERT_TRUE(f->ReadBatch(ops).ok());
  for (size_t i = 0; i < ops.size(); ++i) {
    ASSERT_TRUE(ops[i].status.ok()) << i << ": " << ops[i].status.ToString();
    size_t expect_n =
        ops[i].offset >= data.size() ? 0 : std::min<size_t>(ops[i].n, data.size() - ops[i].offset);
    ASSERT_EQ(ops[i].bytes_read, expect_n) << "op " << i;
    EXPECT_EQ(std::string(ops[i].dst, ops[i].bytes_read),
              expect_n == 0 ? std::string() : data.substr(ops[i].offset, expect_n))
        << "op " << i;
  }
  if (!GetParam()) {
    EXPECT_FALSE(fs.rings()->usable());
  }
}

INSTANTIATE_TEST_SUITE_P(UringAndPread, ReadBatchTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "uring" : "pread"; });

TEST(PosixFsFallbackTest, ReadBatchUsesPreadWhenRingsCannotBeCreated) {
  TempDir dir;
  PosixOptions options;
  options.ring_depth = 100000;  // rejected: every ring creation fails, as under seccomp
  PosixFileSystem fs(options);
  auto f = *fs.Open(dir.Child("f"), Create());
  ASSERT_TRUE(f->Write(0, "0123456789", 10).ok());
  char a[4], b[4];
  std::vector<ReadOp> ops = {MakeReadOp(1, 4, a), MakeReadOp(8, 4, b)};
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(f->ReadBatch(ops).ok());
    EXPECT_EQ(std::string(a, ops[0].bytes_read), "1234");
    EXPECT_EQ(std::string(b, ops[1].bytes_read), "89");
    EXPECT_FALSE(fs.rings()->usable());
  }
}

TEST(FileSystemHelpersTest, JoinPath) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("a//", "/b"), "a/b");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(JoinPath("/x/y", "z/w"), "/x/y/z/w");
}

TEST(FileSystemHelpersTest, ReadFileToStringAndWriteFileAtomic) {
  TempDir dir;
  std::shared_ptr<FileSystem> fs = DefaultFileSystem();
  EXPECT_EQ(fs, DefaultFileSystem()) << "one shared instance";
  const std::string path = dir.Child("config");
  EXPECT_TRUE(ReadFileToString(*fs, path).status().IsNotFound());

  ASSERT_TRUE(WriteFileAtomic(*fs, path, "first version, rather long").ok());
  EXPECT_EQ(*ReadFileToString(*fs, path), "first version, rather long");
  ASSERT_TRUE(WriteFileAtomic(*fs, path, "second").ok());
  EXPECT_EQ(*ReadFileToString(*fs, path), "second");
  ASSERT_TRUE(WriteFileAtomic(*fs, path, "").ok());
  EXPECT_EQ(*ReadFileToString(*fs, path), "");

  std::string big(3 << 20, 'b');
  ASSERT_TRUE(WriteFileAtomic(*fs, path, big).ok());
  EXPECT_EQ(*ReadFileToString(*fs, path), big);
  // No temporary file is left behind.
  EXPECT_EQ(*fs->ListDir(dir.path()), std::vector<std::string>{"config"});

  Status st = WriteFileAtomic(*fs, dir.Child("missing/dir/file"), "x");
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
}

TEST(FileSystemHelpersTest, DefaultReadBatchLoopsOverRead) {
  // A File that only implements Read: the base class's ReadBatch must serve batches with it.
  class StringFile final : public File {
   public:
    explicit StringFile(std::string data) : File("mem"), data_(std::move(data)) {}
    Result<size_t> Read(uint64_t offset, size_t n, char* dst) override {
      if (offset == 13) return Status::IOError("bad sector");
      if (offset >= data_.size()) return size_t{0};
      size_t k = std::min<size_t>(n, data_.size() - offset);
      std::copy_n(data_.data() + offset, k, dst);
      return k;
    }
    Status Write(uint64_t, const void*, size_t) override { return Status::OK(); }
    Status WriteDirect(uint64_t, const void*, size_t) override { return Status::OK(); }
    Status Sync() override { return Status::OK(); }
    Status Truncate(uint64_t) override { return Status::OK(); }
    Result<uint64_t> Size() override { return uint64_t{data_.size()}; }

   private:
    std::string data_;
  };
  StringFile f("0123456789abcdef");
  char a[4], b[8], c[2];
  std::vector<ReadOp> ops(3);
  ops[0] = MakeReadOp(2, 4, a);
  ops[1] = MakeReadOp(12, 8, b);
  ops[2] = MakeReadOp(13, 2, c);
  ASSERT_TRUE(f.ReadBatch(ops).ok());
  EXPECT_TRUE(ops[0].status.ok());
  EXPECT_EQ(std::string(a, ops[0].bytes_read), "2345");
  EXPECT_EQ(std::string(b, ops[1].bytes_read), "cdef");
  EXPECT_EQ(ops[2].status.code(), Code::kIOError);
  EXPECT_EQ(ops[2].bytes_read, 0u);
}

}  // namespace
}  // namespace granary::io
