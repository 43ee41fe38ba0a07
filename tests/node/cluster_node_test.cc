// A cluster in one process: a real etcd, storage nodes on 127.0.0.1, a manager, and the chain
// blob store a gateway uses. (Separate hosts, racks and kill -9 are tested in network
// namespaces by tests/python/test_cluster.py.)
#include "node/cluster_node.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "meta/keys.h"
#include "node/cluster_node_fixture.h"

namespace granary::node {
namespace {

TEST_F(ClusterNodeTest, WritesReachEveryReplicaAndALostOneIsRebuilt) {
  auto store = StartThreeRacks();
  ASSERT_NE(store, nullptr);
  PutRange(*store, 0, 60);
  for (auto& n : nodes_) {
    for (int i = 0; i < 60; ++i) EXPECT_TRUE(n->store().Exists("blob/" + std::to_string(i)));
  }
  // A range read from a replica.
  char buf[10];
  auto n = store->ReadInto("blob/3", 5, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), Value(3).substr(5, 10));
  EXPECT_EQ(store->GetMany(std::vector<std::string>{"blob/none"})[0].status().code(),
            Code::kNotFound);
  // Keys starting with a zero byte are the cluster's own (placed) keys.
  const std::pair<std::string, std::string_view> reserved{std::string("\0\xe0k", 3), "v"};
  EXPECT_EQ(store->PutMany(std::span(&reserved, 1)).code(), Code::kInvalidArgument);

  // Node c leaves: reads and writes go on with two replicas.
  ASSERT_TRUE(nodes_[2]->Stop().ok());
  nodes_[2].reset();
  ExpectReadable(*store, 0, 60);
  PutRange(*store, 60, 100);
  ASSERT_TRUE(WaitFor([&] { return Settled(2); }));

  // A new node on c's rack takes c's place in every chain and is filled with everything.
  ClusterNode* d = StartNode("d", "rc");
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }, 30s));
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(d->store().Exists("blob/" + std::to_string(i))) << i;
  EXPECT_EQ(d->Stats().chains_filled, 8u);
  EXPECT_EQ(d->Stats().blobs_copied, 100u);
  ExpectReadable(*store, 0, 100);
}

TEST_F(ClusterNodeTest, ReturningNodeCopiesOnlyWhatItMissed) {
  auto store = StartThreeRacks();
  ASSERT_NE(store, nullptr);
  PutRange(*store, 0, 50);
  ASSERT_TRUE(nodes_[2]->Stop().ok());
  nodes_[2].reset();
  ASSERT_TRUE(WaitFor([&] { return Settled(2); }));
  // While c is away: 20 new blobs, 10 old ones deleted.
  PutRange(*store, 50, 70);
  std::vector<std::string> gone;
  for (int i = 0; i < 10; ++i) gone.push_back("blob/" + std::to_string(i));
  ASSERT_TRUE(store->DeleteMany(gone).ok());

  ClusterNode* c = StartNode("c", "rc");
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }, 30s));
  EXPECT_EQ(c->Stats().blobs_copied, 20u);
  for (int i = 0; i < 70; ++i) {
    EXPECT_EQ(c->store().Exists("blob/" + std::to_string(i)), i >= 10) << i;
  }
  ExpectReadable(*store, 10, 70);
}

TEST_F(ClusterNodeTest, NodeWithoutItsLeaseRefusesWrites) {
  ClusterNode* a = StartNode("a", "ra");
  StartManager(1, 4);
  auto store = OpenStore(/*retry_ms=*/1500);
  ASSERT_NE(store, nullptr);
  PutRange(*store, 0, 5);
  // etcd stops answering: the node's lease runs out, and with it the node's right to write.
  ASSERT_EQ(kill(etcd_.pid(), SIGSTOP), 0);
  EXPECT_TRUE(WaitFor([&] { return !a->Stats().lease_held; }, 10s));
  std::pair<std::string, std::string_view> blob{"late", "value"};
  Status refused = store->PutMany(std::span(&blob, 1));
  EXPECT_EQ(refused.code(), Code::kUnavailable) << refused.ToString();
  // Reads of what is acknowledged still work.
  ExpectReadable(*store, 0, 5);
  ASSERT_EQ(kill(etcd_.pid(), SIGCONT), 0);
  EXPECT_TRUE(WaitFor([&] { return a->Stats().lease_held; }, 10s));
  EXPECT_TRUE(WaitFor([&] { return store->PutMany(std::span(&blob, 1)).ok(); }, 15s));
}

