#include "cluster/cluster_map.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/hash.h"

namespace granary::cluster {
namespace {

using json = nlohmann::json;

// Format 2 adds chain sets; a map with one set is still written as format 1, which builds
// that read only format 1 read correctly (they would place keys over every chain otherwise).
constexpr int kFormatVersion = 2;

Result<NodeState> ParseState(std::string_view name) {
  for (NodeState state : {NodeState::kUp, NodeState::kDown, NodeState::kDraining}) {
    if (NodeStateName(state) == name) return state;
  }
  return Status::Corruption("cluster map names an unknown node state \"" + std::string(name) +
                            "\"");
}

json NodeJson(const NodeInfo& n) {
  return {{"id", n.id},
          {"address", n.address},
          {"host", n.host},
          {"rack", n.rack},
          {"zone", n.zone},
          {"state", NodeStateName(n.state)},
          {"capacity_bytes", n.capacity_bytes},
          {"used_bytes", n.used_bytes}};
}

// REQUIRES: called inside a try block (json::at throws on a missing field).
Result<NodeInfo> NodeFromJson(const json& n) {
  NodeInfo node;
  node.id = n.at("id").get<std::string>();
  node.address = n.at("address").get<std::string>();
  node.host = n.at("host").get<std::string>();
  node.rack = n.at("rack").get<std::string>();
  node.zone = n.at("zone").get<std::string>();
  ASSIGN_OR_RETURN(node.state, ParseState(n.at("state").get<std::string>()));
  node.capacity_bytes = n.at("capacity_bytes").get<uint64_t>();
  node.used_bytes = n.value("used_bytes", uint64_t{0});
  return node;
}

}  // namespace

std::string NodeInfoToJson(const NodeInfo& node) { return NodeJson(node).dump(); }

Result<NodeInfo> NodeInfoFromJson(std::string_view text) {
  json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) {
    return Status::Corruption("node entry is not a JSON object");
  }
  try {
    return NodeFromJson(in);
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("node entry is malformed: ") + e.what());
  }
}

std::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kUp:
      return "up";
    case NodeState::kDown:
      return "down";
    case NodeState::kDraining:
      return "draining";
  }
  return "unknown";
}

std::vector<std::string> Chain::WriteOrder() const {
  std::vector<std::string> order = members;
  order.insert(order.end(), syncing.begin(), syncing.end());
  return order;
}

bool Chain::Contains(std::string_view node) const {
  return std::find(members.begin(), members.end(), node) != members.end() ||
         std::find(syncing.begin(), syncing.end(), node) != syncing.end();
}

uint32_t ChainIndex(std::string_view key, size_t chain_count) {
  // The high half: a node's blob store picks a disk by the low half, and the two must not
  // correlate, or each chain would sit on one disk of every node.
  return static_cast<uint32_t>(HashKey(key).hi % chain_count);
}

std::string PlacedKeyPrefix(uint32_t replicas) {
  return std::string{'\0', static_cast<char>(replicas)};
}

uint32_t PlacementOf(std::string_view key) {
  if (key.empty() || key[0] != '\0') return 0;
  return key.size() >= 2 ? static_cast<unsigned char>(key[1]) : UINT32_MAX;
}

std::string PartitionBlobPrefix(uint32_t partition, uint32_t replicas) {
  std::string prefix = PlacedKeyPrefix(replicas);
  prefix.push_back('p');
  for (int shift = 24; shift >= 0; shift -= 8) {
    prefix.push_back(static_cast<char>((partition >> shift) & 0xff));
  }
  return prefix;
}

std::optional<ChainSet> ClusterMap::SetOf(int count) const {
  if (count == 0) count = replicas;
  if (sets.empty() && count == replicas) {
    return ChainSet{replicas, 0, static_cast<uint32_t>(chains.size())};
  }
  for (const ChainSet& set : sets) {
    if (set.replicas == count) return set;
  }
  return std::nullopt;
}

const Chain* ClusterMap::ChainOf(std::string_view key) const {
  std::optional<ChainSet> set = SetOf(static_cast<int>(PlacementOf(key)));
  if (!set || set->count == 0) return nullptr;
  return &chains[set->first + ChainIndex(key, set->count)];
}

std::span<const Chain> ClusterMap::Partitions() const {
  const ChainSet set = *SetOf(0);
  return std::span<const Chain>(chains).subspan(set.first, set.count);
}

bool ClusterMap::IsPartition(uint32_t chain) const {
  const ChainSet set = *SetOf(0);
  return chain >= set.first && chain - set.first < set.count;
}

const Chain& ClusterMap::PartitionOf(std::string_view bucket) const {
  std::string key = "meta/";
  key += bucket;
  const ChainSet set = *SetOf(0);
  return chains[set.first + ChainIndex(key, set.count)];
}

std::string_view TopDirectory(std::string_view key) {
  const size_t slash = key.find('/');
  return slash == std::string_view::npos ? std::string_view() : key.substr(0, slash + 1);
}

