// Crash tests of the blob engine with an oracle (crash_oracle.h), in the manner of RocksDB's
// db_crashtest.py: a child process writes, overwrites and deletes random keys from several
// threads and reports every operation to the parent through a pipe, once before issuing it
// (intent) and once after it returned OK (ack); the parent kills the child with SIGKILL at a
// random moment, reopens the engine on the same directory and checks that every acknowledged
// write is there and that each key holds its last acknowledged state or the state of a write
// issued after it, never anything else.
//
// Each writer thread owns the keys k with k % threads == t, so the writes to one key are issued
// one at a time and their order is known.
//
// GRANARY_CRASH_SEED and GRANARY_CRASH_CYCLES override the seed and the number of kill cycles.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "crash_oracle.h"
#include "engine/engine.h"
#include "io/posix_fs.h"

namespace granary::engine::crash {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Exit codes of a child that ended on its own (it is meant to be killed).
constexpr int kExitOpenFailed = 3;
constexpr int kExitWriteFailed = 4;
constexpr int kExitPipeFailed = 5;

enum class ReportType : uint8_t { kReady = 1, kIntent, kAck, kStats, kError };

// One message from the child. Each message (and each batch's intents together) goes out in one
// write() of at most PIPE_BUF bytes, so messages of different threads never interleave and a
// batch's intents arrive all or none.
struct Report {
  ReportType type;
  uint8_t is_put;        // kIntent
  uint16_t thread;       // kIntent, kAck, kError
  uint32_t key;          // kIntent
  uint32_t size;         // kIntent: the value's size; kError: bytes of message that follow
  uint32_t batch;        // kIntent: writes in the operation
  uint64_t seed;         // kIntent
  uint64_t op;           // kIntent, kAck: the operation's number within its thread
  uint64_t compactions;  // kStats
  uint64_t corruptions;  // kStats
};
static_assert(sizeof(Report) == 48);
constexpr size_t kMaxBatch = 8;
constexpr size_t kMaxErrorText = 1024;

struct Workload {
  uint32_t num_keys = 2000;
  int threads = 4;
  uint32_t max_value_size = 4 << 20;
  int batch_percent = 20;   // operations that are WriteBatches of 2..kMaxBatch writes
  int delete_percent = 20;  // writes that are deletes
};

struct CycleConfig {
  std::string dir;
  EngineOptions options;
  Workload workload;
  uint64_t seed = 0;
  uint32_t cycle = 0;
};

// ---------------------------------------------------------------------------------------------
// The child. It never returns into gtest: it ends in _exit() or, normally, by SIGKILL.

void Send(int fd, const void* data, size_t n) {
  if (write(fd, data, n) != static_cast<ssize_t>(n)) _exit(kExitPipeFailed);
}

void SendError(int fd, uint16_t thread, std::string text) {
  text.resize(std::min(text.size(), kMaxErrorText));
  Report r{};
  r.type = ReportType::kError;
  r.thread = thread;
  r.size = static_cast<uint32_t>(text.size());
  std::string msg(reinterpret_cast<const char*>(&r), sizeof(r));
  Send(fd, (msg + text).data(), msg.size() + text.size());
}

[[noreturn]] void WriterLoop(BlobEngine& engine, const CycleConfig& cfg, int t, int fd) {
  const Workload& w = cfg.workload;
  std::mt19937_64 rng(MixSeed(cfg.seed, 1000 + t));
  std::vector<uint32_t> owned;
  for (uint32_t k = t; k < w.num_keys; k += w.threads) owned.push_back(k);
  for (uint64_t op = 0;; ++op) {
    size_t n = static_cast<int>(rng() % 100) < w.batch_percent ? 2 + rng() % (kMaxBatch - 1) : 1;
    n = std::min(n, owned.size());
    Report intents[kMaxBatch] = {};
    WriteBatch batch;
    std::string single_value;
    for (size_t i = 0; i < n; ++i) {
      uint32_t key;
      do {
        key = owned[rng() % owned.size()];
      } while (std::any_of(intents, intents + i, [key](const Report& r) { return r.key == key; }));
      Report& r = intents[i];
      r.type = ReportType::kIntent;
      r.thread = static_cast<uint16_t>(t);
      r.key = key;
      r.batch = static_cast<uint32_t>(n);
      r.op = op;
      r.is_put = static_cast<int>(rng() % 100) >= w.delete_percent;
      if (!r.is_put) {
        batch.Delete(KeyName(key));
        continue;
      }
      r.size = RandomValueSize(rng, w.max_value_size);
      r.seed = (uint64_t{cfg.cycle} << 40) | (uint64_t(t) << 36) |
               ((op * kMaxBatch + i) & ((1ull << 36) - 1));
      std::string value = MakeValue(key, ValueSpec::Value(r.seed, r.size));
      if (n == 1) {
        single_value = std::move(value);
      } else {
        batch.Put(KeyName(key), value);
      }
    }
    Send(fd, intents, n * sizeof(Report));
    Status st;
    if (n == 1) {
      std::string name = KeyName(intents[0].key);
      st = intents[0].is_put ? engine.Put(name, single_value) : engine.Delete(name);
    } else if (op % 3 == 0) {
      std::promise<Status> done;
      std::future<Status> result = done.get_future();
      engine.WriteAsync(std::move(batch), [&done](Status s) { done.set_value(std::move(s)); });
      st = result.get();
    } else {
      st = engine.Write(batch);
    }
    if (!st.ok()) {
      SendError(fd, static_cast<uint16_t>(t), "write failed: " + st.ToString());
      _exit(kExitWriteFailed);
    }
    Report ack{};
    ack.type = ReportType::kAck;
    ack.thread = static_cast<uint16_t>(t);
    ack.op = op;
    Send(fd, &ack, sizeof(ack));
    if (t == 0 && op % 16 == 0) {
      EngineStats stats = engine.Stats();
      Report r{};
      r.type = ReportType::kStats;
      r.compactions = stats.compactions;
      r.corruptions = stats.corruptions_detected;
      Send(fd, &r, sizeof(r));
    }
  }
}

[[noreturn]] void ChildMain(const CycleConfig& cfg, int fd) {
  // Die with the parent, whatever becomes of it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) _exit(kExitPipeFailed);
  // A file system of its own: nothing of the parent's (io_uring rings) is shared.
  EngineOptions options = cfg.options;
  options.fs = std::make_shared<io::PosixFileSystem>();
  Result<std::unique_ptr<BlobEngine>> opened = BlobEngine::Open(cfg.dir, options);
  if (!opened.ok()) {
    SendError(fd, 0, "open failed: " + opened.status().ToString());
    _exit(kExitOpenFailed);
  }
  // Never destroyed: the process ends by SIGKILL.
  BlobEngine* engine = std::move(opened).value().release();
  Report ready{};
  ready.type = ReportType::kReady;
  Send(fd, &ready, sizeof(ready));
  std::vector<std::thread> threads;
  for (int t = 0; t < cfg.workload.threads; ++t) {
    threads.emplace_back([engine, &cfg, t, fd] { WriterLoop(*engine, cfg, t, fd); });
  }
  for (std::thread& t : threads) t.join();
  _exit(kExitPipeFailed);  // unreachable: writers never return
}

// ---------------------------------------------------------------------------------------------
// The parent.

struct ChildRun {
  bool ready = false;        // the child opened the engine before it was killed
  uint64_t acks = 0;         // operations acknowledged
  uint64_t compactions = 0;  // the most the child's engine reported
  uint64_t corruptions = 0;
};

// Feeds the child's reports to the oracle.
class ReportReader {
 public:
  ReportReader(Oracle* oracle, int threads) : oracle_(oracle), threads_(threads) {}

