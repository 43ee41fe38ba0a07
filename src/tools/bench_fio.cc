#include "tools/bench_fio.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

extern char** environ;

namespace granary::tools {

namespace {

bool IsExecutable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The number at `j[key]`, or nothing when absent or not a number.
std::optional<double> Number(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// fio prints percentiles as {"50.000000": ns, "99.000000": ns, ...} under "percentile".
std::optional<double> FioPercentile(const nlohmann::json& lat, const char* pct) {
  if (!lat.is_object()) return std::nullopt;
  auto p = lat.find("percentile");
  if (p == lat.end()) return std::nullopt;
  return Number(*p, pct);
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > max_bytes) s = "..." + s.substr(s.size() - max_bytes);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string FormatSeconds(double seconds) {
  // fio accepts a unit suffix on times; milliseconds keep sub-second runs for --quick.
  const auto ms = static_cast<long long>(seconds * 1000.0 + 0.5);
  return std::to_string(ms < 1 ? 1 : ms) + "ms";
}

}  // namespace

Result<std::string> FindFio(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    if (IsExecutable(explicit_path)) return explicit_path;
    return Status::NotFound("fio \"" + explicit_path + "\" is not an executable file");
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/fio";
    if (IsExecutable(candidate)) return candidate;
  }
  return Status::NotFound(
      "fio is not installed: its baselines are skipped (install Debian's fio package, "
      "`apt-get install fio`, or pass --fio PATH)");
}

Result<std::string> RunChild(const std::vector<std::string>& argv, const std::string& stderr_path) {
  if (argv.empty()) return Status::InvalidArgument("RunChild: empty command line");
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO,
                                   stderr_path.empty() ? "/dev/null" : stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  // The child starts with no signal blocked and SIGPIPE at its default, whatever this process
  // has blocked or ignored (the bench command blocks SIGINT in all its threads).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (err != 0) {
    ::close(out[0]);
    return Status::FromErrno(err, "starting " + argv[0]);
  }

  std::string output;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n > 0) {
      output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(out[0]);

  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "waiting for " + argv[0]);
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    std::string why = WIFEXITED(wstatus) ? "exit status " + std::to_string(WEXITSTATUS(wstatus))
                                         : "signal " + std::to_string(WTERMSIG(wstatus));
    std::string msg = argv[0] + " failed (" + why + ")";
    if (!stderr_path.empty()) {
      const std::string tail = ReadTail(stderr_path, 600);
      if (!tail.empty()) msg += ": " + tail;
    }
    return Status::IOError(msg);
  }
  return output;
}

Result<std::string> FioVersion(const std::string& fio) {
  auto out = RunChild({fio, "--version"}, "");
  if (!out.ok()) return out.status();
  std::string v = *out;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

Result<FioResult> ParseFioJson(const std::string& text, const std::string& direction) {
  // fio may print notices ("Laying out IO file ...") before the document.
  const auto start = text.find('{');
  if (start == std::string::npos) {
    return Status::Corruption("fio printed no JSON document: " + text.substr(0, 300));
  }
  const auto doc = nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(start),
                                         text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("jobs") || !doc["jobs"].is_array() ||
      doc["jobs"].empty()) {
    return Status::Corruption("fio's JSON output has no jobs: " + text.substr(start, 300));
  }
  const auto& job = doc["jobs"][0];
  if (auto error = Number(job, "error"); error && *error != 0) {
    return Status::IOError("fio job failed with error " + std::to_string(static_cast<int>(*error)));
  }
  if (!job.contains(direction) || !job[direction].is_object()) {
    return Status::Corruption("fio's JSON output has no \"" + direction + "\" section");
  }
  const auto& d = job[direction];
  FioResult r;
  r.iops = Number(d, "iops").value_or(0);
  r.bytes_per_sec = Number(d, "bw_bytes").value_or(0);
  r.io_bytes = static_cast<uint64_t>(Number(d, "io_bytes").value_or(0));
  r.total_ios = static_cast<uint64_t>(Number(d, "total_ios").value_or(0));
  // lat_ns (submission + completion) has percentiles with --lat_percentiles=1; fall back to
  // clat_ns (completion only) for an fio that does not print them.
  const nlohmann::json& lat = d.contains("lat_ns") && d["lat_ns"].contains("percentile")
                                  ? d["lat_ns"]
                                  : (d.contains("clat_ns") ? d["clat_ns"] : d);
  r.lat_p50_ns = FioPercentile(lat, "50.000000");
  r.lat_p99_ns = FioPercentile(lat, "99.000000");
  if (job.contains("sync") && job["sync"].contains("lat_ns")) {
    r.sync_p50_ns = FioPercentile(job["sync"]["lat_ns"], "50.000000");
    r.sync_p99_ns = FioPercentile(job["sync"]["lat_ns"], "99.000000");
  }
  if (r.total_ios == 0) return Status::IOError("fio completed no I/O");
  return r;
}

Result<FioResult> RunFio(const FioJob& job) {
  std::vector<std::string> args = {
      job.fio,
      "--name=granary-bench",
      "--filename=" + job.filename,
      "--ioengine=io_uring",
      "--direct=1",
      "--rw=" + job.rw,
      "--bs=" + std::to_string(job.block_size),
      "--iodepth=" + std::to_string(job.iodepth),
      "--size=" + std::to_string(job.size),
      "--time_based",
      "--runtime=" + FormatSeconds(job.seconds),
      "--lat_percentiles=1",
      "--randrepeat=0",
      "--output-format=json",
  };
  if (job.fdatasync) args.push_back("--fdatasync=1");
  if (job.overwrite) args.push_back("--overwrite=1");

  auto out = RunChild(args, job.filename + ".fio-stderr");
  ::unlink((job.filename + ".fio-stderr").c_str());
  if (!out.ok()) return out.status();
  const std::string direction = job.rw.find("write") != std::string::npos ? "write" : "read";
  auto r = ParseFioJson(*out, direction);
  if (!r.ok()) return r.status();
  r->args = std::move(args);
  return r;
}

}  // namespace granary::tools
