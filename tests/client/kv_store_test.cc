// KVStore and KvAdmin against a KvService served by RpcService on 127.0.0.1: over the socket and
// over the same-host shared-memory path, which must give the same answers.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <thread>

#include "client/client_fixture.h"
#include "engine/test_util.h"
#include "granary/kv.h"
#include "node/kv_service.h"

namespace granary::testing {
namespace {

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }
  void TearDown() override { Stop(); }

  void Start() {
    node::KvServiceOptions ko;
    ko.dir = dir_.Sub("kv");
    auto kv = node::KvService::Start(ko);
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    kv_ = std::move(*kv);
    node::RpcServiceOptions so;
    so.listen = "127.0.0.1:0";
    auto service = node::RpcService::Start(api_, TestSecrets(), so, kv_.get());
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(*service);
    address_ = "127.0.0.1:" + std::to_string(service_->port());
    auto admin = KvAdmin::Connect(address_, kTestCredentials);
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    admin_ = std::move(*admin);
  }

  void Stop() {
    admin_.reset();
    service_.reset();
    if (kv_) {
      EXPECT_TRUE(kv_->Stop().ok());
    }
    kv_.reset();
  }

  void CreatePool(const std::string& name, uint64_t dram = 64 << 20, uint64_t disk = 0,
                  uint64_t pin_limit = 0) {
    KvPoolConfig c;
    c.name = name;
    c.dram_budget_bytes = dram;
    c.disk_budget_bytes = disk;
    c.pin_limit_bytes = pin_limit;
    ASSERT_OK(admin_->CreatePool(c));
  }

  std::unique_ptr<KVStore> Open(const std::string& pool, bool shm) {
    KvStoreOptions o;
    o.shared_memory = shm;
    auto store = KVStore::Connect(address_, pool, kTestCredentials, o);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return nullptr;
    EXPECT_EQ((*store)->shared_memory(), shm);
    return std::move(*store);
  }

  TempDir dir_;
  MemoryObjectApi api_;
  std::unique_ptr<node::KvService> kv_;
  std::unique_ptr<node::RpcService> service_;
  std::unique_ptr<KvAdmin> admin_;
  std::string address_;
};

TEST_F(KvStoreTest, PoolAdministration) {
  CreatePool("alpha");
  KvPoolConfig dup;
  dup.name = "alpha";
  EXPECT_CODE(admin_->CreatePool(dup), Code::kAlreadyExists);
  for (const std::string& bad :
       std::vector<std::string>{"", "Upper", "-dash", "with space", std::string(64, 'a')}) {
    KvPoolConfig c;
    c.name = bad;
    EXPECT_CODE(admin_->CreatePool(c), Code::kInvalidArgument) << bad;
  }
  KvPoolConfig tiny;
  tiny.name = "tiny";
  tiny.dram_budget_bytes = 1000;
  EXPECT_CODE(admin_->CreatePool(tiny), Code::kInvalidArgument);
  KvPoolConfig policy;
  policy.name = "policy";
  policy.eviction = "fifo";
  EXPECT_CODE(admin_->CreatePool(policy), Code::kInvalidArgument);
  // More DRAM than any host of these tests has: refused, not an out-of-memory kill.
  KvPoolConfig huge;
  huge.name = "huge";
  huge.dram_budget_bytes = uint64_t{1} << 50;
  Status refused = admin_->CreatePool(huge);
  EXPECT_CODE(refused, Code::kNoSpace);
  EXPECT_NE(refused.message().find("lower dram_budget_bytes"), std::string::npos) << refused.ToString();

  CreatePool("beta", 32 << 20, 64 << 20);
  auto pools = admin_->ListPools();
  ASSERT_TRUE(pools.ok());
  ASSERT_EQ(pools->size(), 2u);
  EXPECT_EQ((*pools)[0].config.name, "alpha");
  EXPECT_EQ((*pools)[1].config.disk_budget_bytes, 64u << 20);
  auto info = admin_->PoolInfo("beta");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->stats.dram_budget_bytes, 32u << 20);
  EXPECT_CODE(admin_->PoolInfo("gamma").status(), Code::kNoSuchPool);

  EXPECT_CODE(KVStore::Connect(address_, "gamma", kTestCredentials).status(), Code::kNoSuchPool);
  auto kv = KVStore::Connect(address_, "alpha", kTestCredentials);
  ASSERT_OK(kv.status());
  ASSERT_OK((*kv)->Put("k", "v"));
  ASSERT_OK(admin_->DeletePool("alpha"));
  EXPECT_CODE(admin_->DeletePool("alpha"), Code::kNoSuchPool);
  EXPECT_CODE(KVStore::Connect(address_, "alpha", kTestCredentials).status(), Code::kNoSuchPool);
  // A store of a deleted pool fails its calls; its reads are not misses.
  EXPECT_CODE((*kv)->Get("k").status(), Code::kNoSuchPool);
  EXPECT_CODE((*kv)->Exists("k").status(), Code::kNoSuchPool);
  EXPECT_CODE((*kv)->Put("k", "v"), Code::kNoSuchPool);
  EXPECT_CODE(KVStore::Connect(address_, "beta", {"GRANARYTESTKEY", "wrong-secret-000"}).status(),
              Code::kUnauthenticated);
}