TEST_F(ClusterNodeTest, DrainedNodeEmptiesAndDataStaysReadable) {
  StartNode("a", "ra");
  StartNode("b", "rb");
  StartNode("c", "rc");
  ClusterNode* d = StartNode("d", "rd", /*gc_delay_ms=*/200);
  StartManager(3, 8);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }));
  PutRange(*store, 0, 40);
  ASSERT_TRUE(etcd_client_->Put(cluster::keys::Drain(d->id()), "1").ok());
  ASSERT_TRUE(WaitFor([&] {
    cluster::ClusterMap map = Map();
    if (!Settled(3)) return false;
    for (const auto& chain : map.chains) {
      if (chain.Contains(d->id())) return false;
    }
    return true;
  }, 30s));
  ExpectReadable(*store, 0, 40);
  // Once out of every chain, the drained node deletes its copies.
  EXPECT_TRUE(WaitFor([&] { return d->store().Stats().blobs == 0; }));
  EXPECT_GT(d->Stats().blobs_reclaimed, 0u);
  PutRange(*store, 40, 50);
  ExpectReadable(*store, 40, 50);
}

TEST_F(ClusterNodeTest, RepairIsThrottled) {
  auto store = StartThreeRacks();
  ASSERT_NE(store, nullptr);
  PutRange(*store, 0, 60);  // about 1.5 MB
  ASSERT_TRUE(nodes_[2]->Stop().ok());
  nodes_[2].reset();
  ASSERT_TRUE(WaitFor([&] { return Settled(2); }));
  const auto started = std::chrono::steady_clock::now();
  ClusterNode* d = StartNode("d", "rc", 30'000, /*repair_bytes_per_second=*/512 << 10);
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }, 60s));
  // 1.5 MB at 512 KiB/s takes about 3 s; unthrottled it takes a fraction of a second.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_EQ(d->Stats().blobs_copied, 60u);
  ExpectReadable(*store, 0, 60);
}

TEST_F(ClusterNodeTest, NewLeaderLetsNodesReRegisterBeforeChangingTheMap) {
  auto store = StartThreeRacks();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }));
  manager_->Stop();
  manager_.reset();
  const uint64_t epoch = Map().epoch;
  ASSERT_TRUE(nodes_[2]->Stop().ok());  // gone while no manager runs
  nodes_[2].reset();
  const auto started = std::chrono::steady_clock::now();
  StartManager(3, 8, /*settle_ms=*/1500);
  // Within its settling time the new leader changes nothing...
  std::this_thread::sleep_for(1000ms);
  EXPECT_EQ(Map().epoch, epoch);
  // ...then acts on what it sees.
  ASSERT_TRUE(WaitFor([&] { return Map().epoch > epoch; }));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1500ms);
  ASSERT_TRUE(WaitFor([&] { return Settled(2); }));
}

TEST_F(ClusterNodeTest, NamespaceOutlivesTheNodesHeadingIt) {
  StartNode("a", "ra");
  StartNode("b", "rb");
  StartNode("c", "rc");
  StartNode("d", "rd");
  StartManager(3, 8);
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }));
  const std::string bucket = "photos";
  ASSERT_TRUE(AtHead(bucket, [&](Client& c) { return c.CreateBucket(bucket).ok(); }));
  // A node that does not head the partition refuses, saying its map is not the client's.
  {
    cluster::ClusterMap map = Map();
    const cluster::Chain& chain = map.PartitionOf(bucket);
    ASSERT_GE(chain.members.size(), 2u);
    auto other = Client::Connect(map.FindNode(chain.members[1])->address,
                                 Credentials{kAccess, kSecret});
    ASSERT_TRUE(other.ok());
    EXPECT_EQ((*other)->HeadBucket(bucket).status().code(), Code::kStaleMap);
  }
  PutObjects(bucket, 0, 40);  // inline records and blobs of up to 50 KB
  ExpectObjects(bucket, 40);

  // The head goes: the next member serves everything acknowledged, and a spare node is filled
  // with the partition.
  const std::string first_head = Map().PartitionOf(bucket).members.front();
  StopNode(first_head);
  ASSERT_TRUE(WaitFor([&] { return Settled(3) && !Map().PartitionOf(bucket).Contains(first_head); },
                      30s));
  ExpectObjects(bucket, 40);
  PutObjects(bucket, 40, 60);
  ASSERT_TRUE(AtHead(bucket, [&](Client& c) { return c.Delete(bucket, "obj-1000").ok(); }));

  // And the next head, twice over: only nodes that were filled or followed the log remain.
  for (int round = 0; round < 2; ++round) {
    const std::string head = Map().PartitionOf(bucket).members.front();
    StopNode(head);
    ASSERT_TRUE(WaitFor([&] { return !Map().PartitionOf(bucket).Contains(head); }, 30s));
    ASSERT_TRUE(AtHead(bucket, [&](Client& c) {
      auto listed = c.List(bucket, ListOptions{});
      if (!listed.ok()) return false;
      EXPECT_EQ(listed->objects.size(), 59u);
      auto gone = c.Get(bucket, "obj-1000");
      EXPECT_EQ(gone.status().code(), Code::kNotFound);
      auto last = c.Get(bucket, "obj-1059");
      EXPECT_TRUE(last.ok() && *last == Value(59));
      return true;
    }));
    if (round == 0) {
      StartNode("e", "re");
      ASSERT_TRUE(WaitFor([&] { return Settled(3); }, 30s));
    }
  }
}

