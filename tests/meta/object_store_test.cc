#include "meta/object_store.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>

#include <rocksdb/db.h>

#include "common/crypto.h"
#include "engine/test_util.h"
#include "meta/keys.h"
#include "meta/records.h"
#include "replication/local_blob_store.h"

namespace granary::meta {
namespace {

using granary::testing::TempDir;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return granary::testing::RandomBytes(rng, n);
}

// The raw MD5 of `data`, by the scalar code.
std::string Md5Of(std::string_view data) {
  Md5 md5;
  md5.Update(data);
  return md5.Finish();
}

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void TearDown() override {
    if (store_) {
      ASSERT_TRUE(store_->Close().ok());
    }
  }

  void Reopen(bool background_reclaim = false) {
    if (store_) {
      ASSERT_TRUE(store_->Close().ok());
    }
    store_.reset();
    replication::LocalBlobStoreOptions bo;
    bo.disks = {dir_.path() + "/d0", dir_.path() + "/d1"};
    auto blobs = replication::OpenLocalBlobStore(bo);
    ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
    ObjectStoreOptions o;
    o.dir = dir_.path() + "/meta";
    o.blobs = std::move(*blobs);
    o.chunk_bytes = 64 * 1024;
    o.inline_max_bytes = 1024;
    o.background_reclaim = background_reclaim;
    o.blob_prefix = blob_prefix_;
    blobs_ = o.blobs.get();
    auto s = ObjectStore::Open(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  std::string MustGet(const std::string& key, const GetOptions& o = {}) {
    auto r = store_->Get("bkt", key, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  // Every blob key, from the blob store.
  std::vector<std::string> BlobKeys() {
    std::vector<std::string> keys;
    EXPECT_TRUE(blobs_->Scan([&](std::string_view key, uint64_t) { keys.emplace_back(key); }).ok());
    return keys;
  }

  TempDir dir_;
  std::function<std::string(uint32_t)> blob_prefix_;
  std::unique_ptr<ObjectStore> store_;
  replication::BlobStore* blobs_ = nullptr;
};

TEST_F(ObjectStoreTest, BucketsFollowTheRules) {
  EXPECT_EQ(store_->CreateBucket("Bad_Name").code(), Code::kInvalidArgument);
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  EXPECT_EQ(store_->CreateBucket("bkt").code(), Code::kAlreadyExists);
  ASSERT_TRUE(store_->CreateBucket("other").ok());
  auto list = store_->ListBuckets();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "bkt");
  EXPECT_GT((*list)[0].created_ns, 0);
  ASSERT_TRUE(store_->Put("bkt", "k", "v").ok());
  EXPECT_EQ(store_->DeleteBucket("bkt").code(), Code::kBucketNotEmpty);
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());
  ASSERT_TRUE(store_->DeleteBucket("bkt").ok());
  EXPECT_EQ(store_->HeadBucket("bkt").status().code(), Code::kNoSuchBucket);
  EXPECT_EQ(store_->Put("bkt", "k", "v").status().code(), Code::kNoSuchBucket);
  EXPECT_EQ(store_->Get("nothere", "k").status().code(), Code::kNoSuchBucket);
}

TEST_F(ObjectStoreTest, InlineBlobAndChunkedObjectsRoundTripAcrossRestarts) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  std::map<std::string, std::string> objects = {
      {"empty", ""},
      {"tiny", "x"},
      {"inline", RandomBytes(1024, 1)},
      {"blob", RandomBytes(1025, 2)},
      {"one-chunk", RandomBytes(64 * 1024, 3)},
      {"chunks", RandomBytes(64 * 1024 * 5 + 17, 4)},
  };
  // Up to inline_max (1 KiB here) an object lives in its record: no blob. Past it, one blob up
  // to chunk_bytes (64 KiB here), then one per chunk.
  const std::map<std::string, uint64_t> blobs = {{"empty", 0}, {"tiny", 0},     {"inline", 0},
                                                 {"blob", 1},  {"one-chunk", 1}, {"chunks", 6}};
  uint64_t expected_blobs = 0;
  for (const auto& [k, v] : objects) {
    PutOptions o;
    o.content_type = "application/x-test";
    o.user_metadata = {{"color", "blue"}};
    auto info = store_->Put("bkt", k, v, o);
    ASSERT_TRUE(info.ok()) << k << ": " << info.status().ToString();
    EXPECT_EQ(info->size, v.size());
    Md5 md5;
    md5.Update(v);
    EXPECT_EQ(info->etag, EtagOf(md5.Finish(), 0));
    expected_blobs += blobs.at(k);
    EXPECT_EQ(blobs_->Stats().blobs, expected_blobs) << k;
  }
  for (int round = 0; round < 2; ++round) {
    for (const auto& [k, v] : objects) {
      EXPECT_EQ(MustGet(k), v) << k;
      auto head = store_->Head("bkt", k, {});
      ASSERT_TRUE(head.ok());
      EXPECT_EQ(head->content_type, "application/x-test");
      EXPECT_EQ(head->user_metadata.at("color"), "blue");
    }
    Reopen();
  }
}

TEST_F(ObjectStoreTest, RangesAndGetInto) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  std::string v = RandomBytes(64 * 1024 * 3 + 100, 5);
  ASSERT_TRUE(store_->Put("bkt", "k", v).ok());
  GetOptions o;
  o.offset = 64 * 1024 - 10;
  o.length = 64 * 1024 + 20;  // crosses two chunk boundaries
  EXPECT_EQ(MustGet("k", o), v.substr(o.offset, o.length));
  o = {};
  o.suffix_length = 150;
  EXPECT_EQ(MustGet("k", o), v.substr(v.size() - 150));
  o = {};
  o.offset = 10;
  o.length = UINT64_MAX;
  EXPECT_EQ(MustGet("k", o), v.substr(10));
  o = {};
  o.offset = v.size();
  EXPECT_EQ(store_->Get("bkt", "k", o).status().code(), Code::kInvalidRange);
  std::string buf(v.size(), '\0');
  auto n = store_->GetInto("bkt", "k", buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, v.size());
  EXPECT_EQ(buf, v);
  std::string small(10, '\0');
  EXPECT_EQ(store_->GetInto("bkt", "k", small).status().code(), Code::kInvalidArgument);
}

