#include "io/fault_fs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "io/posix_fs.h"
#include "io/test_util.h"

namespace granary::io {
namespace {

using testing::MakeReadOp;
using testing::SlurpFile;
using testing::TempDir;

OpenOptions Create() {
  OpenOptions o;
  o.create = true;
  return o;
}

class FaultFsTest : public ::testing::Test {
 protected:
  FaultFsTest()
      : base_(std::make_shared<PosixFileSystem>()),
        fs_(std::make_unique<FaultInjectionFileSystem>(base_)) {}

  std::unique_ptr<File> MustOpen(const std::string& name, OpenOptions options = Create()) {
    Result<std::unique_ptr<File>> f = fs_->Open(P(name), options);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(*f) : nullptr;
  }

  // Creates `name` holding `content`, synced, with its directory synced.
  void MakeDurable(const std::string& name, const std::string& content) {
    auto f = MustOpen(name);
    ASSERT_TRUE(f->Truncate(0).ok());
    ASSERT_TRUE(f->Write(0, content.data(), content.size()).ok());
    ASSERT_TRUE(f->Sync().ok());
    ASSERT_TRUE(fs_->SyncDir(dir_.path()).ok());
  }

  void Write(File& f, uint64_t offset, const std::string& s) {
    ASSERT_TRUE(f.Write(offset, s.data(), s.size()).ok());
  }

  std::string P(const std::string& name) const { return dir_.Child(name); }
  std::string Content(const std::string& name) const { return SlurpFile(P(name)); }
  bool Exists(const std::string& name) const { return std::filesystem::exists(P(name)); }
  // Every name in the directory, hidden ones included, as the base file system sees them.
  std::vector<std::string> RawNames() const {
    std::vector<std::string> names = *base_->ListDir(dir_.path());
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir dir_;
  std::shared_ptr<PosixFileSystem> base_;
  std::unique_ptr<FaultInjectionFileSystem> fs_;
};

TEST_F(FaultFsTest, PassesThroughWhenNoFaultIsSet) {
  auto f = MustOpen("a");
  Write(*f, 0, "hello");
  char buf[8];
  EXPECT_EQ(*f->Read(0, 8, buf), 5u);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(*f->Size(), 5u);
  std::vector<ReadOp> ops(1);
  ops[0] = MakeReadOp(1, 3, buf);
  ASSERT_TRUE(f->ReadBatch(ops).ok());
  EXPECT_EQ(std::string(buf, ops[0].bytes_read), "ell");
  EXPECT_TRUE(*fs_->Exists(P("a")));
  EXPECT_GT(*fs_->FreeSpace(dir_.path()), 0u);
  EXPECT_TRUE(fs_->Open(P("missing"), OpenOptions{}).status().IsNotFound());
  EXPECT_TRUE(fs_->Remove(P("missing")).IsNotFound());
  EXPECT_EQ(fs_->writes(), 1u);
  EXPECT_EQ(fs_->syncs(), 0u);
}

TEST_F(FaultFsTest, DropRestoresSyncedContent) {
  MakeDurable("f", "synced data");
  auto f = MustOpen("f");
  Write(*f, 0, "XX");          // overwrite
  Write(*f, 11, " and more");  // append
  Write(*f, 100, "far away");  // append with a hole
  EXPECT_EQ(Content("f").substr(0, 20), "XXnced data and more");
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "synced data");
}

TEST_F(FaultFsTest, SyncMakesWritesDurable) {
  MakeDurable("f", "v1");
  auto f = MustOpen("f");
  Write(*f, 0, "v2");
  ASSERT_TRUE(f->Sync().ok());
  Write(*f, 0, "v3");
  Write(*f, 2, "-tail");
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "v2");
  // The file object keeps working after the drop.
  Write(*f, 2, "!");
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "v2!");
}

