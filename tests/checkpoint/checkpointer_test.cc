// Checkpointer through a real Client and the native protocol: round trips, incremental saves,
// atomic visibility, reclamation, and damaged or missing chunks named on load.
#include "granary/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "client/client_fixture.h"
#include "support/memory_object_api.h"

namespace granary::testing {
namespace {

class CheckpointerTest : public ClientTest {
 protected:
  void SetUp() override {
    ClientTest::SetUp();
    ASSERT_OK(client_->CreateBucket("ckpt"));
  }

  // `grace_ms`: CheckpointOptions::dead_saver_grace_ms (none: reclaim a dead saver's at once).
  std::unique_ptr<Checkpointer> Open(std::string_view run = "ckpt/runs/a", int64_t grace_ms = 0) {
    CheckpointOptions o;
    o.chunk_bytes = 64 << 10;  // several chunks per tensor
    o.parallel = 4;
    o.dead_saver_grace_ms = grace_ms;
    auto c = Checkpointer::Open(*client_, run, o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Named tensors of the given sizes, each with its own bytes.
  static std::map<std::string, std::string> State(const std::vector<size_t>& sizes,
                                                  uint32_t seed) {
    std::map<std::string, std::string> s;
    for (size_t i = 0; i < sizes.size(); ++i) {
      s["t" + std::to_string(i)] = Pattern(sizes[i], seed * 1000 + static_cast<uint32_t>(i));
    }
    return s;
  }

  static std::vector<TensorToSave> ToSave(const std::map<std::string, std::string>& state) {
    std::vector<TensorToSave> out;
    for (const auto& [name, bytes] : state) {
      out.push_back({name, "uint8", {static_cast<int64_t>(bytes.size())}, bytes});
    }
    return out;
  }

  static std::map<std::string, std::string> LoadAll(Checkpointer& c, const CheckpointManifest& m) {
    std::map<std::string, std::string> out;
    for (const SavedTensor& t : m.tensors) out[t.name].resize(t.size);
    Status st = c.Load(m, [&](size_t, const SavedTensor& t) -> Result<std::span<char>> {
      return std::span<char>(out[t.name]);
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }

  // The body of a saver's marker (checkpoint/saver_marker.h) naming a process of this host that
  // is gone: a child that has exited and been reaped.
  static std::string DeadSaverMarker() {
    const pid_t child = fork();
    if (child == 0) _exit(0);
    EXPECT_EQ(waitpid(child, nullptr, 0), child);
    std::ifstream boot_file("/proc/sys/kernel/random/boot_id");
    std::string boot;
    std::getline(boot_file, boot);
    char pid_ns[128] = {};
    EXPECT_GT(readlink("/proc/self/ns/pid", pid_ns, sizeof(pid_ns) - 1), 0);
    return boot + " " + pid_ns + " " + std::to_string(child) + " 1";
  }

  uint64_t Objects(const std::string& prefix) {
    ListOptions o;
    o.prefix = prefix;
    auto r = client_->List("ckpt", o);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->objects.size() : 0;
  }
};

TEST_F(CheckpointerTest, RoundTripsTensorsAndExtra) {
  auto c = Open();
  ASSERT_NE(c, nullptr);
  auto state = State({0, 1, 64 << 10, (64 << 10) + 1, 300'000}, 1);
  auto saved = c->Save(7, ToSave(state), "the structure");
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->bytes, 1 + (64 << 10) + (64 << 10) + 1 + 300'000u);
  EXPECT_EQ(saved->written_bytes, saved->bytes);

  auto m = c->Describe();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->step, 7u);
  EXPECT_EQ(m->extra, "the structure");
  ASSERT_EQ(m->tensors.size(), 5u);
  EXPECT_EQ(m->tensors[4].shape, std::vector<int64_t>{300'000});
  EXPECT_EQ(m->tensors[4].chunks.size(), 5u);  // 300,000 bytes in 64 KiB chunks
  EXPECT_EQ(LoadAll(*c, *m), state);
  EXPECT_EQ(*c->List(), std::vector<uint64_t>{7});
  EXPECT_EQ(Objects("runs/a/saving/"), 0u);  // the save's marker is gone

  // Another Checkpointer (another process) sees the same.
  auto other = Open();
  auto m2 = other->Describe(7);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(LoadAll(*other, *m2), state);
  EXPECT_CODE(c->Save(7, ToSave(state)).status(), Code::kAlreadyExists);
}

TEST_F(CheckpointerTest, ASecondCheckpointWritesOnlyWhatChanged) {
  auto c = Open();
  auto state = State(std::vector<size_t>(10, 200'000), 1);
  ASSERT_TRUE(c->Save(1, ToSave(state)).ok());
  // One tensor of ten changes in one byte: only its chunk holding that byte is new.
  state["t3"][100'000] ^= 1;
  auto saved = c->Save(2, ToSave(state));
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(saved->written_chunks, 1u);
  EXPECT_EQ(saved->written_bytes, 64u << 10);
  EXPECT_EQ(LoadAll(*c, *c->Describe(2)), state);
  // A fresh Checkpointer of the run learns what the run holds, and writes nothing again.
  auto fresh = Open();
  auto again = fresh->Save(3, ToSave(state));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->written_bytes, 0u);
}

TEST_F(CheckpointerTest, DeleteFreesOnlyChunksNoOtherCheckpointUses) {
  auto c = Open();
  auto a = State({200'000, 200'000}, 1);
  auto b = a;
  b["t1"] = Pattern(200'000, 99);  // t0 shared with checkpoint 1, t1 its own
  ASSERT_TRUE(c->Save(1, ToSave(a)).ok());
  ASSERT_TRUE(c->Save(2, ToSave(b)).ok());
  const uint64_t both = Objects("runs/a/chunks/");
  EXPECT_EQ(both, 4u * 3);  // 200,000 bytes: 4 chunks each of t0, a's t1, b's t1
  ASSERT_OK(c->Delete(1));
  EXPECT_EQ(Objects("runs/a/chunks/"), 8u);
  EXPECT_EQ(LoadAll(*c, *c->Describe(2)), b);
  EXPECT_CODE(c->Delete(1), Code::kNotFound);
  EXPECT_CODE(c->Describe(1).status(), Code::kNotFound);

  ASSERT_TRUE(c->Save(3, ToSave(a)).ok());
  ASSERT_TRUE(c->Save(4, ToSave(a)).ok());
  ASSERT_OK(c->KeepLast(1));
  EXPECT_EQ(*c->List(), std::vector<uint64_t>{4});
  EXPECT_EQ(Objects("runs/a/chunks/"), 8u);  // a's chunks
  EXPECT_EQ(LoadAll(*c, *c->Describe()), a);
}

// A store whose manifest puts wait until the test opens the gate: a save in progress stays so.
class GatedStore : public MemoryObjectApi {
 public:
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 protected:
  Result<ObjectInfo> PutBytes(std::string_view bucket, std::string_view key,
                              std::string_view data, PutOptions options) override {
    if (key.find("/steps/") != std::string_view::npos) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return open_; });
    }
    return MemoryObjectApi::PutBytes(bucket, key, data, std::move(options));
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST_F(CheckpointerTest, ASaveAsyncReturnsBeforeItsUploadWithTheBytesOfThatMoment) {
  GatedStore store;
  ASSERT_OK(store.CreateBucket("ckpt"));
  CheckpointOptions o;
  o.chunk_bytes = 64 << 10;
  auto c = Checkpointer::Open(store, "ckpt/run", o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto state = State({0, 100, 300'000}, 1);
  const auto saved_state = state;
  auto save = (*c)->SaveAsync(3, ToSave(state), "extra");
  ASSERT_TRUE(save.ok()) << save.status().ToString();
  // Returned while its manifest cannot be written yet: not durable, not listed.
  EXPECT_EQ(save->step(), 3u);
  EXPECT_FALSE(save->Done());
  // The caller reuses its memory at once; the checkpoint keeps the bytes of the call.
  for (auto& [name, bytes] : state) std::fill(bytes.begin(), bytes.end(), 'x');
  store.Open();
  auto stats = save->Wait();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_TRUE(save->Done());
  EXPECT_EQ(stats->bytes, 300'100u);
  EXPECT_EQ(*(*c)->List(), std::vector<uint64_t>{3});
  auto m = (*c)->Describe(3);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->extra, "extra");
  EXPECT_EQ(LoadAll(**c, *m), saved_state);

  // The next saves reuse the host memory; one of an existing step fails in its Wait.
  auto again = (*c)->SaveAsync(3, ToSave(state));
  ASSERT_TRUE(again.ok());
  EXPECT_CODE(again->Wait().status(), Code::kAlreadyExists);
  auto bigger = State({0, 100, 300'000, 500'000}, 2);
  auto next = (*c)->SaveAsync(4, ToSave(bigger));
  ASSERT_TRUE(next.ok());
  // Destroying the Checkpointer waits for the upload.
  c->reset();
  EXPECT_TRUE(next->Done());
  ASSERT_TRUE(next->Wait().ok());
  auto reopened = Checkpointer::Open(store, "ckpt/run", o);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(*(*reopened)->List(), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(LoadAll(**reopened, *(*reopened)->Describe(4)), bigger);
}

TEST_F(CheckpointerTest, TheFirstSaveOfACheckpointerReclaimsWhatKilledSavesLeft) {
  auto c = Open();
  ASSERT_TRUE(c->Save(1, ToSave(State({200'000}, 1))).ok());
  // A saver killed before its manifest: its marker names a process of this host that is gone,
  // and its chunks nothing uses.
  ASSERT_OK(client_->Put("ckpt", "runs/a/saving/00000000000000000007-00000000deadbeef",
                         DeadSaverMarker())
                .status());
  ASSERT_OK(client_->Put("ckpt", "runs/a/chunks/00000000000000000000000000000001-5", "dead!")
                .status());
  EXPECT_EQ(Objects("runs/a/chunks/"), 5u);
  // Within the grace after a saver's death its requests may still be landing: the next
  // process's first save drops the dead marker but spares the young chunk.
  auto patient = Open("ckpt/runs/a", CheckpointOptions().dead_saver_grace_ms);
  ASSERT_TRUE(patient->Save(2, ToSave(State({200'000}, 2))).ok());
  EXPECT_EQ(Objects("runs/a/chunks/"), 9u);
  EXPECT_EQ(Objects("runs/a/saving/"), 0u);
  // Once past it (here: none), the first save of the next lets the chunk go; the run's
  // checkpoints stay whole.
  auto next = Open();
  ASSERT_TRUE(next->Save(3, ToSave(State({200'000}, 3))).ok());
  EXPECT_EQ(Objects("runs/a/chunks/"), 12u);
  EXPECT_EQ(LoadAll(*next, *next->Describe(1)), State({200'000}, 1));
  EXPECT_EQ(LoadAll(*next, *next->Describe(2)), State({200'000}, 2));
  EXPECT_EQ(LoadAll(*next, *next->Describe(3)), State({200'000}, 3));
}

TEST_F(CheckpointerTest, AnUnfinishedSaveIsNotListedAndItsChunksAreReclaimed) {
  auto c = Open();
  auto a = State({200'000}, 1);
  ASSERT_TRUE(c->Save(1, ToSave(a)).ok());
  // What a saver killed before its manifest leaves: chunks nothing uses.
  ASSERT_OK(client_->Put("ckpt", "runs/a/chunks/00000000000000000000000000000001-5", "dead!")
                .status());
  EXPECT_EQ(*c->List(), std::vector<uint64_t>{1});
  ASSERT_OK(c->KeepLast(5));
  EXPECT_EQ(Objects("runs/a/chunks/"), 4u);
  EXPECT_EQ(LoadAll(*c, *c->Describe()), a);

  // But not while another save is in progress (its marker is recent): its chunks may be new.
  ASSERT_OK(client_->Put("ckpt", "runs/a/saving/0123456789abcdef", "2").status());
  ASSERT_OK(client_->Put("ckpt", "runs/a/chunks/00000000000000000000000000000002-5", "busy!")
                .status());
  ASSERT_OK(c->KeepLast(5));
  EXPECT_EQ(Objects("runs/a/chunks/"), 5u);

  // A marker whose saver was a process of this host that is gone holds nothing back, and goes.
  ASSERT_OK(client_->Delete("ckpt", "runs/a/saving/0123456789abcdef"));
  ASSERT_OK(client_->Put("ckpt", "runs/a/saving/00000000deadbeef", DeadSaverMarker()).status());
  ASSERT_OK(c->KeepLast(5));
  EXPECT_EQ(Objects("runs/a/chunks/"), 4u);
  EXPECT_EQ(Objects("runs/a/saving/"), 0u);
}

TEST_F(CheckpointerTest, TensorsStoredByManyAreCommittedByOne) {
  // Two savers (the ranks of a distributed checkpoint) each store their tensors; one commits.
  auto rank0 = Open();
  auto rank1 = Open();
  auto a = State({100'000, 3}, 1);
  auto b = State({150'000}, 2);
  std::map<std::string, std::string> b_named;
  for (auto& [name, bytes] : b) b_named["r1." + name] = bytes;
  SaveStats stats;
  auto part0 = rank0->StoreTensors(7, ToSave(a), &stats);
  auto part1 = rank1->StoreTensors(7, ToSave(b_named), &stats);
  ASSERT_TRUE(part0.ok() && part1.ok());
  EXPECT_EQ(stats.bytes, 250'003u);
  EXPECT_EQ(stats.written_bytes, 250'003u);
  EXPECT_TRUE(rank0->List()->empty());  // nothing listed before the commit
  // The uploads are spared by a reclamation elsewhere until the commit: their markers stay.
  EXPECT_EQ(Objects("runs/a/saving/"), 2u);
  ASSERT_OK(Open()->KeepLast(0));
  EXPECT_EQ(Objects("runs/a/chunks/"), 6u);

  std::vector<SavedTensor> all = *part0;
  all.insert(all.end(), part1->begin(), part1->end());
  ASSERT_TRUE(rank0->Commit(7, all, "meta").ok());
  EXPECT_EQ(*rank1->List(), std::vector<uint64_t>{7});
  EXPECT_EQ(Objects("runs/a/saving/"), 0u);  // the commit removed the step's markers
  auto m = rank1->Describe();
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->extra, "meta");
  std::map<std::string, std::string> expected = a;
  expected.insert(b_named.begin(), b_named.end());
  EXPECT_EQ(LoadAll(*rank1, *m), expected);

  EXPECT_EQ(rank0->Commit(7, all).status().code(), Code::kAlreadyExists);
  all.push_back(all.front());
  EXPECT_EQ(rank0->Commit(8, all).status().code(), Code::kInvalidArgument);
  // Chunks of a committed checkpoint are used: reclamation keeps them.
  ASSERT_OK(rank0->KeepLast(1));
  EXPECT_EQ(LoadAll(*rank0, *rank0->Describe(7)), expected);
}

TEST_F(CheckpointerTest, DamagedOrMissingChunksAreNamedOnLoad) {
  auto c = Open();
  auto state = State({200'000}, 1);
  ASSERT_TRUE(c->Save(5, ToSave(state)).ok());
  auto m = c->Describe();
  ASSERT_TRUE(m.ok());
  // The object of the tensor's second chunk: damage one bit of it.
  ListOptions o;
  o.prefix = "runs/a/chunks/";
  auto chunks = client_->List("ckpt", o);
  std::string key;
  for (const ObjectInfo& info : chunks->objects) {
    auto bytes = client_->Get("ckpt", info.key);
    if (bytes.ok() && *bytes == state["t0"].substr(64 << 10, 64 << 10)) key = info.key;
  }
  ASSERT_FALSE(key.empty());
  std::string damaged = state["t0"].substr(64 << 10, 64 << 10);
  damaged[17] ^= 0x40;
  ASSERT_OK(client_->Put("ckpt", key, damaged).status());
  std::string out(200'000, '\0');
  auto into = [&](size_t, const SavedTensor&) -> Result<std::span<char>> {
    return std::span<char>(out);
  };
  Status st = c->Load(*m, into);
  EXPECT_CODE(st, Code::kCorruption);
  EXPECT_NE(st.message().find(key), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("tensor \"t0\" of checkpoint 5"), std::string::npos)
      << st.ToString();

  ASSERT_OK(client_->Delete("ckpt", key));
  st = c->Load(*m, into);
  EXPECT_CODE(st, Code::kCorruption);
  EXPECT_NE(st.message().find("is missing"), std::string::npos) << st.ToString();

  // A buffer of the wrong size is the caller's mistake.
  std::string small(10, '\0');
  EXPECT_CODE(c->Load(*m, [&](size_t, const SavedTensor&) -> Result<std::span<char>> {
    return std::span<char>(small);
  }),
              Code::kInvalidArgument);
}

TEST_F(CheckpointerTest, BadRunsAndNamesAreRefused) {
  EXPECT_CODE(Checkpointer::Open(*client_, "/x").status(), Code::kInvalidArgument);
  EXPECT_CODE(Checkpointer::Open(*client_, "ckpt/a//b").status(), Code::kInvalidArgument);
  EXPECT_CODE(Checkpointer::Open(*client_, "no-such-bucket/run").status(), Code::kNoSuchBucket);
  auto c = Open();
  std::string bytes = "abc";
  std::vector<TensorToSave> twice = {{"w", "uint8", {3}, bytes}, {"w", "uint8", {3}, bytes}};
  EXPECT_CODE(c->Save(1, twice).status(), Code::kInvalidArgument);
  EXPECT_CODE(c->Describe().status(), Code::kNotFound);
  // A manifest that is not one: refused, not loaded.
  ASSERT_OK(client_->Put("ckpt", "runs/a/steps/00000000000000000009/manifest", "junk").status());
  EXPECT_CODE(c->Describe().status(), Code::kCorruption);
}

}  // namespace
}  // namespace granary::testing
