#include "io/uring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "io/test_util.h"

namespace granary::io {
namespace {

using testing::MakeReadOp;
using testing::SlurpFile;
using testing::TempDir;

class UringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Ring>> ring = Ring::Create(4);
    if (!ring.ok()) GTEST_SKIP() << "io_uring unavailable here: " << ring.status().ToString();
    ring_ = std::move(*ring);
    path_ = dir_.Child("data");
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void WriteData(size_t n) {
    data_.resize(n);
    std::mt19937 rng(1);
    for (char& c : data_) c = static_cast<char>(rng());
    ASSERT_EQ(::pwrite(fd_, data_.data(), n, 0), static_cast<ssize_t>(n));
  }

  TempDir dir_;
  std::unique_ptr<Ring> ring_;
  std::string path_;
  int fd_ = -1;
  std::string data_;
};

TEST(RingCreateTest, RejectsBadDepth) {
  EXPECT_EQ(Ring::Create(0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Ring::Create(100000).status().code(), Code::kInvalidArgument);
}

TEST_F(UringTest, BatchLargerThanDepthIsChunked) {
  WriteData(256 * 1024);
  ASSERT_EQ(ring_->depth(), 4u);
  std::vector<std::string> bufs(37);
  std::vector<ReadOp> ops(37);
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].offset = i * 7001;
    ops[i].n = 100 + i * 13;
    bufs[i].resize(ops[i].n);
    ops[i].dst = bufs[i].data();
  }
  ASSERT_TRUE(ring_->ReadBatch(fd_, ops).ok());
  for (size_t i = 0; i < ops.size(); ++i) {
    ASSERT_TRUE(ops[i].status.ok()) << ops[i].status.ToString();
    ASSERT_EQ(ops[i].bytes_read, ops[i].n);
    EXPECT_EQ(bufs[i], data_.substr(ops[i].offset, ops[i].n)) << "op " << i;
  }
  EXPECT_FALSE(ring_->broken());
}

TEST_F(UringTest, ShortReadsAreContinuedUntilEndOfFile) {
  WriteData(10000);
  std::string a(5000, '\0'), b(50, '\0'), c(10, '\0');
  std::vector<ReadOp> ops(3);
  ops[0] = MakeReadOp(9000, a.size(), a.data());   // 1000 bytes then EOF
  ops[1] = MakeReadOp(20000, b.size(), b.data());  // wholly past the end
  ops[2] = MakeReadOp(0, 0, c.data());             // nothing asked
  ASSERT_TRUE(ring_->ReadBatch(fd_, ops).ok());
  for (const ReadOp& op : ops) EXPECT_TRUE(op.status.ok()) << op.status.ToString();
  EXPECT_EQ(ops[0].bytes_read, 1000u);
  EXPECT_EQ(a.substr(0, 1000), data_.substr(9000));
  EXPECT_EQ(ops[1].bytes_read, 0u);
  EXPECT_EQ(ops[2].bytes_read, 0u);
}

TEST_F(UringTest, ErrorsArePerOp) {
  WriteData(100);
  int write_only = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(write_only, 0);
  char buf[10];
  std::vector<ReadOp> ops(2);
  ops[0] = MakeReadOp(0, 10, buf);
  ops[1] = MakeReadOp(10, 10, buf);
  ASSERT_TRUE(ring_->ReadBatch(write_only, ops).ok());
  for (const ReadOp& op : ops) {
    EXPECT_EQ(op.status.code(), Code::kIOError) << op.status.ToString();
    EXPECT_NE(op.status.message().find("Bad file descriptor"), std::string::npos);
  }
  ::close(write_only);
  // The ring still works afterwards.
  ASSERT_TRUE(ring_->ReadBatch(fd_, std::span(ops).first(1)).ok());
  EXPECT_TRUE(ops[0].status.ok());
  EXPECT_EQ(std::string(buf, 10), data_.substr(0, 10));
}