TEST_F(FaultFsTest, DropUndoesTruncates) {
  MakeDurable("f", "0123456789");
  auto f = MustOpen("f");
  ASSERT_TRUE(f->Truncate(3).ok());
  Write(*f, 3, "abc");
  ASSERT_TRUE(f->Truncate(20).ok());
  ASSERT_TRUE(f->Truncate(1).ok());
  EXPECT_EQ(Content("f"), "0");
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "0123456789");
}

TEST_F(FaultFsTest, NewFileVanishesUnlessItsDirectoryIsSynced) {
  {
    auto f = MustOpen("new");
    Write(*f, 0, "content");
    ASSERT_TRUE(f->Sync().ok());  // the content is durable, the name is not
  }
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_FALSE(Exists("new"));

  {
    auto f = MustOpen("kept");
    Write(*f, 0, "content");
  }
  ASSERT_TRUE(fs_->SyncDir(dir_.path()).ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  ASSERT_TRUE(Exists("kept"));
  EXPECT_EQ(Content("kept"), "") << "the name is durable, the unsynced content is not";
}

TEST_F(FaultFsTest, SyncDirOfAnotherDirectoryDoesNotHelp) {
  const std::string sub = P("sub");
  ASSERT_TRUE(fs_->CreateDir(sub).ok());
  {
    auto f = MustOpen("sub/f");
    ASSERT_TRUE(f->Sync().ok());
  }
  ASSERT_TRUE(fs_->SyncDir(dir_.path()).ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_FALSE(Exists("sub/f"));
  EXPECT_TRUE(Exists("sub")) << "directories are durable at once";
  ASSERT_NE(MustOpen("sub/g"), nullptr);
  ASSERT_TRUE(fs_->SyncDir(sub + "/").ok()) << "a trailing slash names the same directory";
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_TRUE(Exists("sub/g"));
}

TEST_F(FaultFsTest, RemovedFileComesBackUntilDirectorySync) {
  MakeDurable("f", "precious");
  ASSERT_TRUE(fs_->Remove(P("f")).ok());
  EXPECT_FALSE(*fs_->Exists(P("f")));
  EXPECT_TRUE(fs_->ListDir(dir_.path())->empty()) << "the trash is hidden";
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "precious");
  EXPECT_EQ(RawNames(), std::vector<std::string>{"f"});

  ASSERT_TRUE(fs_->Remove(P("f")).ok());
  ASSERT_TRUE(fs_->SyncDir(dir_.path()).ok());
  EXPECT_TRUE(RawNames().empty()) << "a synced removal deletes the file for real";
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_FALSE(Exists("f"));
}

TEST_F(FaultFsTest, RemovedFileComesBackWithItsSyncedContent) {
  MakeDurable("f", "synced");
  {
    auto f = MustOpen("f");
    Write(*f, 0, "UNSYNCED");
  }
  ASSERT_TRUE(fs_->Remove(P("f")).ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "synced");
}

TEST_F(FaultFsTest, RenameOverExistingIsUndone) {
  MakeDurable("target", "old");
  MakeDurable("source", "new");
  ASSERT_TRUE(fs_->Rename(P("source"), P("target")).ok());
  EXPECT_EQ(Content("target"), "new");
  EXPECT_FALSE(Exists("source"));
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("target"), "old");
  EXPECT_EQ(Content("source"), "new");
  EXPECT_EQ(RawNames(), (std::vector<std::string>{"source", "target"}));

  ASSERT_TRUE(fs_->Rename(P("source"), P("target")).ok());
  ASSERT_TRUE(fs_->SyncDir(dir_.path()).ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("target"), "new");
  EXPECT_EQ(RawNames(), std::vector<std::string>{"target"});
}

TEST_F(FaultFsTest, WritesThroughARenamedFileAreTracked) {
  MakeDurable("a", "base");
  auto f = MustOpen("a");
  ASSERT_TRUE(fs_->Rename(P("a"), P("b")).ok());
  ASSERT_TRUE(fs_->SyncDir(dir_.path()).ok());
  Write(*f, 0, "XXXX");
  EXPECT_EQ(Content("b"), "XXXX");
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("b"), "base");
  EXPECT_FALSE(Exists("a"));
}