  // Consumes complete messages from `buf`; returns false (with error()) on a malformed stream.
  bool Consume(std::string* buf, ChildRun* run) {
    size_t pos = 0;
    while (buf->size() - pos >= sizeof(Report)) {
      Report r;
      std::memcpy(&r, buf->data() + pos, sizeof(r));
      if (r.type == ReportType::kError) {
        if (buf->size() - pos < sizeof(r) + r.size) break;
        child_error_ = buf->substr(pos + sizeof(r), r.size);
      } else if (!Handle(r, run)) {
        return false;
      }
      pos += sizeof(r) + (r.type == ReportType::kError ? r.size : 0);
    }
    buf->erase(0, pos);
    return true;
  }

  const std::string& error() const { return error_; }
  const std::string& child_error() const { return child_error_; }

 private:
  struct InFlight {
    bool active = false;
    uint64_t op = 0;
    uint64_t ticket = 0;
    std::vector<KeyOp> intents;  // of the batch being received
  };

  bool Handle(const Report& r, ChildRun* run) {
    if (r.type == ReportType::kReady) {
      run->ready = true;
      return true;
    }
    if (r.type == ReportType::kStats) {
      run->compactions = std::max(run->compactions, r.compactions);
      run->corruptions = std::max(run->corruptions, r.corruptions);
      return true;
    }
    if (r.thread >= threads_.size()) return Fail("report from unknown thread");
    InFlight& f = threads_[r.thread];
    if (r.type == ReportType::kIntent) {
      if (f.active) return Fail("intent before the previous operation's ack");
      if (r.key >= oracle_->num_keys() || r.batch == 0) return Fail("malformed intent");
      f.intents.push_back(
          {r.key, r.is_put ? ValueSpec::Value(r.seed, r.size) : ValueSpec::Absent()});
      if (f.intents.size() == r.batch) {
        f.active = true;
        f.op = r.op;
        f.ticket = oracle_->Issue(std::move(f.intents));
        f.intents.clear();
      }
      return true;
    }
    if (r.type == ReportType::kAck) {
      if (!f.active || f.op != r.op) return Fail("ack of an operation not issued");
      oracle_->Ack(f.ticket);
      f.active = false;
      ++run->acks;
      return true;
    }
    return Fail("unknown report type");
  }

