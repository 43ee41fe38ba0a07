// Fault-injection tests of the blob engine: one writer runs random operations on an engine
// opened on an io::FaultInjectionFileSystem, and at random points the test simulates a power
// loss, tears a write, flips a bit of a durable record, or fails a write or a sync; then it
// reopens the engine and checks every key against the oracle (crash_oracle.h).
//
// Everything runs in this process and is deterministic for a seed, apart from the engine's own
// threads. GRANARY_FAULT_SEED and GRANARY_FAULT_ITERATIONS override the seed and the number of
// iterations of each test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>

#include "crash_oracle.h"
#include "engine/engine.h"
#include "engine/format.h"
#include "io/fault_fs.h"
#include "io/posix_fs.h"

namespace granary::engine::crash {
namespace {

constexpr uint32_t kKeys = 300;
constexpr uint32_t kMaxValue = 512 << 10;
constexpr uint64_t kDefaultSeed = 0x6661756c74;

uint64_t Seed() { return EnvOr("GRANARY_FAULT_SEED", kDefaultSeed); }
int Iterations(int fallback) {
  return static_cast<int>(EnvOr("GRANARY_FAULT_ITERATIONS", static_cast<uint64_t>(fallback)));
}
// GRANARY_FAULT_ONLY=i runs iteration i alone, to reproduce a failure.
bool Skip(int iteration) {
  const uint64_t only = EnvOr("GRANARY_FAULT_ONLY", UINT64_MAX);
  return only != UINT64_MAX && only != static_cast<uint64_t>(iteration);
}
std::string Trace(uint64_t seed, int iteration) {
  return "GRANARY_FAULT_SEED=" + std::to_string(seed) +
         " GRANARY_FAULT_ONLY=" + std::to_string(iteration);
}

struct FaultConfig {
  bool background_compaction = false;
  // No preallocation and no automatic checkpoints: every write and sync the file system sees
  // comes from the operation the test is running.
  bool quiet = false;
  uint64_t direct_io_threshold = 256 << 10;
};

enum class OpKind { kPut, kDelete, kBatch, kAsyncBatch, kCompact, kCheckpoint, kFlush, kRead };

const char* OpName(OpKind kind) {
  static constexpr const char* kNames[] = {"Put",     "Delete",     "Write", "WriteAsync",
                                           "Compact", "Checkpoint", "Flush", "Get"};
  return kNames[static_cast<int>(kind)];
}

// One engine directory on a fault-injecting file system, with its oracle.
class FaultRun {
 public:
  FaultRun(const std::string& name, uint64_t seed, FaultConfig config)
      : rng_(seed),
        config_(config),
        fs_(std::make_shared<io::FaultInjectionFileSystem>(
            std::make_shared<io::PosixFileSystem>())),
        oracle_(kKeys),
        history_(kKeys, std::vector<ValueSpec>{ValueSpec::Absent()}) {
    dir_ = MakeTempDir("granary-fault-" + name, 256 << 20);
    EXPECT_TRUE(fs_->CreateDir(dir_ + "/kill").ok());
  }

  ~FaultRun() {
    if (engine_ != nullptr) {
      Status closed = engine_->Close();
      EXPECT_TRUE(closed.ok()) << "Close at the end: " << closed.ToString();
      engine_.reset();
      // A flipped bit may have broken a header, which the layout check would report.
      if (!corrupt_key_) {
        EXPECT_EQ(CheckClosedSegmentFiles(engine_dir()), "");
      }
    }
    fs_.reset();
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }

  uint64_t Random() { return rng_(); }
  io::FaultInjectionFileSystem& fs() { return *fs_; }
  BlobEngine& engine() { return *engine_; }
  const std::string& dir() const { return dir_; }
  std::string engine_dir() const { return dir_ + "/engine"; }
  const Oracle& oracle() const { return oracle_; }
  const std::vector<ValueSpec>& history(uint32_t key) const { return history_[key]; }
  // A key whose record the test corrupted: reads of it may fail, Compact() may refuse.
  void set_corrupt_key(std::optional<uint32_t> key) { corrupt_key_ = key; }

