// `granary bench cluster`: a cluster of real processes on this machine (etcd, N storage nodes on
// loopback, a manager), driven through the chain blob store a gateway uses. On one machine the
// nodes share the cores and the disk, so the figures are efficiencies: the cluster's throughput
// beside the blob engine's own on the same disk in the same run, the cost of 3 replicas against
// 1, and how fast a lost node's data is restored.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cluster/cluster_map.h"
#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "common/crypto.h"
#include "gateway/cluster_object_api.h"
#include "replication/chain_blob_store.h"
#include "tools/bench_put_get.h"
#include "tools/child_process.h"
#include "tools/commands.h"

namespace granary::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kAccess[] = "bench-root";
constexpr char kSecret[] = "bench-secret-key";

struct ClusterBenchOptions {
  std::string dir = "/tmp";
  double seconds = 4;
  int threads = 8;
  int size_kib = 1024;
  int object_kib = 4;  // objects through the namespace
  int chains = 24;
  double repair_mib = 512;
  bool json = false;
  bool quick = false;
};

// etcd, `nodes` storage nodes and a manager, as separate processes on 127.0.0.1.
class LocalCluster {
 public:
  static Result<std::unique_ptr<LocalCluster>> Start(const std::string& dir, int nodes,
                                                     int replicas, int chains) {
    std::unique_ptr<LocalCluster> c(new LocalCluster());
    c->replicas_ = replicas;
    ASSIGN_OR_RETURN(uint16_t client_port, FreeLoopbackPort());
    ASSIGN_OR_RETURN(uint16_t peer_port, FreeLoopbackPort());
    c->etcd_url_ = "http://127.0.0.1:" + std::to_string(client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    ASSIGN_OR_RETURN(c->etcd_, ChildProcess::Spawn(
                                   "/usr/bin/etcd",
                                   {"--data-dir", dir + "/etcd", "--listen-client-urls", c->etcd_url_,
                                    "--advertise-client-urls", c->etcd_url_, "--listen-peer-urls",
                                    peer, "--initial-advertise-peer-urls", peer,
                                    "--initial-cluster", "default=" + peer},
                                   dir, dir + "/etcd.log"));
    ASSIGN_OR_RETURN(c->etcd_client_, cluster::EtcdClient::Create(c->etcd_url_, 1000));
    RETURN_IF_ERROR(c->Await("etcd to answer", std::chrono::seconds(20), [&] {
      return c->etcd_client_->Get("/probe").ok();
    }));
    const std::vector<std::string> env = {std::string("GRANARY_ACCESS_KEY=") + kAccess,
                                          std::string("GRANARY_SECRET_KEY=") + kSecret};
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    for (int i = 0; i < nodes; ++i) {
      ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
      const std::string data = dir + "/node" + std::to_string(i);
      std::filesystem::create_directories(data);
      ASSIGN_OR_RETURN(auto node,
                       ChildProcess::Spawn(self,
                                           {"node", "--etcd", c->etcd_url_, "--data", data,
                                            "--listen", "127.0.0.1:" + std::to_string(port),
                                            "--rack", "r" + std::to_string(i % 3), "--host",
                                            "host" + std::to_string(i), "--lease-ttl", "2",
                                            "--gc-delay-ms", "2000"},
                                           dir, data + ".log", env));
      c->nodes_.push_back(std::move(node));
      c->node_dirs_.push_back(data);
    }
    ASSIGN_OR_RETURN(c->manager_,
                     ChildProcess::Spawn(self,
                                         {"manager", "--etcd", c->etcd_url_, "--chains",
                                          std::to_string(chains), "--replicas",
                                          std::to_string(replicas), "--lease-ttl", "2",
                                          // a long-running leader's steady state
                                          "--settle-ms", "0"},
                                         dir, dir + "/manager.log", env));
    RETURN_IF_ERROR(c->AwaitSettled(0));
    return c;
  }

  ~LocalCluster() {
    if (manager_) manager_->Stop();
    for (auto& n : nodes_) {
      if (n) n->Stop();
    }
    if (etcd_) etcd_->Stop();
  }

  const std::string& etcd_url() const { return etcd_url_; }

  Result<std::unique_ptr<replication::BlobStore>> OpenStore() {
    replication::ChainBlobStoreOptions o;
    o.etcd = etcd_url_;
    o.access_key = kAccess;
    o.secret_key = kSecret;
    o.connections_per_node = 32;
    return replication::OpenChainBlobStore(o);
  }

  // Waits until `down` nodes are marked down and every chain has its replicas, none syncing.
  Status AwaitSettled(int down, std::chrono::seconds limit = std::chrono::seconds(120)) {
    return Await("the cluster to settle", limit, [&] {
      Result<cluster::ClusterMap> map = Map();
      if (!map.ok() || map->chains.empty()) return false;
      int marked = 0;
      for (const auto& n : map->nodes) marked += n.state == cluster::NodeState::kDown;
      if (marked != down) return false;
      for (const auto& chain : map->chains) {
        if (chain.members.size() != static_cast<size_t>(replicas_) || !chain.syncing.empty()) {
          return false;
        }
      }
      return true;
    });
  }

  // Live bytes each node last reported, by node index.
  Result<std::vector<uint64_t>> UsedBytes() {
    std::vector<uint64_t> used(nodes_.size(), 0);
    ASSIGN_OR_RETURN(auto kvs, etcd_client_->GetPrefix(std::string(cluster::keys::kNodes)));
    for (const auto& kv : kvs) {
      Result<cluster::NodeInfo> info = cluster::NodeInfoFromJson(kv.value);
      if (!info.ok()) continue;
      for (size_t i = 0; i < node_dirs_.size(); ++i) {
        if (NodeId(i) == info->id) used[i] = info->used_bytes;
      }
    }
    return used;
  }

  void KillNode(size_t i) { nodes_[i]->Kill(); }

 private:
  LocalCluster() = default;

  std::string NodeId(size_t i) const {
    std::string id = FileTail(node_dirs_[i] + "/NODE_ID", 64);
    return id;
  }

  Result<cluster::ClusterMap> Map() {
    ASSIGN_OR_RETURN(auto kv, etcd_client_->Get(std::string(cluster::keys::kMap)));
    if (!kv.has_value()) return Status::NotFound("no map yet");
    return cluster::ClusterMap::FromJson(kv->value);
  }

  Status Await(const std::string& what, Clock::duration limit, const std::function<bool()>& done) {
    const auto until = Clock::now() + limit;
    while (Clock::now() < until) {
      if (done()) return Status::OK();
      for (auto& n : nodes_) {
        std::string how;
        if (n && n->pid() > 0 && n->Exited(&how)) {
          return Status::Unavailable("a node exited (" + how + "); its log ends: " +
                                     FileTail(n->log(), 600));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return Status::Unavailable("timed out waiting for " + what);
  }

  int replicas_ = 3;
  std::string etcd_url_;
  std::unique_ptr<ChildProcess> etcd_;
  std::unique_ptr<cluster::EtcdClient> etcd_client_;
  std::vector<std::unique_ptr<ChildProcess>> nodes_;
  std::vector<std::string> node_dirs_;
  std::unique_ptr<ChildProcess> manager_;
};

// The cluster as a BlobTarget: its blob store, and the cluster stopped on Close.
class ClusterTarget final : public BlobTarget {
 public:
  ClusterTarget(std::unique_ptr<LocalCluster> cluster,
                std::unique_ptr<replication::BlobStore> store)
      : cluster_(std::move(cluster)), store_(std::move(store)) {}
  std::string name() const override { return "cluster"; }
  Status Put(std::string_view key, std::string_view value) override {
    std::pair<std::string, std::string_view> blob{BlobKey(key), value};
    return store_->PutMany(std::span(&blob, 1));
  }
  Status Get(std::string_view key, std::string* value) override {
    const std::string k = BlobKey(key);
    std::vector<Result<std::string>> got = store_->GetMany(std::span<const std::string>(&k, 1));
    if (!got[0].ok()) return got[0].status();
    *value = std::move(*got[0]);
    return Status::OK();
  }
  Status DropCaches() override { return Status::OK(); }  // the nodes' page caches stay warm
  // The benchmark's binary keys, under a prefix: keys starting with a zero byte are the
  // cluster's placed keys (cluster::PlacedKeyPrefix).
  static std::string BlobKey(std::string_view key) { return "b" + std::string(key); }
  Status Close() override {
    Status st = store_->Close();
    cluster_.reset();
    return st;
  }

 private:
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<replication::BlobStore> store_;
};

Opener ClusterOpener(int nodes, int replicas, int chains) {
  return [=](const std::string& dir) -> Result<std::unique_ptr<BlobTarget>> {
    ASSIGN_OR_RETURN(auto cluster, LocalCluster::Start(dir, nodes, replicas, chains));
    ASSIGN_OR_RETURN(auto store, cluster->OpenStore());
    return std::unique_ptr<BlobTarget>(new ClusterTarget(std::move(cluster), std::move(store)));
  };
}

constexpr char kBucket[] = "bench";

// The cluster's objects, as a gateway reaches them: ClusterObjectApi, each call to the head of
// the namespace partition holding the key. With `directories`, keys are spread over that many
// top-level directories (and so over their partitions); else they are all at the bucket's top.
class ObjectsTarget final : public BlobTarget {
 public:
  ObjectsTarget(std::unique_ptr<LocalCluster> cluster,
                std::unique_ptr<gateway::ClusterObjectApi> api, int directories)
      : cluster_(std::move(cluster)), api_(std::move(api)), directories_(directories) {}
  std::string name() const override { return "cluster objects"; }
  Status Put(std::string_view key, std::string_view value) override {
    return api_->Put(kBucket, Name(key), value).status();
  }
  Status Get(std::string_view key, std::string* value) override {
    ASSIGN_OR_RETURN(*value, api_->Get(kBucket, Name(key)));
    return Status::OK();
  }
  Status DropCaches() override { return Status::OK(); }
  Status Close() override {
    api_.reset();
    cluster_.reset();
    return Status::OK();
  }

 private:
  std::string Name(std::string_view key) const {
    if (directories_ == 0) return HexEncode(key);
    const auto dir = static_cast<unsigned char>(key.empty() ? 0 : key.back()) % directories_;
    return "d" + std::to_string(dir) + "/" + HexEncode(key);
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<gateway::ClusterObjectApi> api_;
  const int directories_;
};

Opener ObjectsOpener(int nodes, int replicas, int chains, int connections, int directories) {
  return [=](const std::string& dir) -> Result<std::unique_ptr<BlobTarget>> {
    ASSIGN_OR_RETURN(auto cluster, LocalCluster::Start(dir, nodes, replicas, chains));
    gateway::ClusterObjectApiOptions o;
    o.etcd = cluster->etcd_url();
    o.access_key = kAccess;
    o.secret_key = kSecret;
    o.client.max_connections = connections;
    ASSIGN_OR_RETURN(auto api, gateway::ClusterObjectApi::Open(o));
    RETURN_IF_ERROR(api->CreateBucket(kBucket));
    return std::unique_ptr<BlobTarget>(
        new ObjectsTarget(std::move(cluster), std::move(api), directories));
  };
}

// Small objects through the replicated namespace (each put one entry down the partition's
// chain), beside a single-node server through the same native protocol.
void MeasureObjects(BenchContext& ctx, BenchReport& report, const ClusterBenchOptions& o) {
  const size_t length = static_cast<size_t>(o.object_kib) * 1024;
  const KeySet keys(1 << 16, 16, 0xd1);
  const ValueSet values(64, length, 0xd2);
  const std::string size = std::to_string(o.object_kib) + "k";
  auto single = RunTarget(ctx, o.threads, o.seconds, "objects single node",
                          [&](const std::string& dir) {
                            return OpenNativeTarget(dir, o.threads, /*shared=*/false);
                          },
                          keys, values);
  if (!single.ok()) ctx.BaselineFailed("single-node server", single.status());
  // {replicas, top-level directories the keys are spread over}
  for (auto [replicas, directories] : {std::pair{1, 0}, std::pair{3, 0}, std::pair{3, 16}}) {
    const std::string label = "objects 3 nodes x" + std::to_string(replicas) +
                              (directories ? " in " + std::to_string(directories) + " dirs" : "");
    auto figures =
        RunTarget(ctx, o.threads, o.seconds, label,
                  ObjectsOpener(3, replicas, o.chains, o.threads, directories), keys, values);
    if (!figures.ok()) {
      std::cerr << "error: " << figures.status().ToString() << std::endl;
      report.AddError(label + ": " + figures.status().ToString());
      continue;
    }
    for (int get = 0; get < 2; ++get) {
      BenchRow row;
      row.name = size + " object " + (get ? "get" : "put") + ", 3 nodes, " +
                 std::to_string(replicas) + (replicas == 1 ? " replica" : " replicas") +
                 (directories ? ", " + std::to_string(directories) + " directories" : "");
      row.unit = "ops/s";
      const nlohmann::json& mine = get ? figures->get_json : figures->put_json;
      row.granary = mine["ops_per_sec"];
      row.baseline = "single-node server";
      if (single.ok()) {
        const nlohmann::json& base = get ? single->get_json : single->put_json;
        row.baseline_value = base["ops_per_sec"];
        row.details["single_node"] = base;
      }
      row.details["cluster"] = mine;
      row.details["replicas"] = replicas;
      row.details["directories"] = directories;
      if (!get) {
        row.note = directories ? "keys spread over the partitions of 16 top-level directories"
                               : "each put is one namespace entry, acknowledged by the "
                                 "partition's tail";
      }
      report.Add(std::move(row));
    }
  }
}

struct RepairFigures {
  double restored_bytes = 0;
  double detect_seconds = 0;  // kill -9 until the map marks the node down
  double copy_seconds = 0;    // from then until every chain is whole again
};

// 6 nodes, 3 replicas: writes `bytes`, kills the fullest node, times the repair.
Result<RepairFigures> MeasureRepair(BenchContext& ctx, const ClusterBenchOptions& o,
                                    uint64_t bytes) {
  ASSIGN_OR_RETURN(std::string dir, ctx.FreshDir("repair"));
  Result<RepairFigures> result = [&]() -> Result<RepairFigures> {
    ASSIGN_OR_RETURN(auto cluster, LocalCluster::Start(dir, 6, 3, o.chains));
    ASSIGN_OR_RETURN(auto store, cluster->OpenStore());
    const size_t length = static_cast<size_t>(o.size_kib) * 1024;
    const uint64_t count = std::max<uint64_t>(1, bytes / length);
    const ValueSet values(16, length, 0x5e);
    ctx.Progress("repair: writing " + FormatFigure(double(count * length) / 1e6) + " MB");
    LoadResult put = RunClosedLoop(o.threads, 1e9, count, [&](int, uint64_t i) {
      std::pair<std::string, std::string_view> blob{"repair-" + std::to_string(i), values[i]};
      return store->PutMany(std::span(&blob, 1));
    });
    RETURN_IF_ERROR(put.status);
    // Usage reports arrive every 2 s.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    ASSIGN_OR_RETURN(std::vector<uint64_t> used, cluster->UsedBytes());
    const size_t victim = std::max_element(used.begin(), used.end()) - used.begin();
    RepairFigures f;
    f.restored_bytes = static_cast<double>(used[victim]);
    ctx.Progress("repair: kill -9 of a node holding " + FormatFigure(f.restored_bytes / 1e6) +
                 " MB");
    const auto killed = Clock::now();
    cluster->KillNode(victim);
    // Detected: the map marks it down (its chains then have 2 members and a syncing third).
    while (true) {
      Result<std::vector<uint64_t>> now = cluster->UsedBytes();
      if (now.ok() && (*now)[victim] == 0) break;
      if (Clock::now() - killed > std::chrono::seconds(30)) {
        return Status::Unavailable("the dead node's registration did not expire");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const auto detected = Clock::now();
    RETURN_IF_ERROR(cluster->AwaitSettled(1, std::chrono::seconds(600)));
    const auto repaired = Clock::now();
    f.detect_seconds = std::chrono::duration<double>(detected - killed).count();
    f.copy_seconds = std::chrono::duration<double>(repaired - detected).count();
    return f;
  }();
  ctx.RemoveDir(dir);
  return result;
}

int RunClusterBench(ClusterBenchOptions o) {
  if (o.quick) {
    o.seconds = 1;
    o.repair_mib = 64;
  }
  if (::access("/usr/bin/etcd", X_OK) != 0) {
    std::cerr << "granary bench cluster needs etcd: apt-get install etcd-server" << std::endl;
    return 2;
  }
  std::error_code ec;
  const std::string root = o.dir + "/granary-bench-cluster-" + std::to_string(::getpid());
  std::filesystem::create_directories(root, ec);
  if (ec) {
    std::cerr << "granary bench cluster: cannot create " << root << ": " << ec.message()
              << std::endl;
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  BenchReport report("cluster");
  EngineBenchOptions engine_options;
  BenchContext ctx(engine_options, root, &report);
  report.SetMachine(DescribeMachine(o.dir));
  report.SetConfig({{"threads", o.threads}, {"seconds", o.seconds}, {"size_kib", o.size_kib},
                    {"object_kib", o.object_kib},
                    {"chains", o.chains}, {"repair_mib", o.repair_mib}});
  const size_t length = static_cast<size_t>(o.size_kib) * 1024;
  const KeySet keys(std::clamp<uint64_t>((2ull << 30) / length, 64, 1 << 20), 16, 0xc1);
  const ValueSet values(std::clamp<size_t>((256u << 20) / length, 2, 256), length, 0xc2);
  const std::string size = std::to_string(o.size_kib) + "k";

  auto engine = RunTarget(ctx, o.threads, o.seconds, "engine", OpenGranaryTarget, keys, values);
  if (!engine.ok()) ctx.BaselineFailed("engine", engine.status());
  struct Config {
    int nodes;
    int replicas;
  };
  std::map<std::pair<int, int>, Figures> measured;
  for (Config c : {Config{1, 1}, Config{3, 1}, Config{3, 3}, Config{6, 3}}) {
    const std::string label = std::to_string(c.nodes) + " nodes x" + std::to_string(c.replicas);
    auto figures = RunTarget(ctx, o.threads, o.seconds, label,
                             ClusterOpener(c.nodes, c.replicas, o.chains), keys, values);
    if (!figures.ok()) {
      std::cerr << "error: " << figures.status().ToString() << std::endl;
      report.AddError(label + ": " + figures.status().ToString());
      continue;
    }
    measured[{c.nodes, c.replicas}] = *figures;
    for (int get = 0; get < 2; ++get) {
      BenchRow row;
      row.name = size + (get ? " get, " : " put, ") + std::to_string(c.nodes) + " nodes, " +
                 std::to_string(c.replicas) + (c.replicas == 1 ? " replica" : " replicas");
      row.unit = "MB/s";
      row.granary = get ? figures->get_mbps : figures->put_mbps;
      row.baseline = "engine";
      if (engine.ok()) row.baseline_value = get ? engine->get_mbps : engine->put_mbps;
      row.details = {{"cluster", get ? figures->get_json : figures->put_json},
                     {"nodes", c.nodes},
                     {"replicas", c.replicas}};
      if (!get) {
        // Bytes the disks took per second, all replicas counted, and each node's share.
        row.details["stored_mb_per_sec"] = figures->put_mbps * c.replicas;
        row.details["stored_mb_per_sec_per_node"] = figures->put_mbps * c.replicas / c.nodes;
      }
      report.Add(std::move(row));
    }
  }
  if (measured.count({3, 3}) && measured.count({3, 1})) {
    BenchRow row;
    row.name = size + " put, 3 nodes: 3 replicas against 1";
    row.unit = "MB/s";
    row.granary = measured[{3, 3}].put_mbps;
    row.baseline = "1 replica";
    row.baseline_value = measured[{3, 1}].put_mbps;
    row.note = "on one machine the three replicas share one disk: 0.33 is the floor";
    report.Add(std::move(row));
  }
  MeasureObjects(ctx, report, o);
  auto repair = MeasureRepair(ctx, o, static_cast<uint64_t>(o.repair_mib * double(1 << 20)));
  if (!repair.ok()) {
    std::cerr << "error: repair: " << repair.status().ToString() << std::endl;
    report.AddError("repair: " + repair.status().ToString());
  } else {
    BenchRow row;
    row.name = "repair after losing 1 of 6 nodes";
    row.unit = "GB/min";
    row.granary = repair->restored_bytes / 1e9 / (repair->copy_seconds / 60);
    row.baseline = "engine put";
    if (engine.ok()) row.baseline_value = engine->put_mbps * 60 / 1000;
    row.details = {{"restored_bytes", repair->restored_bytes},
                   {"detect_seconds", repair->detect_seconds},
                   {"copy_seconds", repair->copy_seconds}};
    row.note = "from the node marked down until every chain is whole; detection took " +
               FormatFigure(repair->detect_seconds) + " s (lease 2 s)";
    report.Add(std::move(row));
  }
  std::filesystem::remove_all(root, ec);
  if (auto load = LoadAverage(); !load.empty()) report.machine()["load_average_end"] = load;
  return report.Finish(o.json);
}

}  // namespace

void AddClusterBenchCommand(CLI::App& bench) {
  auto o = std::make_shared<ClusterBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "cluster", "A cluster of etcd, storage nodes and a manager on this machine: throughput "
                 "with 1, 3 and 6 nodes beside the blob engine's, replication cost, small "
                 "objects through the replicated namespace, repair speed");
  cmd->add_option("--dir", o->dir, "directory for the cluster's data")->capture_default_str();
  cmd->add_option("--seconds", o->seconds, "length of each timed phase")->capture_default_str();
  cmd->add_option("--threads", o->threads, "concurrent clients")->capture_default_str();
  cmd->add_option("--size-kib", o->size_kib, "blob size")
      ->check(CLI::Range(1, 4 << 20))
      ->capture_default_str();
  cmd->add_option("--object-kib", o->object_kib, "object size through the namespace")
      ->check(CLI::Range(1, 4 << 20))
      ->capture_default_str();
  cmd->add_option("--chains", o->chains, "chains of each cluster")->capture_default_str();
  cmd->add_option("--repair-mib", o->repair_mib, "data written before a node is killed")
      ->capture_default_str();
  cmd->add_flag("--quick", o->quick, "1 s phases and 64 MiB for the repair (a smoke test)");
  cmd->add_flag("--json", o->json, "print the report as JSON on stdout (the table on stderr)");
  cmd->callback([o] { ExitCode() = RunClusterBench(*o); });
}

}  // namespace granary::tools
