#include "node/cluster_node.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "cluster/cluster_map.h"
#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "cluster/lease_keeper.h"
#include "common/logging.h"
#include "node/namespace_partitions.h"
#include "node/rpc_handlers.h"
#include "replication/chain_blob_store.h"
#include "replication/chain_replica.h"
#include "replication/local_blob_store.h"
#include "replication/scrubber.h"
#include "rpc/server.h"

namespace granary::node {
namespace {

constexpr char kIdFile[] = "NODE_ID";

// The node's id: kept in its first disk, chosen at random the first time.
Result<std::string> LoadNodeId(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kIdFile).string();
  std::ifstream in(path);
  std::string id;
  if (in && std::getline(in, id) && !id.empty()) return id;
  std::random_device random;
  char text[17];
  std::snprintf(text, sizeof(text), "%08x%08x", random(), random());
  id = text;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    out.flush();
    if (!out) return Status::IOError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot create " + path + ": " + ec.message());
  return id;
}

std::string Hostname() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

struct ClusterNode::Impl {
  ClusterNodeOptions options;
  RootCredentials credentials;
  std::string id;
  std::unique_ptr<cluster::EtcdClient> etcd;
  std::unique_ptr<replication::BlobStore> store;
  std::unique_ptr<cluster::LeaseKeeper> keeper;
  std::unique_ptr<replication::ChainReplica> replica;
  std::unique_ptr<NamespacePartitions> ns;
  std::unique_ptr<rpc::Server> server;
  std::unique_ptr<replication::Scrubber> scrubber;
  std::thread follower;

  std::mutex refresh_mu;
  int64_t map_revision = 0;  // GUARDED_BY(refresh_mu)
  std::chrono::steady_clock::time_point last_refresh;  // GUARDED_BY(refresh_mu)

  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;  // GUARDED_BY(mu)
  std::set<std::pair<uint32_t, uint64_t>> synced;  // follower thread only
  std::map<uint32_t, std::chrono::steady_clock::time_point> retry_after;  // follower thread only
  std::atomic<uint64_t> chains_filled{0};
  std::atomic<uint64_t> blobs_reclaimed{0};
  // Follower thread only: when this node was first seen out of each chain, and the chains whose
  // blobs it reclaimed since.
  std::map<uint32_t, std::chrono::steady_clock::time_point> left;
  std::set<uint32_t> reclaimed;
  std::chrono::steady_clock::time_point next_report;
  std::atomic<uint64_t> blobs_copied{0};

  cluster::NodeInfo Info() const {
    cluster::NodeInfo info;
    info.id = id;
    info.address = options.advertise;
    info.host = options.host;
    info.rack = options.rack;
    info.zone = options.zone;
    const replication::BlobStoreStats stats = store->Stats();
    info.capacity_bytes = stats.capacity_bytes;
    info.used_bytes = stats.live_bytes;
    return info;
  }

  // Reads the map from etcd and installs it if it changed.
  void RefreshMap() {
    const auto asked = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(refresh_mu);
    if (last_refresh > asked) return;  // one that started after this was asked just finished
    last_refresh = std::chrono::steady_clock::now();
    Result<std::optional<cluster::KeyValue>> kv = etcd->Get(std::string(cluster::keys::kMap));
    if (!kv.ok() || !kv->has_value() || (*kv)->mod_revision == map_revision) return;
    Result<cluster::ClusterMap> map = cluster::ClusterMap::FromJson((*kv)->value);
    if (!map.ok()) {
      GLOG_ERROR("cluster map in etcd is unreadable: {}", map.status().ToString());
      return;
    }
    map_revision = (*kv)->mod_revision;
    auto shared = std::make_shared<const cluster::ClusterMap>(std::move(*map));
    replica->SetMap(shared);
    ns->SetMap(std::move(shared));
  }

  // Fills one chain this node is syncing, if any; returns whether it did something.
  bool SyncOne() {
    auto map = replica->map();
    if (map == nullptr) return false;
    for (const cluster::Chain& chain : map->chains) {
      for (size_t i = 0; i < chain.syncing.size(); ++i) {
        if (chain.syncing[i] != id || synced.count({chain.id, chain.syncing_since[i]}) > 0) {
          continue;
        }
        const uint64_t since = chain.syncing_since[i];
        auto retry = retry_after.find(chain.id);
        if (retry != retry_after.end() && std::chrono::steady_clock::now() < retry->second) {
          continue;  // failed lately: the other chains first
        }
        Result<uint64_t> copied = replica->Sync(chain.id, since);
        if (copied.ok()) {
          // The chain's namespace partition too.
          Status filled = ns->Fill(chain.id);
          if (!filled.ok()) copied = filled;
        }
        if (!copied.ok()) {
          GLOG_WARN("sync of chain {} (since version {}) failed, will retry: {}", chain.id, since,
                    copied.status().ToString());
          retry_after[chain.id] = std::chrono::steady_clock::now() + std::chrono::seconds(1);
          continue;
        }
        retry_after.erase(chain.id);
        Result<int64_t> reported =
            etcd->Put(cluster::keys::Synced(chain.id, id), std::to_string(since));
        if (!reported.ok()) return false;
        synced.insert({chain.id, since});
        chains_filled.fetch_add(1);
        blobs_copied.fetch_add(*copied);
        GLOG_INFO("chain {} filled: {} blobs copied (since version {})", chain.id, *copied, since);
        return true;
      }
    }
    return false;
  }

