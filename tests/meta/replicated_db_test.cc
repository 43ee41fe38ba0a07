// A namespace partition replicated over three members in one process: the head's writes reach
// every member in order, a member that misses entries gets them from its predecessor's log, one
// far behind is copied, one that diverged is caught, and the head reads only what every member
// has.
#include "meta/replicated_db.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <thread>

#include "engine/test_util.h"
#include "meta/object_store.h"

namespace granary::meta {
namespace {

using granary::testing::TempDir;

class ReplicatedDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // c is the tail, b sends to c, a heads the chain and sends to b.
    c_ = Open("c", nullptr);
    b_ = Open("b", &c_);
    a_ = Open("a", &b_);
  }

  // A member whose next member is `*next` (none when null).
  std::unique_ptr<ReplicatedDb> Open(const std::string& name, std::unique_ptr<ReplicatedDb>* next,
                                     uint64_t log_entries = 1000, int copy_pin_ms = 60'000) {
    rocksdb::DB* base = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(NamespaceDbOptions(1 << 20), dir_.path() + "/" + name,
                                          &base);
    EXPECT_TRUE(s.ok()) << s.ToString();
    ReplicatedDbOptions o;
    o.log_entries = log_entries;
    o.copy_pin_ms = copy_pin_ms;
    o.admit = [this]() -> Result<uint64_t> { return term_.load(); };
    o.send = [this, next](const LogEntry& entry) -> Result<uint64_t> {
      if (next == nullptr) return entry.seq;
      if (cut_.load()) return Status::Unavailable("cut off");
      return (*next)->Apply(entry);
    };
    return std::make_unique<ReplicatedDb>(base, std::move(o));
  }

  static std::string Read(rocksdb::DB& db, const std::string& key) {
    std::string value;
    rocksdb::Status s = db.Get(rocksdb::ReadOptions(), key, &value);
    return s.ok() ? value : "<" + s.ToString() + ">";
  }

  // What `db` holds under 'O' keys (the base, not the acknowledged snapshot).
  static std::map<std::string, std::string> Contents(ReplicatedDb& db) {
    std::map<std::string, std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db.GetBaseDB()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("O"); it->Valid() && it->key().starts_with("O"); it->Next()) {
      out[it->key().ToString()] = it->value().ToString();
    }
    return out;
  }

  TempDir dir_;
  std::atomic<uint64_t> term_{1};
  std::atomic<bool> cut_{false};
  std::unique_ptr<ReplicatedDb> c_, b_, a_;
};

TEST_F(ReplicatedDbTest, ConcurrentWritesReachEveryMemberInOneOrder) {
  constexpr int kThreads = 8, kEach = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        rocksdb::WriteBatch batch;
        ASSERT_TRUE(batch.Put("O" + std::to_string(t) + "/" + std::to_string(i), "v").ok());
        ASSERT_TRUE(batch.Put("Olast", std::to_string(t)).ok());
        ASSERT_TRUE(a_->Write(rocksdb::WriteOptions(), &batch).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Contents(*a_).size(), kThreads * kEach + 1u);
  EXPECT_EQ(Contents(*a_), Contents(*b_));
  EXPECT_EQ(Contents(*a_), Contents(*c_));
  EXPECT_EQ(a_->Applied(), c_->Applied());
  // Writers waiting together share an entry.
  EXPECT_LE(a_->Applied().first, static_cast<uint64_t>(kThreads * kEach));
}

TEST_F(ReplicatedDbTest, HeadReadsOnlyWhatEveryMemberHasAndFillsGapsFirst) {
  ASSERT_TRUE(a_->Put(rocksdb::WriteOptions(), "Ok1", "one").ok());
  cut_ = true;  // b stops answering
  rocksdb::Status failed = a_->Put(rocksdb::WriteOptions(), "Ok2", "two");
  EXPECT_TRUE(failed.IsBusy()) << failed.ToString();
  // Applied here alone: not visible until the chain has it.
  EXPECT_EQ(Read(*a_, "Ok2").substr(0, 10), "<NotFound:");
  EXPECT_EQ(Read(*a_->GetBaseDB(), "Ok2"), "two");
  cut_ = false;
  // Whether entry 2 commits is unknown until a barrier settles it: writes wait for that.
  EXPECT_TRUE(a_->poisoned());
  EXPECT_TRUE(a_->Put(rocksdb::WriteOptions(), "Ok3", "three").IsBusy());
  ASSERT_TRUE(a_->Barrier().ok());
  EXPECT_FALSE(a_->poisoned());
  ASSERT_TRUE(a_->Put(rocksdb::WriteOptions(), "Ok3", "three").ok());
  EXPECT_EQ(Read(*a_, "Ok2"), "two");
  EXPECT_EQ(Read(*c_, "Ok2"), "two");
  EXPECT_EQ(Read(*c_, "Ok3"), "three");
  EXPECT_EQ(c_->Applied().first, 4u);  // entries 1, 2, the barrier, 3
}