const Chain& ClusterMap::PartitionOf(std::string_view bucket, std::string_view key) const {
  const std::string_view dir = TopDirectory(key);
  if (dir.empty()) return PartitionOf(bucket);
  // Bucket names hold no '/': "bucket/dir" names no bucket.
  std::string name(bucket);
  name += '/';
  name += dir.substr(0, dir.size() - 1);
  return PartitionOf(name);
}

const NodeInfo* ClusterMap::FindNode(std::string_view id) const {
  auto it = std::lower_bound(nodes.begin(), nodes.end(), id,
                             [](const NodeInfo& n, std::string_view v) { return n.id < v; });
  return it != nodes.end() && it->id == id ? &*it : nullptr;
}

NodeInfo* ClusterMap::FindNode(std::string_view id) {
  return const_cast<NodeInfo*>(std::as_const(*this).FindNode(id));
}

std::vector<int> ClusterMap::Loads() const {
  std::vector<int> loads(nodes.size(), 0);
  for (const Chain& chain : chains) {
    for (const std::string& id : chain.WriteOrder()) {
      const NodeInfo* node = FindNode(id);
      if (node != nullptr) ++loads[node - nodes.data()];
    }
  }
  return loads;
}

std::string ClusterMap::ToJson() const {
  json out = {{"format", sets.size() > 1 ? kFormatVersion : 1}, {"epoch", epoch}, {"replicas", replicas},
              {"nodes", json::array()}, {"chains", json::array()}, {"sets", json::array()}};
  for (const NodeInfo& n : nodes) out["nodes"].push_back(NodeJson(n));
  for (const ChainSet& s : sets) {
    out["sets"].push_back({{"replicas", s.replicas}, {"first", s.first}, {"count", s.count}});
  }
  for (const Chain& c : chains) {
    out["chains"].push_back(
        {{"id", c.id},
         {"version", c.version},
         {"replicas", c.replicas},
         {"members", c.members},
         {"syncing", c.syncing},
         {"syncing_since", c.syncing_since},
         {"leaving", c.leaving}});
  }
  return out.dump();
}

Result<ClusterMap> ClusterMap::FromJson(std::string_view text) {
  json in = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) {
    return Status::Corruption("cluster map is not a JSON object");
  }
  try {
    if (in.at("format").get<int>() > kFormatVersion) {
      return Status::NotSupported("cluster map format " + in.at("format").dump() +
                                  " is newer than this build reads: upgrade granary");
    }
    ClusterMap map;
    map.epoch = in.at("epoch").get<uint64_t>();
    map.replicas = in.at("replicas").get<int>();
    for (const json& n : in.at("nodes")) {
      ASSIGN_OR_RETURN(NodeInfo node, NodeFromJson(n));
      map.nodes.push_back(std::move(node));
    }
    std::sort(map.nodes.begin(), map.nodes.end(),
              [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
    for (const json& c : in.at("chains")) {
      Chain chain;
      chain.id = c.at("id").get<uint32_t>();
      chain.version = c.at("version").get<uint64_t>();
      chain.replicas = c.value("replicas", map.replicas);
      if (chain.replicas < 1 || chain.replicas > kMaxChainReplicas) {
        return Status::Corruption("cluster map's chain " + std::to_string(chain.id) + " has " +
                                  std::to_string(chain.replicas) + " replicas");
      }
      chain.members = c.at("members").get<std::vector<std::string>>();
      chain.syncing = c.at("syncing").get<std::vector<std::string>>();
      chain.syncing_since = c.at("syncing_since").get<std::vector<uint64_t>>();
      chain.leaving = c.at("leaving").get<std::vector<std::string>>();
      if (chain.syncing_since.size() != chain.syncing.size()) {
        return Status::Corruption("cluster map's chain " + std::to_string(chain.id) +
                                  " has syncing members without their versions");
      }
      if (chain.id != map.chains.size()) {
        return Status::Corruption("cluster map's chains are not numbered 0, 1, 2, ...");
      }
      map.chains.push_back(std::move(chain));
    }
    for (const json& s : in.value("sets", json::array())) {
      ChainSet set{s.at("replicas").get<int>(), s.at("first").get<uint32_t>(),
                   s.at("count").get<uint32_t>()};
      const uint32_t expected_first =
          map.sets.empty() ? 0 : map.sets.back().first + map.sets.back().count;
      if (set.first != expected_first || set.first + uint64_t{set.count} > map.chains.size() ||
          set.count == 0 ||
          std::any_of(map.sets.begin(), map.sets.end(),
                      [&](const ChainSet& s) { return s.replicas == set.replicas; })) {
        return Status::Corruption("cluster map's set of " + std::to_string(set.replicas) +
                                  " replicas does not follow the sets before it");
      }
      map.sets.push_back(set);
    }
    // A map without sets (written before there were any) holds the default set alone.
    if (map.sets.empty() && !map.chains.empty()) {
      map.sets.push_back({map.replicas, 0, static_cast<uint32_t>(map.chains.size())});
    }
    if (!map.sets.empty() && map.sets.front().replicas != map.replicas) {
      return Status::Corruption("cluster map's first set is not its default");
    }
    return map;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("cluster map is malformed: ") + e.what());
  }
}

}  // namespace granary::cluster