TEST_F(ObjectStoreTest, ConditionsOnReadsAndWrites) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  auto info = store_->Put("bkt", "k", "hello");
  ASSERT_TRUE(info.ok());
  GetOptions o;
  o.conditions.if_match = "\"" + info->etag + "\"";
  EXPECT_TRUE(store_->Head("bkt", "k", o).ok());
  o.conditions.if_match = "\"nope\"";
  EXPECT_EQ(store_->Head("bkt", "k", o).status().code(), Code::kPreconditionFailed);
  o = {};
  o.conditions.if_none_match = info->etag;
  EXPECT_EQ(store_->Get("bkt", "k", o).status().code(), Code::kNotModified);
  o = {};
  o.conditions.if_modified_since_ns = info->mtime_ns + 10'000'000'000;
  EXPECT_EQ(store_->Head("bkt", "k", o).status().code(), Code::kNotModified);
  o = {};
  o.conditions.if_unmodified_since_ns = info->mtime_ns - 10'000'000'000;
  EXPECT_EQ(store_->Head("bkt", "k", o).status().code(), Code::kPreconditionFailed);

  PutOptions p;
  p.conditions.if_none_match = "*";
  EXPECT_EQ(store_->Put("bkt", "k", "again", p).status().code(), Code::kPreconditionFailed);
  EXPECT_TRUE(store_->Put("bkt", "new", "first", p).ok());
  p = {};
  p.conditions.if_match = info->etag;
  EXPECT_TRUE(store_->Put("bkt", "k", "second", p).ok());
  EXPECT_EQ(store_->Put("bkt", "k", "third", p).status().code(), Code::kPreconditionFailed);
  EXPECT_EQ(MustGet("k"), "second");
}

TEST_F(ObjectStoreTest, ContentMd5IsCheckedAndAMismatchStoresNothing) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  PutOptions o;
  o.content_md5 = "XUFAKrxLKna5cZ2REBfFkg==";  // MD5 of "hello"
  EXPECT_TRUE(store_->Put("bkt", "good", "hello", o).ok());
  EXPECT_EQ(store_->Put("bkt", "bad", "hellO", o).status().code(), Code::kBadDigest);
  o.content_md5 = "not base64";
  EXPECT_EQ(store_->Put("bkt", "bad", "hello", o).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Head("bkt", "bad", {}).status().code(), Code::kNotFound);
}

