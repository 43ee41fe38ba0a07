// `granary node`, `granary manager` and `granary gateway`: the processes of a cluster
// (docs/design/cluster.md).
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/logging.h"
#include "gateway/cluster_object_api.h"
#include "manager/manager.h"
#include "node/cluster_node.h"
#include "s3/gateway.h"
#include "tools/commands.h"
#include "tools/stop_signals.h"

namespace granary::tools {
namespace {

struct NodeFlags {
  node::ClusterNodeOptions options;
  std::string data;
  double scrub_mib_per_sec = 64;
  double repair_mib_per_sec = 0;
  int scrub_interval_s = 3600;
};

int Fail(std::string_view what, const Status& status) {
  GLOG_ERROR("{}: {}", what, status.ToString());
  std::fprintf(stderr, "error: %s: %s\n", std::string(what).c_str(), status.ToString().c_str());
  return 1;
}

// The cluster's root credentials, which every node, manager and gateway must share.
Result<node::RootCredentials> ClusterCredentials() {
  Result<node::RootCredentials> creds = node::EnvironmentCredentials();
  if (creds.status().IsNotFound()) {
    return Status::InvalidArgument(
        "set GRANARY_ACCESS_KEY and GRANARY_SECRET_KEY to the cluster's root credentials, the "
        "same on every node and gateway");
  }
  return creds;
}

int RunNode(NodeFlags& flags) {
  const sigset_t stop_signals = BlockStopSignals();
  Result<node::RootCredentials> creds = ClusterCredentials();
  if (!creds.ok()) return Fail("granary node cannot start", creds.status());
  flags.options.disks = SplitList(flags.data);
  flags.options.scrub_bytes_per_second = static_cast<uint64_t>(flags.scrub_mib_per_sec * (1 << 20));
  flags.options.scrub_interval_ms = flags.scrub_interval_s * 1000;
  flags.options.repair_bytes_per_second =
      static_cast<uint64_t>(flags.repair_mib_per_sec * (1 << 20));
  auto node = node::ClusterNode::Start(flags.options, std::move(*creds));
  if (!node.ok()) return Fail("granary node cannot start", node.status());
  nlohmann::json ready = {{"event", "ready"}, {"node", (*node)->id()}, {"port", (*node)->port()}};
  std::printf("%s\n", ready.dump().c_str());
  std::fflush(stdout);
  const int sig = WaitForStopSignal(stop_signals);
  GLOG_INFO("signal {}: leaving the cluster", sig);
  Status stopped = (*node)->Stop();
  if (!stopped.ok()) return Fail("granary node did not stop cleanly", stopped);
  return 0;
}

int RunManager(manager::ManagerOptions& options) {
  const sigset_t stop_signals = BlockStopSignals();
  auto manager = manager::Manager::Start(options);
  if (!manager.ok()) return Fail("granary manager cannot start", manager.status());
  std::printf("%s\n", nlohmann::json({{"event", "ready"}}).dump().c_str());
  std::fflush(stdout);
  const int sig = WaitForStopSignal(stop_signals);
  GLOG_INFO("signal {}: stopping", sig);
  (*manager)->Stop();
  return 0;
}

struct GatewayFlags {
  std::string etcd;
  s3::GatewayOptions s3;
  std::string domains = "localhost";
  int retry_ms = 30'000;
  int wait_s = 60;
};

// Opens the cluster's ObjectApi, waiting up to `wait_s` for etcd and for a map (a cluster that is
// starting has neither for a few seconds).
Result<std::unique_ptr<gateway::ClusterObjectApi>> OpenCluster(
    const gateway::ClusterObjectApiOptions& options, int wait_s) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  for (bool logged = false;; logged = true) {
    auto api = gateway::ClusterObjectApi::Open(options);
    if (api.ok() || api.status().code() != Code::kUnavailable) return api;
    if (std::chrono::steady_clock::now() >= give_up) {
      return api.status().WithContext("no usable cluster map in etcd at " + options.etcd +
                                      " after " + std::to_string(wait_s) + " s");
    }
    if (!logged) GLOG_INFO("waiting for the cluster map: {}", api.status().ToString());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int RunGateway(GatewayFlags& flags) {
  const sigset_t stop_signals = BlockStopSignals();
  Result<node::RootCredentials> creds = ClusterCredentials();
  if (!creds.ok()) return Fail("granary gateway cannot start", creds.status());
  gateway::ClusterObjectApiOptions options;
  options.etcd = flags.etcd;
  options.access_key = creds->access_key;
  options.secret_key = creds->secret_key;
  options.retry_ms = flags.retry_ms;
  auto api = OpenCluster(options, flags.wait_s);
  if (!api.ok()) return Fail("granary gateway cannot start", api.status());
  flags.s3.domains = SplitList(flags.domains);
  // The S3 keys it accepts are the cluster's root credentials, as on every node.
  auto s3 = s3::Gateway::Start(**api, node::RootSecretLookup(*creds), flags.s3);
  if (!s3.ok()) return Fail("granary gateway cannot start: S3 on " + flags.s3.listen, s3.status());
  std::string host = flags.s3.listen.substr(0, flags.s3.listen.rfind(':'));
  if (host.empty()) host = "127.0.0.1";
  const std::string address = host + ":" + std::to_string((*s3)->port());
  GLOG_INFO("granary gateway ready: S3 on http://{} for the cluster in etcd at {}", address,
            flags.etcd);
  std::printf("%s\n", nlohmann::json({{"event", "ready"}, {"s3", address}}).dump().c_str());
  std::fflush(stdout);
  const int sig = WaitForStopSignal(stop_signals);
  GLOG_INFO("signal {}: shutting down", sig);
  (*s3)->Stop();
  GLOG_INFO("granary gateway stopped");
  return 0;
}

}  // namespace

void AddClusterCommands(CLI::App& app) {
  auto node_flags = std::make_shared<NodeFlags>();
  CLI::App* node = app.add_subcommand(
      "node", "Run a storage node of a cluster: its disks hold replicas of the cluster's chains");
  node->add_option("--etcd", node_flags->options.etcd, "etcd endpoints: http://HOST:PORT[,...]")
      ->required();
  node->add_option("--data", node_flags->data, "data directories, one blob engine each: DIR[,DIR]")
      ->required();
  node->add_option("--listen", node_flags->options.listen, "address to serve on (host:port)")
      ->capture_default_str();
  node->add_option("--advertise", node_flags->options.advertise,
                   "address other processes dial (default: --listen)");
  node->add_option("--rack", node_flags->options.rack, "the rack this host is in")
      ->capture_default_str();
  node->add_option("--zone", node_flags->options.zone, "the zone this host is in")
      ->capture_default_str();
  node->add_option("--host", node_flags->options.host, "this host's name (default: hostname)");
  node->add_option("--lease-ttl", node_flags->options.lease_ttl_seconds,
                   "seconds without contact to etcd before the node counts as dead")
      ->capture_default_str()
      ->check(CLI::Range(1, 60));
  node->add_option("--gc-delay-ms", node_flags->options.gc_delay_ms,
                   "how long after leaving a chain the node deletes its copies of that chain")
      ->capture_default_str()
      ->check(CLI::Range(0, 86'400'000));
  node->add_option("--scrub-mib-per-sec", node_flags->scrub_mib_per_sec,
                   "rate of the background scrub that reads every blob (0: no scrub)")
      ->capture_default_str();
  node->add_option("--repair-mib-per-sec", node_flags->repair_mib_per_sec,
                   "the most this node copies per second while filling chains (0: no limit)")
      ->capture_default_str();
  node->add_option("--namespace-log-entries", node_flags->options.namespace_log_entries,
                   "entries of each namespace partition's log kept for members that fall "
                   "behind (one further behind copies the partition)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{16}, uint64_t{100'000'000}));
  node->add_option("--scrub-interval-s", node_flags->scrub_interval_s,
                   "least time between the starts of two scrub passes")
      ->capture_default_str()
      ->check(CLI::Range(1, 365 * 86400));
  node->callback([node_flags] { ExitCode() = RunNode(*node_flags); });

  auto manager_options = std::make_shared<manager::ManagerOptions>();
  CLI::App* manager = app.add_subcommand(
      "manager", "Run a cluster manager: one leader (elected in etcd) places chains, detects "
                 "failures and schedules repair; the others stand by");
  manager->add_option("--etcd", manager_options->etcd, "etcd endpoints: http://HOST:PORT[,...]")
      ->required();
  manager->add_option("--id", manager_options->id, "this manager's name (default: host:pid)");
  manager->add_option("--replicas", manager_options->replicas, "copies of each chain")
      ->capture_default_str()
      ->check(CLI::Range(1, 5));
  manager->add_option("--chains", manager_options->chains,
                      "number of chains, fixed when the cluster is created")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  manager->add_option("--lease-ttl", manager_options->lease_ttl_seconds,
                      "seconds without contact to etcd before a standby takes over")
      ->capture_default_str()
      ->check(CLI::Range(1, 60));
  manager->add_option("--max-moves", manager_options->max_moves,
                      "chains moved at once when rebalancing")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  manager->add_option("--settle-ms", manager_options->settle_ms,
                      "after becoming the leader, time for nodes to re-register before the "
                      "map changes (at least twice the nodes' --lease-ttl)")
      ->capture_default_str()
      ->check(CLI::Range(0, 600'000));
  manager->callback([manager_options] { ExitCode() = RunManager(*manager_options); });

  auto gateway_flags = std::make_shared<GatewayFlags>();
  CLI::App* gateway = app.add_subcommand(
      "gateway", "Run a stateless S3 gateway of a cluster: each bucket's requests go to the node "
                 "that heads its partition");
  gateway->add_option("--etcd", gateway_flags->etcd, "etcd endpoints: http://HOST:PORT[,...]")
      ->required();
  gateway->add_option("--s3", gateway_flags->s3.listen, "S3 address (host:port; port 0: any free)")
      ->capture_default_str();
  gateway->add_option("--domain", gateway_flags->domains,
                      "comma-separated domains of virtual-host-style requests (BUCKET.DOMAIN)")
      ->capture_default_str();
  gateway->add_option("--region", gateway_flags->s3.region, "the S3 region clients sign for")
      ->capture_default_str();
  gateway->add_option("--s3-threads", gateway_flags->s3.threads, "S3 network threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  gateway->add_option("--retry-ms", gateway_flags->retry_ms,
                      "how long a request keeps retrying while the cluster moves or repairs the "
                      "bucket's partition")
      ->capture_default_str()
      ->check(CLI::Range(0, 600'000));
  gateway->add_option("--wait-s", gateway_flags->wait_s,
                      "how long to wait at start for etcd and the cluster map")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  gateway->callback([gateway_flags] { ExitCode() = RunGateway(*gateway_flags); });
}

}  // namespace granary::tools
