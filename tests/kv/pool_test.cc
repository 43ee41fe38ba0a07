// The Pool's calls one by one: results, misses, errors and statistics.
#include "kv/pool.h"

#include <gtest/gtest.h>

#include <cstring>

#include "kv_test_util.h"

namespace granary::kv {
namespace {

using testing::CountingOptions;
using testing::OpenOrDie;
using testing::ValueFor;

TEST(KvPoolTest, PutGetGetIntoExistsRemove) {
  auto pool = OpenOrDie(CountingOptions(8, EvictionPolicyKind::kLru));
  const std::string v = ValueFor(1);
  ASSERT_TRUE(pool->Put("a", v).ok());
  auto got = pool->Get("a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, v);

  std::string buf(v.size() + 10, '\0');
  auto n = pool->GetInto("a", buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, v.size());
  EXPECT_EQ(buf.substr(0, v.size()), v);

  std::string small(v.size() - 1, '\0');
  auto too_small = pool->GetInto("a", small);
  EXPECT_EQ(too_small.status().code(), Code::kInvalidArgument);
  EXPECT_NE(too_small.status().message().find(std::to_string(v.size())), std::string::npos);

  EXPECT_TRUE(pool->Exists("a"));
  EXPECT_FALSE(pool->Exists("b"));
  EXPECT_TRUE(pool->Get("b").status().IsNotFound());
  EXPECT_TRUE(pool->GetInto("b", buf).status().IsNotFound());
  EXPECT_TRUE(pool->Acquire("b").status().IsNotFound());

  ASSERT_TRUE(pool->Remove("a").ok());
  EXPECT_FALSE(pool->Exists("a"));
  EXPECT_TRUE(pool->Get("a").status().IsNotFound());
  EXPECT_TRUE(pool->Remove("never-there").ok());
  EXPECT_EQ(pool->Stats().dram_bytes, 0u);
}

TEST(KvPoolTest, ValuesAreImmutable) {
  auto pool = OpenOrDie(CountingOptions(8, EvictionPolicyKind::kPrefixAware));
  ASSERT_TRUE(pool->Put("k", ValueFor(1)).ok());
  // Same size: a no-op; the stored bytes are kept.
  ASSERT_TRUE(pool->Put("k", ValueFor(2)).ok());
  EXPECT_EQ(*pool->Get("k"), ValueFor(1));
  Status st = pool->Put("k", ValueFor(1, 10));
  EXPECT_EQ(st.code(), Code::kAlreadyExists);
  EXPECT_NE(st.message().find("remove it first"), std::string::npos);
  EXPECT_EQ(pool->Stats().puts, 1u);
}

TEST(KvPoolTest, RejectsBadKeysAndOversizedValues) {
  auto pool = OpenOrDie(CountingOptions(2, EvictionPolicyKind::kLru));
  EXPECT_EQ(pool->Put("", "x").code(), Code::kInvalidArgument);
  EXPECT_EQ(pool->Put(std::string(kMaxKeySize + 1, 'k'), "x").code(), Code::kInvalidArgument);
  EXPECT_TRUE(pool->Put(std::string(kMaxKeySize, 'k'), "x").ok());
  Status st = pool->Put("big", std::string(pool->options().dram_budget_bytes, 'x'));
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("dram_budget_bytes"), std::string::npos) << st.ToString();
  EXPECT_EQ(pool->Get("").status().code(), Code::kInvalidArgument);
}

TEST(KvPoolTest, RejectsBadOptions) {
  PoolOptions o;
  o.dram_budget_bytes = 0;
  EXPECT_EQ(Pool::Open(o).status().code(), Code::kInvalidArgument);
  o.dram_budget_bytes = 1 << 20;
  o.low_watermark = 0.9;
  o.high_watermark = 0.8;
  EXPECT_EQ(Pool::Open(o).status().code(), Code::kInvalidArgument);
  o.high_watermark = 0.95;
  o.disk_dir = "/nonexistent-but-unused";
  o.disk_budget_bytes = 0;
  EXPECT_EQ(Pool::Open(o).status().code(), Code::kInvalidArgument);
}

TEST(KvPoolTest, BatchCallsAndLongestPrefix) {
  auto pool = OpenOrDie(CountingOptions(16, EvictionPolicyKind::kPrefixAware));
  std::vector<std::string> keys = {"a", "b", "c", "d"};
  std::vector<std::string> values = {ValueFor(1), ValueFor(2), ValueFor(3), ValueFor(4)};
  auto items = testing::Items(keys, values);
  items.resize(3);  // a, b, c
  for (const Status& st : pool->BatchPut(items)) ASSERT_TRUE(st.ok()) << st.ToString();

  auto views = testing::Views(keys);
  EXPECT_EQ(pool->LongestPrefix(views), 3u);
  std::vector<std::string_view> gap = {"a", "x", "c"};
  EXPECT_EQ(pool->LongestPrefix(gap), 1u);
  EXPECT_EQ(pool->LongestPrefix({}), 0u);
  EXPECT_EQ(pool->BatchExists(views), (std::vector<bool>{true, true, true, false}));

  std::vector<std::string> bufs(4, std::string(testing::kBlockBytes, '\0'));
  std::vector<std::span<char>> spans;
  for (auto& b : bufs) spans.emplace_back(b.data(), b.size());
  auto got = pool->BatchGetInto(views, spans);
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
    EXPECT_EQ(*got[i], values[i].size());
    EXPECT_EQ(bufs[i], values[i]);
  }
  EXPECT_TRUE(got[3].status().IsNotFound());

  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_hits, 3u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.prefix_lookups, 3u);
  EXPECT_EQ(s.prefix_keys, 7u);
  EXPECT_EQ(s.prefix_hits, 4u);
  EXPECT_EQ(s.puts, 3u);
  EXPECT_EQ(s.dram_blocks, 3u);
  EXPECT_EQ(s.dram_bytes, 3 * DramTier::ChargeOf(1, testing::kBlockBytes));
}