TEST_F(ObjectStoreTest, OverwrittenAndDeletedDataIsReclaimed) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  ASSERT_TRUE(store_->Put("bkt", "k", RandomBytes(64 * 1024 * 4, 1)).ok());
  uint64_t blobs_before = blobs_->Stats().blobs;
  EXPECT_EQ(blobs_before, 4u);
  ASSERT_TRUE(store_->Put("bkt", "k", RandomBytes(5000, 2)).ok());
  auto reclaimed = store_->ReclaimGarbage();
  ASSERT_TRUE(reclaimed.ok());
  EXPECT_EQ(*reclaimed, 4u);
  EXPECT_EQ(blobs_->Stats().blobs, 1u);
  ASSERT_TRUE(store_->Delete("bkt", "k").ok());
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, 0u);
  EXPECT_EQ(store_->Delete("bkt", "k").code(), Code::kNotFound);
}

TEST_F(ObjectStoreTest, AnOpenReaderKeepsTheVersionItOpened) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  std::string v1 = RandomBytes(64 * 1024 * 3, 1);
  ASSERT_TRUE(store_->Put("bkt", "k", v1).ok());
  auto reader = store_->Open("bkt", "k", {});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(store_->Put("bkt", "k", RandomBytes(64 * 1024 * 3, 2)).ok());
  ASSERT_TRUE(store_->ReclaimGarbage().ok());  // must not take v1's chunks
  std::string got(v1.size(), '\0');
  size_t done = 0;
  while (done < got.size()) {
    auto n = (*reader)->Read(std::span<char>(got.data() + done, got.size() - done));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    done += *n;
  }
  EXPECT_EQ(got, v1);
  reader->reset();
  auto reclaimed = store_->ReclaimGarbage();
  ASSERT_TRUE(reclaimed.ok());
  EXPECT_EQ(*reclaimed, 3u);
}

// The background reclaimer takes overwritten data once the last reader that could still read it
// has closed, without anyone calling ReclaimGarbage.
TEST_F(ObjectStoreTest, TheReclaimerTakesWhatAClosedReaderHeldBack) {
  Reopen(/*background_reclaim=*/true);
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  ASSERT_TRUE(store_->Put("bkt", "k", RandomBytes(64 * 1024 * 3, 1)).ok());
  auto reader = store_->Open("bkt", "k", {});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(store_->Put("bkt", "k", RandomBytes(5000, 2)).ok());  // one blob
  auto blobs_within = [&](uint64_t want, int ms) {
    for (int waited = 0; waited < ms; waited += 10) {
      if (blobs_->Stats().blobs == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return blobs_->Stats().blobs == want;
  };
  // Reads that come and go meanwhile neither take the held data nor keep it.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(store_->Get("bkt", "k").ok());
  EXPECT_FALSE(blobs_within(1, 200)) << "the open reader's data was reclaimed";
  EXPECT_EQ(blobs_->Stats().blobs, 4u);
  reader->reset();
  EXPECT_TRUE(blobs_within(1, 10'000)) << blobs_->Stats().blobs << " blobs left";
}

TEST_F(ObjectStoreTest, AnAbandonedUploadLeavesNothing) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  {
    auto w = store_->BeginPut("bkt", "k", {});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(RandomBytes(64 * 1024 * 3 + 5, 1)).ok());
  }  // destroyed without Commit
  EXPECT_EQ(store_->Head("bkt", "k", {}).status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, 0u);
}

TEST_F(ObjectStoreTest, IntentsOfUploadsCutByACrashAreReclaimedAtOpen) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  // Simulate a crash: the writer's chunks are durable but it never commits nor abandons.
  auto w = store_->BeginPut("bkt", "k", {});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(RandomBytes(64 * 1024 * 2, 1)).ok());
  // Never destroyed, as if the process died here; kept reachable so that LeakSanitizer does not
  // count it (its destructor would touch the store closed below).
  static auto* crashed_writers = new std::vector<ObjectWriter*>();  // never freed, on purpose
  crashed_writers->push_back(w->release());
  Reopen();
  ASSERT_GE(blobs_->Stats().blobs, 1u);  // the chunks written before the "crash"
  EXPECT_EQ(store_->Head("bkt", "k", {}).status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, 0u);
}

