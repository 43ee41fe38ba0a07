#include "cluster/map_cache.h"

#include <gtest/gtest.h>

#include "cluster/keys.h"
#include "etcd_fixture.h"

namespace granary::cluster {
namespace {

class MapCacheTest : public EtcdTestBase {
 protected:
  void Publish(uint64_t epoch, int chains = 4) {
    ClusterMap map;
    map.epoch = epoch;
    for (int c = 0; c < chains; ++c) {
      Chain chain;
      chain.id = c;
      map.chains.push_back(chain);
    }
    ASSERT_TRUE(etcd->Put(std::string(keys::kMap), map.ToJson()).ok());
  }

  std::unique_ptr<MapCache> Open() {
    auto cache = MapCache::Open(etcd_.url());
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    return cache.ok() ? std::move(*cache) : nullptr;
  }
};

TEST_F(MapCacheTest, OpenWithoutMapIsUnavailable) {
  auto cache = MapCache::Open(etcd_.url());
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), Code::kUnavailable);
  EXPECT_NE(cache.status().message().find("start a manager"), std::string::npos);
  EXPECT_EQ(MapCache::Open("not a url:x").status().code(), Code::kInvalidArgument);
}

TEST_F(MapCacheTest, RefreshKeepsTheNewestMap) {
  Publish(3);
  auto cache = Open();
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->Get()->epoch, 3u);
  Publish(2);  // older than what the cache holds: not taken
  ASSERT_TRUE(cache->Refresh().ok());
  EXPECT_EQ(cache->Get()->epoch, 3u);
  Publish(5);
  ASSERT_TRUE(cache->Refresh().ok());
  EXPECT_EQ(cache->Get()->epoch, 5u);
}

TEST_F(MapCacheTest, WithRetriesRetriesStaleAndUnavailableOnly) {
  Publish(1);
  auto cache = Open();
  ASSERT_NE(cache, nullptr);

  // Stale: retried at once, with the map etcd now holds.
  Publish(2);
  int calls = 0;
  Result<uint64_t> epoch =
      cache->WithRetries(10'000, [&](const ClusterMap& map) -> Result<uint64_t> {
        if (++calls == 1) return Status(Code::kStaleMap, "stale");
        return map.epoch;
      });
  ASSERT_TRUE(epoch.ok());
  EXPECT_EQ(*epoch, 2u);
  EXPECT_EQ(calls, 2);

  // Another failure is final.
  calls = 0;
  Status st = cache->WithRetries(10'000, [&](const ClusterMap&) {
    ++calls;
    return Status::NotFound("no such key");
  });
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(calls, 1);

  // Unavailable: retried until the time is up, then returned.
  calls = 0;
  st = cache->WithRetries(100, [&](const ClusterMap&) {
    ++calls;
    return Status::Unavailable("node down");
  });
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_GT(calls, 1);
}

TEST(LiveHeadTest, FirstServingMemberUnlessDown) {
  ClusterMap map;
  for (std::string id : {"a", "b"}) {
    NodeInfo node;
    node.id = id;
    map.nodes.push_back(node);
  }
  Chain chain;
  chain.id = 7;
  chain.members = {"b", "a"};
  Result<const NodeInfo*> head = LiveHead(map, chain);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ((*head)->id, "b");
  map.FindNode("b")->state = NodeState::kDown;
  EXPECT_EQ(LiveHead(map, chain).status().code(), Code::kUnavailable);
  chain.members.clear();
  EXPECT_EQ(LiveHead(map, chain).status().code(), Code::kUnavailable);
  EXPECT_NE(LiveHead(map, chain).status().message().find("chain 7"), std::string::npos);
}

}  // namespace
}  // namespace granary::cluster
