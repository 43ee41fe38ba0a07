// `granary bench checkpoint`: training checkpoints through granary.torch.Checkpointer against
// torch.save + fsync and torch.load of a file on the same disk. This command starts a server in
// this process (its data under --dir), runs the measuring half, the Python module
// granary.torch._bench, with Debian's python3 and torch, and reports the medians of its runs.
// bench/README.md says how each figure is measured.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "node/server.h"
#include "tools/bench_baselines.h"
#include "tools/bench_fio.h"
#include "tools/bench_report.h"
#include "tools/commands.h"

namespace granary::tools {
namespace {

constexpr char kBucket[] = "bench";

struct CheckpointBenchOptions {
  std::string dir;
  std::string python = "/usr/bin/python3";
  double gib = 2.0;
  double changed = 0.10;
  int runs = 3;
  int parallel = 8;
  bool json = false;
};

// The directory of the Python package `granary` built beside this executable (build/python), or
// empty when there is none (then python3 finds it on its own path).
std::string PythonPackageDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const auto dir = exe.parent_path() / "python";
  return std::filesystem::exists(dir / "granary" / "torch" / "_bench.py", ec) ? dir.string() : "";
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The median over the runs of runs[i][side][field].
double MedianOf(const nlohmann::json& runs, const char* side, const char* field) {
  std::vector<double> v;
  for (const auto& run : runs) v.push_back(run.at(side).at(field).get<double>());
  return Median(v);
}

int Run(const CheckpointBenchOptions& o) {
  if (o.gib <= 0 || o.runs < 1 || o.changed <= 0 || o.changed > 1 || o.parallel < 1) {
    std::cerr << "granary bench checkpoint: --gib, --runs and --parallel must be positive and "
                 "--changed in (0, 1]"
              << std::endl;
    return 2;
  }
  std::error_code ec;
  const std::string root = o.dir + "/granary-bench-checkpoint-" + std::to_string(::getpid());
  const std::string data = root + "/server";
  const std::string files = root + "/torch";
  std::filesystem::create_directories(data, ec);
  std::filesystem::create_directories(files, ec);
  if (ec) {
    std::cerr << "granary bench checkpoint: cannot create " << root << ": " << ec.message()
              << std::endl;
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  BenchReport report("checkpoint");
  report.SetMachine(DescribeMachine(o.dir));
  nlohmann::json config = {{"gib", o.gib},
                           {"changed", o.changed},
                           {"runs", o.runs},
                           {"parallel", o.parallel},
                           {"python", o.python}};
  report.SetConfig(config);

  node::ServerOptions so;
  so.data_dir = data;
  so.s3_listen = "127.0.0.1:0";
  so.native_listen = "127.0.0.1:0";
  auto server = node::Server::Start(so);
  Status st = server.ok() ? (*server)->store().CreateBucket(kBucket) : server.status();
  nlohmann::json result;
  if (st.ok()) {
    // The keys travel in the environment, not on a command line others can read.
    ::setenv("GRANARY_ACCESS_KEY", (*server)->credentials().access_key.c_str(), 1);
    ::setenv("GRANARY_SECRET_KEY", (*server)->credentials().secret_key.c_str(), 1);
    if (const std::string pkg = PythonPackageDir(); !pkg.empty()) {
      const char* old = std::getenv("PYTHONPATH");
      ::setenv("PYTHONPATH", (pkg + (old && *old ? ":" + std::string(old) : "")).c_str(), 1);
    }
    std::cerr << "granary bench checkpoint: " << o.runs << " runs of a " << o.gib
              << " GiB state (progress in " << root << "/bench.log)" << std::endl;
    auto out = RunChild({o.python, "-m", "granary.torch._bench", "--address",
                         "127.0.0.1:" + std::to_string((*server)->native_port()), "--bucket",
                         kBucket, "--dir", files, "--data-dir", data, "--gib",
                         std::to_string(o.gib), "--changed", std::to_string(o.changed), "--runs",
                         std::to_string(o.runs), "--parallel", std::to_string(o.parallel)},
                        root + "/bench.log");
    st = out.status();
    if (st.ok()) {
      result = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
      if (result.is_discarded() || !result.contains("runs") || result["runs"].empty()) {
        st = Status::Internal("granary.torch._bench printed no figures: " + out->substr(0, 300));
      }
    }
  }
  if (server.ok()) (*server)->Stop().IgnoreError();
  if (!st.ok()) {
    // The data goes; the log stays, for the error's whole story.
    std::filesystem::remove_all(data, ec);
    std::filesystem::remove_all(files, ec);
    std::cerr << "error: " << st.ToString() << " (log: " << root << "/bench.log)" << std::endl;
    report.AddError(st.ToString());
    return report.Finish(o.json);
  }

  const nlohmann::json& runs = result["runs"];
  auto add = [&](std::string name, std::string unit, double granary, std::string baseline,
                 double base, std::string note = "") {
    BenchRow row;
    row.name = std::move(name);
    row.unit = std::move(unit);
    row.granary = granary;
    row.baseline = std::move(baseline);
    row.baseline_value = base;
    row.higher_is_better = false;
    row.note = std::move(note);
    report.Add(std::move(row));
  };
  const double mib = 1 << 20;
  add("save stall", "s", MedianOf(runs, "granary", "stall_s"), "torch.save",
      MedianOf(runs, "torch", "save_s"),
      "save() returning, host buffers reused from the previous save (every save after the "
      "first); target: 10x");
  add("save stall, first save", "s", MedianOf(runs, "granary", "first_stall_s"), "torch.save",
      MedianOf(runs, "torch", "save_s"), "save() returning, host buffers allocated");
  add("save until durable", "s", MedianOf(runs, "granary", "first_durable_s"),
      "torch.save+fsync", MedianOf(runs, "torch", "save_fsync_s"),
      "the first save, host buffers allocated; target: 3x");
  add("save until durable, later save", "s", MedianOf(runs, "granary", "full_durable_s"),
      "torch.save+fsync", MedianOf(runs, "torch", "save_fsync_s"),
      "every large tensor changed (all of them uploaded), host buffers reused; target: 3x");
  add("load, page cache dropped", "s", MedianOf(runs, "granary", "load_s"), "torch.load",
      MedianOf(runs, "torch", "load_s"), "target: 2.5x");
  add("second checkpoint written", "MiB",
      MedianOf(runs, "granary", "incremental_written_bytes") / mib, "changed bytes",
      MedianOf(runs, "granary", "changed_bytes") / mib,
      std::to_string(static_cast<int>(o.changed * 100 + 0.5)) +
          " % of the tensors changed; target: at most the changed bytes + 5 % (ratio >= 0.95)");
  add("second checkpoint written", "MiB",
      MedianOf(runs, "granary", "incremental_written_bytes") / mib, "torch.save",
      MedianOf(runs, "torch", "incremental_file_bytes") / mib);
  report.machine()["torch"] = result.value("torch_version", "");
  report.machine()["state_bytes"] = runs[0]["granary"].value("state_bytes", 0);
  config["per_run"] = runs;
  report.SetConfig(config);
  std::filesystem::remove_all(root, ec);
  if (auto load = LoadAverage(); !load.empty()) report.machine()["load_average_end"] = load;
  return report.Finish(o.json);
}

}  // namespace

void AddCheckpointBenchCommand(CLI::App& bench) {
  auto o = std::make_shared<CheckpointBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "checkpoint",
      "PyTorch checkpoints (granary.torch) against torch.save + fsync and torch.load");
  cmd->add_option("--dir", o->dir, "Directory on the disk to measure (the server's data and "
                                   "torch.save's file go under it)")
      ->required();
  cmd->add_option("--gib", o->gib, "Size of the training state")->capture_default_str();
  cmd->add_option("--changed", o->changed, "Fraction of the tensors the second checkpoint changes")
      ->capture_default_str();
  cmd->add_option("--runs", o->runs, "Runs; the figures are their medians")
      ->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "Chunks moved at once")->capture_default_str();
  cmd->add_option("--python", o->python, "Python with torch (Debian's python3-torch)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON document on stdout (the table goes to stderr)");
  cmd->callback([o] { ExitCode() = Run(*o); });
}

}  // namespace granary::tools
