#include "cluster/etcd.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "etcd_fixture.h"

namespace granary::cluster {
namespace {

class EtcdTest : public EtcdTestBase {};

TEST_F(EtcdTest, PutGetPrefixDelete) {
  ASSERT_TRUE(etcd->Put("/t/a", std::string("one\0\xff", 5)).ok());
  ASSERT_TRUE(etcd->Put("/t/b", "two").ok());
  ASSERT_TRUE(etcd->Put("/u", "other").ok());
  auto a = etcd->Get("/t/a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->value, std::string("one\0\xff", 5));
  EXPECT_GT((*a)->create_revision, 0);
  auto missing = etcd->Get("/t/none");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  int64_t revision = 0;
  auto listed = etcd->GetPrefix("/t/", &revision);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].key, "/t/b");
  EXPECT_GE(revision, (*listed)[1].mod_revision);
  ASSERT_TRUE(etcd->Delete("/t/a").ok());
  EXPECT_EQ(etcd->GetPrefix("/t/")->size(), 1u);
}

TEST_F(EtcdTest, TransactionsCompareAndSwap) {
  // Create-if-absent: the first wins, the second sees the winner.
  auto first = etcd->Txn({{"/leader", Compare::Target::kCreate, 0, ""}},
                         {{TxnOp::Kind::kPut, "/leader", "me", 0}},
                         {{TxnOp::Kind::kGet, "/leader", "", 0}});
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->succeeded);
  auto second = etcd->Txn({{"/leader", Compare::Target::kCreate, 0, ""}},
                          {{TxnOp::Kind::kPut, "/leader", "you", 0}},
                          {{TxnOp::Kind::kGet, "/leader", "", 0}});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->succeeded);
  ASSERT_EQ(second->gets.size(), 1u);
  ASSERT_TRUE(second->gets[0].has_value());
  EXPECT_EQ(second->gets[0]->value, "me");
  // Swap on the mod revision: a stale one fails.
  const int64_t mod = second->gets[0]->mod_revision;
  EXPECT_TRUE(etcd->Txn({{"/leader", Compare::Target::kMod, mod, ""}},
                        {{TxnOp::Kind::kPut, "/leader", "next", 0}})
                  ->succeeded);
  EXPECT_FALSE(etcd->Txn({{"/leader", Compare::Target::kMod, mod, ""}},
                         {{TxnOp::Kind::kPut, "/leader", "stale", 0}})
                   ->succeeded);
  EXPECT_TRUE(etcd->Txn({{"/leader", Compare::Target::kValue, 0, "next"}},
                        {{TxnOp::Kind::kDelete, "/leader", "", 0}})
                  ->succeeded);
  EXPECT_FALSE(etcd->Get("/leader")->has_value());
}

TEST_F(EtcdTest, LeasedKeysVanishWhenTheLeaseEnds) {
  auto lease = etcd->GrantLease(2);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(etcd->Put("/node/x", "alive", *lease).ok());
  EXPECT_EQ((*etcd->Get("/node/x"))->lease, *lease);
  auto ttl = etcd->KeepAlive(*lease);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(*ttl, 2);
  ASSERT_TRUE(etcd->RevokeLease(*lease).ok());
  EXPECT_FALSE(etcd->Get("/node/x")->has_value());
  EXPECT_EQ(etcd->KeepAlive(*lease).status().code(), Code::kNotFound);
  EXPECT_TRUE(etcd->RevokeLease(*lease).ok());

  // Without keep-alives a lease expires by itself.
  auto short_lease = etcd->GrantLease(1);
  ASSERT_TRUE(etcd->Put("/node/y", "alive", *short_lease).ok());
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = !etcd->Get("/node/y")->has_value();
  }
  EXPECT_TRUE(gone);
}

TEST_F(EtcdTest, UnreachableEndpointsFailOverAndReportUnavailable) {
  auto both = EtcdClient::Create("http://127.0.0.1:1," + etcd_.url(), 500);
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE((*both)->Put("/k", "v").ok());
  auto none = EtcdClient::Create("127.0.0.1:1", 500);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)->Get("/k").status().code(), Code::kUnavailable);
  EXPECT_EQ(EtcdClient::Create("https://h:1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(EtcdClient::Create("host").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(EtcdClient::Create("").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace granary::cluster
