// randwrite-4k: 4 KiB durable writes of random keys at queue depth 1 and 32, against fio random
// writes of 4 KiB blocks to one file at the same depth, with and without an fdatasync per write.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "engine/engine.h"
#include "tools/bench_baselines.h"
#include "tools/bench_engine.h"
#include "tools/bench_fio.h"
#include "tools/bench_load.h"

namespace granary::tools {

namespace {

constexpr size_t kBlock = 4096;
constexpr size_t kKeyBytes = 16;

struct Figures {
  double iops = 0;
  double p50_us = 0;
  double p99_us = 0;
  uint64_t ops = 0;
  std::optional<double> writes_per_sync;  // Granary: records written per fdatasync

  nlohmann::json ToJson() const {
    nlohmann::json j = {{"iops", iops}, {"p50_us", p50_us}, {"p99_us", p99_us}, {"ops", ops}};
    if (writes_per_sync) j["writes_per_sync"] = *writes_per_sync;
    return j;
  }
};

Figures FromLoad(const LoadResult& r) {
  Figures f;
  f.iops = r.OpsPerSec();
  f.p50_us = NanosToMicros(r.latency.Percentile(50));
  f.p99_us = NanosToMicros(r.latency.Percentile(99));
  f.ops = r.ops;
  return f;
}

// Keeps `depth` single-write batches in flight with WriteAsync from this one thread; a write's
// latency runs from its WriteAsync call to its completion callback.
LoadResult RunAsyncWindow(engine::BlobEngine& engine, int depth, double seconds, const KeySet& keys,
                          const ValueSet& values) {
  // Shared with the callbacks, which run on engine threads and may outlive a timed-out wait.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    int inflight = 0;          // guarded by mu
    uint64_t done = 0;         // guarded by mu
    LatencyHistogram latency;  // guarded by mu
    Status error;              // guarded by mu
  };
  auto state = std::make_shared<State>();
  LoadResult r;
  const uint64_t start = BenchNowNanos();
  const uint64_t deadline = start + static_cast<uint64_t>(seconds * 1e9);
  for (size_t i = 0; i < keys.size(); ++i) {
    {
      std::unique_lock<std::mutex> lock(state->mu);
      state->cv.wait(lock, [&] { return state->inflight < depth; });
      if (!state->error.ok() || BenchNowNanos() >= deadline) break;
      ++state->inflight;
    }
    engine::WriteBatch batch;
    batch.Put(keys[i], values[i]);
    const uint64_t t0 = BenchNowNanos();
    engine.WriteAsync(std::move(batch), [state, t0](Status s) {
      const uint64_t t1 = BenchNowNanos();
      std::lock_guard<std::mutex> lock(state->mu);
      state->latency.Add(t1 - t0);
      ++state->done;
      --state->inflight;
      if (!s.ok() && state->error.ok()) state->error = std::move(s);
      state->cv.notify_all();  // under the lock: the waiter may return as soon as it is free
    });
  }
  std::unique_lock<std::mutex> lock(state->mu);
  if (!state->cv.wait_for(lock, std::chrono::minutes(2), [&] { return state->inflight == 0; })) {
    r.status = Status::Internal("WriteAsync callbacks did not all run within 2 minutes");
  }
  r.seconds = static_cast<double>(BenchNowNanos() - start) / 1e9;
  r.ops = state->done;
  r.latency = state->latency;
  if (r.status.ok()) r.status = state->error;
  return r;
}

enum class Mode { kThreads, kAsync };

// One run of Granary in a fresh directory: `depth` threads calling Put, or one thread keeping
// `depth` WriteAsync calls in flight.
Result<Figures> RunGranary(BenchContext& ctx, int depth, Mode mode, const KeySet& keys,
                           const ValueSet& values) {
  const std::string label = "randwrite-4k-granary-qd" + std::to_string(depth) +
                            (mode == Mode::kAsync ? "-async" : "-threads");
  auto dir = ctx.FreshDir(label);
  if (!dir.ok()) return dir.status();
  Figures f;
  Status status;
  {
    auto engine = OpenSettledEngine(*dir);
    if (!engine.ok()) {
      ctx.RemoveDir(*dir);
      return engine.status();
    }
    ctx.Settle();
    const double seconds = ctx.options().seconds;
    LoadResult r;
    if (mode == Mode::kAsync) {
      r = RunAsyncWindow(**engine, depth, seconds, keys, values);
    } else {
      r = RunClosedLoop(depth, seconds, keys.size(),
                        [&](int, uint64_t i) { return (*engine)->Put(keys[i], values[i]); });
    }
    status = r.status;
    f = FromLoad(r);
    const engine::EngineStats stats = (*engine)->Stats();
    if (stats.syncs > 0) {
      f.writes_per_sync = static_cast<double>(stats.records_written) / stats.syncs;
    }
    Status closed = (*engine)->Close();
    if (status.ok()) status = closed;
  }
  ctx.RemoveDir(*dir);
  if (!status.ok()) return status.WithContext(label);
  return f;
}

Result<Figures> RunFioRandWrite(BenchContext& ctx, const std::string& file, int depth,
                                bool fdatasync) {
  FioJob job;
  job.fio = ctx.fio();
  job.filename = file;
  job.rw = "randwrite";
  job.block_size = kBlock;
  job.iodepth = depth;
  job.fdatasync = fdatasync;
  job.overwrite = true;
  job.size = ctx.options().fio_randwrite_bytes;
  job.seconds = ctx.options().seconds;
  ctx.Settle();
  auto r = RunFio(job);
  if (!r.ok()) return r.status();
  Figures f;
  f.iops = r->iops;
  f.ops = r->total_ios;
  // A synced write's latency is its write plus its fdatasync: fio reports them apart, so the
  // figure is the sum of the two percentiles (an upper estimate of the percentile of the sum).
  const double p50 = r->lat_p50_ns.value_or(0) + (fdatasync ? r->sync_p50_ns.value_or(0) : 0);
  const double p99 = r->lat_p99_ns.value_or(0) + (fdatasync ? r->sync_p99_ns.value_or(0) : 0);
  f.p50_us = NanosToMicros(p50);
  f.p99_us = NanosToMicros(p99);
  return f;
}

std::string Describe(const Figures& f) {
  std::string s = FormatFigure(f.iops) + " IOPS, p50 " + FormatFigure(f.p50_us) + " us, p99 " +
                  FormatFigure(f.p99_us) + " us";
  if (f.writes_per_sync) s += ", " + FormatFigure(*f.writes_per_sync) + " writes per fdatasync";
  return s;
}

}  // namespace

