// small-blobs: durable puts of 1, 4, 16 and 64 KiB blobs from N writer threads, then random
// gets from N reader threads, against one file per blob and against RocksDB, all three driven
// by the same loop with the same keys, values and concurrency.
#include <algorithm>
#include <functional>

#include "engine/engine.h"
#include "tools/bench_baselines.h"
#include "tools/bench_engine.h"
#include "tools/bench_load.h"

namespace granary::tools {

namespace {

constexpr size_t kKeyBytes = 16;
constexpr size_t kReadIndices = size_t{1} << 20;  // random read order, cycled
constexpr int kVerified = 64;                     // blobs compared byte for byte after the gets

struct StoreFigures {
  bool ok = false;
  double put_ops = 0, get_ops = 0;
  nlohmann::json put_json, get_json;
  std::optional<double> index_bytes_per_blob;  // Granary only
  nlohmann::json index_json = nlohmann::json::object();
};

nlohmann::json LoadJson(const LoadResult& r) {
  return {{"ops", r.ops},
          {"seconds", r.seconds},
          {"ops_per_sec", r.OpsPerSec()},
          {"p50_us", NanosToMicros(r.latency.Percentile(50))},
          {"p99_us", NanosToMicros(r.latency.Percentile(99))}};
}

using Opener = std::function<Result<std::unique_ptr<BlobTarget>>(const std::string& dir)>;

// Puts then gets on one store in a fresh directory; removes it afterwards.
Result<StoreFigures> RunStore(BenchContext& ctx, const std::string& label, const Opener& open,
                              const KeySet& keys, const ValueSet& values) {
  const auto& opt = ctx.options();
  auto dir = ctx.FreshDir(label);
  if (!dir.ok()) return dir.status();
  StoreFigures f;
  Status status = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<BlobTarget> target, open(*dir));
    const size_t length = values.length();

    ctx.Settle();
    ctx.Progress(label + ": puts, " + std::to_string(opt.writers) + " writers");
    LoadResult put =
        RunClosedLoop(opt.writers, opt.blob_seconds, keys.size(),
                      [&](int, uint64_t i) { return target->Put(keys[i], values[i]); });
    RETURN_IF_ERROR(put.status.WithContext("put"));
    const uint64_t n = put.ops;
    if (n == 0) return Status::Internal("no put completed");
    f.put_ops = put.OpsPerSec();
    f.put_json = LoadJson(put);
    ctx.Progress("  " + FormatFigure(f.put_ops) + " puts/s (" + std::to_string(n) + " blobs)");

    if (engine::BlobEngine* e = GranaryEngineOf(*target)) {
      const engine::EngineStats stats = e->Stats();
      if (stats.live_blobs > 0) {
        f.index_bytes_per_blob =
            static_cast<double>(stats.index_memory_bytes) / static_cast<double>(stats.live_blobs);
      }
      f.index_json = {{"live_blobs", stats.live_blobs},
                      {"index_memory_bytes", stats.index_memory_bytes}};
      if (stats.syncs > 0) {
        f.put_json["writes_per_sync"] =
            static_cast<double>(stats.records_written) / static_cast<double>(stats.syncs);
      }
    }
    if (opt.cold_reads) RETURN_IF_ERROR(target->DropCaches());

    ctx.Settle();
    ctx.Progress(label + ": random gets, " + std::to_string(opt.readers) + " readers");
    const std::vector<uint32_t> order = RandomIndices(kReadIndices, n, /*seed=*/length + 7);
    std::vector<std::string> buffers(static_cast<size_t>(opt.readers));
    LoadResult get = RunClosedLoop(
        opt.readers, opt.blob_seconds, UINT64_MAX, [&](int t, uint64_t ticket) -> Status {
          const uint32_t i = order[ticket % order.size()];
          std::string& buf = buffers[static_cast<size_t>(t)];
          RETURN_IF_ERROR(target->Get(keys[i], &buf));
          if (buf.size() != length) {
            return Status::Corruption("get returned " + std::to_string(buf.size()) + " bytes, " +
                                      std::to_string(length) + " were put");
          }
          return Status::OK();
        });
    RETURN_IF_ERROR(get.status.WithContext("get"));
    f.get_ops = get.OpsPerSec();
    f.get_json = LoadJson(get);
    ctx.Progress("  " + FormatFigure(f.get_ops) + " gets/s");

    // Outside the timed loops: a sample of blobs must read back exactly as written.
    const std::vector<uint32_t> sample = RandomIndices(kVerified, n, /*seed=*/length + 11);
    std::string buf;
    for (uint32_t i : sample) {
      RETURN_IF_ERROR(target->Get(keys[i], &buf).WithContext("verifying"));
      if (buf != values[i]) {
        return Status::Corruption("blob " + std::to_string(i) + " read back different bytes");
      }
    }
    return target->Close();
  }();
  ctx.RemoveDir(*dir);
  if (!status.ok()) return status.WithContext(label);
  f.ok = true;
  return f;
}

}  // namespace

Status RunSmallBlobs(BenchContext& ctx) {
  const auto& opt = ctx.options();
  for (int kib : opt.blob_sizes_kib) {
    const size_t length = static_cast<size_t>(kib) * 1024;
    const std::string size = std::to_string(kib) + "k";
    const size_t max_keys = std::clamp<uint64_t>(ctx.max_bytes() / length, 1024, uint64_t{1} << 21);
    const KeySet keys(max_keys, kKeyBytes, /*seed=*/0x5b0 + kib);
    const ValueSet values(std::clamp<size_t>((32u << 20) / length, 16, 1024), length,
                          /*seed=*/0x5b1 + kib);

    auto granary = RunStore(ctx, "small-" + size + "-granary", OpenGranaryTarget, keys, values);
    if (!granary.ok()) return granary.status();
    auto files = RunStore(ctx, "small-" + size + "-files", OpenFilesTarget, keys, values);
    if (!files.ok()) ctx.BaselineFailed("small-" + size + " files", files.status());
    auto rocks = RunStore(ctx, "small-" + size + "-rocksdb", OpenRocksDbTarget, keys, values);
    if (!rocks.ok()) ctx.BaselineFailed("small-" + size + " rocksdb", rocks.status());

    const StoreFigures none;
    const StoreFigures& fs = files.ok() ? *files : none;
    const StoreFigures& rk = rocks.ok() ? *rocks : none;
    for (int get = 0; get < 2; ++get) {
      for (const auto* b : {&fs, &rk}) {
        BenchRow row;
        row.name = "small-" + size + (get ? " get" : " put");
        row.unit = "ops/s";
        row.granary = get ? granary->get_ops : granary->put_ops;
        row.baseline = b == &fs ? "files" : "rocksdb";
        if (b->ok) row.baseline_value = get ? b->get_ops : b->put_ops;
        row.details = {{"granary", get ? granary->get_json : granary->put_json}};
        if (b->ok) row.details["baseline"] = get ? b->get_json : b->put_json;
        ctx.report().Add(std::move(row));
      }
    }
    BenchRow index;
    index.name = "small-" + size + " index";
    index.unit = "bytes/blob";
    index.granary = granary->index_bytes_per_blob;
    index.higher_is_better = false;
    if (!index.granary) index.note = "the engine reported no live blobs";
    index.details = granary->index_json;
    ctx.report().Add(std::move(index));
  }
  return Status::OK();
}

}  // namespace granary::tools
