// Concurrent readers, writers and removers with an oracle: every key only ever holds one value
// (ValueFor(id)), so any read that returns bytes must return exactly those bytes, never another
// key's and never a torn mix. Run with a small DRAM tier so that eviction, spills and promotions
// happen all the time, with and without a disk tier, under both policies.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "kv/pool.h"
#include "kv_test_util.h"

namespace granary::kv {
namespace {

using testing::TempDir;
using testing::ValueFor;

constexpr uint64_t kKeys = 400;

std::string KeyOf(uint64_t id) { return "key/" + std::to_string(id); }
size_t SizeOf(uint64_t id) { return 64 + (id * 131) % 8192; }

struct Params {
  EvictionPolicyKind policy;
  bool disk;
};

class KvConcurrencyTest : public ::testing::TestWithParam<Params> {};

TEST_P(KvConcurrencyTest, ReadsNeverReturnAnotherKeysBytesOrATornValue) {
  TempDir dir;
  PoolOptions o;
  o.dram_budget_bytes = 256 * 1024;  // about 60 of the 400 keys
  o.eviction = GetParam().policy;
  o.lease = std::chrono::microseconds(50);
  o.pin_limit_bytes = 64 * 1024;
  if (GetParam().disk) {
    o.disk_dir = dir.Sub("disk");
    o.disk_budget_bytes = 2 << 20;  // about half of the keys: the disk tier evicts too
    o.engine = testing::SmallEngine();
  }
  auto pool = testing::OpenOrDie(o);
  std::atomic<uint64_t> bad{0}, hits{0}, errors{0};
  std::atomic<bool> stop{false};

  auto check = [&](uint64_t id, std::string_view got) {
    if (got != ValueFor(id, SizeOf(id))) bad.fetch_add(1);
    hits.fetch_add(1);
  };
  auto expect_ok_or_miss = [&](const Status& st) {
    if (!st.ok() && !st.IsNotFound() && st.code() != Code::kNoSpace) errors.fetch_add(1);
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {  // writers: chains of consecutive ids
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      while (!stop.load()) {
        const uint64_t first = rng() % kKeys;
        std::vector<std::string> keys, values;
        for (uint64_t id = first; id < std::min(kKeys, first + 1 + rng() % 6); ++id) {
          keys.push_back(KeyOf(id));
          values.push_back(ValueFor(id, SizeOf(id)));
        }
        for (const Status& st : pool->BatchPut(testing::Items(keys, values))) {
          if (!st.ok() && st.code() != Code::kNoSpace) errors.fetch_add(1);
        }
      }
    });
  }
  for (int t = 0; t < 4; ++t) {  // readers, each call in turn
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      std::string buf(9000, '\0');
      while (!stop.load()) {
        const uint64_t id = rng() % kKeys;
        switch (rng() % 5) {
          case 0: {
            auto r = pool->Get(KeyOf(id));
            if (r.ok()) check(id, *r);
            expect_ok_or_miss(r.status());
            break;
          }
          case 1: {
            auto r = pool->GetInto(KeyOf(id), buf);
            if (r.ok()) check(id, std::string_view(buf.data(), *r));
            expect_ok_or_miss(r.status());
            break;
          }
          case 2: {
            auto r = pool->Acquire(KeyOf(id));
            if (r.ok()) check(id, testing::Joined(*r));
            expect_ok_or_miss(r.status());
            break;
          }
          case 3: {
            std::vector<std::string> keys;
            for (uint64_t k = id; k < std::min(kKeys, id + 4); ++k) keys.push_back(KeyOf(k));
            auto views = testing::Views(keys);
            const size_t n = pool->LongestPrefix(views);
            std::vector<std::string> bufs(n, std::string(9000, '\0'));
            std::vector<std::span<char>> spans(bufs.begin(), bufs.end());
            auto r = pool->BatchGetInto(std::span(views).first(n), spans);
            for (size_t i = 0; i < n; ++i) {
              if (r[i].ok()) check(id + i, std::string_view(bufs[i].data(), *r[i]));
              expect_ok_or_miss(r[i].status());
            }
            break;
          }
          case 4: {
            pool->Exists(KeyOf(id));
            break;
          }
        }
      }
    });
  }
  threads.emplace_back([&] {  // removes and pins
    std::mt19937_64 rng(999);
    while (!stop.load()) {
      const uint64_t id = rng() % kKeys;
      switch (rng() % 3) {
        case 0:
          expect_ok_or_miss(pool->Remove(KeyOf(id)));
          break;
        case 1:
          expect_ok_or_miss(pool->Pin(KeyOf(id)));
          break;
        case 2:
          expect_ok_or_miss(pool->Unpin(KeyOf(id)));
          break;
      }
      PoolStats s = pool->Stats();
      if (s.dram_bytes > s.dram_budget_bytes) bad.fetch_add(1);
      if (GetParam().disk && s.disk_bytes > s.disk_budget_bytes) bad.fetch_add(1);
    }
  });

  std::this_thread::sleep_for(std::chrono::seconds(2));  // how long to run, not a wait
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_GT(hits.load(), 1000u);
  PoolStats s = pool->Stats();
  EXPECT_GT(s.dram_evictions, 100u);
  if (GetParam().disk) {
    EXPECT_GT(s.promotions, 0u);
  }
  EXPECT_LE(s.dram_bytes, s.dram_budget_bytes);
}

INSTANTIATE_TEST_SUITE_P(All, KvConcurrencyTest,
                         ::testing::Values(Params{EvictionPolicyKind::kLru, false},
                                           Params{EvictionPolicyKind::kPrefixAware, false},
                                           Params{EvictionPolicyKind::kLru, true},
                                           Params{EvictionPolicyKind::kPrefixAware, true}),
                         [](const auto& info) {
                           return std::string(info.param.policy == EvictionPolicyKind::kLru
                                                  ? "Lru"
                                                  : "PrefixAware") +
                                  (info.param.disk ? "Disk" : "Dram");
                         });

}  // namespace
}  // namespace granary::kv
