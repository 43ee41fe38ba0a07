// Placement: how the manager decides which nodes hold each chain. Pure functions of a map and
// what the manager observes, so that every rule is tested without a cluster.
//
// Rules (docs/design/cluster.md):
// - A chain's members are on different racks where the cluster has enough racks, else on
//   different hosts, else on different nodes; among the allowed nodes, the least loaded one (in
//   chain memberships) is chosen, ties broken by a hash of chain and node so chains spread.
// - A node whose lease expired leaves every chain at once (the rest of the chain keeps serving),
//   except that a chain never loses its last serving member: its data would have nowhere to
//   come back from.
// - A chain short of replicas gets new syncing members; a syncing member that reports its sync
//   done becomes a serving one (at the tail).
// - A draining node, and a node a rebalancing move takes a chain from, stays a serving member
//   (in `leaving`) until the chain has its full count of serving members without it.
// - Rebalancing moves one membership at a time from the most to the least loaded node, while
//   their loads differ by more than one and fewer than `max_moves` chains are syncing.
//
// Every change bumps the changed chain's version; the caller bumps the map's epoch.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cluster/cluster_map.h"

namespace granary::cluster {

struct Observation {
  std::vector<NodeInfo> alive;  // nodes holding a lease now (state is ignored)
  std::set<std::string> drain;  // nodes an operator asked to empty
  // (chain, node) -> the chain version at which the node began the sync it finished.
  std::map<std::pair<uint32_t, std::string>, uint64_t> synced;
  // Replica counts buckets asked for: each gets a set of chains as large as the default one,
  // once as many nodes are up.
  std::set<int> wanted_sets;
};

struct PlacementOptions {
  int max_moves = 8;  // chains syncing at once because of rebalancing (repairs are not limited)
};

// A map of `chain_count` chains over `nodes`, every chain with up to `replicas` serving members.
ClusterMap BuildMap(std::vector<NodeInfo> nodes, int replicas, uint32_t chain_count);

// Adds a set of `chain_count` chains of `replicas` members each, placed by the same rules (the
// caller bumps the epoch). REQUIRES: the map has no set of that count.
void AddChainSet(ClusterMap& map, int replicas, uint32_t chain_count);

// Brings `map` in line with `observed`; returns whether anything changed (then map.epoch has
// been bumped).
bool Reconcile(ClusterMap& map, const Observation& observed, const PlacementOptions& options = {});

}  // namespace granary::cluster