TEST(KvPoolTest, AcquireGivesTheBytesWithoutACopy) {
  auto pool = OpenOrDie(CountingOptions(4, EvictionPolicyKind::kLru));
  ASSERT_TRUE(pool->Put("a", ValueFor(7)).ok());
  auto view = pool->Acquire("a");
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->in_dram());
  EXPECT_EQ(testing::Joined(*view), ValueFor(7));
  EXPECT_EQ(view->pieces().size(), 1u);  // one run of pages
  BlockView moved = std::move(view).value();
  EXPECT_EQ(moved.size(), testing::kBlockBytes);
  moved.Release();
  EXPECT_EQ(moved.size(), 0u);
}

// A stream of values as the network service reads them: `good` bytes, then a failure.
Pool::ValueReader StreamOf(const std::string& bytes, size_t good, size_t* consumed) {
  return [&bytes, good, consumed](std::span<char> dst) -> Status {
    if (*consumed + dst.size() > good) return Status::Unavailable("the connection broke");
    std::memcpy(dst.data(), bytes.data() + *consumed, dst.size());
    *consumed += dst.size();
    return Status::OK();
  };
}

TEST(KvPoolTest, BatchPutFromReadsEveryItemsBytesStoredOrNot) {
  auto pool = OpenOrDie(CountingOptions(8, EvictionPolicyKind::kLru));
  ASSERT_TRUE(pool->Put("same", ValueFor(1)).ok());
  // A stored key (a no-op), a new key, a bad key, a new key: the stream holds all four values.
  const std::vector<std::string> values = {ValueFor(1), ValueFor(2), ValueFor(3), ValueFor(4)};
  std::string bytes;
  for (const auto& v : values) bytes += v;
  std::vector<std::string_view> keys = {"same", "b", "", "d"};
  std::vector<uint64_t> sizes(4, testing::kBlockBytes);
  size_t consumed = 0;
  auto st = pool->BatchPutFrom(keys, sizes, StreamOf(bytes, bytes.size(), &consumed));
  EXPECT_EQ(consumed, bytes.size());
  EXPECT_TRUE(st[0].ok() && st[1].ok() && st[3].ok());
  EXPECT_EQ(st[2].code(), Code::kInvalidArgument);
  EXPECT_EQ(*pool->Get("b"), values[1]);
  EXPECT_EQ(*pool->Get("d"), values[3]);
}

TEST(KvPoolTest, BatchPutFromStoresNothingPastABrokenStream) {
  auto pool = OpenOrDie(CountingOptions(8, EvictionPolicyKind::kLru));
  std::string bytes;
  for (int i = 0; i < 3; ++i) bytes += ValueFor(i);
  std::vector<std::string_view> keys = {"a", "b", "c"};
  std::vector<uint64_t> sizes(3, testing::kBlockBytes);
  size_t consumed = 0;
  // The stream breaks inside b's value.
  auto st = pool->BatchPutFrom(keys, sizes,
                               StreamOf(bytes, testing::kBlockBytes + 100, &consumed));
  for (const Status& s : st) EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  for (std::string_view k : keys) EXPECT_FALSE(pool->Exists(k));
  PoolStats s = pool->Stats();
  EXPECT_EQ(s.dram_blocks, 0u);
  EXPECT_EQ(s.dram_bytes, 0u);  // the reserved pages went back
  // The pool goes on.
  ASSERT_TRUE(pool->Put("a", ValueFor(0)).ok());
  EXPECT_EQ(*pool->Get("a"), ValueFor(0));
}

TEST(KvPoolTest, CallsAfterCloseAreRefused) {
  auto pool = OpenOrDie(CountingOptions(4, EvictionPolicyKind::kLru));
  ASSERT_TRUE(pool->Put("a", ValueFor(1)).ok());
  ASSERT_TRUE(pool->Close().ok());
  EXPECT_EQ(pool->Put("b", ValueFor(2)).code(), Code::kUnavailable);
  EXPECT_EQ(pool->Get("a").status().code(), Code::kUnavailable);
  EXPECT_FALSE(pool->Exists("a"));
  std::vector<std::string_view> keys = {"a"};
  EXPECT_EQ(pool->LongestPrefix(keys), 0u);
  EXPECT_TRUE(pool->Close().ok());
}

}  // namespace
}  // namespace granary::kv
