#include "tools/bench_put_get.h"

namespace granary::tools {

nlohmann::json LoadJson(const LoadResult& r, size_t length) {
  return {{"ops", r.ops},
          {"seconds", r.seconds},
          {"ops_per_sec", r.OpsPerSec()},
          {"mb_per_sec", r.OpsPerSec() * static_cast<double>(length) / 1e6},
          {"p50_us", NanosToMicros(r.latency.Percentile(50))},
          {"p99_us", NanosToMicros(r.latency.Percentile(99))}};
}

Result<Figures> RunTarget(BenchContext& ctx, int threads, double seconds, const std::string& label,
                          const Opener& open, const KeySet& keys, const ValueSet& values) {
  ASSIGN_OR_RETURN(std::string dir, ctx.FreshDir(label));
  Figures f;
  const size_t length = values.length();
  Status status = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<BlobTarget> target, open(dir));
    ctx.Settle();
    ctx.Progress(label + ": puts, " + std::to_string(threads) + " clients");
    LoadResult put = RunClosedLoop(threads, seconds, keys.size(), [&](int, uint64_t i) {
      return target->Put(keys[i], values[i]);
    });
    RETURN_IF_ERROR(put.status.WithContext("put"));
    if (put.ops == 0) return Status::Internal("no put completed");
    f.put_json = LoadJson(put, length);
    f.put_mbps = f.put_json["mb_per_sec"];
    ctx.Progress("  " + FormatFigure(f.put_mbps) + " MB/s, " + FormatFigure(put.OpsPerSec()) +
                 " puts/s");
    ctx.Settle();
    ctx.Progress(label + ": random gets, " + std::to_string(threads) + " clients");
    const std::vector<uint32_t> order = RandomIndices(1 << 16, put.ops, length + 3);
    std::vector<std::string> buffers(static_cast<size_t>(threads));
    LoadResult get = RunClosedLoop(threads, seconds, UINT64_MAX, [&](int t, uint64_t n) {
      const uint32_t i = order[n % order.size()];
      ASSIGN_OR_RETURN(std::string_view got, target->Read(keys[i], &buffers[size_t(t)]));
      if (got.size() != length) return Status::Corruption("get returned the wrong size");
      return Status::OK();
    });
    RETURN_IF_ERROR(get.status.WithContext("get"));
    f.get_json = LoadJson(get, length);
    f.get_mbps = f.get_json["mb_per_sec"];
    ctx.Progress("  " + FormatFigure(f.get_mbps) + " MB/s, " + FormatFigure(get.OpsPerSec()) +
                 " gets/s");
    std::string buf;
    for (uint32_t i : RandomIndices(16, put.ops, length + 5)) {
      Result<std::string_view> got = target->Read(keys[i], &buf);
      RETURN_IF_ERROR(got.status().WithContext("verifying"));
      if (*got != values[i]) return Status::Corruption("an object read back different bytes");
    }
    return target->Close();
  }();
  ctx.RemoveDir(dir);
  if (!status.ok()) return status.WithContext(label);
  f.ok = true;
  return f;
}

}  // namespace granary::tools