// A put's record is first made durable as a PendingCommit while its last chunks are synced, then
// written as the object without a sync of its own. These tests leave the namespace as a crash
// between the two steps would (the PendingCommit durable, the object's write lost) and reopen.
class PendingCommitTest : public ObjectStoreTest {
 protected:
  // Puts `old_bytes` then `new_bytes` as "k"; then rewrites the namespace as a crash right after
  // the second put's PendingCommit would leave it: the object is the first put again, and the
  // second put's record, PendingCommit and intent are on disk. Returns the second put's record.
  proto::ObjectRecord CrashBeforeTheObjectWrite(const std::string& old_bytes,
                                                const std::string& new_bytes) {
    EXPECT_TRUE(store_->CreateBucket("bkt").ok());
    EXPECT_TRUE(store_->Put("bkt", "k", old_bytes).ok());
    std::string old_value = RawGet(ObjectKey("bkt", "k"));
    EXPECT_TRUE(store_->Put("bkt", "k", new_bytes).ok());
    proto::ObjectRecord record;
    EXPECT_TRUE(record.ParseFromString(RawGet(ObjectKey("bkt", "k"))));
    EXPECT_TRUE(store_->Close().ok());
    store_.reset();

    proto::PendingCommit pending;
    pending.set_bucket("bkt");
    pending.set_key("k");
    *pending.mutable_record() = record;
    const proto::DataRun& run = record.runs(0);
    proto::IntentRecord intent;
    intent.set_version(run.version());
    intent.set_chunk_bytes(run.chunk_bytes());
    intent.set_max_chunks(ChunkCount(run));
    intent.set_bucket("bkt");
    intent.set_key("k");
    {
      auto db = RawOpen(dir_.path() + "/meta");
      rocksdb::WriteOptions wo;
      wo.sync = true;
      EXPECT_TRUE(db->Put(wo, ObjectKey("bkt", "k"), old_value).ok());
      EXPECT_TRUE(
          db->Put(wo, PendingCommitKey(record.version()), pending.SerializeAsString()).ok());
      // The garbage record the lost write would have added for the first put's runs.
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
      for (it->Seek(std::string(1, kGarbageKind)); it->Valid() && it->key()[0] == kGarbageKind;
           it->Next()) {
        EXPECT_TRUE(db->Delete(wo, it->key()).ok());
      }
    }
    {
      auto db = RawOpen(dir_.path() + "/meta/intents");
      EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), IntentKey(run.version()),
                          intent.SerializeAsString())
                      .ok());
    }
    return record;
  }

  std::string RawGet(const std::string& key) {
    std::string value;
    // The store's own database, read through a second handle is not possible while it is open:
    // close, read, reopen.
    EXPECT_TRUE(store_->Close().ok());
    store_.reset();
    {
      auto db = RawOpen(dir_.path() + "/meta");
      EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
    }
    Reopen();
    return value;
  }

  static std::unique_ptr<rocksdb::DB> RawOpen(const std::string& path) {
    rocksdb::DB* db = nullptr;
    rocksdb::Options options;
    rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::unique_ptr<rocksdb::DB>(db);
  }
};

TEST_F(PendingCommitTest, APutWhoseDataIsDurableIsCommittedAtOpen) {
  const std::string old_bytes = RandomBytes(64 * 1024 * 2 + 7, 1);
  const std::string new_bytes = RandomBytes(64 * 1024 * 3 + 11, 2);
  CrashBeforeTheObjectWrite(old_bytes, new_bytes);
  Reopen();
  EXPECT_TRUE(MustGet("k") == new_bytes);
  // The first put's chunks became garbage; the second's are all that is left.
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, 4u);
  // Nothing is applied twice: a second reopen changes nothing.
  Reopen();
  EXPECT_TRUE(MustGet("k") == new_bytes);
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, 4u);
}