  // Reports the node's usage in its registration every few seconds.
  void Report() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_report) return;
    next_report = now + std::chrono::seconds(2);
    const int64_t lease = keeper->lease();
    if (lease != 0 && keeper->Held()) {
      (void)etcd->Put(cluster::keys::Node(id), NodeInfoToJson(Info()), lease);
      const replication::ScrubberStats scrub = scrubber->Stats();
      const nlohmann::json stats = {{"chains_filled", chains_filled.load()},
                                    {"blobs_copied", blobs_copied.load()},
                                    {"bytes_copied", replica->copied_bytes()},
                                    {"blobs_repaired", replica->repaired()},
                                    {"blobs_reclaimed", blobs_reclaimed.load()},
                                    {"scrub_passes", scrub.passes},
                                    {"scrub_blobs_checked", scrub.blobs_checked},
                                    {"scrub_damaged", scrub.damaged_found}};
      (void)etcd->Put(cluster::keys::Stats(id), stats.dump(), lease);
    }
  }

  // Deletes the blobs of chains this node left more than gc_delay ago: the chain's other
  // members have every one of them (a chain never loses its last serving member). The delay
  // spares a node that is about to be given its chain back.
  void Reclaim() {
    auto map = replica->map();
    if (map == nullptr) return;
    const auto now = std::chrono::steady_clock::now();
    std::set<uint32_t> due;
    for (const cluster::Chain& chain : map->chains) {
      if (chain.Contains(id)) {
        left.erase(chain.id);
      } else if (left.emplace(chain.id, now).second) {
        // just noticed
      } else if (now - left[chain.id] >= std::chrono::milliseconds(options.gc_delay_ms) &&
                 reclaimed.count(chain.id) == 0) {
        due.insert(chain.id);
      }
    }
    for (const cluster::Chain& chain : map->chains) {
      if (chain.Contains(id)) reclaimed.erase(chain.id);
    }
    if (due.empty()) return;
    for (auto it = due.begin(); it != due.end();) {
      Status dropped = ns->Drop(*it);
      if (dropped.ok()) {
        ++it;
        continue;
      }
      if (dropped.code() != Code::kUnavailable) {
        GLOG_WARN("dropping namespace partition {} failed: {}", *it, dropped.ToString());
      }
      it = due.erase(it);  // the chain's blobs and partition go together, on a later pass
    }
    std::vector<std::string> garbage;
    Status scanned = store->Scan([&](std::string_view key, uint64_t) {
      const cluster::Chain* chain = map->ChainOf(key);
      if (chain != nullptr && due.count(chain->id) > 0) garbage.emplace_back(key);
    });
    if (scanned.ok()) scanned = store->DeleteMany(garbage);
    if (!scanned.ok()) {
      GLOG_WARN("reclaiming blobs of chains this node left failed: {}", scanned.ToString());
      return;
    }
    reclaimed.insert(due.begin(), due.end());
    blobs_reclaimed.fetch_add(garbage.size());
    if (!garbage.empty()) {
      GLOG_INFO("reclaimed {} blobs of {} chains this node no longer serves", garbage.size(),
                due.size());
    }
  }

  void Follow() {
    for (;;) {
      RefreshMap();
      const bool busy = SyncOne() | ns->RefillDiverged();
      ns->Settle();
      Reclaim();
      Report();
      std::unique_lock<std::mutex> lock(mu);
      if (wake.wait_for(lock, std::chrono::milliseconds(busy ? 0 : options.poll_ms),
                        [this] { return stopping; })) {
        return;
      }
    }
  }
};

ClusterNode::ClusterNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClusterNode::~ClusterNode() { (void)Stop(); }

const std::string& ClusterNode::id() const { return impl_->id; }
uint16_t ClusterNode::port() const { return impl_->server->port(); }
replication::BlobStore& ClusterNode::store() { return *impl_->store; }

ClusterNodeStats ClusterNode::Stats() const {
  ClusterNodeStats stats;
  stats.chains_filled = impl_->chains_filled.load();
  stats.blobs_copied = impl_->blobs_copied.load();
  stats.blobs_repaired = impl_->replica->repaired();
  stats.blobs_reclaimed = impl_->blobs_reclaimed.load();
  const replication::ScrubberStats scrub = impl_->scrubber->Stats();
  stats.scrub_passes = scrub.passes;
  stats.scrub_damaged = scrub.damaged_found;
  stats.lease_held = impl_->keeper->Held();
  return stats;
}

