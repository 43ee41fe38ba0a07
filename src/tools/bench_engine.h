// `granary bench engine`: the blob engine against baselines measured on the same directory in
// the same run. bench_engine.cc holds the command and this context; each workload has a file:
//   randwrite-4k  bench_engine_randwrite.cc  4 KiB durable random writes vs fio (raw, fdatasync)
//   small-blobs   bench_engine_blobs.cc      1-64 KiB puts and gets vs file-per-blob and RocksDB
//   seq-4m        bench_engine_seq.cc        4 MiB sequential puts and gets vs fio
// bench/README.md says how each figure is measured.
//
// Thread-safety: a BenchContext belongs to the command's thread; workloads start their own
// threads and join them before returning.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tools/bench_report.h"

namespace granary::tools {

struct EngineBenchOptions {
  std::string dir;
  bool json = false;
  bool quick = false;
  double seconds = 5.0;                // per measured run of randwrite-4k and seq-4m
  double blob_seconds = 3.0;           // per phase (puts, gets) of each store in small-blobs
  std::vector<std::string> workloads;  // empty: all
  std::vector<int> depths = {1, 32};
  std::vector<int> blob_sizes_kib = {1, 4, 16, 64};
  int writers = 8;
  int readers = 8;
  int seq_depth = 4;
  bool cold_reads = false;
  std::string fio;                              // empty: `fio` on PATH
  double max_gib = 4.0;                         // data written per run, at most
  uint64_t fio_randwrite_bytes = 256ull << 20;  // size of fio's random-write file
};

// The workloads, in the order they run.
inline constexpr std::string_view kEngineWorkloads[] = {"randwrite-4k", "small-blobs", "seq-4m"};

class BenchContext {
 public:
  BenchContext(const EngineBenchOptions& options, std::string root, BenchReport* report)
      : options_(options), root_(std::move(root)), report_(report) {}

  const EngineBenchOptions& options() const { return options_; }
  BenchReport& report() { return *report_; }

  // The fio executable, or empty when there is none (fio_missing() says why).
  const std::string& fio() const { return fio_; }
  const std::string& fio_missing() const { return fio_missing_; }
  void SetFio(std::string fio, std::string missing) {
    fio_ = std::move(fio);
    fio_missing_ = std::move(missing);
  }

  // Bytes one run may write: --max-gib, lowered to a quarter of the free space.
  uint64_t max_bytes() const { return max_bytes_; }
  void set_max_bytes(uint64_t bytes) { max_bytes_ = bytes; }

  // A new, empty subdirectory of the run's directory, named after `label`.
  Result<std::string> FreshDir(std::string_view label);
  // Removes a directory made by FreshDir, with everything in it; a failure becomes a note.
  void RemoveDir(const std::string& dir);

  // Called before every timed run: writes back the dirty pages of the whole file system
  // (syncfs), so that a run does not pay for the one before it (a removed store, a layout).
  void Settle();

  // A line on stderr, prefixed with the seconds since the start, saying what is being measured
  // or what was measured.
  void Progress(const std::string& line) const;
  // A baseline that could not be measured: a note in the report and a warning on stderr.
  void BaselineFailed(const std::string& what, const Status& status);

 private:
  const EngineBenchOptions& options_;
  std::string root_;
  BenchReport* report_;
  std::string fio_;
  std::string fio_missing_;
  uint64_t max_bytes_ = 4ull << 30;
  int next_dir_ = 0;
  uint64_t start_ns_ = BenchNowNanos();
};

// Each adds its rows to ctx.report(). A non-OK status means a Granary figure could not be
// measured (the engine failed); a baseline that fails only leaves its figure empty.
Status RunRandWrite4k(BenchContext& ctx);
Status RunSmallBlobs(BenchContext& ctx);
Status RunSeq4m(BenchContext& ctx);

// Nanoseconds to microseconds and bytes to MB/s (10^6 bytes), for rows.
inline double NanosToMicros(double ns) { return ns / 1000.0; }
inline double BytesToMB(double bytes) { return bytes / 1e6; }

}  // namespace granary::tools