  bool Fail(const std::string& what) {
    error_ = "child report stream: " + what;
    return false;
  }

  Oracle* oracle_;
  std::vector<InFlight> threads_;
  std::string error_;
  std::string child_error_;
};

// Forks a child that runs `cfg`, kills it `delay` after it opened the engine (or after the fork
// when `from_fork`), and feeds its reports to `oracle`. Returns "" or what went wrong.
std::string RunChildUntilKilled(const CycleConfig& cfg, milliseconds delay, bool from_fork,
                                Oracle* oracle, ChildRun* run) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    close(fds[0]);
    ChildMain(cfg, fds[1]);
  }
  close(fds[1]);
  const int fd = fds[0];
  const auto forked = SteadyClock::now();
  std::optional<SteadyClock::time_point> deadline;
  if (from_fork) deadline = forked + delay;
  // A child that has not opened the engine by then is stuck.
  const auto give_up = forked + std::chrono::seconds(120);

  ReportReader reader(oracle, cfg.workload.threads);
  std::string buf;
  char chunk[1 << 16];
  bool eof = false;
  std::string problem;
  auto read_some = [&]() {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
      eof = true;
      return;
    }
    buf.append(chunk, static_cast<size_t>(n));
    bool had_ready = run->ready;
    if (!reader.Consume(&buf, run) && problem.empty()) problem = reader.error();
    if (!had_ready && run->ready && !deadline) deadline = SteadyClock::now() + delay;
  };
  while (!eof && problem.empty()) {
    auto now = SteadyClock::now();
    auto until = deadline.value_or(give_up);
    if (now >= until) {
      if (!deadline) problem = "the child did not open the engine within 120 s";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(std::chrono::ceil<milliseconds>(until - now).count());
    if (poll(&p, 1, ms) > 0) read_some();
  }
  const bool died_early = eof;
  kill(pid, SIGKILL);
  while (!eof) read_some();  // what the child wrote before it died
  close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!problem.empty()) return problem;
  if (died_early || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    std::string how = WIFEXITED(status) ? "exited with code " + std::to_string(WEXITSTATUS(status))
                                        : "died of signal " + std::to_string(WTERMSIG(status));
    return "the child " + how + " before it was killed: " + reader.child_error();
  }
  if (!reader.child_error().empty()) return "the child reported: " + reader.child_error();
  return "";
}

struct RunTotals {
  uint64_t cycles = 0;
  uint64_t verified = 0;
  uint64_t killed_opening = 0;  // children killed before they had opened the engine
  uint64_t acks = 0;
  uint64_t child_compactions = 0;
  uint64_t parent_compactions = 0;
  uint64_t replayed_bytes = 0;
  uint64_t truncated_bytes = 0;
  uint64_t max_present_bytes = 0;
};

