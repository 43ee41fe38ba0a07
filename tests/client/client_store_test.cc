// The native client against RpcService over the real store (meta::ObjectStore on a local blob
// store): what a single-node server serves. Results and errors must be those of the store.
#include <gtest/gtest.h>

#include "client/client_fixture.h"
#include "engine/test_util.h"
#include "meta/object_store.h"
#include "replication/local_blob_store.h"

namespace granary::testing {
namespace {

class ClientStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    replication::LocalBlobStoreOptions bo;
    bo.disks = {dir_.Sub("d0"), dir_.Sub("d1")};
    auto blobs = replication::OpenLocalBlobStore(bo);
    ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
    meta::ObjectStoreOptions o;
    o.dir = dir_.Sub("meta");
    o.blobs = std::move(*blobs);
    o.chunk_bytes = 1 << 20;
    auto store = meta::ObjectStore::Open(std::move(o));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    node::RpcServiceOptions so;
    so.listen = "127.0.0.1:0";
    auto service = node::RpcService::Start(*store_, TestSecrets(), so);
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(*service);
    ClientOptions co;
    co.chunk_bytes = 1 << 20;
    co.parallel_chunks = 4;
    auto client =
        Client::Connect("127.0.0.1:" + std::to_string(service_->port()), kTestCredentials, co);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
    ASSERT_OK(client_->CreateBucket("bkt"));
  }

  void TearDown() override {
    client_.reset();
    service_.reset();
    if (store_) {
      EXPECT_TRUE(store_->Close().ok());
    }
  }

  TempDir dir_;
  std::unique_ptr<meta::ObjectStore> store_;
  std::unique_ptr<node::RpcService> service_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientStoreTest, ObjectsOfEverySize) {
  for (size_t size :
       {size_t{0}, size_t{100}, size_t{5000}, size_t{1} << 20, (size_t{9} << 20) + 17}) {
    std::string key = "obj-" + std::to_string(size);
    std::string data = Pattern(size, static_cast<uint32_t>(size));
    PutOptions po;
    po.content_type = "application/x-test";
    po.user_metadata = {{"size", std::to_string(size)}};
    Result<ObjectInfo> put = client_->Put("bkt", key, data, po);
    ASSERT_TRUE(put.ok()) << size << ": " << put.status().ToString();
    EXPECT_EQ(put->etag, Md5Hex(data));

    Result<std::string> got = client_->Get("bkt", key);
    ASSERT_TRUE(got.ok()) << size << ": " << got.status().ToString();
    EXPECT_TRUE(*got == data) << size;

    std::string buf(size, '\0');
    Result<size_t> into = client_->GetInto("bkt", key, std::span<char>(buf));
    ASSERT_TRUE(into.ok()) << into.status().ToString();
    EXPECT_TRUE(buf == data);

    Result<ObjectInfo> head = client_->Head("bkt", key, {});
    Result<ObjectInfo> direct = store_->Head("bkt", key, {});
    ASSERT_TRUE(head.ok() && direct.ok());
    EXPECT_EQ(head->version, direct->version);
    EXPECT_EQ(head->etag, direct->etag);
    EXPECT_EQ(head->content_type, "application/x-test");
    EXPECT_EQ(head->user_metadata, po.user_metadata);

    if (size > 10) {
      GetOptions range;
      range.offset = size / 3;
      range.length = size / 2;
      got = client_->Get("bkt", key, range);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(*got == data.substr(size / 3, size / 2));
    }
  }
}

TEST_F(ClientStoreTest, ErrorsAreTheStoresErrors) {
  ASSERT_TRUE(client_->Put("bkt", "k", "v").ok());
  EXPECT_EQ(client_->Get("bkt", "missing").status(), store_->Get("bkt", "missing").status());
  EXPECT_EQ(client_->Get("nobkt", "k").status(), store_->Get("nobkt", "k").status());
  EXPECT_EQ(client_->CreateBucket("bkt"), store_->CreateBucket("bkt"));
  EXPECT_EQ(client_->DeleteBucket("bkt"), store_->DeleteBucket("bkt"));
  EXPECT_EQ(client_->Put("bkt", "a/../b", "x").status(),
            store_->Put("bkt", "a/../b", "x").status());
  GetOptions past;
  past.offset = 10;
  EXPECT_EQ(client_->Get("bkt", "k", past).status(), store_->Get("bkt", "k", past).status());
  PutOptions create_only;
  create_only.conditions.if_none_match = "*";
  Status st = client_->Put("bkt", "k", "w", create_only).status();
  EXPECT_EQ(st.code(), Code::kPreconditionFailed) << st.ToString();
}

TEST_F(ClientStoreTest, BatchesListAndDelete) {
  std::vector<std::string> keys;
  std::vector<std::string> data;
  for (int i = 0; i < 50; ++i) {
    keys.push_back("batch/" + std::to_string(1000 + i));
    data.push_back(Pattern(i * 301, i));
  }
  std::vector<PutItem> items;
  for (int i = 0; i < 50; ++i) items.push_back(PutItem{keys[i], data[i], {}});
  for (const auto& r : client_->PutMany("bkt", items)) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::vector<Result<std::string>> got = client_->GetMany("bkt", keys);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status().ToString();
    EXPECT_TRUE(*got[i] == data[i]);
  }
  ListOptions lo;
  lo.prefix = "batch/";
  lo.max_keys = 20;
  size_t listed = 0;
  for (;;) {
    Result<ListResult> page = client_->List("bkt", lo);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    listed += page->objects.size();
    if (!page->truncated) break;
    lo.continuation_token = page->next_continuation_token;
  }
  EXPECT_EQ(listed, 50u);
  for (const Status& s : client_->DeleteMany("bkt", keys)) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(client_->Get("bkt", keys[0]).status().code(), Code::kNotFound);
}

TEST_F(ClientStoreTest, MultipartUpload) {
  Result<std::string> id = client_->CreateMultipartUpload("bkt", "mp", {});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  std::string p1 = Pattern(kMinPartBytes, 1), p2 = Pattern(1000, 2);
  std::vector<CompletedPart> parts;
  int n = 1;
  for (const std::string* p : {&p1, &p2}) {
    auto w = client_->UploadPart("bkt", "mp", *id, n, "", UINT64_MAX);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_OK((*w)->Append(*p));
    Result<ObjectInfo> info = (*w)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    parts.push_back({n++, info->etag});
  }
  Result<ObjectInfo> done = client_->CompleteMultipartUpload("bkt", "mp", *id, parts, {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->parts, 2u);
  EXPECT_TRUE(*client_->Get("bkt", "mp") == p1 + p2);
}

}  // namespace
}  // namespace granary::testing
