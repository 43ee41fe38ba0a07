// Servers a benchmark starts for itself (Redis, etcd, the processes of a cluster): started with
// their output in a log, dying with the benchmark (PR_SET_PDEATHSIG), stopped by pid.
//
// Thread-safety: a ChildProcess belongs to one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::tools {

class ChildProcess {
 public:
  // Runs `executable` with `args` in `dir`, stdout and stderr appended to `log`, with the
  // environment of this process plus `env` ("NAME=value" each).
  static Result<std::unique_ptr<ChildProcess>> Spawn(const std::string& executable,
                                                     const std::vector<std::string>& args,
                                                     const std::string& dir,
                                                     const std::string& log,
                                                     const std::vector<std::string>& env = {});
  ~ChildProcess();  // Stop()s

  pid_t pid() const { return pid_; }
  const std::string& log() const { return log_; }
  // Whether it has exited (reaping it); `*how` says how, when given.
  bool Exited(std::string* how = nullptr);
  // SIGKILL, and waits for it.
  void Kill();
  // SIGTERM, then SIGKILL after 10 s; waits for it. Idempotent.
  void Stop();

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  std::string log_;
};

// A port on 127.0.0.1 that nothing listens on now (the kernel's choice for port 0).
Result<uint16_t> FreeLoopbackPort();

// The last `max_bytes` of the file at `path` (its end, where a failed start is logged).
std::string FileTail(const std::string& path, size_t max_bytes);

}  // namespace granary::tools
