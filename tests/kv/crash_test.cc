// kill -9 with the disk tier on: a child process puts blocks from two threads and reports each
// acknowledged key through a pipe; the parent kills it with SIGKILL at a random moment, reopens
// the pool on the same directory and checks that every acknowledged block (none is evicted: the
// disk budget holds them all) is there byte for byte, and that a block whose put was in flight
// is either absent or whole. Several cycles on one directory, each checking all earlier ones.
//
// GRANARY_CRASH_SEED overrides the seed.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "kv/pool.h"
#include "kv_test_util.h"

namespace granary::kv {
namespace {

using testing::TempDir;
using testing::ValueFor;

constexpr uint64_t kIdsPerCycle = 1'000'000;
constexpr int kThreads = 2;
constexpr int kBatch = 4;

std::string KeyOf(uint64_t id) { return "block-" + std::to_string(id); }
size_t SizeOf(uint64_t id) { return 1 + (id * 7919) % (16 * 1024); }

PoolOptions CrashOptions(const std::string& dir) {
  PoolOptions o;
  o.dram_budget_bytes = 256 * 1024;  // DRAM evicts all the time; the disk tier keeps everything
  o.disk_dir = dir;
  o.disk_budget_bytes = 1ull << 30;
  o.engine = testing::SmallEngine();
  o.eviction = EvictionPolicyKind::kPrefixAware;
  return o;
}

// The child: puts batches of blocks forever and writes the ids of acknowledged ones to `fd`.
[[noreturn]] void RunChild(const std::string& dir, uint64_t first_id, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto pool = Pool::Open(CrashOptions(dir));
  if (!pool.ok()) ::_exit(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t round = 0;; ++round) {
        std::vector<uint64_t> ids;
        std::vector<std::string> keys, values;
        for (int b = 0; b < kBatch; ++b) {
          const uint64_t id = first_id + (round * kThreads + t) * kBatch + b;
          if (id >= first_id + kIdsPerCycle) ::_exit(0);
          ids.push_back(id);
          keys.push_back(KeyOf(id));
          values.push_back(ValueFor(id, SizeOf(id)));
        }
        std::vector<Status> st = (*pool)->BatchPut(testing::Items(keys, values));
        std::vector<uint64_t> acked;
        for (int b = 0; b < kBatch; ++b) {
          if (!st[b].ok()) ::_exit(4);
          acked.push_back(ids[b]);
        }
        // One write of at most PIPE_BUF bytes: reports of the two threads never interleave.
        const size_t bytes = acked.size() * sizeof(uint64_t);
        if (::write(fd, acked.data(), bytes) != static_cast<ssize_t>(bytes)) ::_exit(5);
      }
    });
  }
  for (auto& th : threads) th.join();
  ::_exit(0);
}

TEST(KvCrashTest, AcknowledgedBlocksSurviveKill9) {
  uint64_t seed = std::random_device()();
  if (const char* s = std::getenv("GRANARY_CRASH_SEED")) seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE("GRANARY_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir tmp;
  const std::string dir = tmp.Sub("pool");
  std::set<uint64_t> acked_all;

  for (int cycle = 0; cycle < 4; ++cycle) {
    const uint64_t first_id = static_cast<uint64_t>(cycle) * kIdsPerCycle;
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      RunChild(dir, first_id, fds[1]);
    }
    ::close(fds[1]);
    // Let it acknowledge a random number of blocks, then kill it mid-flight.
    const size_t target = 40 + rng() % 400;
    std::set<uint64_t> acked;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool killed = false;
    for (;;) {
      if (!killed && (acked.size() >= target || std::chrono::steady_clock::now() > deadline)) {
        ::kill(pid, SIGKILL);
        killed = true;
      }
      pollfd pfd{fds[0], POLLIN, 0};
      if (::poll(&pfd, 1, 100) == 0) continue;  // nothing yet: check the deadline again
      uint64_t buf[64];
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;  // EOF: the child is gone and everything it wrote has been read
      ASSERT_EQ(n % sizeof(uint64_t), 0u);
      for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(uint64_t)); ++i) acked.insert(buf[i]);
    }
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended on its own with " << WEXITSTATUS(status);
    ASSERT_GE(acked.size(), target) << "the child did not get far enough before the deadline";
    acked_all.insert(acked.begin(), acked.end());

    auto pool = Pool::Open(CrashOptions(dir));
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    for (uint64_t id : acked_all) {
      auto got = (*pool)->Get(KeyOf(id));
      ASSERT_TRUE(got.ok()) << "cycle " << cycle << ": acknowledged block " << id
                            << " is lost: " << got.status().ToString();
      ASSERT_TRUE(*got == ValueFor(id, SizeOf(id))) << "block " << id << " read back wrong";
    }
    // Blocks whose put was in flight: absent or whole, never anything else.
    const uint64_t last = *acked.rbegin();
    uint64_t in_flight_present = 0;
    for (uint64_t id = first_id; id <= last + kThreads * kBatch; ++id) {
      if (acked.contains(id)) continue;
      auto got = (*pool)->Get(KeyOf(id));
      if (got.status().IsNotFound()) continue;
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(*got == ValueFor(id, SizeOf(id))) << "unacknowledged block " << id << " is torn";
      ++in_flight_present;
    }
    PoolStats s = (*pool)->Stats();
    EXPECT_GE(s.disk_blocks, acked_all.size());
    EXPECT_EQ(s.disk_evictions, 0u);
    ASSERT_TRUE((*pool)->Close().ok());
    std::cerr << "cycle " << cycle << ": " << acked.size() << " acknowledged, " << in_flight_present
              << " in flight found whole, " << s.disk_blocks << " blocks on disk" << std::endl;
  }
}

}  // namespace
}  // namespace granary::kv