// Opens the engine the child crashed on, checks it against the oracle, and optionally compacts
// it and checks again. Failures are recorded with gtest.
void VerifyAfterCrash(const CycleConfig& cfg, bool compact, Oracle* oracle, RunTotals* totals) {
  EngineOptions options = cfg.options;
  // Gone (with its io_uring rings) before the next fork.
  options.fs = std::make_shared<io::PosixFileSystem>();
  options.background_compaction = false;
  options.compaction_threshold = 0.9;
  Result<std::unique_ptr<BlobEngine>> opened = BlobEngine::Open(cfg.dir, options);
  ASSERT_TRUE(opened.ok()) << "reopening after the kill: " << opened.status().ToString();
  std::unique_ptr<BlobEngine> engine = std::move(opened).value();
  EngineStats stats = engine->Stats();
  EXPECT_EQ(stats.corruptions_detected, 0u) << "a SIGKILL must not look like corruption";
  totals->replayed_bytes += stats.replayed_bytes;
  totals->truncated_bytes += stats.truncated_bytes;

  for (int pass = 0; pass < (compact ? 2 : 1); ++pass) {
    if (pass == 1) {
      uint64_t before = engine->Stats().compactions;
      Status st = engine->Compact();
      ASSERT_TRUE(st.ok()) << "Compact after the kill: " << st.ToString();
      totals->parent_compactions += engine->Stats().compactions - before;
    }
    Oracle::CheckOptions check;
    check.seed = MixSeed(cfg.seed, 77 + pass);
    Oracle::CheckResult result = oracle->CheckAndCollapse(*engine, check);
    EXPECT_EQ(result.errors, "") << (pass == 1 ? "after Compact()" : "after reopening");
    stats = engine->Stats();
    EXPECT_EQ(stats.corruptions_detected, 0u);
    EXPECT_EQ(stats.live_blobs, result.present_keys);
    EXPECT_GE(stats.disk_bytes, stats.live_bytes);
    EXPECT_EQ(stats.garbage_bytes, stats.disk_bytes - stats.live_bytes);
    totals->max_present_bytes = std::max(totals->max_present_bytes, result.present_bytes);
  }
  Status closed = engine->Close();
  EXPECT_TRUE(closed.ok()) << "Close after the check: " << closed.ToString();
  EXPECT_EQ(CheckClosedSegmentFiles(cfg.dir), "") << "segment files after Close()";
  ++totals->verified;
}

struct CrashRunSpec {
  const char* name;
  Workload workload;
  uint64_t cycles;
  int min_delay_ms;
  int max_delay_ms;
  uint64_t scratch_bytes;  // about the most the engine's directory will hold
  // Returns the engine options of a cycle.
  std::function<EngineOptions(std::mt19937_64&)> options;
};

