// `granary admin status|nodes|drain NODE|undrain NODE|locate BUCKET --etcd URLS`: a cluster as
// etcd holds it.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cluster/cluster_map.h"
#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "tools/commands.h"

namespace granary::tools {
namespace {

using nlohmann::json;

struct ClusterAdminFlags {
  std::string etcd;
  std::string node;
  std::string bucket;
  bool json = false;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

// What etcd says about the cluster: the map, the live nodes, the leader.
struct Snapshot {
  std::optional<cluster::ClusterMap> map;
  std::set<std::string> alive;
  std::map<std::string, uint64_t> used_bytes;  // as each live node last reported
  std::map<std::string, json> stats;           // repair and scrub counters, per live node
  std::set<std::string> draining;
  std::string leader;
};

Result<Snapshot> Read(cluster::EtcdClient& etcd) {
  Snapshot s;
  ASSIGN_OR_RETURN(auto map_kv, etcd.Get(std::string(cluster::keys::kMap)));
  if (map_kv.has_value()) {
    ASSIGN_OR_RETURN(cluster::ClusterMap map, cluster::ClusterMap::FromJson(map_kv->value));
    s.map = std::move(map);
  }
  ASSIGN_OR_RETURN(auto nodes, etcd.GetPrefix(std::string(cluster::keys::kNodes)));
  for (const auto& kv : nodes) {
    const std::string id = kv.key.substr(cluster::keys::kNodes.size());
    s.alive.insert(id);
    Result<cluster::NodeInfo> info = cluster::NodeInfoFromJson(kv.value);
    if (info.ok()) s.used_bytes[id] = info->used_bytes;
  }
  ASSIGN_OR_RETURN(auto stats, etcd.GetPrefix(std::string(cluster::keys::kStats)));
  for (const auto& kv : stats) {
    json parsed = json::parse(kv.value, nullptr, false);
    if (parsed.is_object()) s.stats[kv.key.substr(cluster::keys::kStats.size())] = parsed;
  }
  ASSIGN_OR_RETURN(auto drains, etcd.GetPrefix(std::string(cluster::keys::kDrain)));
  for (const auto& kv : drains) s.draining.insert(kv.key.substr(cluster::keys::kDrain.size()));
  ASSIGN_OR_RETURN(auto leader, etcd.Get(std::string(cluster::keys::kLeader)));
  if (leader.has_value()) {
    json parsed = json::parse(leader->value, nullptr, false);
    s.leader = parsed.is_object() ? parsed.value("id", "") : "";
  }
  return s;
}

json StatusJson(const Snapshot& s) {
  json out = {{"leader", s.leader.empty() ? json(nullptr) : json(s.leader)},
              {"nodes_alive", s.alive.size()}};
  if (!s.map.has_value()) {
    out["map"] = nullptr;
    return out;
  }
  const cluster::ClusterMap& map = *s.map;
  int up = 0, down = 0, draining = 0;
  for (const auto& n : map.nodes) {
    up += n.state == cluster::NodeState::kUp;
    down += n.state == cluster::NodeState::kDown;
    draining += n.state == cluster::NodeState::kDraining;
  }
  int healthy = 0, degraded = 0, syncing = 0, unavailable = 0;
  for (const auto& c : map.chains) {
    int serving = 0;
    for (const auto& m : c.members) {
      const cluster::NodeInfo* n = map.FindNode(m);
      serving += n != nullptr && n->state != cluster::NodeState::kDown;
    }
    if (serving == 0) {
      ++unavailable;
    } else if (serving < c.replicas) {
      ++degraded;
    } else {
      ++healthy;
    }
    syncing += c.syncing.empty() ? 0 : 1;
  }
  out["epoch"] = map.epoch;
  out["replicas"] = map.replicas;
  out["nodes"] = {{"up", up}, {"down", down}, {"draining", draining}};
  out["chains"] = {{"total", map.chains.size()}, {"healthy", healthy}, {"degraded", degraded},
                   {"syncing", syncing}, {"unavailable", unavailable}};
  // Chains per replica count: the default set and one per count buckets asked for.
  json sets = json::array();
  for (const cluster::ChainSet& set : map.sets) {
    sets.push_back({{"replicas", set.replicas}, {"chains", set.count}});
  }
  out["sets"] = sets;
  // Totals of the live nodes' counters since they started.
  json work = json::object();
  for (const auto& [id, counters] : s.stats) {
    for (const auto& [name, value] : counters.items()) {
      if (value.is_number_unsigned()) {
        work[name] = work.value(name, uint64_t{0}) + value.get<uint64_t>();
      }
    }
  }
  out["work"] = work;
  return out;
}

json NodesJson(const Snapshot& s) {
  json out = json::array();
  if (!s.map.has_value()) return out;
  std::map<std::string, std::pair<int, int>> chains;  // serving, syncing
  for (const auto& c : s.map->chains) {
    for (const auto& m : c.members) ++chains[m].first;
    for (const auto& m : c.syncing) ++chains[m].second;
  }
  for (const auto& n : s.map->nodes) {
    out.push_back({{"id", n.id}, {"address", n.address}, {"host", n.host}, {"rack", n.rack},
                   {"zone", n.zone}, {"state", cluster::NodeStateName(n.state)},
                   {"alive", s.alive.count(n.id) > 0}, {"chains", chains[n.id].first},
                   {"syncing", chains[n.id].second}, {"capacity_bytes", n.capacity_bytes},
                   {"used_bytes", s.used_bytes.count(n.id) ? s.used_bytes.at(n.id) : 0},
                   {"work", s.stats.count(n.id) ? s.stats.at(n.id) : json::object()}});
  }
  return out;
}

int RunStatus(const ClusterAdminFlags& flags, bool nodes) {
  auto etcd = cluster::EtcdClient::Create(flags.etcd);
  if (!etcd.ok()) return Fail(etcd.status().message());
  Result<Snapshot> s = Read(**etcd);
  if (!s.ok()) return Fail("cannot read the cluster from etcd: " + s.status().ToString());
  json out = nodes ? NodesJson(*s) : StatusJson(*s);
  if (flags.json) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  if (nodes) {
    std::printf("%-18s %-22s %-10s %-10s %-9s %6s %7s %12s\n", "ID", "ADDRESS", "RACK", "ZONE",
                "STATE", "CHAINS", "SYNCING", "USED");
    for (const json& n : out) {
      std::printf("%-18s %-22s %-10s %-10s %-9s %6d %7d %12llu\n",
                  n["id"].get<std::string>().c_str(),
                  n["address"].get<std::string>().c_str(), n["rack"].get<std::string>().c_str(),
                  n["zone"].get<std::string>().c_str(), n["state"].get<std::string>().c_str(),
                  n["chains"].get<int>(), n["syncing"].get<int>(),
                  static_cast<unsigned long long>(n["used_bytes"].get<uint64_t>()));
    }
    return 0;
  }
  std::printf("leader:   %s\n", s->leader.empty() ? "(none)" : s->leader.c_str());
  if (!s->map.has_value()) {
    std::printf("map:      not created yet (%zu nodes alive; the leader creates it once there "
                "are as many as --replicas)\n",
                s->alive.size());
    return 0;
  }
  std::printf("epoch:    %llu\n", static_cast<unsigned long long>(out["epoch"].get<uint64_t>()));
  std::printf("nodes:    %d up, %d down, %d draining\n", out["nodes"]["up"].get<int>(),
              out["nodes"]["down"].get<int>(), out["nodes"]["draining"].get<int>());
  std::printf("chains:   %d total: %d healthy, %d degraded, %d syncing, %d unavailable\n",
              out["chains"]["total"].get<int>(), out["chains"]["healthy"].get<int>(),
              out["chains"]["degraded"].get<int>(), out["chains"]["syncing"].get<int>(),
              out["chains"]["unavailable"].get<int>());
  std::string sets;
  for (const json& set : out["sets"]) {
    sets += (sets.empty() ? "" : ", ") + std::to_string(set["chains"].get<int>()) + " of " +
            std::to_string(set["replicas"].get<int>()) + " replicas";
  }
  std::printf("sets:     %s (%d replicas by default)\n", sets.c_str(), out["replicas"].get<int>());
  const json& work = out["work"];
  auto count = [&](const char* name) {
    return static_cast<unsigned long long>(work.value(name, uint64_t{0}));
  };
  std::printf("repair:   %llu chains filled, %llu blobs (%.1f MB) copied, %llu damaged copies "
              "repaired\n",
              count("chains_filled"), count("blobs_copied"), count("bytes_copied") / 1e6,
              count("blobs_repaired"));
  std::printf("scrub:    %llu passes, %llu blobs checked, %llu damaged found\n",
              count("scrub_passes"), count("scrub_blobs_checked"), count("scrub_damaged"));
  return 0;
}

int RunDrain(const ClusterAdminFlags& flags, bool drain) {
  auto etcd = cluster::EtcdClient::Create(flags.etcd);
  if (!etcd.ok()) return Fail(etcd.status().message());
  Result<Snapshot> s = Read(**etcd);
  if (!s.ok()) return Fail("cannot read the cluster from etcd: " + s.status().ToString());
  const bool known = (s->map.has_value() && s->map->FindNode(flags.node) != nullptr) ||
                     s->alive.count(flags.node) > 0;
  if (!known) {
    return Fail("no node \"" + flags.node + "\" in the cluster: `granary admin nodes` lists them");
  }
  Status st = drain ? (*etcd)->Put(cluster::keys::Drain(flags.node), "1").status()
                    : (*etcd)->Delete(cluster::keys::Drain(flags.node));
  if (!st.ok()) return Fail(st.ToString());
  std::printf(drain ? "node %s is draining: its chains move to other nodes\n"
                    : "node %s is no longer draining\n",
              flags.node.c_str());
  return 0;
}

// Where a bucket's namespace partition lives: its chain, and the members, head first.
int RunLocate(const ClusterAdminFlags& flags) {
  auto etcd = cluster::EtcdClient::Create(flags.etcd);
  if (!etcd.ok()) return Fail(etcd.status().message());
  Result<Snapshot> s = Read(**etcd);
  if (!s.ok()) return Fail("cannot read the cluster from etcd: " + s.status().ToString());
  if (!s->map.has_value() || s->map->chains.empty()) {
    return Fail("the cluster has no map yet: start a manager and as many nodes as --replicas");
  }
  const cluster::Chain& chain = s->map->PartitionOf(flags.bucket);
  json members = json::array();
  for (const std::string& id : chain.members) {
    const cluster::NodeInfo* node = s->map->FindNode(id);
    members.push_back({{"id", id}, {"address", node ? node->address : ""}});
  }
  const json out = {{"bucket", flags.bucket}, {"chain", chain.id},
                    {"version", chain.version}, {"members", members}};
  if (flags.json) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("bucket %s: namespace partition of chain %u (version %llu)\n",
              flags.bucket.c_str(), chain.id, static_cast<unsigned long long>(chain.version));
  for (size_t i = 0; i < chain.members.size(); ++i) {
    std::printf("  %-6s %-18s %s\n", i == 0 ? "head" : "", chain.members[i].c_str(),
                members[i]["address"].get<std::string>().c_str());
  }
  return 0;
}

}  // namespace

void AddClusterAdminCommands(CLI::App& admin) {
  auto flags = std::make_shared<ClusterAdminFlags>();
  auto etcd_option = [&](CLI::App* cmd) {
    cmd->add_option("--etcd", flags->etcd, "the cluster's etcd endpoints: http://HOST:PORT[,...]")
        ->required();
  };
  CLI::App* status = admin.add_subcommand("status", "A cluster's leader, nodes and chains");
  etcd_option(status);
  status->add_flag("--json", flags->json, "print JSON");
  status->callback([flags] { ExitCode() = RunStatus(*flags, false); });

  CLI::App* nodes = admin.add_subcommand("nodes", "A cluster's nodes with their chains");
  etcd_option(nodes);
  nodes->add_flag("--json", flags->json, "print JSON");
  nodes->callback([flags] { ExitCode() = RunStatus(*flags, true); });

  CLI::App* drain = admin.add_subcommand("drain", "Move every chain off a node");
  etcd_option(drain);
  drain->add_option("node", flags->node, "the node's id")->required();
  drain->callback([flags] { ExitCode() = RunDrain(*flags, true); });

  CLI::App* undrain = admin.add_subcommand("undrain", "Let a drained node take chains again");
  etcd_option(undrain);
  undrain->add_option("node", flags->node, "the node's id")->required();
  undrain->callback([flags] { ExitCode() = RunDrain(*flags, false); });

  CLI::App* locate =
      admin.add_subcommand("locate", "The nodes holding a bucket's namespace partition");
  etcd_option(locate);
  locate->add_option("bucket", flags->bucket, "the bucket's name")->required();
  locate->add_flag("--json", flags->json, "print JSON");
  locate->callback([flags] { ExitCode() = RunLocate(*flags); });
}

}  // namespace granary::tools