TEST_F(KvStoreTest, RoundTripOverBothPaths) {
  CreatePool("p");
  for (bool shm : {false, true}) {
    auto kv = Open("p", shm);
    ASSERT_NE(kv, nullptr);
    for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097},
                        (size_t{1} << 20) + 3}) {
      std::string key = "k-" + std::to_string(size) + (shm ? "-shm" : "-tcp");
      std::string value = Pattern(size, static_cast<uint32_t>(size + shm));
      ASSERT_OK(kv->Put(key, value));
      ASSERT_OK(kv->Put(key, value));  // the same size again: a no-op
      auto got = kv->Get(key);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(*got == value) << size << " shm=" << shm;
      std::string buf(size + 10, '\0');
      auto into = kv->GetInto(key, std::span<char>(buf));
      ASSERT_TRUE(into.ok()) << into.status().ToString();
      EXPECT_EQ(*into, size);
      EXPECT_TRUE(buf.substr(0, size) == value);
      if (size > 0) {
        std::string small(size - 1, '\0');
        EXPECT_CODE(kv->GetInto(key, std::span<char>(small)).status(), Code::kInvalidArgument);
        EXPECT_CODE(kv->Put(key, value + "x"), Code::kAlreadyExists);
      }
    }
    EXPECT_CODE(kv->Get("missing").status(), Code::kNotFound);
    EXPECT_CODE(kv->Put("", "v"), Code::kInvalidArgument);
    EXPECT_CODE(kv->Put(std::string(1025, 'k'), "v"), Code::kInvalidArgument);
  }
  // What one path stored, the other reads.
  auto tcp = Open("p", false);
  auto shm = Open("p", true);
  ASSERT_TRUE(tcp && shm);
  EXPECT_TRUE(*shm->Get("k-4097-tcp") == Pattern(4097, 4097));
  EXPECT_TRUE(*tcp->Get("k-4097-shm") == Pattern(4097, 4098));
}

