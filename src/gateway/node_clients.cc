#include "gateway/node_clients.h"

#include <set>

namespace granary::gateway {

Result<NodeClient> NodeClients::Of(const cluster::ClusterMap& map, const cluster::NodeInfo& node) {
  {
    MutexLock lock(&mu_);
    if (map.epoch > pruned_epoch_) PruneLocked(map);
    auto it = clients_.find(node.address);
    if (it != clients_.end()) return NodeClient{node.address, it->second};
  }
  // Connect without the lock: a node that does not answer must not hold up the others.
  Result<std::unique_ptr<Client>> connected = Client::Connect(node.address, credentials_, options_);
  if (!connected.ok()) {
    return connected.status().WithContext("node " + node.id + " at " + node.address);
  }
  std::shared_ptr<Client> client = std::move(*connected);
  MutexLock lock(&mu_);
  // Another request may have connected meanwhile: all use the first client.
  auto [it, inserted] = clients_.emplace(node.address, std::move(client));
  return NodeClient{node.address, it->second};
}

void NodeClients::Forget(const NodeClient& node, const Status& failure) {
  if (failure.code() != Code::kUnavailable) return;
  MutexLock lock(&mu_);
  auto it = clients_.find(node.address);
  if (it != clients_.end() && it->second == node.client) clients_.erase(it);
}

size_t NodeClients::size() const {
  ReaderLock lock(&mu_);
  return clients_.size();
}

void NodeClients::PruneLocked(const cluster::ClusterMap& map) {
  std::set<std::string_view> listed;
  for (const cluster::NodeInfo& n : map.nodes) {
    if (n.state != cluster::NodeState::kDown) listed.insert(n.address);
  }
  std::erase_if(clients_, [&](const auto& entry) { return !listed.contains(entry.first); });
  pruned_epoch_ = map.epoch;
}

}  // namespace granary::gateway