TEST_F(FaultFsTest, WriteFileAtomicIsAllOrNothing) {
  ASSERT_TRUE(WriteFileAtomic(*fs_, P("cfg"), "version 1").ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("cfg"), "version 1");

  // Fail the last step (the directory sync): after a crash the old version is there.
  const uint64_t syncs = fs_->syncs();
  fs_->FailNthSync(2);  // 1: the temporary file's sync, 2: the directory's
  EXPECT_EQ(WriteFileAtomic(*fs_, P("cfg"), "version 2").code(), Code::kIOError);
  EXPECT_EQ(fs_->syncs(), syncs + 2);
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("cfg"), "version 1");
  EXPECT_EQ(RawNames(), std::vector<std::string>{"cfg"});
}

TEST_F(FaultFsTest, FailNthWrite) {
  auto f = MustOpen("f");
  fs_->FailNthWrite(2);
  Write(*f, 0, "one");
  Status st = f->Write(3, "two", 3);
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_NE(st.message().find("injected"), std::string::npos) << st.message();
  EXPECT_EQ(Content("f"), "one") << "a failed write writes nothing";
  Write(*f, 3, "three");
  EXPECT_EQ(Content("f"), "onethree");
  EXPECT_EQ(fs_->writes(), 3u);
}

TEST_F(FaultFsTest, FailNthSyncSyncsNothing) {
  MakeDurable("f", "v1");
  auto f = MustOpen("f");
  Write(*f, 0, "v2");
  fs_->FailNthSync(1);
  EXPECT_EQ(f->Sync().code(), Code::kIOError);
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "v1");
  Write(*f, 0, "v3");
  EXPECT_TRUE(f->Sync().ok()) << "only the one sync fails";
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "v3");
}

TEST_F(FaultFsTest, FailNthSyncCountsDirectorySyncs) {
  fs_->FailNthSync(1);
  EXPECT_EQ(fs_->SyncDir(dir_.path()).code(), Code::kIOError);
  EXPECT_TRUE(fs_->SyncDir(dir_.path()).ok());
  EXPECT_EQ(fs_->syncs(), 2u);
}

TEST_F(FaultFsTest, TornWriteKillsTheFileSystemUntilRevived) {
  MakeDurable("f", "");
  auto f = MustOpen("f");
  Write(*f, 0, "intact;");
  fs_->TearNthWrite(1, 3);
  Status st = f->Write(7, "torn record", 11);
  EXPECT_EQ(st.code(), Code::kIOError);
  EXPECT_EQ(Content("f"), "intact;tor") << "the prefix reached the file";
  // Dead: nothing changes any more.
  EXPECT_EQ(f->Write(0, "x", 1).code(), Code::kIOError);
  EXPECT_EQ(f->Sync().code(), Code::kIOError);
  EXPECT_EQ(f->Truncate(0).code(), Code::kIOError);
  EXPECT_EQ(fs_->SyncDir(dir_.path()).code(), Code::kIOError);
  EXPECT_EQ(fs_->Rename(P("f"), P("g")).code(), Code::kIOError);
  EXPECT_EQ(fs_->Remove(P("f")).code(), Code::kIOError);
  EXPECT_EQ(fs_->Open(P("new"), Create()).status().code(), Code::kIOError);
  EXPECT_EQ(Content("f"), "intact;tor");
  // The crash: the torn bytes and everything unsynced are gone.
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "");
  fs_->Revive();
  Write(*f, 0, "alive");
  EXPECT_TRUE(f->Sync().ok());
  EXPECT_EQ(Content("f"), "alive");
}

