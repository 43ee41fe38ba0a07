// ClusterMap: what every process of a cluster agrees on about where data lives (docs/design/
// cluster.md). The manager's leader writes it to etcd; nodes, gateways and clients read it and
// cache it.
//
// - Nodes: one per storage process, labelled host/rack/zone, with its address and state.
// - Chains: in sets, one set per replica count in use. The default set (the cluster's
//   `replicas`) is made with the cluster; a set for another count is added, with as many chains,
//   when the first bucket of that count is created. Each chain is an ordered list of serving
//   members (head first, tail last) followed by syncing members, which receive every new write
//   but are still being filled with the chain's older blobs and serve no reads.
// - A key belongs to a set by its name (PlacedKeyPrefix), and within the set to chain
//   HashKey(key) % set size, for the life of the cluster: adding or removing nodes changes which
//   nodes hold a chain, never which chain holds a key.
// - `epoch` grows with every change of the map; a chain's `version` with every change of its
//   members. Requests carry the chain version they were routed with; a node refuses an older one.
//
// Thread-safety: a ClusterMap is a value; share it as std::shared_ptr<const ClusterMap>.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace granary::cluster {

enum class NodeState {
  kUp,        // alive and in service
  kDown,      // its lease expired: it holds no chain membership
  kDraining,  // an operator asked for it to be emptied: its chains move elsewhere
};
std::string_view NodeStateName(NodeState state);

inline constexpr int kMaxChainReplicas = 5;

struct NodeInfo {
  std::string id;       // chosen by the node at its first start and kept in its data
  std::string address;  // "host:port" of its native protocol
  std::string host;
  std::string rack;
  std::string zone;
  NodeState state = NodeState::kUp;
  uint64_t capacity_bytes = 0;  // of all its disks
  uint64_t used_bytes = 0;      // live blob bytes, as the node last reported (0 in the map)
};

struct Chain {
  uint32_t id = 0;
  uint64_t version = 1;
  int replicas = 3;  // serving members it is meant to have (its set's count)
  std::vector<std::string> members;  // serving, head first
  std::vector<std::string> syncing;  // being filled; after the members in write order
  // For each syncing member, the chain version that added it: its sync counts only if it
  // started at that version or later.
  std::vector<uint64_t> syncing_since;
  // Members to remove once the chain has `replicas` serving members besides them (a drain or a
  // rebalancing move); they serve until then.
  std::vector<std::string> leaving;

  // Writes flow through members, then syncing; the last of all acknowledges.
  std::vector<std::string> WriteOrder() const;
  bool Contains(std::string_view node) const;
};

// The chains of one replica count: chains[first, first + count).
struct ChainSet {
  int replicas = 3;
  uint32_t first = 0;
  uint32_t count = 0;
};

// The top-level directory of an object key, with its '/': "a/" for "a/b/c"; empty for a key
// without one.
std::string_view TopDirectory(std::string_view key);

struct ClusterMap {
  uint64_t epoch = 0;
  int replicas = 3;             // the default count; sets[0] has it
  std::vector<NodeInfo> nodes;  // ordered by id
  std::vector<Chain> chains;    // chains[i].id == i
  std::vector<ChainSet> sets;   // sets[0]: the default set, then in the order they were added

  // The chain that holds `key`: in the set its name asks for (the default set unless it starts
  // with a PlacedKeyPrefix). Null if the map has no such set (yet).
  const Chain* ChainOf(std::string_view key) const;
  // The chain whose members hold the namespace partition of `bucket` (its records, replicated
  // like blobs; the head serves the partition): always in the default set. REQUIRES: the map has
  // chains.
  const Chain& PartitionOf(std::string_view bucket) const;
  // The partition holding the record of object `key` of `bucket`: a key under a top-level
  // directory `d/` lives in the partition of "bucket/d", any other in the bucket's own
  // (docs/design/cluster.md, "Directories"). A listing of a prefix that names a top-level
  // directory reads that one partition.
  const Chain& PartitionOf(std::string_view bucket, std::string_view key) const;
  // The set of `replicas` chains (0: the default set); nullopt if there is none. A map without
  // sets (one built by hand) has every chain in its default set.
  std::optional<ChainSet> SetOf(int replicas) const;
  // The chains of the default set: those holding namespace partitions.
  std::span<const Chain> Partitions() const;
  bool IsPartition(uint32_t chain) const;
  const NodeInfo* FindNode(std::string_view id) const;
  NodeInfo* FindNode(std::string_view id);
  // How many chains (serving or syncing) each node is in, for nodes of the map, by index.
  std::vector<int> Loads() const;

  std::string ToJson() const;
  // kCorruption if `text` is not a map this version can read.
  static Result<ClusterMap> FromJson(std::string_view text);
};

// A node's entry as JSON: how a node registers itself in etcd, and how the map lists it.
std::string NodeInfoToJson(const NodeInfo& node);
// kCorruption if `text` is not a node entry.
Result<NodeInfo> NodeInfoFromJson(std::string_view text);

// Which chain of `chain_count` holds `key`.
uint32_t ChainIndex(std::string_view key, size_t chain_count);

// What starts the name of a key that belongs to the set of `replicas` chains (0: the default
// set): a zero byte, then the count. Keys starting with a zero byte are reserved for these.
std::string PlacedKeyPrefix(uint32_t replicas);
// The count a key's name asks for: 0 (the default set) for keys without a PlacedKeyPrefix.
// A key starting with a zero byte that names no count from 0 to kMaxChainReplicas belongs to no
// set (ClusterMap::ChainOf is null).
uint32_t PlacementOf(std::string_view key);
// The prefix of the blobs of namespace partition `partition` for buckets of `replicas` copies
// (meta::ObjectStoreOptions::blob_prefix): partitions number their uploads independently, so
// their blobs' names carry the partition.
std::string PartitionBlobPrefix(uint32_t partition, uint32_t replicas);

}  // namespace granary::cluster
