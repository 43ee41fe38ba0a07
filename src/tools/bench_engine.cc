// `granary bench engine`: registers the command and runs the selected workloads in a fresh
// directory under --dir, removed at the end.
#include "tools/bench_engine.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "tools/bench_baselines.h"
#include "tools/bench_fio.h"
#include "tools/commands.h"

namespace granary::tools {

Result<std::string> BenchContext::FreshDir(std::string_view label) {
  const std::string dir = root_ + "/" + std::to_string(next_dir_++) + "-" + std::string(label);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("creating " + dir + ": " + ec.message());
  return dir;
}

void BenchContext::RemoveDir(const std::string& dir) {
  if (Status s = RemoveTree(dir); !s.ok()) report_->AddNote("cleanup: " + s.message());
}

void BenchContext::Settle() {
  const int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::syncfs(fd);
  ::close(fd);
}

void BenchContext::Progress(const std::string& line) const {
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "[%6.1fs] ",
                static_cast<double>(BenchNowNanos() - start_ns_) / 1e9);
  std::cerr << prefix << line << std::endl;
}

void BenchContext::BaselineFailed(const std::string& what, const Status& status) {
  const std::string msg =
      what + " (baseline) failed, its figure is left empty: " + status.ToString();
  std::cerr << "warning: " << msg << std::endl;
  report_->AddNote(msg);
}

namespace {

// Removes the run's directory when the command is interrupted (SIGINT, SIGTERM, SIGHUP), so
// that a Ctrl-C does not leave gigabytes behind. Construct it before any thread is started: it
// blocks those signals in the calling thread, whose mask every later thread inherits, and a
// watcher thread takes them with sigwait (no work in a signal handler). The process then exits
// with 128 + the signal's number.
class CleanupOnSignal {
 public:
  explicit CleanupOnSignal(std::string root) : root_(std::move(root)) {
    sigemptyset(&set_);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, kStop}) sigaddset(&set_, sig);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    watcher_ = std::thread([this] {
      int sig = 0;
      while (sigwait(&set_, &sig) != 0) {
      }
      if (sig == kStop) return;
      std::fprintf(stderr, "\ninterrupted: removing %s\n", root_.c_str());
      std::error_code ec;
      // Twice: engine or fio threads may still be creating files during the first pass.
      std::filesystem::remove_all(root_, ec);
      std::filesystem::remove_all(root_, ec);
      std::_Exit(128 + sig);
    });
  }
  ~CleanupOnSignal() {
    pthread_kill(watcher_.native_handle(), kStop);
    watcher_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  CleanupOnSignal(const CleanupOnSignal&) = delete;
  CleanupOnSignal& operator=(const CleanupOnSignal&) = delete;

 private:
  static constexpr int kStop = SIGUSR2;  // sent by the destructor to end the watcher
  std::string root_;
  sigset_t set_{};
  sigset_t old_{};
  std::thread watcher_;
};

// Engine and library logs go to stderr, so that stdout holds only the table or the JSON.
void LogToStderr() {
  auto logger = spdlog::stderr_color_mt("granary-bench");
  logger->set_level(spdlog::default_logger()->level());
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ [%t] %v");  // as InitLogging
}

Status Validate(const EngineBenchOptions& o) {
  for (const auto& w : o.workloads) {
    if (std::find(std::begin(kEngineWorkloads), std::end(kEngineWorkloads), w) ==
        std::end(kEngineWorkloads)) {
      return Status::InvalidArgument("unknown workload \"" + w +
                                     "\": use randwrite-4k, small-blobs or seq-4m");
    }
  }
  if (o.seconds <= 0 || o.blob_seconds <= 0) {
    return Status::InvalidArgument("--seconds and --blob-seconds must be positive");
  }
  if (o.writers < 1 || o.readers < 1 || o.seq_depth < 1) {
    return Status::InvalidArgument("--writers, --readers and --seq-depth must be at least 1");
  }
  for (int d : o.depths) {
    if (d < 1 || d > 4096) return Status::InvalidArgument("--depths: use 1..4096");
  }
  for (int k : o.blob_sizes_kib) {
    if (k < 1 || k > 1024) return Status::InvalidArgument("--blob-sizes: use 1..1024 (KiB)");
  }
  if (o.max_gib <= 0) return Status::InvalidArgument("--max-gib must be positive");
  return Status::OK();
}