TEST_F(ClusterNodeTest, MemberFarBehindCopiesThePartition) {
  // Logs of 16 entries: a member away for more writes than that copies the whole partition.
  for (const char* name : {"a", "b", "c"}) {
    StartNode(name, std::string("r") + name, 30'000, 0, /*namespace_log_entries=*/16);
  }
  StartManager(3, 4);
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }));
  const std::string bucket = "logs";
  ASSERT_TRUE(AtHead(bucket, [&](Client& c) { return c.CreateBucket(bucket).ok(); }));
  PutObjects(bucket, 0, 10);
  // A member that is not the head leaves, 40 writes happen, and it comes back.
  const cluster::Chain chain = Map().PartitionOf(bucket);
  const std::string away = chain.members.back();
  const std::string name = away == nodes_[0]->id() ? "a" : away == nodes_[1]->id() ? "b" : "c";
  StopNode(away);
  ASSERT_TRUE(WaitFor([&] { return !Map().PartitionOf(bucket).Contains(away); }));
  PutObjects(bucket, 10, 50);
  StartNode(name, std::string("r") + name, 30'000, 0, 16);
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }, 30s));
  // Only the returning node remains of the partition's members: it has everything.
  const cluster::Chain now = Map().PartitionOf(bucket);
  for (const std::string& id : now.members) {
    if (id != away) StopNode(id);
  }
  ASSERT_TRUE(WaitFor([&] {
    const cluster::Chain c = Map().PartitionOf(bucket);
    return c.members.size() == 1 && c.members.front() == away;
  }, 30s)) << Map().ToJson();
  ExpectObjects(bucket, 50);
}