TEST_F(UringTest, WriteAndSync) {
  std::string payload(100000, 'w');
  ASSERT_TRUE(ring_->WriteAndSync(fd_, 4096, payload.data(), payload.size()).ok());
  EXPECT_EQ(SlurpFile(path_), std::string(4096, '\0') + payload);
  EXPECT_TRUE(ring_->WriteAndSync(fd_, 0, nullptr, 0).ok()) << "a sync alone";
  ASSERT_TRUE(ring_->WriteAndSync(fd_, 0, "head", 4).ok());
  EXPECT_EQ(SlurpFile(path_).substr(0, 5), std::string("head\0", 5));

  int read_only = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(read_only, 0);
  Status st = ring_->WriteAndSync(read_only, 0, "x", 1);
  EXPECT_EQ(st.code(), Code::kIOError) << st.ToString();
  ::close(read_only);
  EXPECT_EQ(SlurpFile(path_).substr(0, 4), "head");
  EXPECT_FALSE(ring_->broken());
}

TEST(RingDepthOneTest, ReadsAndWritesOneAtATime) {
  Result<std::unique_ptr<Ring>> ring = Ring::Create(1);
  if (!ring.ok()) GTEST_SKIP() << "io_uring unavailable here: " << ring.status().ToString();
  TempDir dir;
  const std::string path = dir.Child("f");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  // Write and sync cannot be linked in a ring of one entry: they go one after the other.
  ASSERT_TRUE((*ring)->WriteAndSync(fd, 0, "abcdef", 6).ok());
  char a[3], b[3];
  std::vector<ReadOp> ops = {MakeReadOp(0, 3, a), MakeReadOp(3, 3, b)};
  ASSERT_TRUE((*ring)->ReadBatch(fd, ops).ok());
  EXPECT_EQ(std::string(a, ops[0].bytes_read), "abc");
  EXPECT_EQ(std::string(b, ops[1].bytes_read), "def");
  EXPECT_FALSE((*ring)->broken());
  ::close(fd);
}

TEST(RingPoolTest, LeasesReuseRings) {
  RingPool pool(8);
  EXPECT_EQ(pool.depth(), 8u);
  Ring* first = nullptr;
  {
    RingPool::Lease lease = pool.Acquire();
    if (!lease) GTEST_SKIP() << "io_uring unavailable here";
    EXPECT_EQ(lease->depth(), 8u);
    first = &*lease;
    // A second concurrent lease gets another ring.
    RingPool::Lease other = pool.Acquire();
    ASSERT_TRUE(other);
    EXPECT_NE(&*other, first);
    // Moving a lease moves the ring.
    RingPool::Lease moved = std::move(other);
    EXPECT_FALSE(other);  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_TRUE(moved);
  }
  RingPool::Lease again = pool.Acquire();
  ASSERT_TRUE(again);
  EXPECT_EQ(&*again, first) << "the most recently returned ring is reused";
  EXPECT_TRUE(pool.usable());
}

TEST(RingPoolTest, DisabledPoolHandsOutNothing) {
  RingPool pool;
  EXPECT_EQ(pool.depth(), kDefaultRingDepth);
  pool.Disable();
  EXPECT_FALSE(pool.usable());
  EXPECT_FALSE(pool.Acquire());
}

TEST(RingPoolTest, RemembersThatRingsCannotBeCreated) {
  RingPool pool(/*depth=*/100000);  // io_uring_queue_init refuses this, as it would under seccomp
  EXPECT_TRUE(pool.usable());
  EXPECT_FALSE(pool.Acquire());
  EXPECT_FALSE(pool.usable()) << "the failure is remembered";
  EXPECT_FALSE(pool.Acquire());
}

TEST(RingPoolTest, RingsAreSharedSafelyAcrossThreads) {
  TempDir dir;
  const std::string path = dir.Child("f");
  std::string data(64 * 1024, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  RingPool pool(16);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        RingPool::Lease lease = pool.Acquire();
        if (!lease) return;  // io_uring unavailable: nothing to test
        std::vector<char> buf(40 * 512);
        std::vector<ReadOp> ops(40);
        for (size_t i = 0; i < ops.size(); ++i) {
          ops[i] = MakeReadOp((t * 1000 + round * 40 + i) * 512 % (data.size() - 512), 512,
                              buf.data() + i * 512);
        }
        if (!lease->ReadBatch(fd, ops).ok()) ++failures;
        for (const ReadOp& op : ops) {
          if (!op.status.ok() || op.bytes_read != 512 ||
              std::string(op.dst, 512) != data.substr(op.offset, 512)) {
            ++failures;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ::close(fd);
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace granary::io