nlohmann::json ConfigJson(const EngineBenchOptions& o) {
  return {{"quick", o.quick},
          {"seconds", o.seconds},
          {"blob_seconds", o.blob_seconds},
          {"depths", o.depths},
          {"blob_sizes_kib", o.blob_sizes_kib},
          {"writers", o.writers},
          {"readers", o.readers},
          {"seq_depth", o.seq_depth},
          {"cold_reads", o.cold_reads},
          {"max_gib", o.max_gib},
          {"fio_randwrite_bytes", o.fio_randwrite_bytes}};
}

int RunEngineBench(EngineBenchOptions o) {
  LogToStderr();
  if (Status s = Validate(o); !s.ok()) {
    std::cerr << "granary bench engine: " << s.message() << std::endl;
    return 2;
  }
  std::vector<std::string> selected;
  for (std::string_view w : kEngineWorkloads) {
    if (o.workloads.empty() ||
        std::find(o.workloads.begin(), o.workloads.end(), w) != o.workloads.end()) {
      selected.emplace_back(w);
    }
  }

  std::error_code ec;
  std::filesystem::create_directories(o.dir, ec);
  if (ec) {
    std::cerr << "granary bench engine: cannot create --dir " << o.dir << ": " << ec.message()
              << std::endl;
    return 1;
  }
  // Everything the run writes lives under this directory, removed at the end; --dir stays.
  const std::string root = o.dir + "/granary-bench-engine-" + std::to_string(::getpid());
  std::filesystem::create_directories(root, ec);
  if (ec) {
    std::cerr << "granary bench engine: cannot create " << root << ": " << ec.message()
              << std::endl;
    return 1;
  }

  // Progress goes to stderr: if that is closed early (`| head`), carry on and clean up.
  std::signal(SIGPIPE, SIG_IGN);
  const CleanupOnSignal cleanup(root);

  BenchReport report("engine");
  BenchContext ctx(o, root, &report);
  uint64_t max_bytes = static_cast<uint64_t>(o.max_gib * double(1ull << 30));
  struct statvfs vfs {};
  if (::statvfs(o.dir.c_str(), &vfs) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (free_bytes / 4 < max_bytes) {
      max_bytes = std::max<uint64_t>(free_bytes / 4, 64ull << 20);
      report.AddNote("data per run limited to " + FormatFigure(max_bytes / 1e6) +
                     " MB, a quarter of the free space");
    }
  }
  ctx.set_max_bytes(max_bytes);

  nlohmann::json machine = DescribeMachine(o.dir);
  machine["rocksdb"] = RocksDbVersion();
  auto fio = FindFio(o.fio);
  if (fio.ok()) {
    auto version = FioVersion(*fio);
    machine["fio"] = version.ok() ? *version : *fio;
    ctx.SetFio(*fio, "");
  } else {
    machine["fio"] = nullptr;
    std::string why = fio.status().message();
    if (!o.fio.empty()) why += ": the fio baselines are left empty";
    ctx.SetFio("", why);
    std::cerr << "warning: " << why << std::endl;
    report.AddNote(why);
  }
  report.SetMachine(std::move(machine));
  nlohmann::json config = ConfigJson(o);
  config["workloads"] = selected;
  config["max_bytes_per_run"] = max_bytes;
  report.SetConfig(std::move(config));

  for (const std::string& w : selected) {
    Status s;
    if (w == "randwrite-4k") s = RunRandWrite4k(ctx);
    if (w == "small-blobs") s = RunSmallBlobs(ctx);
    if (w == "seq-4m") s = RunSeq4m(ctx);
    if (!s.ok()) {
      std::cerr << "error: " << w << ": " << s.ToString() << std::endl;
      report.AddError(w + ": " + s.ToString());
    }
  }

  if (Status s = RemoveTree(root); !s.ok()) report.AddNote("cleanup: " + s.message());
  if (auto load = LoadAverage(); !load.empty()) report.machine()["load_average_end"] = load;

  return report.Finish(o.json);
}

}  // namespace

