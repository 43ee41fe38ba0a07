#include "manager/manager.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "cluster/lease_keeper.h"
#include "cluster/placement.h"
#include "common/logging.h"

namespace granary::manager {
namespace {

using cluster::Compare;
using cluster::TxnOp;

// Parses "/granary/synced/<chain>/<node>".
bool ParseSyncedKey(std::string_view key, uint32_t* chain, std::string* node) {
  key.remove_prefix(cluster::keys::kSynced.size());
  const size_t slash = key.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  try {
    *chain = static_cast<uint32_t>(std::stoul(std::string(key.substr(0, slash))));
  } catch (...) {
    return false;
  }
  *node = std::string(key.substr(slash + 1));
  return true;
}

}  // namespace

struct Manager::Impl {
  ManagerOptions options;
  std::unique_ptr<cluster::EtcdClient> etcd;
  std::unique_ptr<cluster::LeaseKeeper> keeper;
  std::thread loop;
  std::atomic<bool> is_leader{false};
  int64_t leader_revision = 0;  // create revision of our leader key; loop thread only
  std::chrono::steady_clock::time_point leader_since;  // loop thread only

  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;  // GUARDED_BY(mu)

  // Takes the leader key if it is free. Loop thread.
  void Campaign() {
    const int64_t lease = keeper->lease();
    if (lease == 0 || !keeper->Held()) return;
    const std::string key(cluster::keys::kLeader);
    nlohmann::json value = {{"id", options.id}, {"pid", getpid()}};
    Result<cluster::TxnResult> won = etcd->Txn({{key, Compare::Target::kCreate, 0, ""}},
                                               {{TxnOp::Kind::kPut, key, value.dump(), lease}},
                                               {{TxnOp::Kind::kGet, key, "", 0}});
    if (!won.ok()) return;
    if (won->succeeded) {
      leader_revision = won->revision;
      leader_since = std::chrono::steady_clock::now();
      is_leader = true;
      GLOG_INFO("manager {} is the leader", options.id);
    } else if (!won->gets.empty() && won->gets[0].has_value() && won->gets[0]->lease == lease) {
      leader_revision = won->gets[0]->create_revision;  // ours already (a retried campaign)
      leader_since = std::chrono::steady_clock::now();
      is_leader = true;
    }
  }

  void StepDown(const std::string& why) {
    if (is_leader.exchange(false)) GLOG_WARN("manager {} is no longer the leader: {}", options.id, why);
  }