TEST_F(KvStoreTest, BatchesExistsPrefixRemove) {
  CreatePool("p");
  for (bool shm : {false, true}) {
    auto kv = Open("p", shm);
    ASSERT_NE(kv, nullptr);
    const std::string tag = shm ? "s" : "t";
    std::vector<std::string> keys, values;
    for (int i = 0; i < 20; ++i) {
      keys.push_back(tag + "-chain-" + std::to_string(i));
      values.push_back(Pattern(50'000 + i, i));
    }
    std::vector<KvItem> items;
    for (int i = 0; i < 12; ++i) items.push_back({keys[i], values[i]});
    for (const Status& s : kv->BatchPut(items)) ASSERT_OK(s);

    std::vector<std::string_view> views(keys.begin(), keys.end());
    auto prefix = kv->LongestPrefix(views);
    ASSERT_TRUE(prefix.ok());
    EXPECT_EQ(*prefix, 12u);
    auto exists = kv->BatchExists(views);
    ASSERT_TRUE(exists.ok());
    for (int i = 0; i < 20; ++i) EXPECT_EQ((*exists)[i], i < 12) << i;

    std::vector<std::string> bufs(20, std::string(60'000, '\0'));
    std::vector<std::span<char>> spans;
    for (auto& b : bufs) spans.emplace_back(b);
    auto got = kv->BatchGetInto(views, spans);
    ASSERT_EQ(got.size(), 20u);
    for (int i = 0; i < 20; ++i) {
      if (i < 12) {
        ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
        EXPECT_EQ(*got[i], values[i].size());
        EXPECT_TRUE(bufs[i].substr(0, values[i].size()) == values[i]) << i;
      } else {
        EXPECT_CODE(got[i].status(), Code::kNotFound);
      }
    }
    EXPECT_CODE(kv->BatchGetInto(views, std::span<const std::span<char>>(spans).first(3))[0]
                    .status(),
                Code::kInvalidArgument);

    ASSERT_OK(kv->Remove(keys[5]));
    ASSERT_OK(kv->Remove(keys[5]));  // removing a missing key is OK
    EXPECT_EQ(*kv->LongestPrefix(views), 5u);
    EXPECT_FALSE(*kv->Exists(keys[5]));
    EXPECT_CODE(kv->Get(keys[5]).status(), Code::kNotFound);
  }
}

TEST_F(KvStoreTest, PinsAndStats) {
  CreatePool("p", 8 << 20, 0, 1 << 20);
  auto kv = Open("p", true);
  ASSERT_NE(kv, nullptr);
  ASSERT_OK(kv->Put("sys", Pattern(600'000)));
  ASSERT_OK(kv->Put("other", Pattern(600'000, 2)));
  EXPECT_CODE(kv->Pin("missing"), Code::kNotFound);
  ASSERT_OK(kv->Pin("sys"));
  EXPECT_CODE(kv->Pin("other"), Code::kNoSpace);  // past the 1 MiB pin limit
  auto stats = kv->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pinned_blocks, 1u);
  // Flood the pool: the pinned block stays.
  for (int i = 0; i < 40; ++i) ASSERT_OK(kv->Put("flood-" + std::to_string(i), Pattern(500'000, i)));
  EXPECT_TRUE(*kv->Get("sys") == Pattern(600'000));
  ASSERT_OK(kv->Unpin("sys"));
  ASSERT_OK(kv->Unpin("sys"));
  EXPECT_CODE(kv->Get("nothing").status(), Code::kNotFound);
  stats = kv->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pinned_blocks, 0u);
  EXPECT_GE(stats->dram_evictions, 1u);
  EXPECT_GE(stats->misses, 1u);
  EXPECT_GE(stats->dram_hits, 1u);
  EXPECT_EQ(stats->puts, 42u);
  EXPECT_LE(stats->dram_bytes, stats->dram_budget_bytes);
}

// Readers over shared memory while writers remove and re-put keys with new contents: every read
// returns a whole value that was stored under that key, never a torn or foreign one.
TEST_F(KvStoreTest, SharedMemoryReadersNeverSeeTornValues) {
  CreatePool("p", 16 << 20);
  constexpr int kKeys = 16;
  // A value: [key id u32][version u32][filler derived from both].
  auto make = [](uint32_t id, uint32_t version, size_t size) {
    std::string v = Pattern(size, id * 7919 + version);
    std::memcpy(v.data(), &id, 4);
    std::memcpy(v.data() + 4, &version, 4);
    return v;
  };
  auto writer = Open("p", false);
  ASSERT_NE(writer, nullptr);
  for (uint32_t id = 0; id < kKeys; ++id) {
    ASSERT_OK(writer->Put("key-" + std::to_string(id), make(id, 0, 200'000 + id * 4096)));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      auto kv = Open("p", true);
      if (!kv) return;
      std::string buf(1 << 20, '\0');
      for (uint32_t n = t; !stop.load(); ++n) {
        uint32_t id = n % kKeys;
        auto got = kv->GetInto("key-" + std::to_string(id), std::span<char>(buf));
        if (!got.ok()) {
          if (got.status().code() != Code::kNotFound) bad++;
          continue;
        }
        uint32_t gid, version;
        std::memcpy(&gid, buf.data(), 4);
        std::memcpy(&version, buf.data() + 4, 4);
        if (gid != id || buf.substr(0, *got) != make(id, version, *got)) bad++;
        reads++;
      }
    });
  }
  for (uint32_t version = 1; version <= 60; ++version) {
    uint32_t id = version % kKeys;
    std::string key = "key-" + std::to_string(id);
    ASSERT_OK(writer->Remove(key));
    ASSERT_OK(writer->Put(key, make(id, version, 150'000 + version * 4096)));
  }
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST_F(KvStoreTest, DiskTierSurvivesRestart) {
  CreatePool("durable", 4 << 20, 64 << 20);
  std::map<std::string, std::string> stored;
  {
    auto kv = Open("durable", true);
    ASSERT_NE(kv, nullptr);
    for (int i = 0; i < 24; ++i) {  // 12 MiB: three times the DRAM budget
      std::string key = "block-" + std::to_string(i);
      stored[key] = Pattern(512 << 10, i + 100);
      ASSERT_OK(kv->Put(key, stored[key]));
    }
  }
  Stop();
  Start();
  auto pools = admin_->ListPools();
  ASSERT_TRUE(pools.ok());
  ASSERT_EQ(pools->size(), 1u);
  auto kv = Open("durable", true);
  ASSERT_NE(kv, nullptr);
  for (const auto& [key, value] : stored) {
    auto got = kv->Get(key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
    EXPECT_TRUE(*got == value) << key;
  }
  auto stats = kv->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->disk_hits, 0u);
  // A deleted pool is gone after a restart too, and its name can be used again.
  ASSERT_OK(admin_->DeletePool("durable"));
  kv.reset();
  Stop();
  Start();
  EXPECT_EQ(admin_->ListPools()->size(), 0u);
  CreatePool("durable", 4 << 20, 64 << 20);
  auto fresh = Open("durable", false);
  ASSERT_NE(fresh, nullptr);
  EXPECT_CODE(fresh->Get("block-0").status(), Code::kNotFound);
}

}  // namespace
}  // namespace granary::testing
