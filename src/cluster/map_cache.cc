#include "cluster/map_cache.h"

#include <algorithm>
#include <string>
#include <thread>

#include "cluster/keys.h"

namespace granary::cluster {

Result<const NodeInfo*> LiveHead(const ClusterMap& map, const Chain& chain) {
  const NodeInfo* head = chain.members.empty() ? nullptr : map.FindNode(chain.members.front());
  if (head == nullptr || head->state == NodeState::kDown) {
    return Status::Unavailable("chain " + std::to_string(chain.id) + " has no live head");
  }
  return head;
}

Result<std::unique_ptr<MapCache>> MapCache::Open(std::string_view endpoints) {
  ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> etcd, EtcdClient::Create(endpoints));
  std::unique_ptr<MapCache> cache(new MapCache(std::move(etcd)));
  RETURN_IF_ERROR(cache->Refresh());
  return cache;
}

Status MapCache::Refresh() {
  ASSIGN_OR_RETURN(auto kv, etcd_->Get(std::string(keys::kMap)));
  if (!kv.has_value()) {
    return Status::Unavailable(
        "the cluster has no map yet: start a manager and at least as "
        "many nodes as its --replicas");
  }
  ASSIGN_OR_RETURN(ClusterMap map, ClusterMap::FromJson(kv->value));
  if (map.chains.empty()) return Status::Unavailable("the cluster map has no chains");
  MutexLock lock(&mu_);
  if (map_ == nullptr || map.epoch > map_->epoch) {
    map_ = std::make_shared<const ClusterMap>(std::move(map));
  }
  return Status::OK();
}

std::shared_ptr<const ClusterMap> MapCache::Get() const {
  ReaderLock lock(&mu_);
  return map_;
}

bool MapCache::BeforeRetry(const Status& failed, int round,
                           std::chrono::steady_clock::time_point give_up) {
  if (!RetryableWithNewMap(failed) || std::chrono::steady_clock::now() >= give_up) return false;
  // A node that said "stale map" is up: ask again at once, with the map it knows to be newer.
  if (failed.code() != Code::kStaleMap || round > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(500, 20 << std::min(round, 5))));
  }
  Refresh().IgnoreError();  // the next attempt reports what still fails
  return true;
}

}  // namespace granary::cluster