TEST_F(PendingCommitTest, APutWhoseDataIsIncompleteIsDroppedAtOpen) {
  const std::string old_bytes = RandomBytes(64 * 1024 * 2 + 7, 1);
  const std::string new_bytes = RandomBytes(64 * 1024 * 3 + 11, 2);
  proto::ObjectRecord record = CrashBeforeTheObjectWrite(old_bytes, new_bytes);
  {
    // The crash also lost the second put's last chunk, which was being synced.
    replication::LocalBlobStoreOptions bo;
    bo.disks = {dir_.path() + "/d0", dir_.path() + "/d1"};
    auto blobs = replication::OpenLocalBlobStore(bo);
    ASSERT_TRUE(blobs.ok());
    const std::string last = BlobKey("", record.version(), 3);
    ASSERT_TRUE((*blobs)->Exists(last));
    ASSERT_TRUE((*blobs)->DeleteMany(std::span<const std::string>(&last, 1)).ok());
    ASSERT_TRUE((*blobs)->Close().ok());
  }
  Reopen();
  EXPECT_TRUE(MustGet("k") == old_bytes);
  // The second put's chunks are reclaimed through its intent; the first put's stay.
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, 3u);
}

TEST_F(ObjectStoreTest, ListingWithPrefixDelimiterAndContinuation) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  std::vector<std::string> keys = {"a/1", "a/2", "a/b/1", "b", "c/x", "c/y", "d"};
  for (const auto& k : keys) ASSERT_TRUE(store_->Put("bkt", k, k).ok());
  ListOptions o;
  o.delimiter = "/";
  auto r = store_->List("bkt", o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->objects[0].key, "b");
  EXPECT_EQ(r->objects[1].key, "d");
  EXPECT_EQ(r->common_prefixes, (std::vector<std::string>{"a/", "c/"}));
  // Page by 2 through everything, with and without the delimiter.
  for (std::string delimiter : {"", "/"}) {
    std::vector<std::string> seen;
    ListOptions p;
    p.delimiter = delimiter;
    p.max_keys = 2;
    while (true) {
      auto page = store_->List("bkt", p);
      ASSERT_TRUE(page.ok());
      for (const auto& obj : page->objects) seen.push_back(obj.key);
      for (const auto& cp : page->common_prefixes) seen.push_back(cp);
      if (!page->truncated) break;
      p.continuation_token = page->next_continuation_token;
    }
    std::sort(seen.begin(), seen.end());
    if (delimiter.empty()) {
      EXPECT_EQ(seen, keys);
    } else {
      EXPECT_EQ(seen, (std::vector<std::string>{"a/", "b", "c/", "d"}));
    }
  }
  o = {};
  o.prefix = "a/";
  o.delimiter = "/";
  r = store_->List("bkt", o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->common_prefixes, (std::vector<std::string>{"a/b/"}));
  o = {};
  o.start_after = "c/x";
  r = store_->List("bkt", o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->objects[0].key, "c/y");
  o = {};
  o.continuation_token = "!!";
  EXPECT_EQ(store_->List("bkt", o).status().code(), Code::kInvalidArgument);
}

TEST_F(ObjectStoreTest, MultipartUploadCompletesAbortsAndChecksParts) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  auto id = store_->CreateMultipartUpload("bkt", "big", {});
  ASSERT_TRUE(id.ok());
  std::string p1 = RandomBytes(kMinPartBytes, 1);
  std::string p2 = RandomBytes(1000, 2);
  std::vector<CompletedPart> parts;
  for (auto [n, data] : {std::pair<int, std::string*>{1, &p1}, {2, &p2}}) {
    auto w = store_->UploadPart("bkt", "big", *id, n, "", data->size());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(*data).ok());
    auto info = (*w)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    parts.push_back({n, info->etag});
  }
  auto listed = store_->ListParts("bkt", "big", *id, 0, 1000);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->parts.size(), 2u);
  auto uploads = store_->ListMultipartUploads("bkt", {});
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->uploads.size(), 1u);
  EXPECT_EQ(uploads->uploads[0].upload_id, *id);

  std::vector<CompletedPart> reversed = {parts[1], parts[0]};
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "big", *id, reversed, {}).status().code(),
            Code::kInvalidPart);
  std::vector<CompletedPart> wrong = {{1, "\"0000\""}};
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "big", *id, wrong, {}).status().code(),
            Code::kInvalidPart);
  auto done = store_->CompleteMultipartUpload("bkt", "big", *id, parts, {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->etag.ends_with("-2"));
  EXPECT_EQ(MustGet("big"), p1 + p2);
  EXPECT_EQ(store_->ListParts("bkt", "big", *id, 0, 10).status().code(), Code::kNoSuchUpload);

  // A small first part is refused; abort reclaims every part.
  auto id2 = store_->CreateMultipartUpload("bkt", "small", {});
  ASSERT_TRUE(id2.ok());
  std::vector<CompletedPart> small_parts;
  for (int n = 1; n <= 2; ++n) {
    auto w = store_->UploadPart("bkt", "small", *id2, n, "", 100);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(RandomBytes(100, n)).ok());
    auto info = (*w)->Commit();
    ASSERT_TRUE(info.ok());
    small_parts.push_back({n, info->etag});
  }
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "small", *id2, small_parts, {}).status().code(),
            Code::kEntityTooSmall);
  uint64_t before = blobs_->Stats().blobs;
  ASSERT_TRUE(store_->AbortMultipartUpload("bkt", "small", *id2).ok());
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, before - 2);
  EXPECT_EQ(store_->AbortMultipartUpload("bkt", "small", *id2).code(), Code::kNoSuchUpload);
}