Status RunRandWrite4k(BenchContext& ctx) {
  const auto& opt = ctx.options();
  const size_t max_keys = std::clamp<uint64_t>(ctx.max_bytes() / kBlock, 1024, uint64_t{1} << 22);
  const KeySet keys(max_keys, kKeyBytes, /*seed=*/0x4b1);
  const ValueSet values(1024, kBlock, /*seed=*/0x4b2);

  // fio's file is laid out once (--overwrite=1) and shared by its four runs.
  std::string fio_dir;
  if (!ctx.fio().empty()) {
    auto d = ctx.FreshDir("randwrite-4k-fio");
    if (!d.ok()) return d.status();
    fio_dir = *d;
  }

  for (int depth : opt.depths) {
    const std::string qd = "qd" + std::to_string(depth);
    // Granary.
    Figures g;
    std::string how;
    nlohmann::json details = nlohmann::json::object();
    if (depth == 1) {
      ctx.Progress("randwrite-4k: granary " + qd + " (1 thread calling Put)");
      auto r = RunGranary(ctx, 1, Mode::kThreads, keys, values);
      if (!r.ok()) return r.status();
      g = *r;
      how = "1 thread calling Put";
      ctx.Progress("  " + Describe(g));
      details["granary"] = g.ToJson();
    } else {
      ctx.Progress("randwrite-4k: granary " + qd + " (WriteAsync, " + std::to_string(depth) +
                   " in flight from 1 thread)");
      auto a = RunGranary(ctx, depth, Mode::kAsync, keys, values);
      if (!a.ok()) return a.status();
      ctx.Progress("  " + Describe(*a));
      ctx.Progress("randwrite-4k: granary " + qd + " (" + std::to_string(depth) +
                   " threads calling Put)");
      auto t = RunGranary(ctx, depth, Mode::kThreads, keys, values);
      if (!t.ok()) return t.status();
      ctx.Progress("  " + Describe(*t));
      details["write_async"] = a->ToJson();
      details["threads"] = t->ToJson();
      const bool async_better = a->iops >= t->iops;
      g = async_better ? *a : *t;
      how = async_better ? "WriteAsync with " + std::to_string(depth) + " in flight from 1 thread"
                         : std::to_string(depth) + " threads calling Put";
      details["variant"] = async_better ? "write_async" : "threads";
    }

    // fio, raw and synced.
    std::optional<Figures> raw, synced;
    if (!ctx.fio().empty()) {
      const std::string file = fio_dir + "/randwrite.dat";
      ctx.Progress("randwrite-4k: fio " + qd + " raw");
      auto r = RunFioRandWrite(ctx, file, depth, false);
      if (r.ok()) {
        raw = *r;
        ctx.Progress("  " + Describe(*raw));
      } else {
        ctx.BaselineFailed("fio randwrite " + qd, r.status());
      }
      ctx.Progress("randwrite-4k: fio " + qd + " fdatasync");
      auto s = RunFioRandWrite(ctx, file, depth, true);
      if (s.ok()) {
        synced = *s;
        ctx.Progress("  " + Describe(*synced));
      } else {
        ctx.BaselineFailed("fio randwrite --fdatasync=1 " + qd, s.status());
      }
    }

    struct Metric {
      const char* suffix;
      const char* unit;
      double Figures::*field;
      bool higher_is_better;
    };
    const Metric metrics[] = {{"iops", "IOPS", &Figures::iops, true},
                              {"p50", "us", &Figures::p50_us, false},
                              {"p99", "us", &Figures::p99_us, false}};
    for (const Metric& m : metrics) {
      for (int synced_baseline = 0; synced_baseline < 2; ++synced_baseline) {
        const std::optional<Figures>& b = synced_baseline ? synced : raw;
        BenchRow row;
        row.name = "randwrite-4k " + qd + " " + m.suffix;
        row.unit = m.unit;
        row.granary = g.*m.field;
        row.baseline = synced_baseline ? "fio fdatasync" : "fio raw";
        if (b) row.baseline_value = (*b).*m.field;
        row.higher_is_better = m.higher_is_better;
        if (m.field == &Figures::iops && !synced_baseline) {
          if (depth > 1) row.note = "granary: " + how;
          row.details = details;
          if (raw) row.details["fio_raw"] = raw->ToJson();
          if (synced) row.details["fio_fdatasync"] = synced->ToJson();
        }
        ctx.report().Add(std::move(row));
      }
    }
  }
  if (!fio_dir.empty()) ctx.RemoveDir(fio_dir);
  return Status::OK();
}

}  // namespace granary::tools