RunTotals RunCrashCycles(const CrashRunSpec& spec) {
  const uint64_t seed = EnvOr("GRANARY_CRASH_SEED", 0x6772616e617279);
  const uint64_t cycles = EnvOr("GRANARY_CRASH_CYCLES", spec.cycles);
  const std::string dir = MakeTempDir(std::string("granary-") + spec.name, spec.scratch_bytes);
  Oracle oracle(spec.workload.num_keys);
  RunTotals totals;
  const auto started = SteadyClock::now();
  for (uint32_t cycle = 0; cycle < cycles && !::testing::Test::HasFailure(); ++cycle) {
    SCOPED_TRACE("GRANARY_CRASH_SEED=" + std::to_string(seed) + " cycle " + std::to_string(cycle) +
                 ", directory " + dir);
    std::mt19937_64 rng(MixSeed(seed, cycle));
    CycleConfig cfg;
    cfg.dir = dir;
    cfg.workload = spec.workload;
    cfg.seed = rng();
    cfg.cycle = cycle + 1;
    cfg.options = spec.options(rng);
    // One cycle in ten is killed soon after the fork, maybe while it recovers.
    const bool from_fork = rng() % 10 == 0;
    const milliseconds delay(from_fork ? rng() % 30
                                       : spec.min_delay_ms +
                                             rng() % (spec.max_delay_ms - spec.min_delay_ms + 1));
    ChildRun run;
    std::string problem = RunChildUntilKilled(cfg, delay, from_fork, &oracle, &run);
    EXPECT_EQ(problem, "");
    if (!problem.empty()) break;
    EXPECT_EQ(run.corruptions, 0u) << "the child's engine reported corruption";
    ++totals.cycles;
    totals.killed_opening += run.ready ? 0 : 1;
    totals.acks += run.acks;
    totals.child_compactions += run.compactions;
    // Some cycles are not checked, so that the next child recovers from a crashed state.
    const bool last = cycle + 1 == cycles;
    if (last || rng() % 100 >= 15) {
      VerifyAfterCrash(cfg, /*compact=*/rng() % 5 == 0, &oracle, &totals);
    }
  }
  double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  std::printf(
      "[ %s ] %llu kill cycles (%llu checked, %llu killed while opening) in %.1f s: "
      "%llu operations acknowledged, "
      "%llu segments compacted by children and %llu by the checker, %llu B replayed, "
      "%llu B of torn tails cut, up to %llu B live\n",
      spec.name, static_cast<unsigned long long>(totals.cycles),
      static_cast<unsigned long long>(totals.verified),
      static_cast<unsigned long long>(totals.killed_opening), seconds,
      static_cast<unsigned long long>(totals.acks),
      static_cast<unsigned long long>(totals.child_compactions),
      static_cast<unsigned long long>(totals.parent_compactions),
      static_cast<unsigned long long>(totals.replayed_bytes),
      static_cast<unsigned long long>(totals.truncated_bytes),
      static_cast<unsigned long long>(totals.max_present_bytes));
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
  return totals;
}

TEST(CrashTest, RandomKillsKeepAcknowledgedWrites) {
  CrashRunSpec spec{.name = "crash-writes",
                    .workload = Workload{},
                    .cycles = 100,
                    .min_delay_ms = 50,
                    .max_delay_ms = 300,
                    .scratch_bytes = 1ull << 30,
                    .options = [](std::mt19937_64& rng) {
                      EngineOptions o;
                      o.segment_size = rng() % 4 == 0 ? 4 << 20 : 8 << 20;
                      static constexpr uint64_t kCheckpoint[] = {1 << 20, 4 << 20, 0};
                      o.checkpoint_interval_bytes = kCheckpoint[rng() % 3];
                      static constexpr uint64_t kPrealloc[] = {0, 1 << 20, 8 << 20};
                      o.preallocate_bytes = kPrealloc[rng() % 3];
                      static constexpr uint64_t kDirect[] = {256 << 10, 64 << 10, 8 << 20};
                      o.direct_io_threshold = kDirect[rng() % 3];
                      o.background_compaction = rng() % 3 == 0;
                      o.compaction_threshold = 0.9;
                      return o;
                    }};
  RunTotals totals = RunCrashCycles(spec);
  EXPECT_GT(totals.acks, totals.cycles) << "the children hardly wrote anything";
  EXPECT_GT(totals.child_compactions + totals.parent_compactions, 0u) << "nothing was compacted";
}

// Small segments, a small key space and a high threshold: background compaction runs all the
// time while the child writes, so kills land in the middle of compactions.
TEST(CrashTest, RandomKillsDuringBackgroundCompaction) {
  CrashRunSpec spec{.name = "crash-compaction",
                    .workload = Workload{.num_keys = 400,
                                         .threads = 4,
                                         .max_value_size = 256 << 10,
                                         .batch_percent = 10,
                                         .delete_percent = 25},
                    .cycles = 30,
                    .min_delay_ms = 100,
                    .max_delay_ms = 400,
                    .scratch_bytes = 256ull << 20,
                    .options = [](std::mt19937_64& rng) {
                      EngineOptions o;
                      o.segment_size = 2 << 20;
                      o.checkpoint_interval_bytes = rng() % 2 == 0 ? 1 << 20 : 0;
                      o.preallocate_bytes = rng() % 2 == 0 ? 512 << 10 : 0;
                      o.direct_io_threshold = 64 << 10;
                      o.background_compaction = true;
                      o.compaction_threshold = 0.9;
                      return o;
                    }};
  RunTotals totals = RunCrashCycles(spec);
  EXPECT_GT(totals.child_compactions, 0u)
      << "no compaction ran while a child wrote: the test did not test what it claims";
}

}  // namespace
}  // namespace granary::engine::crash