  EngineOptions Options() const {
    EngineOptions o;
    o.fs = fs_;
    o.segment_size = 1 << 20;
    o.sync = true;
    o.direct_io_threshold = config_.direct_io_threshold;
    o.background_compaction = config_.background_compaction;
    o.compaction_threshold = 0.9;
    o.checkpoint_interval_bytes = config_.quiet ? 0 : 256 << 10;
    o.preallocate_bytes = config_.quiet ? 0 : 128 << 10;
    return o;
  }

  Status Open() {
    Result<std::unique_ptr<BlobEngine>> opened = BlobEngine::Open(engine_dir(), Options());
    if (!opened.ok()) return opened.status();
    engine_ = std::move(opened).value();
    return Status::OK();
  }

  // Runs one random operation and returns its status. Writes are recorded in the oracle, and
  // acknowledged there when they return OK.
  Status RandomOp(OpKind* kind_out = nullptr) {
    OpKind kind = PickKind();
    if (kind_out != nullptr) *kind_out = kind;
    ++ops_;
    std::string keys;
    Status st;
    switch (kind) {
      case OpKind::kCompact:
        st = engine_->Compact();
        break;
      case OpKind::kCheckpoint:
        st = engine_->Checkpoint();
        break;
      case OpKind::kFlush:
        st = engine_->Flush();
        break;
      case OpKind::kRead:
        st = CheckedRead();
        break;
      default:
        st = RandomWrite(kind, &keys);
        break;
    }
    if (verbose_) {
      std::printf("op %llu %s%s: %s (writes %llu, syncs %llu)\n",
                  static_cast<unsigned long long>(ops_), OpName(kind), keys.c_str(),
                  st.ToString().c_str(), static_cast<unsigned long long>(fs_->writes()),
                  static_cast<unsigned long long>(fs_->syncs()));
    }
    return st;
  }

  // Runs `n` random operations that must all succeed.
  void RunOps(int n) {
    for (int i = 0; i < n && !::testing::Test::HasFailure(); ++i) {
      OpKind kind;
      Status st = RandomOp(&kind);
      if (kind == OpKind::kCompact && corrupt_key_ && st.IsCorruption()) continue;
      ASSERT_TRUE(st.ok()) << OpName(kind)
                           << " failed without an injected fault: " << st.ToString();
    }
  }

