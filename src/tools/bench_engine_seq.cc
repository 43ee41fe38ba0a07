// seq-4m: durable 4 MiB puts from D threads, then gets of the same blobs in the order they were
// written (each read whole into the thread's buffer with ReadInto), against fio sequential
// writes and reads of 4 MiB blocks with D in flight, direct I/O.
#include <algorithm>
#include <span>

#include "engine/engine.h"
#include "tools/bench_baselines.h"
#include "tools/bench_engine.h"
#include "tools/bench_fio.h"
#include "tools/bench_load.h"

namespace granary::tools {

namespace {

constexpr size_t kBlob = 4u << 20;
constexpr size_t kKeyBytes = 16;

struct SeqFigures {
  double put_mbps = 0, get_mbps = 0;
  nlohmann::json put_json, get_json;
};

nlohmann::json LoadJson(const LoadResult& r) {
  return {{"blobs", r.ops},
          {"seconds", r.seconds},
          {"mb_per_sec", BytesToMB(r.OpsPerSec() * kBlob)},
          {"p50_ms", r.latency.Percentile(50) / 1e6},
          {"p99_ms", r.latency.Percentile(99) / 1e6}};
}

Result<SeqFigures> RunGranarySeq(BenchContext& ctx, const KeySet& keys, const ValueSet& values) {
  const auto& opt = ctx.options();
  auto dir = ctx.FreshDir("seq-4m-granary");
  if (!dir.ok()) return dir.status();
  SeqFigures f;
  Status status = [&]() -> Status {
    ASSIGN_OR_RETURN(auto engine, OpenSettledEngine(*dir));
    ctx.Settle();
    ctx.Progress("seq-4m: granary puts, " + std::to_string(opt.seq_depth) + " threads");
    LoadResult put = RunClosedLoop(opt.seq_depth, opt.seconds, keys.size(), [&](int, uint64_t i) {
      return engine->Put(keys[i], values[i]);
    });
    RETURN_IF_ERROR(put.status.WithContext("put"));
    const uint64_t n = put.ops;
    if (n == 0) return Status::Internal("no put completed");
    f.put_mbps = BytesToMB(put.OpsPerSec() * kBlob);
    f.put_json = LoadJson(put);
    ctx.Progress("  " + FormatFigure(f.put_mbps) + " MB/s (" + std::to_string(n) + " blobs)");

    if (opt.cold_reads) {
      RETURN_IF_ERROR(engine->Flush());
      RETURN_IF_ERROR(DropPageCache(*dir));
    }
    ctx.Settle();
    ctx.Progress("seq-4m: granary gets, " + std::to_string(opt.seq_depth) + " threads");
    std::vector<std::string> buffers(static_cast<size_t>(opt.seq_depth), std::string(kBlob, '\0'));
    LoadResult get = RunClosedLoop(
        opt.seq_depth, opt.seconds, UINT64_MAX, [&](int t, uint64_t ticket) -> Status {
          std::string& buf = buffers[static_cast<size_t>(t)];
          auto r = engine->ReadInto(keys[ticket % n], 0, std::span<char>(buf.data(), buf.size()));
          if (!r.ok()) return r.status();
          if (*r != kBlob) {
            return Status::Corruption("ReadInto returned " + std::to_string(*r) + " bytes");
          }
          return Status::OK();
        });
    RETURN_IF_ERROR(get.status.WithContext("get"));
    f.get_mbps = BytesToMB(get.OpsPerSec() * kBlob);
    f.get_json = LoadJson(get);
    ctx.Progress("  " + FormatFigure(f.get_mbps) + " MB/s");

    // Outside the timed loops: a few blobs must read back exactly as written.
    for (uint32_t i : RandomIndices(4, n, /*seed=*/43)) {
      ASSIGN_OR_RETURN(std::string value, engine->Get(keys[i]));
      if (value != values[i]) {
        return Status::Corruption("blob " + std::to_string(i) + " read back different bytes");
      }
    }
    return engine->Close();
  }();
  ctx.RemoveDir(*dir);
  if (!status.ok()) return status.WithContext("seq-4m granary");
  return f;
}

// fio writes a file of max_bytes sequentially (wrapping around) for --seconds, then reads back
// the part it wrote, so that no read lands in an unwritten (zero, never read) extent.
struct FioSeq {
  std::optional<double> write_mbps, read_mbps;
};

FioSeq RunFioSeq(BenchContext& ctx) {
  FioSeq out;
  const auto& opt = ctx.options();
  auto dir = ctx.FreshDir("seq-4m-fio");
  if (!dir.ok()) {
    ctx.BaselineFailed("fio seq-4m", dir.status());
    return out;
  }
  FioJob job;
  job.fio = ctx.fio();
  job.filename = *dir + "/seq.dat";
  job.block_size = kBlob;
  job.iodepth = opt.seq_depth;
  job.size = std::max<uint64_t>(ctx.max_bytes() / kBlob, 1) * kBlob;
  job.seconds = opt.seconds;
  job.rw = "write";
  ctx.Progress("seq-4m: fio write, " + std::to_string(opt.seq_depth) + " in flight");
  ctx.Settle();
  auto w = RunFio(job);
  if (w.ok()) {
    out.write_mbps = BytesToMB(w->bytes_per_sec);
    ctx.Progress("  " + FormatFigure(*out.write_mbps) + " MB/s");
    job.rw = "read";
    job.size = std::clamp<uint64_t>(w->io_bytes / kBlob, 1, job.size / kBlob) * kBlob;
    ctx.Progress("seq-4m: fio read, " + std::to_string(opt.seq_depth) + " in flight");
    ctx.Settle();
    auto r = RunFio(job);
    if (r.ok()) {
      out.read_mbps = BytesToMB(r->bytes_per_sec);
      ctx.Progress("  " + FormatFigure(*out.read_mbps) + " MB/s");
    } else {
      ctx.BaselineFailed("fio seq-4m read", r.status());
    }
  } else {
    ctx.BaselineFailed("fio seq-4m write", w.status());
  }
  ctx.RemoveDir(*dir);
  return out;
}

}  // namespace

Status RunSeq4m(BenchContext& ctx) {
  const size_t max_keys = std::clamp<uint64_t>(ctx.max_bytes() / kBlob, 16, 1u << 16);
  const KeySet keys(max_keys, kKeyBytes, /*seed=*/0x6c0);
  const ValueSet values(8, kBlob, /*seed=*/0x6c1);

  auto g = RunGranarySeq(ctx, keys, values);
  if (!g.ok()) return g.status();
  FioSeq fio;
  if (!ctx.fio().empty()) fio = RunFioSeq(ctx);

  BenchRow put;
  put.name = "seq-4m put";
  put.unit = "MB/s";
  put.granary = g->put_mbps;
  put.baseline = "fio write";
  put.baseline_value = fio.write_mbps;
  put.details = {{"granary", g->put_json}};
  ctx.report().Add(std::move(put));

  BenchRow get;
  get.name = "seq-4m get";
  get.unit = "MB/s";
  get.granary = g->get_mbps;
  get.baseline = "fio read";
  get.baseline_value = fio.read_mbps;
  get.details = {{"granary", g->get_json}};
  ctx.report().Add(std::move(get));
  return Status::OK();
}

}  // namespace granary::tools
