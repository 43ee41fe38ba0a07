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
  EXPECT_EQ(back->ChainOf("bucket/key").id, map.ChainOf("bucket/key").id);
  EXPECT_EQ(ClusterMap::FromJson("{").status().code(), Code::kCorruption);
  EXPECT_EQ(ClusterMap::FromJson(R"({"format": 1})").status().code(), Code::kCorruption);
  EXPECT_EQ(ClusterMap::FromJson(R"({"format": 9})").status().code(), Code::kNotSupported);
}

}  // namespace
}  // namespace granary::cluster
