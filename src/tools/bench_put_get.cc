#include "tools/bench_put_get.h"

namespace granary::tools {

nlohmann::json LoadJson(const LoadResult& r, size_t length, size_t batch) {
  const double objects_per_sec = r.OpsPerSec() * static_cast<double>(batch);
  nlohmann::json j = {{"ops", r.ops * batch},
                      {"seconds", r.seconds},
                      {"ops_per_sec", objects_per_sec},
                      {"mb_per_sec", objects_per_sec * static_cast<double>(length) / 1e6},
                      {"p50_us", NanosToMicros(r.latency.Percentile(50))},
                      {"p99_us", NanosToMicros(r.latency.Percentile(99))}};
  if (batch > 1) j["batch"] = batch;
  return j;
}

Result<Figures> RunTarget(BenchContext& ctx, int threads, double seconds, const std::string& label,
                          const Opener& open, const KeySet& keys, const ValueSet& values,
                          size_t batch) {
  ASSIGN_OR_RETURN(std::string dir, ctx.FreshDir(label));
  Figures f;
  const size_t length = values.length();
  const std::string clients = std::to_string(threads) + " clients" +
                              (batch > 1 ? ", batches of " + std::to_string(batch) : "");
  Status status = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<BlobTarget> target, open(dir));
    ctx.Settle();
    ctx.Progress(label + ": puts, " + clients);
    // Call n puts (or reads) objects [n * batch, (n + 1) * batch).
    using Views = std::vector<std::string_view>;
    std::vector<Views> key_views(static_cast<size_t>(threads), Views(batch));
    std::vector<Views> value_views(static_cast<size_t>(threads), Views(batch));
    LoadResult put = RunClosedLoop(threads, seconds, keys.size() / batch, [&](int t, uint64_t n) {
      if (batch == 1) return target->Put(keys[n], values[n]);
      Views& k = key_views[size_t(t)];
      Views& v = value_views[size_t(t)];
      for (size_t j = 0; j < batch; ++j) {
        k[j] = keys[n * batch + j];
        v[j] = values[n * batch + j];
      }
      return target->PutBatch(k, v);
    });
    RETURN_IF_ERROR(put.status.WithContext("put"));
    if (put.ops == 0) return Status::Internal("no put completed");
    const uint64_t stored = put.ops * batch;
    f.put_json = LoadJson(put, length, batch);
    f.put_mbps = f.put_json["mb_per_sec"];
    ctx.Progress("  " + FormatFigure(f.put_mbps) + " MB/s, " +
                 FormatFigure(f.put_json["ops_per_sec"]) + " puts/s");
    ctx.Settle();
    ctx.Progress(label + ": random gets, " + clients);
    const std::vector<uint32_t> order = RandomIndices(1 << 16, stored, length + 3);
    std::vector<std::string> buffers(static_cast<size_t>(threads));
    LoadResult get = RunClosedLoop(threads, seconds, UINT64_MAX, [&](int t, uint64_t n) {
      if (batch == 1) {
        const uint32_t i = order[n % order.size()];
        ASSIGN_OR_RETURN(std::string_view got, target->Read(keys[i], &buffers[size_t(t)]));
        if (got.size() != length) return Status::Corruption("get returned the wrong size");
        return Status::OK();
      }
      Views& k = key_views[size_t(t)];
      for (size_t j = 0; j < batch; ++j) k[j] = keys[order[(n * batch + j) % order.size()]];
      return target->ReadBatch(k, length, &buffers[size_t(t)]);
    });
    RETURN_IF_ERROR(get.status.WithContext("get"));
    f.get_json = LoadJson(get, length, batch);
    f.get_mbps = f.get_json["mb_per_sec"];
    ctx.Progress("  " + FormatFigure(f.get_mbps) + " MB/s, " +
                 FormatFigure(f.get_json["ops_per_sec"]) + " gets/s");
    std::string buf;
    for (uint32_t i : RandomIndices(16, stored, length + 5)) {
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
