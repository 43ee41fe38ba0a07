#include "cluster/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace granary::cluster {
namespace {

NodeInfo Node(std::string id, std::string rack, std::string host = {}) {
  NodeInfo n;
  n.id = std::move(id);
  n.address = n.id + ":9100";
  n.host = host.empty() ? n.id : std::move(host);
  n.rack = std::move(rack);
  n.zone = "z";
  return n;
}

// 6 nodes, two per rack on three racks.
std::vector<NodeInfo> SixNodes() {
  return {Node("a1", "ra"), Node("a2", "ra"), Node("b1", "rb"),
          Node("b2", "rb"), Node("c1", "rc"), Node("c2", "rc")};
}

std::set<std::string> Racks(const ClusterMap& map, const std::vector<std::string>& ids) {
  std::set<std::string> racks;
  for (const std::string& id : ids) racks.insert(map.FindNode(id)->rack);
  return racks;
}

Observation Alive(const ClusterMap& map, std::set<std::string> dead = {}) {
  Observation o;
  for (const NodeInfo& n : map.nodes) {
    if (dead.count(n.id) == 0) o.alive.push_back(n);
  }
  return o;
}

// Marks every syncing member of every chain as done, as the nodes would report.
void FinishSyncs(const ClusterMap& map, Observation& o) {
  for (const Chain& c : map.chains) {
    for (size_t i = 0; i < c.syncing.size(); ++i) o.synced[{c.id, c.syncing[i]}] = c.version;
  }
}

// Reconciles until nothing changes, finishing every sync on the way.
void Settle(ClusterMap& map, Observation o) {
  for (int round = 0; round < 200; ++round) {
    FinishSyncs(map, o);
    if (!Reconcile(map, o)) return;
  }
  FAIL() << "placement did not settle";
}

TEST(PlacementTest, BuildSpreadsChainsOverRacksAndBalancesLoad) {
  ClusterMap map = BuildMap(SixNodes(), 3, 64);
  ASSERT_EQ(map.chains.size(), 64u);
  for (const Chain& c : map.chains) {
    ASSERT_EQ(c.members.size(), 3u);
    EXPECT_EQ(Racks(map, c.members).size(), 3u) << "chain " << c.id;
  }
  std::vector<int> loads = map.Loads();
  EXPECT_LE(*std::max_element(loads.begin(), loads.end()) -
                *std::min_element(loads.begin(), loads.end()),
            1);
  // Heads spread too: no node heads more than twice its share.
  std::map<std::string, int> heads;
  for (const Chain& c : map.chains) ++heads[c.members.front()];
  for (auto& [id, n] : heads) EXPECT_LE(n, 2 * 64 / 6) << id;
}

TEST(PlacementTest, FewerRacksThanReplicasFallsBackToHosts) {
  ClusterMap map = BuildMap({Node("a1", "ra"), Node("a2", "ra"), Node("b1", "rb")}, 3, 8);
  for (const Chain& c : map.chains) {
    EXPECT_EQ(c.members.size(), 3u);
    EXPECT_EQ(Racks(map, c.members).size(), 2u);
  }
  // Two nodes on one host: a chain of two puts them on different hosts when it can.
  ClusterMap hosts = BuildMap({Node("x", "r", "h1"), Node("y", "r", "h1"), Node("z", "r", "h2")},
                              2, 8);
  for (const Chain& c : hosts.chains) {
    std::set<std::string> h;
    for (const std::string& m : c.members) h.insert(hosts.FindNode(m)->host);
    EXPECT_EQ(h.size(), 2u);
  }
}

TEST(PlacementTest, DeadNodeLeavesAtOnceAndIsReplacedOnAnotherRack) {
  ClusterMap map = BuildMap(SixNodes(), 3, 32);
  const ClusterMap before = map;
  Observation o = Alive(map, {"a1"});
  ASSERT_TRUE(Reconcile(map, o));
  EXPECT_EQ(map.epoch, before.epoch + 1);
  EXPECT_EQ(map.FindNode("a1")->state, NodeState::kDown);
  for (const Chain& c : map.chains) {
    EXPECT_FALSE(c.Contains("a1"));
    const bool had = before.chains[c.id].Contains("a1");
    EXPECT_EQ(c.version, before.chains[c.id].version + (had ? 1 : 0));
    if (!had) continue;
    ASSERT_EQ(c.members.size(), 2u);
    ASSERT_EQ(c.syncing.size(), 1u);
    // The replacement keeps one member per rack: it is a1's rack-mate.
    EXPECT_EQ(c.syncing[0], "a2");
    EXPECT_EQ(c.syncing_since[0], c.version);
  }
  // A sync reported at an older version does not count; one at the new version does.
  Observation stale = o;
  for (const Chain& c : map.chains) {
    if (!c.syncing.empty()) stale.synced[{c.id, c.syncing[0]}] = c.version - 1;
  }
  EXPECT_FALSE(Reconcile(map, stale));
  Settle(map, o);
  for (const Chain& c : map.chains) {
    EXPECT_EQ(c.members.size(), 3u);
    EXPECT_TRUE(c.syncing.empty());
    EXPECT_EQ(Racks(map, c.members).size(), 3u);
  }
}

TEST(PlacementTest, WholeRackLostKeepsTwoServingMembersEverywhere) {
  ClusterMap map = BuildMap(SixNodes(), 3, 32);
  Observation o = Alive(map, {"c1", "c2"});
  ASSERT_TRUE(Reconcile(map, o));
  for (const Chain& c : map.chains) {
    EXPECT_EQ(c.members.size(), 2u);
    EXPECT_EQ(Racks(map, c.members), (std::set<std::string>{"ra", "rb"}));
    ASSERT_EQ(c.syncing.size(), 1u);  // on another host of a rack it already uses
  }
  Settle(map, o);
  for (const Chain& c : map.chains) EXPECT_EQ(c.members.size(), 3u);
}

TEST(PlacementTest, LastServingMemberIsKept) {
  ClusterMap map = BuildMap({Node("a", "ra"), Node("b", "rb")}, 2, 4);
  Observation o = Alive(map, {"a", "b"});
  Reconcile(map, o);
  for (const Chain& c : map.chains) EXPECT_FALSE(c.members.empty());
}

TEST(PlacementTest, ReturningNodeIsUsedAgainAndLoadsEvenOut) {
  ClusterMap map = BuildMap(SixNodes(), 3, 48);
  Settle(map, Alive(map, {"b2"}));
  EXPECT_EQ(map.Loads()[map.FindNode("b2") - map.nodes.data()], 0);
  Settle(map, Alive(map));
  EXPECT_EQ(map.FindNode("b2")->state, NodeState::kUp);
  std::vector<int> loads = map.Loads();
  EXPECT_LE(*std::max_element(loads.begin(), loads.end()) -
                *std::min_element(loads.begin(), loads.end()),
            1);
  for (const Chain& c : map.chains) EXPECT_EQ(Racks(map, c.members).size(), 3u);
}

TEST(PlacementTest, AddingNodesMovesOnlyAFairShare) {
  ClusterMap map = BuildMap(SixNodes(), 3, 90);
  const ClusterMap before = map;
  std::vector<NodeInfo> nine = SixNodes();
  for (std::string id : {"a3", "b3", "c3"}) nine.push_back(Node(id, std::string("r") + id[0]));
  Observation o;
  o.alive = nine;
  Settle(map, o);
  std::vector<int> loads = map.Loads();
  EXPECT_LE(*std::max_element(loads.begin(), loads.end()) -
                *std::min_element(loads.begin(), loads.end()),
            1);
  // 270 memberships over 9 nodes is 30 each: the new nodes took 90, and nothing else moved.
  int moved = 0;
  for (const Chain& c : map.chains) {
    for (const std::string& m : c.members) moved += before.chains[c.id].Contains(m) ? 0 : 1;
    EXPECT_EQ(Racks(map, c.members).size(), 3u);
  }
  EXPECT_EQ(moved, 90);
}

TEST(PlacementTest, RebalancingIsThrottled) {
  ClusterMap map = BuildMap(SixNodes(), 3, 64);
  Observation o = Alive(map);
  o.alive.push_back(Node("a3", "ra"));
  PlacementOptions options;
  options.max_moves = 4;
  ASSERT_TRUE(Reconcile(map, o, options));
  int syncing = 0;
  for (const Chain& c : map.chains) syncing += c.syncing.empty() ? 0 : 1;
  EXPECT_EQ(syncing, 4);
  // Without finished syncs nothing more starts.
  EXPECT_FALSE(Reconcile(map, o, options));
}

TEST(PlacementTest, DrainedNodeServesUntilReplacedThenEmpties) {
  ClusterMap map = BuildMap(SixNodes(), 3, 32);
  Observation o = Alive(map);
  o.drain.insert("b1");
  ASSERT_TRUE(Reconcile(map, o));
  EXPECT_EQ(map.FindNode("b1")->state, NodeState::kDraining);
  for (const Chain& c : map.chains) {
    if (!c.Contains("b1")) continue;
    EXPECT_EQ(c.leaving, std::vector<std::string>{"b1"});
    EXPECT_EQ(c.members.size(), 3u);  // still serving
    EXPECT_EQ(c.syncing, std::vector<std::string>{"b2"});
  }
  Settle(map, o);
  for (const Chain& c : map.chains) {
    EXPECT_FALSE(c.Contains("b1"));
    EXPECT_EQ(c.members.size(), 3u);
  }
}

TEST(PlacementTest, MapRoundTripsThroughJson) {
  ClusterMap map = BuildMap(SixNodes(), 3, 16);
  Observation o = Alive(map, {"a1"});
  o.drain.insert("c2");
  Reconcile(map, o);
  auto back = ClusterMap::FromJson(map.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), map.ToJson());
  EXPECT_EQ(back->ChainOf("bucket/key")->id, map.ChainOf("bucket/key")->id);
  EXPECT_EQ(ClusterMap::FromJson("{").status().code(), Code::kCorruption);
  EXPECT_EQ(ClusterMap::FromJson(R"({"format": 1})").status().code(), Code::kCorruption);
  EXPECT_EQ(ClusterMap::FromJson(R"({"format": 9})").status().code(), Code::kNotSupported);
}