Result<std::unique_ptr<ClusterNode>> ClusterNode::Start(ClusterNodeOptions options,
                                                        RootCredentials credentials) {
  if (options.disks.empty()) {
    return Status::InvalidArgument("a node needs at least one data directory: --data DIR[,DIR]");
  }
  auto impl = std::make_unique<Impl>();
  if (options.advertise.empty()) options.advertise = options.listen;
  if (options.advertise.starts_with("0.0.0.0:") || options.advertise.starts_with("[::]:")) {
    return Status::InvalidArgument("--listen " + options.listen +
                                   " is every address: say which one others dial with "
                                   "--advertise HOST:PORT");
  }
  if (options.host.empty()) options.host = Hostname();
  for (const std::string& disk : options.disks) {
    std::error_code ec;
    std::filesystem::create_directories(disk, ec);
    if (ec) return Status::IOError("cannot create " + disk + ": " + ec.message());
  }
  ASSIGN_OR_RETURN(impl->id, LoadNodeId(options.disks.front()));
  ASSIGN_OR_RETURN(impl->etcd, cluster::EtcdClient::Create(options.etcd));
  replication::LocalBlobStoreOptions store_options;
  store_options.disks = options.disks;
  ASSIGN_OR_RETURN(impl->store, replication::OpenLocalBlobStore(store_options));
  impl->options = std::move(options);
  impl->credentials = std::move(credentials);

  Impl* self = impl.get();
  impl->keeper = std::make_unique<cluster::LeaseKeeper>(
      *impl->etcd, impl->options.lease_ttl_seconds, [self](int64_t lease) {
        return self->etcd->Put(cluster::keys::Node(self->id), NodeInfoToJson(self->Info()), lease)
            .status();
      });
  replication::ChainReplicaOptions replica_options;
  replica_options.node_id = impl->id;
  replica_options.access_key = impl->credentials.access_key;
  replica_options.secret_key = impl->credentials.secret_key;
  replica_options.sync_bytes_per_second = impl->options.repair_bytes_per_second;
  impl->replica = std::make_unique<replication::ChainReplica>(
      *impl->store, replica_options, [self] { return self->keeper->Held(); },
      [self] { self->RefreshMap(); });

  NamespacePartitionsOptions ns_options;
  ns_options.node_id = impl->id;
  ns_options.dir = (std::filesystem::path(impl->options.disks.front()) / "namespace").string();
  ns_options.access_key = impl->credentials.access_key;
  ns_options.secret_key = impl->credentials.secret_key;
  ns_options.log_entries = impl->options.namespace_log_entries;
  ns_options.open_blobs = [self]() -> Result<std::shared_ptr<replication::BlobStore>> {
    replication::ChainBlobStoreOptions blob_options;
    blob_options.etcd = self->options.etcd;
    blob_options.access_key = self->credentials.access_key;
    blob_options.secret_key = self->credentials.secret_key;
    ASSIGN_OR_RETURN(std::unique_ptr<replication::BlobStore> blobs,
                     replication::OpenChainBlobStore(std::move(blob_options)));
    return std::shared_ptr<replication::BlobStore>(std::move(blobs));
  };
  ns_options.want_set = [self](int replicas) {
    return self->etcd->Put(cluster::keys::WantedSet(replicas), "").status();
  };
  impl->ns = std::make_unique<NamespacePartitions>(
      std::move(ns_options), [self] { return self->keeper->Held(); },
      [self] { self->RefreshMap(); });

  rpc::ServerOptions server_options;
  server_options.listen = impl->options.listen;
  server_options.secrets = RootSecretLookup(impl->credentials);
  replication::ChainReplica* replica = impl->replica.get();
  NamespacePartitions* ns = impl->ns.get();
  ASSIGN_OR_RETURN(impl->server,
                   rpc::Server::Start(server_options, [replica, ns](rpc::ServerCall& call) {
                     if (replica->Handles(call.method())) return replica->Handle(call);
                     if (ns->Handles(call.method())) return ns->Handle(call);
                     // The object methods, for the buckets whose partitions this node heads.
                     return rpc_handlers::Dispatch(*ns, nullptr, call);
                   }));
  if (impl->options.advertise.ends_with(":0")) {
    impl->options.advertise = impl->options.advertise.substr(0, impl->options.advertise.size() - 1) +
                              std::to_string(impl->server->port());
  }
  impl->RefreshMap();
  impl->keeper->Start();
  replication::ScrubberOptions scrub;
  scrub.bytes_per_second = impl->options.scrub_bytes_per_second;
  scrub.pass_interval_ms = impl->options.scrub_interval_ms;
  impl->scrubber = std::make_unique<replication::Scrubber>(*impl->store, *impl->replica, scrub);
  impl->follower = std::thread([self] { self->Follow(); });
  impl->scrubber->Start();
  GLOG_INFO("node {} serving on {} (rack {}, zone {}, host {})", impl->id,
            impl->options.advertise, impl->options.rack, impl->options.zone, impl->options.host);
  return std::unique_ptr<ClusterNode>(new ClusterNode(std::move(impl)));
}

Status ClusterNode::Stop() {
  if (impl_ == nullptr) return Status::OK();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->follower.joinable()) impl_->follower.join();
  impl_->scrubber->Stop();
  impl_->keeper->Stop(/*revoke=*/true);
  impl_->server->Stop();
  impl_->ns->Close();
  Status closed = impl_->store->Close();
  impl_.reset();
  return closed;
}

}  // namespace granary::node
