// `granary server --data DIR`: every role in one process (the embedded default).
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/logging.h"
#include "node/server.h"
#include "tools/commands.h"
#include "tools/stop_signals.h"

namespace granary::tools {
namespace {

struct ServerFlags {
  node::ServerOptions options;
  std::string disks;
  uint64_t chunk_mib = 4;
};

// Many idle S3 connections each hold a descriptor: allow as many as the system lets us.
void RaiseFileLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) GLOG_WARN("could not raise the open-file limit");
  }
}

int RunServer(ServerFlags& flags) {
  RaiseFileLimit();
  // Signals are taken by sigwait below; block them before any thread starts so that every
  // thread inherits the mask.
  const sigset_t stop_signals = BlockStopSignals();

  flags.options.disks = SplitList(flags.disks);
  flags.options.chunk_bytes = flags.chunk_mib << 20;
  auto server = node::Server::Start(flags.options);
  if (!server.ok()) {
    GLOG_ERROR("granary server could not start: {}", server.status().ToString());
    std::fprintf(stderr, "error: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const auto& creds = (*server)->credentials();
  std::string s3 = "127.0.0.1:" + std::to_string((*server)->s3_port());
  std::string host = flags.options.s3_listen.substr(0, flags.options.s3_listen.rfind(':'));
  if (!host.empty()) s3 = host + ":" + std::to_string((*server)->s3_port());
  std::string native_host =
      flags.options.native_listen.substr(0, flags.options.native_listen.rfind(':'));
  std::string native = native_host + ":" + std::to_string((*server)->native_port());
  GLOG_INFO("granary server ready: S3 on http://{}, native protocol on {}", s3, native);
  if (creds.path.empty()) {
    GLOG_INFO("root credentials: from GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY");
  } else {
    GLOG_INFO("root credentials: stored in {}", creds.path);
  }
  nlohmann::json ready = {{"event", "ready"},
                          {"s3", s3},
                          {"native", native},
                          {"credentials", creds.path.empty() ? "environment" : creds.path}};
  std::printf("%s\n", ready.dump().c_str());
  std::fflush(stdout);

  const int sig = WaitForStopSignal(stop_signals);
  GLOG_INFO("signal {}: shutting down", sig);
  Status st = (*server)->Stop();
  if (!st.ok()) {
    GLOG_ERROR("shutdown: {}", st.ToString());
    return 1;
  }
  GLOG_INFO("granary server stopped cleanly");
  return 0;
}

}  // namespace

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void AddServerCommand(CLI::App& app) {
  auto flags = std::make_shared<ServerFlags>();
  CLI::App* cmd = app.add_subcommand(
      "server", "Run every role of Granary in one process: S3 and the native protocol over the "
                "disks of this host");
  cmd->add_option("--data", flags->options.data_dir,
                  "data directory: namespace, credentials, and the data disk unless --disks")
      ->required();
  cmd->add_option("--s3", flags->options.s3_listen, "S3 address (host:port; port 0: any free)")
      ->capture_default_str();
  cmd->add_option("--listen", flags->options.native_listen,
                  "native protocol address (host:port; port 0: any free)")
      ->capture_default_str();
  cmd->add_option("--disks", flags->disks,
                  "comma-separated data directories, one blob engine each (default: DATA/disk0)");
  cmd->add_option("--inline-max", flags->options.inline_max_bytes,
                  "objects up to this many bytes are stored inside their metadata record")
      ->capture_default_str();
  cmd->add_option("--chunk-mib", flags->chunk_mib,
                  "objects larger than this many MiB are stored as chunks of this size")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--s3-threads", flags->options.s3_threads, "S3 network threads")
      ->capture_default_str();
  cmd->callback([flags] { ExitCode() = RunServer(*flags); });
}

}  // namespace granary::tools