  // Simulates a crash: from now on the file system fails every write, sync, creation, rename
  // and removal; the engine is dropped; with `drop_unsynced` (a power loss) every file returns
  // to its last synced state, without it (the process died) the files stay as they are.
  void Crash(bool drop_unsynced) {
    fs_->FailNthWrite(0);
    fs_->FailNthSync(0);
    fs_->TearNthWrite(1, 0);
    {
      // One write of ours makes the file system dead at once.
      Result<std::unique_ptr<io::File>> f =
          fs_->Open(dir_ + "/kill/x", io::OpenOptions{.create = true});
      if (f.ok()) (*f)->Write(0, "x", 1).IgnoreError();
    }
    fs_->TearNthWrite(0, 0);
    engine_.reset();  // its Close() fails: nothing reaches the disk any more
    if (drop_unsynced) {
      Status st = fs_->DropUnsyncedData();
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    fs_->Revive();
  }

  // Opens the engine again and checks every key against the oracle.
  Oracle::CheckResult ReopenAndCheck(const std::string& when,
                                     const Oracle::CheckOptions& check = {}) {
    Oracle::CheckResult result;
    engine_.reset();
    Status st = Open();
    EXPECT_TRUE(st.ok()) << "reopening " << when << ": " << st.ToString();
    if (!st.ok()) return result;
    EngineStats stats = engine_->Stats();
    if (!check.may_be_corrupt) {
      EXPECT_EQ(stats.corruptions_detected, 0u) << "reopening " << when;
    }
    truncated_bytes_ += stats.truncated_bytes;
    return Check(when, check);
  }

  Oracle::CheckResult Check(const std::string& when, Oracle::CheckOptions check = {}) {
    check.seed = rng_();
    Oracle::CheckResult result = oracle_.CheckAndCollapse(*engine_, check);
    EXPECT_EQ(result.errors, "") << when;
    for (uint32_t k = 0; k < kKeys; ++k) {
      if (history_[k].back().SameContent(oracle_.committed(k))) continue;
      history_[k].push_back(oracle_.committed(k));
    }
    return result;
  }

  uint64_t ops() const { return ops_; }
  uint64_t truncated_bytes() const { return truncated_bytes_; }

 private:
  OpKind PickKind() {
    for (;;) {
      uint64_t p = rng_() % 100;
      if (p < 45) return OpKind::kPut;
      if (p < 58) return OpKind::kDelete;
      if (p < 70) return OpKind::kBatch;
      if (p < 76) return OpKind::kAsyncBatch;
      if (p < 81) {
        if (config_.background_compaction) continue;
        return OpKind::kCompact;
      }
      if (p < 86) return OpKind::kCheckpoint;
      if (p < 90) return OpKind::kFlush;
      return OpKind::kRead;
    }
  }

  ValueSpec RandomValue() {
    return ValueSpec::Value(++next_seed_, RandomValueSize(rng_, kMaxValue));
  }

  Status RandomWrite(OpKind kind, std::string* keys) {
    size_t n = kind == OpKind::kBatch || kind == OpKind::kAsyncBatch ? 2 + rng_() % 6 : 1;
    std::vector<KeyOp> ops;
    WriteBatch batch;
    while (ops.size() < n) {
      uint32_t key = static_cast<uint32_t>(rng_() % kKeys);
      if (std::any_of(ops.begin(), ops.end(), [key](const KeyOp& o) { return o.key == key; })) {
        continue;
      }
      bool put = kind == OpKind::kPut || (kind != OpKind::kDelete && rng_() % 4 != 0);
      ValueSpec v = put ? RandomValue() : ValueSpec::Absent();
      ops.push_back({key, v});
      *keys += " " + std::to_string(key) + (put ? "=" + std::to_string(v.size) : "-");
      if (put) {
        batch.Put(KeyName(key), MakeValue(key, v));
      } else {
        batch.Delete(KeyName(key));
      }
    }
    const uint64_t ticket = oracle_.Issue(ops);
    Status st;
    if (kind == OpKind::kPut) {
      st = engine_->Put(batch.ops()[0].key, batch.ops()[0].value);
    } else if (kind == OpKind::kDelete) {
      st = engine_->Delete(batch.ops()[0].key);
    } else if (kind == OpKind::kBatch) {
      st = engine_->Write(batch);
    } else {
      std::promise<Status> done;
      std::future<Status> result = done.get_future();
      engine_->WriteAsync(std::move(batch), [&done](Status s) { done.set_value(std::move(s)); });
      st = result.get();
    }
    if (st.ok()) {
      oracle_.Ack(ticket);
      for (const KeyOp& op : ops) history_[op.key].push_back(op.value);
    }
    return st;
  }

  // Reads a key; when no write to it is in doubt, it must hold its committed state.
  Status CheckedRead() {
    uint32_t key = static_cast<uint32_t>(rng_() % kKeys);
    Result<std::string> got = engine_->Get(KeyName(key));
    if (oracle_.has_pending(key) || corrupt_key_ == key) return Status::OK();
    const ValueSpec& want = oracle_.committed(key);
    bool right =
        got.ok() ? ValueMatches(key, want, *got) : got.status().IsNotFound() && !want.present;
    EXPECT_TRUE(right) << "Get of key " << key << " returned "
                       << (got.ok() ? DescribeBytes(*got) : got.status().ToString())
                       << " instead of " << want.DebugString();
    return Status::OK();
  }

  std::mt19937_64 rng_;
  const FaultConfig config_;
  std::shared_ptr<io::FaultInjectionFileSystem> fs_;
  std::string dir_;
  std::unique_ptr<BlobEngine> engine_;
  Oracle oracle_;
  std::vector<std::vector<ValueSpec>> history_;  // committed states of each key, oldest first
  std::optional<uint32_t> corrupt_key_;
  // GRANARY_FAULT_VERBOSE=1 prints every operation, to follow a failing iteration.
  const bool verbose_ = EnvOr("GRANARY_FAULT_VERBOSE", 0) != 0;
  uint64_t next_seed_ = 0;
  uint64_t ops_ = 0;
  uint64_t truncated_bytes_ = 0;
};

void PrintSummary(const char* test, const std::string& what) {
  std::printf("[ %s ] %s\n", test, what.c_str());
}

// (a) A power loss at a random moment keeps every write that returned OK.
TEST(FaultTest, PowerLossKeepsSyncedWrites) {
  const uint64_t seed = Seed();
  const int iterations = Iterations(100);
  uint64_t ops = 0;
  for (int i = 0; i < iterations && !HasFailure(); ++i) {
    if (Skip(i)) continue;
    SCOPED_TRACE(Trace(seed, i));
    FaultRun run("power", MixSeed(seed, i),
                 {.background_compaction = i % 2 == 1,
                  .quiet = i % 3 == 0,
                  .direct_io_threshold = i % 4 == 0 ? 32u << 10 : 256u << 10});
    ASSERT_TRUE(run.Open().ok());
    for (int round = 0; round < 3 && !HasFailure(); ++round) {
      run.RunOps(1 + static_cast<int>(run.Random() % 80));
      const bool drop = run.Random() % 4 != 0;
      run.Crash(drop);
      run.ReopenAndCheck(drop ? "after a power loss" : "after a crash");
    }
    ops += run.ops();
  }
  PrintSummary("PowerLoss",
               std::to_string(iterations) + " iterations, " + std::to_string(ops) + " operations");
}

// (b) A write torn in the middle, then a crash: the torn tail is cut, nothing acknowledged is
// lost, nothing is reported as corruption, and the engine writes on after it.
TEST(FaultTest, TornWriteIsCutOnRecovery) {
  const uint64_t seed = Seed();
  const int iterations = Iterations(100);
  uint64_t truncated = 0;
  for (int i = 0; i < iterations && !HasFailure(); ++i) {
    if (Skip(i)) continue;
    SCOPED_TRACE(Trace(seed, i));
    FaultRun run("torn", MixSeed(seed, i),
                 {.background_compaction = i % 3 == 1,
                  .quiet = i % 2 == 0,
                  .direct_io_threshold = i % 4 == 0 ? 32u << 10 : 256u << 10});
    ASSERT_TRUE(run.Open().ok());
    run.RunOps(static_cast<int>(run.Random() % 60));
    const uint64_t n = 1 + run.Random() % 8;
    const uint64_t keep = run.Random() % 2 == 0 ? run.Random() % 64 : run.Random() % (96 << 10);
    const uint64_t target = run.fs().writes() + n;
    run.fs().TearNthWrite(n, keep);
    int after = 0;
    for (int op = 0; op < 300 && after < 3; ++op) {
      run.RandomOp().IgnoreError();  // fails once the tear happened; the oracle knows
      if (run.fs().writes() >= target) ++after;
    }
    EXPECT_GE(run.fs().writes(), target) << "the torn write never happened";
    const bool drop = run.Random() % 2 == 0;
    run.Crash(drop);
    run.ReopenAndCheck(drop ? "after a torn write and a power loss"
                            : "after a torn write and a crash");
    run.RunOps(1 + static_cast<int>(run.Random() % 30));
    run.Crash(true);
    run.ReopenAndCheck("after writing past the cut and a power loss");
    truncated += run.truncated_bytes();
  }
  PrintSummary("TornWrite", std::to_string(iterations) + " iterations, " +
                                std::to_string(truncated) + " B of torn tails cut");
}

// (d) An injected write or sync failure fails the operation that met it; after a crash or a
// close, every acknowledged write is there.
TEST(FaultTest, FailedWriteOrSyncIsReported) {
  const uint64_t seed = Seed();
  const int iterations = Iterations(100);
  for (int i = 0; i < iterations && !HasFailure(); ++i) {
    if (Skip(i)) continue;
    SCOPED_TRACE(Trace(seed, i));
    const bool fail_sync = i % 2 == 1;
    // Quiet runs have no background writes, so the failure must meet a foreground operation.
    const bool quiet = i % 4 < 3;
    FaultRun run("fail", MixSeed(seed, i),
                 {.background_compaction = false,
                  .quiet = quiet,
                  .direct_io_threshold = i % 3 == 0 ? 32u << 10 : 256u << 10});
    ASSERT_TRUE(run.Open().ok());
    run.RunOps(static_cast<int>(run.Random() % 40));
    auto count = [&] { return fail_sync ? run.fs().syncs() : run.fs().writes(); };
    const uint64_t n = 1 + run.Random() % 6;
    const uint64_t target = count() + n;
    if (fail_sync) {
      run.fs().FailNthSync(n);
    } else {
      run.fs().FailNthWrite(n);
    }
    bool fired = false;
    int after = 0;
    for (int op = 0; op < 300 && after < 10; ++op) {
      OpKind kind;
      Status st = run.RandomOp(&kind);
      if (fired) {
        ++after;
      } else if (count() >= target) {
        fired = true;
        if (quiet) {
          EXPECT_FALSE(st.ok()) << OpName(kind) << " met the injected "
                                << (fail_sync ? "sync" : "write") << " failure and returned OK";
        }
      }
    }
    EXPECT_TRUE(fired) << "the injected failure never happened";
    const int ending = static_cast<int>(run.Random() % 4);
    SCOPED_TRACE(std::string(fail_sync ? "sync" : "write") + " #" + std::to_string(target) +
                 " failed; ending " + std::to_string(ending));
    switch (ending) {
      case 0:
        run.Crash(true);
        run.ReopenAndCheck("after a failure and a power loss");
        break;
      case 1:
        run.Crash(false);
        run.ReopenAndCheck("after a failure and a crash");
        break;
      case 2: {
        run.engine().Close().IgnoreError();
        Status st = run.fs().DropUnsyncedData();
        EXPECT_TRUE(st.ok()) << st.ToString();
        run.ReopenAndCheck("after a failure, Close() and a power loss");
        break;
      }
      default:
        run.ReopenAndCheck("after a failure and Close()");
        break;
    }
    run.RunOps(1 + static_cast<int>(run.Random() % 20));
    run.Crash(true);
    run.ReopenAndCheck("after writing on and a power loss");
  }
  PrintSummary("FailedWriteOrSync", std::to_string(iterations) + " iterations");
}

struct FlipTarget {
  std::string path;
  SegmentFile::Record record;
  uint32_t key = 0;
};

// A live record of at least 16 value bytes, followed in its segment by a record of a later
// group commit (so that it is not the tail), chosen at random. `files` keeps what it points to.
std::optional<FlipTarget> PickLiveRecord(FaultRun& run,
                                         std::vector<std::unique_ptr<SegmentFile>>* files) {
  std::vector<FlipTarget> found;
  *files = ReadSegmentFiles(run.engine_dir());
  for (const auto& seg : *files) {
    uint64_t last_group = 0;
    for (const SegmentFile::Record& r : seg->records) last_group = std::max(last_group, r.group);
    for (const SegmentFile::Record& r : seg->records) {
      if (r.type != 1 || r.value.size() < 16 || r.group >= last_group || r.key.size() < 8) {
        continue;
      }
      uint32_t k =
          static_cast<uint32_t>(std::strtoul(std::string(r.key.substr(1, 6)).c_str(), nullptr, 10));
      if (k >= kKeys || KeyName(k) != r.key || run.oracle().has_pending(k)) continue;
      if (!ValueMatches(k, run.oracle().committed(k), r.value)) continue;
      found.push_back({seg->path, r, k});
    }
  }
  if (found.empty()) return std::nullopt;
  return found[run.Random() % found.size()];
}

// (c) A bit flipped in a durable record in the middle of a segment: reads of its key return
// Corruption (or the right value, when the bit was padding), never wrong bytes; every other key
// reads right, before and after reopening.
TEST(FaultTest, FlippedBitIsReportedNeverReturned) {
  const uint64_t seed = Seed();
  const int iterations = Iterations(100);
  int detected = 0;
  int tried = 0;
  int rolled_back = 0;
  for (int i = 0; i < iterations && !HasFailure(); ++i) {
    if (Skip(i)) continue;
    SCOPED_TRACE(Trace(seed, i));
    FaultRun run("flip", MixSeed(seed, i),
                 {.background_compaction = false,
                  .quiet = i % 2 == 0,
                  .direct_io_threshold = i % 3 == 0 ? 32u << 10 : 256u << 10});
    ASSERT_TRUE(run.Open().ok());
    run.RunOps(30 + static_cast<int>(run.Random() % 80));
    std::vector<std::unique_ptr<SegmentFile>> files;
    std::optional<FlipTarget> target = PickLiveRecord(run, &files);
    if (!target) continue;
    ++tried;
    // Where in the record: its header, key, value, value checksums, or anywhere.
    const SegmentFile::Record& r = target->record;
    const uint64_t crcs = r.value_offset + r.value.size();
    uint64_t at;
    switch (run.Random() % 10) {
      case 0:
      case 1:
      case 2:
        at = run.Random() % kHeaderSize;
        break;
      case 3:
        at = kHeaderSize + run.Random() % r.key.size();
        break;
      case 8:
        at = crcs + run.Random() % (4 * ((r.value.size() + kValueBlockSize - 1) / kValueBlockSize));
        break;
      case 9:
        at = run.Random() % r.size;
        break;
      default:
        at = r.value_offset + run.Random() % r.value.size();
        break;
    }
    const int bit = static_cast<int>(run.Random() % 8);
    SCOPED_TRACE("flipped bit " + std::to_string(bit) + " of byte " + std::to_string(at) +
                 " of the record of key " + std::to_string(target->key) + " at " + target->path +
                 ":" + std::to_string(r.offset) + " (" + std::to_string(r.size) + " B, value at " +
                 std::to_string(r.value_offset) + ")");
    Status flipped = run.fs().FlipBit(target->path, r.offset + at, bit);
    ASSERT_TRUE(flipped.ok()) << flipped.ToString();
    run.set_corrupt_key(target->key);

    Oracle::CheckOptions check;
    check.may_be_corrupt = target->key;
    Oracle::CheckResult open = run.Check("with the engine open after the flip", check);
    if (open.corrupt_reads > 0) {
      EXPECT_GT(run.engine().Stats().corruptions_detected, 0u);
    }

    // Reopen cleanly, or after a crash, so that recovery may replay the flipped record. A record
    // whose header is unreadable cannot be told apart from garbage: its key may go back to an
    // older state, but recovery must say it met corruption.
    const bool crash = run.Random() % 2 == 0;
    if (crash) {
      run.Crash(false);
      if (at < r.value_offset) {
        const std::vector<ValueSpec>& h = run.history(target->key);
        check.may_roll_back_to.assign(h.begin(), h.end() - 1);
      }
    }
    Oracle::CheckResult reopened =
        run.ReopenAndCheck(crash ? "after a crash" : "after Close()", check);
    if (reopened.rolled_back) {
      ++rolled_back;
      EXPECT_GT(run.engine().Stats().corruptions_detected, 0u)
          << "an older value came back and recovery reported no corruption";
    }
    run.RunOps(1 + static_cast<int>(run.Random() % 20));
    run.Check("writing on after the flip", check);
    if (open.corrupt_reads + reopened.corrupt_reads > 0 || reopened.rolled_back) ++detected;
  }
  // Most flips land in bytes a checksum covers.
  EXPECT_GE(detected, tried / 2) << "most flipped bits went unnoticed";
  PrintSummary("FlippedBit", std::to_string(tried) + " records flipped, " +
                                 std::to_string(detected) + " detected, " +
                                 std::to_string(rolled_back) + " rolled back to an older state");
}

}  // namespace
}  // namespace granary::engine::crash