TEST_F(ObjectStoreTest, BatchesPutAndGetManySmallObjects) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  std::vector<std::string> values;
  std::vector<PutItem> items;
  for (int i = 0; i < 50; ++i) values.push_back(RandomBytes(i * 100, i));
  for (int i = 0; i < 50; ++i) items.push_back({"k" + std::to_string(i), values[i], {}});
  items.push_back({"bad\x01key", "x", {}});
  // A Content-MD5 that matches and one that does not (the item is refused, the others stored).
  PutOptions checked, wrong;
  checked.content_md5 = Base64Encode(Md5Of(values[7]));
  wrong.content_md5 = Base64Encode(Md5Of("something else"));
  items[7].options = checked;
  items.push_back({"wrong-md5", values[9], wrong});
  auto put = store_->PutMany("bkt", items);
  ASSERT_EQ(put.size(), 52u);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(put[i].ok()) << put[i].status().ToString();
    // The batch's MD5s are taken together on the lanes: each is its own value's.
    EXPECT_EQ(put[i]->etag, EtagOf(Md5Of(values[i]), 0)) << i;
  }
  EXPECT_EQ(put[50].status().code(), Code::kInvalidArgument);
  EXPECT_EQ(put[51].status().code(), Code::kBadDigest);
  EXPECT_EQ(store_->Head("bkt", "wrong-md5", {}).status().code(), Code::kNotFound);
  std::vector<std::string> keys;
  for (int i = 0; i < 50; ++i) keys.push_back("k" + std::to_string(i));
  keys.push_back("missing");
  auto got = store_->GetMany("bkt", keys);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(got[i].ok());
    EXPECT_EQ(*got[i], values[i]);
  }
  EXPECT_EQ(got[50].status().code(), Code::kNotFound);
}

TEST_F(ObjectStoreTest, DeleteManyCommitsOnceAndAnswersPerKey) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  ASSERT_TRUE(store_->Put("bkt", "a", "1").ok());
  ASSERT_TRUE(store_->Put("bkt", "b", RandomBytes(64 * 1024 * 2, 3)).ok());
  std::vector<std::string> keys = {"a", "missing", "b", "a", "bad\x01"};
  std::vector<Status> got = store_->DeleteMany("bkt", keys);
  ASSERT_EQ(got.size(), keys.size());
  EXPECT_TRUE(got[0].ok());
  EXPECT_EQ(got[1].code(), Code::kNotFound);
  EXPECT_TRUE(got[2].ok());
  EXPECT_TRUE(got[3].ok());  // named twice: the first answer stands
  EXPECT_EQ(got[4].code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Head("bkt", "a", {}).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Head("bkt", "b", {}).status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_EQ(blobs_->Stats().blobs, 0u);
  for (const Status& s : store_->DeleteMany("nobucket", keys)) {
    EXPECT_TRUE(s.code() == Code::kNoSuchBucket || s.code() == Code::kInvalidArgument);
  }
}