TEST_F(FaultFsTest, TearKeepsAtMostTheWholeWrite) {
  auto f = MustOpen("f");
  fs_->TearNthWrite(2, 1000);
  Write(*f, 0, "a");
  EXPECT_EQ(f->Write(1, "bcd", 3).code(), Code::kIOError);
  EXPECT_EQ(Content("f"), "abcd");
  fs_->Revive();
}

TEST_F(FaultFsTest, WriteDirectIsTrackedLikeWrite) {
  const size_t n = 2 * kDirectAlignment;
  MakeDurable("d", std::string(n, 'o'));
  char* buf = static_cast<char*>(std::aligned_alloc(kDirectAlignment, n));
  std::fill(buf, buf + n, 'n');
  auto f = MustOpen("d");
  ASSERT_TRUE(f->WriteDirect(0, buf, n).ok());
  EXPECT_EQ(f->WriteDirect(1, buf, n).code(), Code::kInvalidArgument);
  EXPECT_EQ(Content("d"), std::string(n, 'n'));
  EXPECT_EQ(fs_->writes(), 2u) << "MakeDurable's write and the direct one";
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("d"), std::string(n, 'o'));
  fs_->FailNthWrite(1);
  EXPECT_EQ(f->WriteDirect(0, buf, n).code(), Code::kIOError);
  EXPECT_EQ(Content("d"), std::string(n, 'o'));
  std::free(buf);
}

TEST_F(FaultFsTest, FlipBitIsDurable) {
  MakeDurable("f", "AAAA");
  ASSERT_TRUE(fs_->FlipBit(P("f"), 1, 0).ok());
  EXPECT_EQ(Content("f"), "A@AA");  // 'A' ^ 1 == '@'
  // Survives a crash, also under an unsynced overwrite of the same byte.
  auto f = MustOpen("f");
  Write(*f, 0, "zzzz");
  ASSERT_TRUE(fs_->FlipBit(P("f"), 2, 1).ok());  // flips 'z' now and the saved 'A'
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "A@CA");  // 'A' ^ 2 == 'C'
  EXPECT_EQ(fs_->FlipBit(P("f"), 4, 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(fs_->FlipBit(P("f"), 0, 8).code(), Code::kInvalidArgument);
  EXPECT_TRUE(fs_->FlipBit(P("nope"), 0, 0).IsNotFound());
}

TEST_F(FaultFsTest, DestructionDeletesTheTrash) {
  MakeDurable("f", "x");
  ASSERT_TRUE(fs_->Remove(P("f")).ok());
  EXPECT_EQ(RawNames().size(), 1u) << "kept aside for a possible drop";
  fs_.reset();
  EXPECT_TRUE(RawNames().empty());
}

TEST_F(FaultFsTest, TwoHandlesShareOneFile) {
  MakeDurable("f", "base");
  auto a = MustOpen("f");
  auto b = MustOpen("f");
  Write(*a, 0, "A");
  Write(*b, 1, "B");
  ASSERT_TRUE(a->Sync().ok());  // syncs the file, whichever handle wrote
  Write(*b, 2, "C");
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_EQ(Content("f"), "ABse");
}

TEST_F(FaultFsTest, ConcurrentWritersAreCounted) {
  constexpr int kThreads = 4;
  constexpr int kWrites = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto f = *fs_->Open(P("f" + std::to_string(t)), Create());
      for (int i = 0; i < kWrites; ++i) {
        EXPECT_TRUE(f->Write(i, "x", 1).ok());
        if (i % 50 == 0) {
          EXPECT_TRUE(f->Sync().ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(fs_->writes(), uint64_t{kThreads * kWrites});
  EXPECT_EQ(fs_->syncs(), uint64_t{kThreads * 4});
  ASSERT_TRUE(fs_->SyncDir(dir_.path()).ok());
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Content("f" + std::to_string(t)), std::string(151, 'x'));
  }
}

}  // namespace
}  // namespace granary::io