void AddBenchCommands(CLI::App& app) {
  CLI::App* bench = app.add_subcommand(
      "bench", "Benchmarks; every figure stands beside a baseline measured in the same run");
  bench->require_subcommand(1);
  AddObjectBenchCommands(*bench);
  AddMetaBenchCommand(*bench);
  AddKvBenchCommand(*bench);
  AddCheckpointBenchCommand(*bench);
  AddClusterBenchCommand(*bench);

  auto o = std::make_shared<EngineBenchOptions>();
  CLI::App* eng = bench->add_subcommand(
      "engine",
      "The blob engine against fio, one file per blob and RocksDB on the same directory: "
      "4 KiB durable random writes (randwrite-4k), 1-64 KiB puts and gets (small-blobs), "
      "4 MiB sequential puts and gets (seq-4m)");
  eng->add_option("--dir", o->dir, "Directory to run in (created if missing, left in place)")
      ->required();
  eng->add_flag("--json", o->json, "Print a JSON document on stdout (the table goes to stderr)");
  eng->add_flag("--quick", o->quick,
                "Smoke run of about 30 s: 1 s per run, 0.5 s per small-blob phase, less data");
  auto* seconds = eng->add_option("--seconds", o->seconds,
                                  "Seconds per measured run of randwrite-4k and seq-4m")
                      ->capture_default_str();
  auto* blob_seconds =
      eng->add_option("--blob-seconds", o->blob_seconds,
                      "Seconds per phase (puts, gets) of each store in small-blobs")
          ->capture_default_str();
  eng->add_option("--workloads", o->workloads,
                  "Subset to run: randwrite-4k, small-blobs, seq-4m (default: all)")
      ->delimiter(',');
  eng->add_option("--depths", o->depths, "Queue depths of randwrite-4k")
      ->delimiter(',')
      ->capture_default_str();
  eng->add_option("--blob-sizes", o->blob_sizes_kib, "Blob sizes of small-blobs, in KiB")
      ->delimiter(',')
      ->capture_default_str();
  eng->add_option("--writers", o->writers, "Writer threads of small-blobs, for every store")
      ->capture_default_str();
  eng->add_option("--readers", o->readers, "Reader threads of small-blobs, for every store")
      ->capture_default_str();
  eng->add_option("--seq-depth", o->seq_depth,
                  "Threads (Granary) and I/Os in flight (fio) of seq-4m")
      ->capture_default_str();
  eng->add_flag("--cold-reads", o->cold_reads,
                "Drop the stores' page cache (and RocksDB's memtable) before the gets");
  eng->add_option("--fio", o->fio, "fio executable (default: fio on PATH)");
  auto* max_gib = eng->add_option("--max-gib", o->max_gib, "GiB written per run, at most")
                      ->capture_default_str();
  eng->callback([o, seconds, blob_seconds, max_gib] {
    EngineBenchOptions opts = *o;
    if (opts.quick) {
      if (seconds->count() == 0) opts.seconds = 1.0;
      if (blob_seconds->count() == 0) opts.blob_seconds = 0.5;
      if (max_gib->count() == 0) opts.max_gib = 1.0;
      opts.fio_randwrite_bytes = 64ull << 20;
    }
    ExitCode() = RunEngineBench(std::move(opts));
  });
}

}  // namespace granary::tools