  // One round of the leader's work. Loop thread.
  void Lead() {
    if (!keeper->Held()) return StepDown("its etcd lease may have expired");
    Result<std::optional<cluster::KeyValue>> current = etcd->Get(std::string(cluster::keys::kMap));
    Result<std::vector<cluster::KeyValue>> nodes =
        etcd->GetPrefix(std::string(cluster::keys::kNodes));
    Result<std::vector<cluster::KeyValue>> drains =
        etcd->GetPrefix(std::string(cluster::keys::kDrain));
    Result<std::vector<cluster::KeyValue>> synced =
        etcd->GetPrefix(std::string(cluster::keys::kSynced));
    Result<std::vector<cluster::KeyValue>> sets =
        etcd->GetPrefix(std::string(cluster::keys::kWantedSets));
    if (!current.ok() || !nodes.ok() || !drains.ok() || !synced.ok() || !sets.ok()) return;

    cluster::Observation observed;
    for (const cluster::KeyValue& kv : *nodes) {
      Result<cluster::NodeInfo> node = cluster::NodeInfoFromJson(kv.value);
      if (node.ok()) observed.alive.push_back(std::move(*node));
    }
    for (const cluster::KeyValue& kv : *drains) {
      observed.drain.insert(kv.key.substr(cluster::keys::kDrain.size()));
    }
    for (const cluster::KeyValue& kv : *sets) {
      observed.wanted_sets.insert(
          std::atoi(kv.key.c_str() + cluster::keys::kWantedSets.size()));
    }
    for (const cluster::KeyValue& kv : *synced) {
      uint32_t chain;
      std::string node;
      if (ParseSyncedKey(kv.key, &chain, &node)) {
        observed.synced[{chain, node}] = std::strtoull(kv.value.c_str(), nullptr, 10);
      }
    }

    cluster::ClusterMap map;
    int64_t map_revision = 0;
    if (current->has_value()) {
      Result<cluster::ClusterMap> parsed = cluster::ClusterMap::FromJson((*current)->value);
      if (!parsed.ok()) {
        GLOG_ERROR("cluster map in etcd is unreadable, not changing it: {}",
                   parsed.status().ToString());
        return;
      }
      map = std::move(*parsed);
      map_revision = (*current)->mod_revision;
      // A new leader lets the nodes re-register first: after an etcd outage every lease has
      // expired at once, and acting on that would strip the chains of nodes that are fine.
      if (std::chrono::steady_clock::now() - leader_since <
          std::chrono::milliseconds(options.settle_ms)) {
        return;
      }
      cluster::PlacementOptions placement;
      placement.max_moves = options.max_moves;
      if (!cluster::Reconcile(map, observed, placement)) return;
    } else {
      if (observed.alive.size() < static_cast<size_t>(options.replicas)) return;
      map = cluster::BuildMap(observed.alive, options.replicas, options.chains);
    }
    const std::string leader_key(cluster::keys::kLeader);
    const std::string map_key(cluster::keys::kMap);
    std::vector<TxnOp> writes = {{TxnOp::Kind::kPut, map_key, map.ToJson(), 0}};
    // Reports of syncs that are over (the member now serves, or left) go with the map, a
    // bounded number per round (etcd limits the operations of one transaction to 128).
    for (const auto& [chain_node, since] : observed.synced) {
      if (writes.size() >= 100) break;
      const auto& [chain, node] = chain_node;
      const bool syncing = chain < map.chains.size() &&
                           std::find(map.chains[chain].syncing.begin(),
                                     map.chains[chain].syncing.end(),
                                     node) != map.chains[chain].syncing.end();
      if (!syncing) writes.push_back({TxnOp::Kind::kDelete, cluster::keys::Synced(chain, node), "", 0});
    }
    Result<cluster::TxnResult> written = etcd->Txn(
        {{leader_key, Compare::Target::kCreate, leader_revision, ""},
         {map_key, map_revision == 0 ? Compare::Target::kCreate : Compare::Target::kMod,
          map_revision, ""}},
        writes, {{TxnOp::Kind::kGet, leader_key, "", 0}});
    if (!written.ok()) {
      GLOG_WARN("writing the cluster map (epoch {}, {} bytes) failed: {}", map.epoch,
                writes.front().value.size(), written.status().ToString());
      return;
    }
    if (!written->succeeded) {
      const auto& leader = written->gets.empty() ? std::nullopt : written->gets[0];
      if (!leader.has_value() || leader->create_revision != leader_revision) {
        StepDown("another manager holds the leader key");
      }
      return;  // the map changed under us: read it again next round
    }
    GLOG_INFO("cluster map epoch {}: {} nodes, {} chains", map.epoch, map.nodes.size(),
              map.chains.size());
  }

  void Run() {
    for (;;) {
      if (is_leader) {
        Lead();
      } else {
        Campaign();
      }
      std::unique_lock<std::mutex> lock(mu);
      if (wake.wait_for(lock, std::chrono::milliseconds(options.interval_ms),
                        [this] { return stopping; })) {
        return;
      }
    }
  }
};

Manager::Manager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Manager::~Manager() { Stop(); }

bool Manager::leader() const { return impl_ != nullptr && impl_->is_leader; }

Result<std::unique_ptr<Manager>> Manager::Start(ManagerOptions options) {
  if (options.replicas < 1 || options.replicas > 5) {
    return Status::InvalidArgument("--replicas must be 1 to 5");
  }
  if (options.chains < 1 || options.chains > 65536) {
    return Status::InvalidArgument("--chains must be 1 to 65536");
  }
  if (options.id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    options.id = std::string(host) + ":" + std::to_string(getpid());
  }
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->etcd, cluster::EtcdClient::Create(options.etcd));
  impl->options = std::move(options);
  Impl* self = impl.get();
  // A new lease means the old leader key (if it was ours) is gone: campaign again.
  impl->keeper = std::make_unique<cluster::LeaseKeeper>(
      *impl->etcd, impl->options.lease_ttl_seconds, [self](int64_t) {
        self->StepDown("its etcd lease was replaced");
        return Status::OK();
      });
  impl->keeper->Start();
  impl->loop = std::thread([self] { self->Run(); });
  return std::unique_ptr<Manager>(new Manager(std::move(impl)));
}

void Manager::Stop() {
  if (impl_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->loop.joinable()) impl_->loop.join();
  impl_->keeper->Stop(/*revoke=*/true);
  impl_.reset();
}

}  // namespace granary::manager
