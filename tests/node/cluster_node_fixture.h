// A cluster in one process for tests: a real etcd, storage nodes on 127.0.0.1, a manager, and
// the chain blob store a gateway uses.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "cluster/cluster_map.h"
#include "cluster/etcd_fixture.h"
#include "cluster/keys.h"
#include "granary/client.h"
#include "manager/manager.h"
#include "node/cluster_node.h"
#include "replication/blob_store.h"
#include "replication/chain_blob_store.h"

namespace granary::node {
namespace {

using namespace std::chrono_literals;

constexpr char kAccess[] = "cluster-root";
constexpr char kSecret[] = "cluster-secret-key";

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

std::string Value(int i) { return std::string(100 + (i * 7919) % 50'000, static_cast<char>('a' + i % 26)); }

class ClusterNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("granary-cluster-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    etcd_client_ = std::move(*cluster::EtcdClient::Create(etcd_.url()));
  }
  void TearDown() override {
    if (manager_) manager_->Stop();
    for (auto& n : nodes_) {
      if (n) (void)n->Stop();
    }
    std::filesystem::remove_all(dir_);
  }

  // Starts node `name` (its own host) on `rack`; its data stays in dir_/name across restarts.
  ClusterNode* StartNode(const std::string& name, const std::string& rack,
                         int gc_delay_ms = 30'000, uint64_t repair_bytes_per_second = 0,
                         uint64_t namespace_log_entries = 20'000) {
    ClusterNodeOptions o;
    o.etcd = etcd_.url();
    o.disks = {(dir_ / name).string()};
    o.listen = "127.0.0.1:0";
    o.host = name;
    o.rack = rack;
    o.lease_ttl_seconds = 2;
    o.poll_ms = 50;
    o.gc_delay_ms = gc_delay_ms;
    o.repair_bytes_per_second = repair_bytes_per_second;
    o.namespace_log_entries = namespace_log_entries;
    auto node = ClusterNode::Start(o, RootCredentials{kAccess, kSecret, ""});
    EXPECT_TRUE(node.ok()) << node.status().ToString();
    nodes_.push_back(std::move(*node));
    return nodes_.back().get();
  }

  void StartManager(int replicas, uint32_t chains, int settle_ms = 0) {
    manager::ManagerOptions o;
    o.etcd = etcd_.url();
    o.replicas = replicas;
    o.chains = chains;
    o.lease_ttl_seconds = 2;
    o.interval_ms = 50;
    o.settle_ms = settle_ms;
    manager_ = std::move(*manager::Manager::Start(o));
  }

  cluster::ClusterMap Map() {
    auto kv = etcd_client_->Get(std::string(cluster::keys::kMap));
    if (!kv.ok() || !kv->has_value()) return {};
    return *cluster::ClusterMap::FromJson((*kv)->value);
  }

  // Every chain of the default set has `replicas` serving members, every other chain its own
  // count, and none syncing.
  bool Settled(size_t replicas) {
    cluster::ClusterMap map = Map();
    if (map.chains.empty()) return false;
    for (const auto& c : map.chains) {
      const size_t want = c.replicas == map.replicas ? replicas : static_cast<size_t>(c.replicas);
      if (c.members.size() != want || !c.syncing.empty() || !c.leaving.empty()) return false;
    }
    return true;
  }

  // Nodes a, b, c on racks ra, rb, rc, a manager for 3 replicas of 8 chains, and a store.
  std::unique_ptr<replication::BlobStore> StartThreeRacks() {
    StartNode("a", "ra");
    StartNode("b", "rb");
    StartNode("c", "rc");
    StartManager(3, 8);
    return OpenStore();
  }

  std::unique_ptr<replication::BlobStore> OpenStore(int retry_ms = 30'000) {
    replication::ChainBlobStoreOptions o;
    o.etcd = etcd_.url();
    o.access_key = kAccess;
    o.secret_key = kSecret;
    o.retry_ms = retry_ms;
    std::unique_ptr<replication::BlobStore> store;
    EXPECT_TRUE(WaitFor([&] {
      auto opened = replication::OpenChainBlobStore(o);
      if (opened.ok()) store = std::move(*opened);
      return store != nullptr;
    }));
    return store;
  }

  void PutRange(replication::BlobStore& store, int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string value = Value(i);
      std::pair<std::string, std::string_view> blob{"blob/" + std::to_string(i), value};
      ASSERT_TRUE(store.PutMany(std::span(&blob, 1)).ok()) << i;
    }
  }

  void ExpectReadable(replication::BlobStore& store, int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string key = "blob/" + std::to_string(i);
      auto got = store.GetMany(std::span<const std::string>(&key, 1));
      ASSERT_TRUE(got[0].ok()) << key << ": " << got[0].status().ToString();
      EXPECT_EQ(*got[0], Value(i)) << key;
    }
  }

  // A client of the node heading `bucket`'s namespace partition now (null if none answers).
  std::unique_ptr<Client> HeadOf(const std::string& bucket) {
    cluster::ClusterMap map = Map();
    if (map.chains.empty()) return nullptr;
    const cluster::Chain& chain = map.PartitionOf(bucket);
    if (chain.members.empty()) return nullptr;
    const cluster::NodeInfo* head = map.FindNode(chain.members.front());
    if (head == nullptr) return nullptr;
    auto client = Client::Connect(head->address, Credentials{kAccess, kSecret});
    return client.ok() ? std::move(*client) : nullptr;
  }

  // Runs `op` against the head of `bucket`'s partition until it succeeds (the head may be
  // changing), for up to 30 s.
  template <typename Op>
  bool AtHead(const std::string& bucket, Op op) {
    return WaitFor([&] {
      std::unique_ptr<Client> client = HeadOf(bucket);
      return client != nullptr && op(*client);
    }, 30s);
  }

  ClusterNode* NodeById(const std::string& id) {
    for (auto& n : nodes_) {
      if (n && n->id() == id) return n.get();
    }
    return nullptr;
  }

  void StopNode(const std::string& id) {
    for (auto& n : nodes_) {
      if (n && n->id() == id) {
        ASSERT_TRUE(n->Stop().ok());
        n.reset();
      }
    }
  }

  // Every object i in [0, count) of `bucket` is listed and reads back as Value(i).
  void ExpectObjects(const std::string& bucket, int count) {
    ASSERT_TRUE(AtHead(bucket, [&](Client& client) {
      ListOptions options;
      options.max_keys = 1000;
      auto listed = client.List(bucket, options);
      if (!listed.ok()) return false;
      EXPECT_EQ(listed->objects.size(), static_cast<size_t>(count));
      for (int i = 0; i < count; ++i) {
        auto got = client.Get(bucket, "obj-" + std::to_string(1000 + i));
        if (!got.ok()) {
          ADD_FAILURE() << i << ": " << got.status().ToString();
          return true;
        }
        EXPECT_EQ(*got, Value(i)) << i;
      }
      return true;
    }));
  }

  void PutObjects(const std::string& bucket, int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(AtHead(bucket, [&](Client& client) {
        return client.Put(bucket, "obj-" + std::to_string(1000 + i), Value(i)).ok();
      })) << i;
    }
  }

  cluster::EtcdProcess etcd_;
  std::unique_ptr<cluster::EtcdClient> etcd_client_;
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<ClusterNode>> nodes_;
  std::unique_ptr<manager::Manager> manager_;
};

}  // namespace
}  // namespace granary::node