TEST(PlacementTest, SetsOfOtherReplicaCountsAreAddedOnDemandAndRepaired) {
  ClusterMap map = BuildMap(SixNodes(), 3, 16);
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("k/" + std::to_string(i));
  std::vector<uint32_t> before;
  for (const std::string& k : keys) before.push_back(map.ChainOf(k)->id);
  EXPECT_EQ(map.ChainOf(PlacedKeyPrefix(2) + "k"), nullptr);  // no such set yet

  // Asked for 2 and 5 copies: two sets of 16 chains, members on distinct racks where there are
  // enough racks (three here), else distinct hosts.
  Observation o = Alive(map);
  o.wanted_sets = {2, 5};
  const uint64_t epoch = map.epoch;
  ASSERT_TRUE(Reconcile(map, o));
  EXPECT_EQ(map.epoch, epoch + 1);
  ASSERT_EQ(map.chains.size(), 48u);
  for (int replicas : {2, 5}) {
    auto set = map.SetOf(replicas);
    ASSERT_TRUE(set.has_value());
    EXPECT_EQ(set->count, 16u);
    for (uint32_t i = set->first; i < set->first + set->count; ++i) {
      const Chain& c = map.chains[i];
      EXPECT_EQ(c.replicas, replicas);
      ASSERT_EQ(c.members.size(), static_cast<size_t>(replicas));
      EXPECT_EQ(Racks(map, c.members).size(), std::min<size_t>(replicas, 3));
      EXPECT_EQ(std::set<std::string>(c.members.begin(), c.members.end()).size(),
                c.members.size());
    }
  }
  // Keys of the default set keep their chains; placed keys land in their own set.
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(map.ChainOf(keys[i])->id, before[i]);
  for (const std::string& k : keys) {
    EXPECT_EQ(map.ChainOf(PlacedKeyPrefix(2) + k)->replicas, 2);
    EXPECT_EQ(map.ChainOf(PlacedKeyPrefix(5) + k)->replicas, 5);
    EXPECT_EQ(map.ChainOf(PlacedKeyPrefix(0) + k)->replicas, 3);
  }
  EXPECT_FALSE(Reconcile(map, o));  // asked again: nothing to do

  // A node dies: every chain gets its own count back, from other nodes.
  o = Alive(map, {"a1"});
  o.wanted_sets = {2, 5};
  Settle(map, o);
  for (const Chain& c : map.chains) {
    EXPECT_EQ(c.members.size(), static_cast<size_t>(c.replicas)) << c.id;
    EXPECT_FALSE(c.Contains("a1"));
  }
  // The map, sets included, survives JSON.
  auto back = ClusterMap::FromJson(map.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->sets.size(), 3u);
  // Builds that read only format 1 refuse a map with sets, rather than place keys over every
  // chain; a map with the default set alone stays format 1.
  EXPECT_NE(map.ToJson().find("\"format\":2"), std::string::npos);
  EXPECT_NE(BuildMap(SixNodes(), 3, 4).ToJson().find("\"format\":1"), std::string::npos);
  EXPECT_EQ(back->Partitions().size(), 16u);
  EXPECT_TRUE(back->IsPartition(15));
  EXPECT_FALSE(back->IsPartition(16));
  EXPECT_EQ(back->ChainOf(PlacedKeyPrefix(5) + "x")->id, map.ChainOf(PlacedKeyPrefix(5) + "x")->id);
}