TEST_F(ClusterNodeTest, BucketsOfDifferentPartitionsKeepTheirOwnData) {
  StartThreeRacks();
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }));
  // Two buckets whose records live in different partitions, each numbering its uploads from 1.
  const std::string first = "alpha";
  std::string second;
  for (int i = 0; second.empty(); ++i) {
    std::string name = "beta" + std::to_string(i);
    if (Map().PartitionOf(name).id != Map().PartitionOf(first).id) second = name;
  }
  for (const std::string& bucket : {first, second}) {
    ASSERT_TRUE(AtHead(bucket, [&](Client& c) { return c.CreateBucket(bucket).ok(); }));
  }
  for (int i = 0; i < 5; ++i) {
    const std::string a(10'000 + i, 'a'), b(10'000 + i, 'b');
    ASSERT_TRUE(AtHead(first, [&](Client& c) { return c.Put(first, std::to_string(i), a).ok(); }));
    ASSERT_TRUE(AtHead(second, [&](Client& c) { return c.Put(second, std::to_string(i), b).ok(); }));
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(AtHead(first, [&](Client& c) {
      auto got = c.Get(first, std::to_string(i));
      EXPECT_TRUE(got.ok() && *got == std::string(10'000 + i, 'a')) << i;
      return true;
    }));
    ASSERT_TRUE(AtHead(second, [&](Client& c) {
      auto got = c.Get(second, std::to_string(i));
      EXPECT_TRUE(got.ok() && *got == std::string(10'000 + i, 'b')) << i;
      return true;
    }));
  }
}

TEST_F(ClusterNodeTest, BucketsKeepTheirOwnReplicaCounts) {
  StartNode("a", "ra");
  StartNode("b", "rb");
  StartNode("c", "rc");
  StartNode("d", "rd");
  StartManager(3, 4);
  ASSERT_TRUE(WaitFor([&] { return Settled(3); }));
  auto create = [&](const std::string& bucket, int replicas) {
    Status created;
    EXPECT_TRUE(AtHead(bucket, [&](Client& c) {
      created = c.CreateBucket(bucket, BucketOptions{replicas});
      return created.code() != Code::kStaleMap && created.code() != Code::kUnavailable;
    }));
    return created;
  };
  ASSERT_TRUE(create("one", 1).ok());
  ASSERT_TRUE(create("two", 2).ok());
  ASSERT_TRUE(create("three", 0).ok());
  // More copies than nodes up: refused, saying why.
  const Status wide = create("wide", 5);
  EXPECT_EQ(wide.code(), Code::kInvalidArgument) << wide.ToString();
  EXPECT_NE(wide.message().find("needs 5 nodes"), std::string::npos) << wide.ToString();
  EXPECT_EQ(create("two", 2).code(), Code::kAlreadyExists);
  EXPECT_EQ(create("one", 4).code(), Code::kAlreadyExists);  // and asks for no set of 4
  ASSERT_TRUE(AtHead("two", [&](Client& c) {
    auto info = c.HeadBucket("two");
    EXPECT_TRUE(info.ok() && info->replicas == 2);
    return info.ok();
  }));
  // A set of 4 chains was added for each new count; the default set kept its chains.
  cluster::ClusterMap map = Map();
  ASSERT_EQ(map.chains.size(), 12u) << map.ToJson();
  EXPECT_FALSE(map.SetOf(4).has_value());
  for (int replicas : {1, 2, 3}) {
    auto set = map.SetOf(replicas);
    ASSERT_TRUE(set.has_value()) << replicas;
    EXPECT_EQ(set->count, 4u);
    for (uint32_t i = set->first; i < set->first + set->count; ++i) {
      EXPECT_EQ(map.chains[i].members.size(), static_cast<size_t>(replicas));
    }
  }

  // Each object's blobs (one of 50 KB, or three chunks of a 10 MiB object) are on as many nodes
  // as its bucket asks for.
  struct Stored {
    std::string bucket, key, data;
    uint64_t version = 0;
    int replicas = 0;
  };
  std::vector<Stored> stored;
  for (auto [bucket, replicas] : {std::pair{"one", 1}, {"two", 2}, {"three", 3}}) {
    for (int i = 0; i < 6; ++i) {
      std::string data = i == 0 ? std::string(10 << 20, 'x') : Value(100 + i);
      data[0] = static_cast<char>('a' + i);
      Stored s{bucket, "k" + std::to_string(i), data, 0, replicas};
      ASSERT_TRUE(AtHead(bucket, [&](Client& c) {
        auto put = c.Put(s.bucket, s.key, s.data);
        if (put.ok()) s.version = put->version;
        return put.ok();
      }));
      stored.push_back(std::move(s));
    }
  }
  auto copies = [&](const Stored& s) {
    const uint32_t partition = Map().PartitionOf(s.bucket).id;
    const std::string key = meta::BlobKey(
        cluster::PartitionBlobPrefix(partition, static_cast<uint32_t>(s.replicas == 3 ? 0 : s.replicas)),
        s.version, 0);
    int n = 0;
    for (auto& node : nodes_) n += node != nullptr && node->store().Exists(key) ? 1 : 0;
    return n;
  };
  for (const Stored& s : stored) {
    EXPECT_EQ(copies(s), s.replicas) << s.bucket << "/" << s.key;
    ASSERT_TRUE(AtHead(s.bucket, [&](Client& c) {
      auto got = c.Get(s.bucket, s.key);
      EXPECT_TRUE(got.ok() && *got == s.data) << s.bucket << "/" << s.key;
      return true;
    }));
  }

  // A node holding a blob of two copies goes: chains of two copies are repaired back to two.
  const std::string gone =
      Map().ChainOf(meta::BlobKey(cluster::PartitionBlobPrefix(Map().PartitionOf("two").id, 2),
                                  stored[6].version, 0))
          ->members.front();
  StopNode(gone);
  ASSERT_TRUE(WaitFor([&] {
    cluster::ClusterMap now = Map();
    return now.FindNode(gone)->state == cluster::NodeState::kDown && Settled(3);
  }, 30s)) << Map().ToJson();
  for (const Stored& s : stored) {
    if (s.replicas != 2) continue;
    EXPECT_EQ(copies(s), 2) << s.key;
    ASSERT_TRUE(AtHead(s.bucket, [&](Client& c) {
      auto got = c.Get(s.bucket, s.key);
      EXPECT_TRUE(got.ok() && *got == s.data) << s.key;
      return true;
    }));
  }
}

}  // namespace
}  // namespace granary::node