TEST_F(ObjectStoreTest, CopyKeepsOrReplacesMetadata) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  PutOptions o;
  o.content_type = "text/plain";
  o.user_metadata = {{"a", "1"}};
  std::string v = RandomBytes(64 * 1024 * 2 + 3, 9);
  ASSERT_TRUE(store_->Put("bkt", "src", v, o).ok());
  auto copy = store_->Copy("bkt", "src", "bkt", "dst", {});
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->content_type, "text/plain");
  EXPECT_EQ(MustGet("dst"), v);
  EXPECT_EQ(store_->Copy("bkt", "src", "bkt", "src", {}).status().code(),
            Code::kInvalidArgument);
  CopyOptions replace;
  replace.replace_metadata = true;
  replace.put.user_metadata = {{"b", "2"}};
  auto replaced = store_->Copy("bkt", "src", "bkt", "src", replace);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->user_metadata.count("a"), 0u);
  EXPECT_EQ(replaced->user_metadata.at("b"), "2");
}

// Readers racing writers of the same keys see whole objects only.
TEST_F(ObjectStoreTest, ConcurrentReadersSeeOldOrNewNeverAMix) {
  Reopen(/*background_reclaim=*/true);
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  auto value = [](int key, int gen) {
    std::string v(64 * 1024 * 2 + 77, static_cast<char>('a' + gen % 26));
    v.replace(0, 16, std::to_string(key) + "/" + std::to_string(gen));
    return v;
  };
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(store_->Put("bkt", std::to_string(k), value(k, 0)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int gen = 1; gen < 40; ++gen) {
        int k = (gen + t) % 4;
        ASSERT_TRUE(store_->Put("bkt", std::to_string(k), value(k, gen)).ok());
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      std::mt19937 rng(7);
      while (!stop) {
        int k = static_cast<int>(rng() % 4);
        auto got = store_->Get("bkt", std::to_string(k));
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        char fill = (*got)[got->size() - 1];
        ASSERT_EQ(got->find_first_not_of(fill, 16), std::string::npos) << "mixed object";
        ++reads;
      }
    });
  }
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  threads[3].join();
  EXPECT_GT(reads.load(), 0);
}

TEST_F(ObjectStoreTest, ASingleServerKeepsOneCopy) {
  const Status two = store_->CreateBucket("two", BucketOptions{2});
  EXPECT_EQ(two.code(), Code::kInvalidArgument);
  EXPECT_NE(two.message().find("needs a cluster"), std::string::npos) << two.ToString();
  EXPECT_EQ(store_->CreateBucket("six", BucketOptions{6}).code(), Code::kInvalidArgument);
  ASSERT_TRUE(store_->CreateBucket("one", BucketOptions{1}).ok());
  auto info = store_->HeadBucket("one");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->replicas, 1);
  EXPECT_EQ(store_->HeadBucket("two").status().code(), Code::kNoSuchBucket);
}

TEST_F(ObjectStoreTest, BlobsAreNamedByTheirBucketsReplicaCount) {
  blob_prefix_ = [](uint32_t replicas) { return "P" + std::to_string(replicas) + "/"; };
  Reopen();
  ASSERT_TRUE(store_->CreateBucket("two", BucketOptions{2}).ok());
  ASSERT_TRUE(store_->CreateBucket("dflt").ok());
  const std::string big = RandomBytes(64 * 1024 * 3 + 5, 1);  // four chunks
  ASSERT_TRUE(store_->Put("two", "big", big).ok());
  ASSERT_TRUE(store_->Put("dflt", "big", big).ok());
  const std::string small = RandomBytes(2000, 2);  // one blob, through a batch
  std::vector<PutItem> items{{"small", small, {}}};
  ASSERT_TRUE(store_->PutMany("two", items)[0].ok());
  auto upload = store_->CreateMultipartUpload("two", "parts", {});
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE(store_->Put("two", "parts-source", big).ok());
  {
    auto w = store_->UploadPart("two", "parts", *upload, 1, "", UINT64_MAX);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(big).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  // An upload cut by a crash: its blobs are named like the others and reclaimed at open.
  auto cut = store_->BeginPut("two", "cut", {});
  ASSERT_TRUE(cut.ok());
  ASSERT_TRUE((*cut)->Append(big).ok());
  static auto* crashed_writers = new std::vector<ObjectWriter*>();  // never freed, on purpose
  crashed_writers->push_back(cut->release());
  Reopen();
  size_t two = 0, dflt = 0;
  for (const std::string& key : BlobKeys()) {
    if (key.starts_with("P2/d")) {
      ++two;
    } else {
      EXPECT_TRUE(key.starts_with("P0/d")) << key;
      ++dflt;
    }
  }
  EXPECT_EQ(dflt, 4u);
  EXPECT_GE(two, 4u + 1 + 4 + 4);
  ASSERT_TRUE(store_->ReclaimGarbage().ok());  // the cut upload's
  EXPECT_EQ(BlobKeys().size(), 4u + 4 + 1 + 4 + 4);
  auto got = store_->Get("two", "big", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, big);
  got = store_->Get("two", "small", {});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, small);
  // Everything deleted: every blob goes, whatever its name.
  ASSERT_TRUE(store_->AbortMultipartUpload("two", "parts", *upload).ok());
  for (const char* key : {"big", "small", "parts-source"}) ASSERT_TRUE(store_->Delete("two", key).ok());
  ASSERT_TRUE(store_->Delete("dflt", "big").ok());
  ASSERT_TRUE(store_->ReclaimGarbage().ok());
  EXPECT_TRUE(BlobKeys().empty());
}

