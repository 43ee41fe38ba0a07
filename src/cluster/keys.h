// Where a cluster keeps its state in etcd (docs/design/cluster.md). Every key is under /granary/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace granary::cluster::keys {

// The cluster map (ClusterMap::ToJson), written only by the manager's leader.
inline constexpr std::string_view kMap = "/granary/map";
// The manager's leader, attached to its lease: {"id", "pid", "host"}.
inline constexpr std::string_view kLeader = "/granary/manager/leader";
// One per live node, attached to the node's lease: NodeInfo as JSON.
inline constexpr std::string_view kNodes = "/granary/nodes/";
// One per node an operator asked to drain (`granary admin drain`); the value is unused.
inline constexpr std::string_view kDrain = "/granary/drain/";
// What each live node last reported of its repair and scrub work (JSON), under its lease.
inline constexpr std::string_view kStats = "/granary/stats/";
// Syncs done: /granary/synced/<chain>/<node> holds the chain version the sync began at.
inline constexpr std::string_view kSynced = "/granary/synced/";
// Replica counts buckets were created with: /granary/sets/<count>, written by the node that
// creates the first such bucket; the manager adds a set of chains of each (the value is unused).
inline constexpr std::string_view kWantedSets = "/granary/sets/";

inline std::string Node(std::string_view id) { return std::string(kNodes) + std::string(id); }
inline std::string Stats(std::string_view id) { return std::string(kStats) + std::string(id); }
inline std::string Drain(std::string_view id) { return std::string(kDrain) + std::string(id); }
inline std::string WantedSet(int replicas) {
  return std::string(kWantedSets) + std::to_string(replicas);
}
inline std::string Synced(uint32_t chain, std::string_view node) {
  return std::string(kSynced) + std::to_string(chain) + "/" + std::string(node);
}

}  // namespace granary::cluster::keys
