// Running fio (Debian's `fio` package) as a baseline: one job, one file, io_uring and direct
// I/O, JSON output parsed into the figures the benchmarks compare with.
//
// Thread-safety: the functions are independent and may be called from any thread, but fio jobs
// run at once disturb each other's figures; run one at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::tools {

struct FioJob {
  std::string fio;       // the fio executable (FindFio)
  std::string filename;  // the file fio reads or writes; created if missing
  std::string rw;        // "randwrite", "write", "read", "randread"
  uint64_t block_size = 4096;
  int iodepth = 1;
  bool fdatasync = false;  // --fdatasync=1: one fdatasync after every write
  // Lay the file out with real data before the job (--overwrite=1), so that writes overwrite
  // allocated blocks instead of converting unwritten extents.
  bool overwrite = false;
  uint64_t size = 0;     // file size (--size)
  double seconds = 1.0;  // time-based run (--time_based --runtime)
};

struct FioResult {
  double iops = 0;
  double bytes_per_sec = 0;
  uint64_t io_bytes = 0;
  uint64_t total_ios = 0;
  // Percentiles of one I/O's latency, submission to completion (fio's lat_ns, which needs
  // --lat_percentiles=1), in nanoseconds.
  std::optional<double> lat_p50_ns, lat_p99_ns;
  // Percentiles of one fdatasync's latency (fio's "sync" section), with --fdatasync=1.
  std::optional<double> sync_p50_ns, sync_p99_ns;
  std::vector<std::string> args;  // the command line that ran, for the report
};

// The fio executable: `explicit_path` if given (must be executable), else `fio` on PATH.
// NotFound, saying how to install it, when there is none.
Result<std::string> FindFio(const std::string& explicit_path);

// "fio-3.33", from `fio --version`.
Result<std::string> FioVersion(const std::string& fio);

// Runs `job` as a child process and parses its JSON output. IOError with fio's stderr when fio
// fails (for example O_DIRECT on a file system without it).
Result<FioResult> RunFio(const FioJob& job);

// Parses fio's --output-format=json text for direction "read" or "write" (exposed for tests).
Result<FioResult> ParseFioJson(const std::string& text, const std::string& direction);

// Runs `argv` (argv[0] looked up on PATH), returns its stdout; stderr goes to `stderr_path`
// (or /dev/null when empty). IOError when it cannot start or exits non-zero.
Result<std::string> RunChild(const std::vector<std::string>& argv, const std::string& stderr_path);

}  // namespace granary::tools