TEST_F(ObjectStoreTest, ShardRecordsAndNotesOfAClustersBuckets) {
  blob_prefix_ = [](uint32_t replicas) { return "P" + std::to_string(replicas) + "/"; };
  Reopen();
  // A shard of "far" (whose own record lives elsewhere) beside a bucket of this partition.
  ASSERT_TRUE(store_->CreateBucket("own").ok());
  ASSERT_TRUE(store_->AdoptBucket("far", BucketInfo{"far", 1234, 2}).ok());
  ASSERT_TRUE(store_->AdoptBucket("far", BucketInfo{"far", 9999, 3}).ok());  // kept as it was
  auto far = store_->HeadBucket("far");
  ASSERT_TRUE(far.ok());
  EXPECT_EQ(far->created_ns, 1234);
  EXPECT_EQ(far->replicas, 2);
  auto listed = store_->ListBuckets();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].name, "own");
  // A shard holds objects like a bucket, and is removed only once empty.
  ASSERT_TRUE(store_->Put("far", "d/x", RandomBytes(5000, 3)).ok());
  EXPECT_EQ(store_->DeleteBucket("far").code(), Code::kBucketNotEmpty);
  ASSERT_TRUE(store_->Delete("far", "d/x").ok());
  ASSERT_TRUE(store_->DeleteBucket("far").ok());
  EXPECT_EQ(store_->HeadBucket("far").status().code(), Code::kNoSuchBucket);

  // The bucket's own partition notes its shards once each, and forgets them with it.
  EXPECT_EQ(store_->AddShard("none", 3).status().code(), Code::kNoSuchBucket);
  for (uint32_t chain : {7u, 3u, 7u, 300u}) {
    auto info = store_->AddShard("own", chain);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->name, "own");
  }
  Reopen();
  auto shards = store_->Shards("own");
  ASSERT_TRUE(shards.ok());
  EXPECT_EQ(*shards, (std::vector<uint32_t>{3, 7, 300}));
  ASSERT_TRUE(store_->DeleteBucket("own").ok());
  ASSERT_TRUE(store_->CreateBucket("own").ok());
  EXPECT_TRUE(store_->Shards("own")->empty());
}

TEST_F(ObjectStoreTest, UploadListingsResumeAfterACommonPrefixMarker) {
  ASSERT_TRUE(store_->CreateBucket("bkt").ok());
  for (const char* key : {"a/1", "a/2", "b"}) {
    ASSERT_TRUE(store_->CreateMultipartUpload("bkt", key, {}).ok());
  }
  ListUploadsOptions options;
  options.delimiter = "/";
  options.max_uploads = 1;
  auto first = store_->ListMultipartUploads("bkt", options);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->common_prefixes, std::vector<std::string>{"a/"});
  ASSERT_TRUE(first->truncated);
  options.key_marker = first->next_key_marker;
  options.upload_id_marker = first->next_upload_id_marker;
  auto second = store_->ListMultipartUploads("bkt", options);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->common_prefixes.empty());
  ASSERT_EQ(second->uploads.size(), 1u);
  EXPECT_EQ(second->uploads[0].key, "b");
  EXPECT_FALSE(second->truncated);
}

}  // namespace
}  // namespace granary::meta