TEST_F(ReplicatedDbTest, MemberFarBehindIsCopiedThenPulls) {
  // A source keeping only 5 entries, and 30 written to it.
  std::unique_ptr<ReplicatedDb> src = Open("src", nullptr, /*log_entries=*/5);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(src->Put(rocksdb::WriteOptions(), "O" + std::to_string(i), "v" + std::to_string(i))
                    .ok());
  }
  ASSERT_TRUE(src->Delete(rocksdb::WriteOptions(), "O7").ok());
  std::unique_ptr<ReplicatedDb> fresh = Open("fresh", nullptr);
  // Entries from the start are gone from the source's log.
  EXPECT_EQ(src->Pull(0, 0, 1 << 20).status().code(), Code::kNotFound);
  std::string after;
  std::optional<std::pair<uint64_t, uint64_t>> start;
  for (;;) {
    auto page = src->Scan(after, 64);  // small pages
    ASSERT_TRUE(page.ok());
    if (!start) start = std::make_pair(page->applied, page->applied_term);
    if (!page->items.empty()) after = page->items.back().first;
    // A write between pages: the pull after the copy brings it.
    if (!page->done) {
      ASSERT_TRUE(src->Put(rocksdb::WriteOptions(), "O0", "rewritten").ok());
    }
    ASSERT_TRUE(fresh->InstallCopy(page->items, page->done ? start : std::nullopt).ok());
    if (page->done) break;
  }
  auto [seq, term] = fresh->Applied();
  auto entries = src->Pull(seq, term, 1 << 20);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_TRUE(fresh->ApplyPulled(*entries).ok());
  EXPECT_EQ(Contents(*fresh), Contents(*src));
  EXPECT_EQ(Read(*fresh->GetBaseDB(), "O0"), "rewritten");
  EXPECT_EQ(fresh->Applied(), src->Applied());
}

TEST_F(ReplicatedDbTest, DivergedMemberIsCaughtAndRefusesAnotherHeadsEntry) {
  ASSERT_TRUE(a_->Put(rocksdb::WriteOptions(), "Ok1", "one").ok());
  const uint64_t t1 = a_->Applied().second;  // chain version 1, a's first incarnation
  EXPECT_EQ(t1 >> 24, 1u);
  // c applied entry 2 from a head of term t1 that b never passed on...
  cut_ = true;
  (void)a_->Put(rocksdb::WriteOptions(), "Ok2", "lost");
  cut_ = false;
  // ...and a new head (b, chain version 2) writes its own entry 2.
  term_ = 2;
  const uint64_t t2 = (uint64_t{2} << 24) | 1;
  rocksdb::WriteBatch mine;
  ASSERT_TRUE(mine.Put("Ok2", "kept").ok());
  LogEntry entry{2, t2, mine.Data(), /*prev_term=*/t1};
  auto refused = a_->Apply(entry);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kPreconditionFailed) << refused.status().ToString();
  // Nor does it take the next entry of a chain it parted from at entry 2.
  LogEntry next{3, t2, mine.Data(), /*prev_term=*/t2};
  EXPECT_EQ(a_->Apply(next).status().code(), Code::kPreconditionFailed);
  // Pulling after its own entry 2 tells the diverged member to copy instead.
  ASSERT_TRUE(b_->Apply(entry).ok());
  EXPECT_EQ(b_->Pull(2, t1, 1 << 20).status().code(), Code::kNotFound);
  EXPECT_TRUE(b_->Pull(1, t1, 1 << 20).ok());
}

TEST_F(ReplicatedDbTest, HeadRestartedUnderTheSameChainVersionWritesUnderANewTerm) {
  ASSERT_TRUE(a_->Put(rocksdb::WriteOptions(), "Ok1", "one").ok());
  const uint64_t t1 = a_->Applied().second;
  // The head sent entry 2 down the chain and died before applying it itself (it applies while
  // sending): b and c have it, a does not.
  rocksdb::WriteBatch sent;
  ASSERT_TRUE(sent.Put("Ok2", "never acknowledged").ok());
  ASSERT_TRUE(b_->Apply(LogEntry{2, t1, sent.Data(), t1}).ok());
  // It restarts within its lease: same chain version, but a new incarnation, so the entry 2 it
  // writes now is told apart from the one its members hold.
  a_.reset();
  a_ = Open("a", &b_);
  const Status barrier = a_->Barrier();
  EXPECT_EQ(barrier.code(), Code::kPreconditionFailed) << barrier.ToString();
  EXPECT_NE(a_->Applied().second, t1);
  EXPECT_EQ(a_->Applied().second >> 24, 1u);
}

TEST_F(ReplicatedDbTest, CopyKeepsTheEntriesItWillPullHoweverManyComeMeanwhile) {
  // A source keeping 4 entries; a copy starts, 40 entries are written before it ends.
  std::unique_ptr<ReplicatedDb> src = Open("src", nullptr, /*log_entries=*/4, /*copy_pin_ms=*/300);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(src->Put(rocksdb::WriteOptions(), "O" + std::to_string(i), "v").ok());
  }
  std::unique_ptr<ReplicatedDb> fresh = Open("fresh", nullptr);
  auto first = src->Scan("", 1 << 20);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->done);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(src->Put(rocksdb::WriteOptions(), "Onew" + std::to_string(i), "w").ok());
  }
  ASSERT_TRUE(fresh->InstallCopy(first->items, std::make_pair(first->applied, first->applied_term))
                  .ok());
  auto entries = src->Pull(first->applied, first->applied_term, 1 << 20);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  EXPECT_EQ(entries->size(), 40u);
  ASSERT_TRUE(fresh->ApplyPulled(*entries).ok());
  EXPECT_EQ(Contents(*fresh), Contents(*src));
  // Once the copier is gone, the log shrinks back to its 4 entries at the next write.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(src->Put(rocksdb::WriteOptions(), "Olast", "x").ok());
  EXPECT_EQ(src->Pull(first->applied, first->applied_term, 1 << 20).status().code(),
            Code::kNotFound);
  const uint64_t last = src->Applied().first;
  auto kept = src->Pull(last - 3, first->applied_term, 1 << 20);  // after the oldest kept
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->size(), 3u);
  int logged = 0;
  std::unique_ptr<rocksdb::Iterator> it(src->GetBaseDB()->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("L"); it->Valid() && it->key().starts_with("L"); it->Next()) ++logged;
  EXPECT_EQ(logged, 4);
}

}  // namespace
}  // namespace granary::meta
