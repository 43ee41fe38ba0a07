#include "cluster/placement.h"

#include <algorithm>
#include <tuple>

#include "common/hash.h"

namespace granary::cluster {
namespace {

bool In(const std::vector<std::string>& list, std::string_view id) {
  return std::find(list.begin(), list.end(), id) != list.end();
}

void Erase(std::vector<std::string>& list, std::string_view id) {
  list.erase(std::remove(list.begin(), list.end(), id), list.end());
}

// Members that stay: serving and not leaving.
std::vector<std::string> Staying(const Chain& chain) {
  std::vector<std::string> out;
  for (const std::string& m : chain.members) {
    if (!In(chain.leaving, m)) out.push_back(m);
  }
  return out;
}

// Memberships per node that will remain once every move in progress ends: staying members and
// syncing ones.
std::map<std::string, int> ProjectedLoads(const ClusterMap& map) {
  std::map<std::string, int> loads;
  for (const NodeInfo& n : map.nodes) loads[n.id] = 0;
  for (const Chain& chain : map.chains) {
    for (const std::string& m : Staying(chain)) ++loads[m];
    for (const std::string& s : chain.syncing) ++loads[s];
  }
  return loads;
}

uint64_t Spread(uint32_t chain, std::string_view node) {
  return HashKey(std::to_string(chain) + "/" + std::string(node)).lo;
}

// The racks and hosts of the chain's nodes that stay, leaving `except` out.
std::pair<std::set<std::string>, std::set<std::string>> Domains(const ClusterMap& map,
                                                                const Chain& chain,
                                                                std::string_view except = {}) {
  std::set<std::string> racks, hosts;
  std::vector<std::string> nodes = Staying(chain);
  nodes.insert(nodes.end(), chain.syncing.begin(), chain.syncing.end());
  for (const std::string& id : nodes) {
    if (id == except) continue;
    if (const NodeInfo* n = map.FindNode(id)) {
      racks.insert(n->rack);
      hosts.insert(n->host);
    }
  }
  return {racks, hosts};
}

// The best up node for a new member of `chain`, or null if every up node is in it already.
const NodeInfo* Choose(const ClusterMap& map, const Chain& chain,
                       const std::map<std::string, int>& loads) {
  auto [racks, hosts] = Domains(map, chain);
  const NodeInfo* best = nullptr;
  std::tuple<bool, bool, int, uint64_t> best_key;
  for (const NodeInfo& n : map.nodes) {
    if (n.state != NodeState::kUp || chain.Contains(n.id)) continue;
    auto key = std::make_tuple(racks.count(n.rack) > 0, hosts.count(n.host) > 0, loads.at(n.id),
                               Spread(chain.id, n.id));
    if (best == nullptr || key < best_key) {
      best = &n;
      best_key = key;
    }
  }
  return best;
}

NodeState StateOf(const ClusterMap& map, std::string_view id) {
  const NodeInfo* n = map.FindNode(id);
  return n == nullptr ? NodeState::kDown : n->state;
}

// Brings the node table in line with the nodes holding leases. Returns whether it changed.
bool UpdateNodes(ClusterMap& map, const Observation& observed) {
  bool changed = false;
  std::set<std::string> alive;
  for (NodeInfo node : observed.alive) {
    alive.insert(node.id);
    node.state = observed.drain.count(node.id) > 0 ? NodeState::kDraining : NodeState::kUp;
    node.used_bytes = 0;  // changes all the time; nodes report it in their own keys
    NodeInfo* existing = map.FindNode(node.id);
    if (existing == nullptr) {
      auto at = std::lower_bound(map.nodes.begin(), map.nodes.end(), node.id,
                                 [](const NodeInfo& n, const std::string& v) { return n.id < v; });
      map.nodes.insert(at, std::move(node));
      changed = true;
    } else if (std::tie(existing->address, existing->host, existing->rack, existing->zone,
                        existing->state) !=
               std::tie(node.address, node.host, node.rack, node.zone, node.state)) {
      *existing = std::move(node);
      changed = true;
    }
  }
  for (NodeInfo& n : map.nodes) {
    if (alive.count(n.id) == 0 && n.state != NodeState::kDown) {
      n.state = NodeState::kDown;
      changed = true;
    }
  }
  return changed;
}

// Applies the rules to one chain; returns whether it changed (its version is not bumped yet).
bool ReconcileChain(ClusterMap& map, Chain& chain, const Observation& observed,
                    std::map<std::string, int>& loads) {
  const Chain before = chain;
  // Dead nodes leave, but the chain keeps its last serving member.
  for (size_t i = chain.syncing.size(); i-- > 0;) {
    NodeState state = StateOf(map, chain.syncing[i]);
    if (state != NodeState::kUp) {
      --loads[chain.syncing[i]];
      chain.syncing.erase(chain.syncing.begin() + i);
      chain.syncing_since.erase(chain.syncing_since.begin() + i);
    }
  }
  std::vector<std::string> live_members;
  for (const std::string& m : chain.members) {
    if (StateOf(map, m) != NodeState::kDown) live_members.push_back(m);
  }
  if (!live_members.empty() && live_members.size() < chain.members.size()) {
    for (const std::string& m : chain.members) {
      if (!In(live_members, m)) {
        if (!In(chain.leaving, m)) --loads[m];
        Erase(chain.leaving, m);
      }
    }
    chain.members = std::move(live_members);
  }
  // Draining members will leave once replaced.
  for (const std::string& m : chain.members) {
    if (StateOf(map, m) == NodeState::kDraining && !In(chain.leaving, m)) {
      chain.leaving.push_back(m);
      --loads[m];
    }
  }
  // Finished syncs serve.
  for (size_t i = 0; i < chain.syncing.size();) {
    auto done = observed.synced.find({chain.id, chain.syncing[i]});
    if (done != observed.synced.end() && done->second >= chain.syncing_since[i]) {
      chain.members.push_back(chain.syncing[i]);
      chain.syncing.erase(chain.syncing.begin() + i);
      chain.syncing_since.erase(chain.syncing_since.begin() + i);
    } else {
      ++i;
    }
  }
  // Leaving members go once the chain is whole without them; extra members go too.
  if (Staying(chain).size() >= static_cast<size_t>(chain.replicas)) {
    for (const std::string& m : chain.leaving) Erase(chain.members, m);
    chain.leaving.clear();
  }
  while (chain.leaving.empty() && chain.members.size() > static_cast<size_t>(chain.replicas)) {
    auto heaviest = std::max_element(
        chain.members.begin(), chain.members.end(),
        [&](const std::string& a, const std::string& b) { return loads[a] < loads[b]; });
    --loads[*heaviest];
    chain.members.erase(heaviest);
  }
  // Short chains get new members: syncing ones, unless the chain has never held data.
  const bool fresh = chain.members.empty();
  while (Staying(chain).size() + chain.syncing.size() < static_cast<size_t>(chain.replicas)) {
    const NodeInfo* pick = Choose(map, chain, loads);
    if (pick == nullptr) break;
    ++loads[pick->id];
    if (fresh) {
      chain.members.push_back(pick->id);
    } else {
      chain.syncing.push_back(pick->id);
      chain.syncing_since.push_back(before.version + 1);
    }
  }
  return chain.members != before.members || chain.syncing != before.syncing ||
         chain.leaving != before.leaving;
}

// A chain that `heavy` serves in and that could move to `light` without putting two of its
// members on one rack (or host) where there were none; null if there is none.
Chain* MovableChain(ClusterMap& map, const NodeInfo& heavy, const NodeInfo& light) {
  for (Chain& chain : map.chains) {
    if (!chain.syncing.empty() || !chain.leaving.empty() || !In(chain.members, heavy.id) ||
        chain.Contains(light.id)) {
      continue;
    }
    auto [racks, hosts] = Domains(map, chain, heavy.id);
    const bool rack_ok = racks.count(light.rack) == 0 || racks.count(heavy.rack) > 0;
    const bool host_ok = hosts.count(light.host) == 0 || hosts.count(heavy.host) > 0;
    if (rack_ok && host_ok) return &chain;
  }
  return nullptr;
}

// Starts moves from the most to the least loaded nodes; returns the chains it changed.
std::set<uint32_t> Rebalance(ClusterMap& map, std::map<std::string, int>& loads,
                             const PlacementOptions& options) {
  std::set<uint32_t> moved;
  int syncing = 0;
  for (const Chain& chain : map.chains) syncing += chain.syncing.empty() ? 0 : 1;
  while (syncing < options.max_moves) {
    std::vector<const NodeInfo*> up;
    for (const NodeInfo& n : map.nodes) {
      if (n.state == NodeState::kUp) up.push_back(&n);
    }
    std::stable_sort(up.begin(), up.end(), [&](const NodeInfo* a, const NodeInfo* b) {
      return loads[a->id] > loads[b->id];
    });
    // The most loaded node that can give a chain to one of the least loaded ones.
    Chain* target = nullptr;
    const NodeInfo* heavy = nullptr;
    const NodeInfo* light = nullptr;
    for (size_t h = 0; h < up.size() && target == nullptr; ++h) {
      for (size_t l = up.size(); l-- > h + 1 && target == nullptr;) {
        if (loads[up[h]->id] - loads[up[l]->id] <= 1) break;
        heavy = up[h];
        light = up[l];
        target = MovableChain(map, *heavy, *light);
      }
    }
    if (target == nullptr) break;
    target->syncing.push_back(light->id);
    target->syncing_since.push_back(target->version + 1);
    target->leaving.push_back(heavy->id);
    ++loads[light->id];
    --loads[heavy->id];
    moved.insert(target->id);
    ++syncing;
  }
  return moved;
}

}  // namespace

ClusterMap BuildMap(std::vector<NodeInfo> nodes, int replicas, uint32_t chain_count) {
  ClusterMap map;
  map.epoch = 1;
  map.replicas = replicas;
  std::sort(nodes.begin(), nodes.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  for (NodeInfo& n : nodes) n.state = NodeState::kUp;
  map.nodes = std::move(nodes);
  AddChainSet(map, replicas, chain_count);
  return map;
}

void AddChainSet(ClusterMap& map, int replicas, uint32_t chain_count) {
  if (map.sets.empty() && !map.chains.empty()) {
    map.sets.push_back(*map.SetOf(0));  // a map built by hand: its chains are the default set
  }
  std::map<std::string, int> loads = ProjectedLoads(map);
  map.sets.push_back({replicas, static_cast<uint32_t>(map.chains.size()), chain_count});
  for (uint32_t i = 0; i < chain_count; ++i) {
    Chain chain;
    chain.id = static_cast<uint32_t>(map.chains.size());
    chain.replicas = replicas;
    while (chain.members.size() < static_cast<size_t>(replicas)) {
      const NodeInfo* pick = Choose(map, chain, loads);
      if (pick == nullptr) break;
      ++loads[pick->id];
      chain.members.push_back(pick->id);
    }
    map.chains.push_back(std::move(chain));
  }
}

bool Reconcile(ClusterMap& map, const Observation& observed, const PlacementOptions& options) {
  bool changed = UpdateNodes(map, observed);
  // Sets asked for, once enough nodes are up to give every chain its count.
  const auto up = std::count_if(map.nodes.begin(), map.nodes.end(),
                                [](const NodeInfo& n) { return n.state == NodeState::kUp; });
  for (int replicas : observed.wanted_sets) {
    if (replicas >= 1 && replicas <= kMaxChainReplicas && up >= replicas && !map.SetOf(replicas)) {
      AddChainSet(map, replicas, map.SetOf(0)->count);
      changed = true;
    }
  }
  std::map<std::string, int> loads = ProjectedLoads(map);
  std::set<uint32_t> chains_changed;
  for (Chain& chain : map.chains) {
    if (ReconcileChain(map, chain, observed, loads)) chains_changed.insert(chain.id);
  }
  for (uint32_t id : Rebalance(map, loads, options)) chains_changed.insert(id);
  for (uint32_t id : chains_changed) ++map.chains[id].version;
  if (changed || !chains_changed.empty()) {
    ++map.epoch;
    return true;
  }
  return false;
}

}  // namespace granary::cluster