TEST(PlacementTest, SetAddedToAMapBuiltByHandComesAfterItsDefaultSet) {
  ClusterMap map = BuildMap(SixNodes(), 3, 4);
  map.sets.clear();  // as a map built field by field has none
  AddChainSet(map, 2, 4);
  ASSERT_EQ(map.sets.size(), 2u);
  EXPECT_EQ(map.SetOf(0)->count, 4u);
  EXPECT_EQ(map.SetOf(2)->first, 4u);
  EXPECT_EQ(map.PartitionOf("b").replicas, 3);
  auto back = ClusterMap::FromJson(map.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  // A chain of no replicas is not a map.
  std::string bad = map.ToJson();
  bad.replace(bad.find("\"replicas\":2"), 12, "\"replicas\":0");
  EXPECT_EQ(ClusterMap::FromJson(bad).status().code(), Code::kCorruption);
}

TEST(PlacementTest, SetIsNotAddedWithFewerNodesUpThanItsCount) {
  ClusterMap map = BuildMap({Node("a", "ra"), Node("b", "rb"), Node("c", "rc")}, 3, 4);
  Observation o = Alive(map);
  o.wanted_sets = {4};
  EXPECT_FALSE(Reconcile(map, o));
  EXPECT_FALSE(map.SetOf(4).has_value());
  o.alive.push_back(Node("d", "rd"));
  ASSERT_TRUE(Reconcile(map, o));
  ASSERT_TRUE(map.SetOf(4).has_value());
}

TEST(PlacementTest, PartitionBlobPrefixesAreDistinctAndPlaced) {
  std::set<std::string> prefixes;
  for (uint32_t partition : {0u, 1u, 255u, 256u}) {
    for (uint32_t replicas = 0; replicas <= 5; ++replicas) {
      std::string p = PartitionBlobPrefix(partition, replicas);
      EXPECT_EQ(PlacementOf(p + "d"), replicas);
      prefixes.insert(p);
    }
  }
  EXPECT_EQ(prefixes.size(), 24u);
  EXPECT_EQ(PlacementOf("blob/1"), 0u);
  EXPECT_EQ(PlacementOf(""), 0u);
  // A zero byte naming no count: the key belongs to no set.
  ClusterMap map = BuildMap(SixNodes(), 3, 8);
  EXPECT_EQ(map.ChainOf(std::string("\0\xe0k", 3)), nullptr);
  EXPECT_EQ(map.ChainOf(std::string(1, '\0')), nullptr);
  EXPECT_NE(map.ChainOf(PlacedKeyPrefix(0)), nullptr);
}

}  // namespace
}  // namespace granary::cluster
