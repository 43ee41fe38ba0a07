// The native client against RpcService over a MemoryObjectApi: every ObjectApi call, with its
// results and its errors (code and message) exactly as the API gave them.
#include "granary/client.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "client/client_fixture.h"

namespace granary::testing {
namespace {

TEST_F(ClientTest, Buckets) {
  ASSERT_OK(client_->CreateBucket("alpha"));
  ASSERT_OK(client_->CreateBucket("beta"));
  Status again = client_->CreateBucket("alpha");
  EXPECT_EQ(again, api_->CreateBucket("alpha"));  // code and message cross intact
  EXPECT_EQ(again.code(), Code::kAlreadyExists);

  Result<BucketInfo> head = client_->HeadBucket("alpha");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->name, "alpha");
  EXPECT_EQ(head->created_ns, api_->HeadBucket("alpha")->created_ns);

  Result<std::vector<BucketInfo>> list = client_->ListBuckets();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_EQ((*list)[1].name, "beta");

  Status bad = client_->CreateBucket("Bad_Name");
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_EQ(bad, api_->CreateBucket("Bad_Name"));

  ASSERT_OK(client_->Put("beta", "k", "v").status());
  EXPECT_CODE(client_->DeleteBucket("beta"), Code::kBucketNotEmpty);
  ASSERT_OK(client_->DeleteBucket("alpha"));
  Result<BucketInfo> gone = client_->HeadBucket("alpha");
  EXPECT_EQ(gone.status().code(), Code::kNoSuchBucket);
  EXPECT_EQ(gone.status(), api_->HeadBucket("alpha").status());
}

TEST_F(ClientTest, PutGetHeadDelete) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  PutOptions options;
  options.content_type = "text/plain";
  options.user_metadata = {{"owner", "ann"}, {"tag", "x"}};
  options.headers = {{"cache-control", "no-cache"}};
  Result<ObjectInfo> put = client_->Put("bkt", "dir/file.txt", "hello world", options);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, 11u);
  EXPECT_EQ(put->etag, Md5Hex("hello world"));
  EXPECT_NE(put->version, 0u);

  Result<std::string> got = client_->Get("bkt", "dir/file.txt");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "hello world");

  Result<ObjectInfo> head = client_->Head("bkt", "dir/file.txt", {});
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->bucket, "bkt");
  EXPECT_EQ(head->key, "dir/file.txt");
  EXPECT_EQ(head->content_type, "text/plain");
  EXPECT_EQ(head->user_metadata, options.user_metadata);
  EXPECT_EQ(head->headers, options.headers);
  EXPECT_EQ(head->version, put->version);
  EXPECT_EQ(head->mtime_ns, put->mtime_ns);

  ASSERT_OK(client_->Delete("bkt", "dir/file.txt"));
  EXPECT_EQ(client_->Get("bkt", "dir/file.txt").status(),
            api_->Get("bkt", "dir/file.txt").status());
  EXPECT_CODE(client_->Delete("bkt", "dir/file.txt"), Code::kNotFound);
  EXPECT_CODE(client_->Put("nobucket", "k", "v").status(), Code::kNoSuchBucket);
  EXPECT_CODE(client_->Get("nobucket", "k").status(), Code::kNoSuchBucket);
  EXPECT_EQ(client_->Put("bkt", "a/../b", "v").status(), api_->Put("bkt", "a/../b", "v").status());
}

TEST_F(ClientTest, EmptyObject) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  Result<ObjectInfo> put = client_->Put("bkt", "empty", "");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->size, 0u);
  Result<std::string> got = client_->Get("bkt", "empty");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "");
  char buf[1];
  Result<size_t> into = client_->GetInto("bkt", "empty", std::span<char>(buf, 0));
  ASSERT_TRUE(into.ok());
  EXPECT_EQ(*into, 0u);
}

TEST_F(ClientTest, Conditions) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  Result<ObjectInfo> put = client_->Put("bkt", "k", "data");
  ASSERT_TRUE(put.ok());

  GetOptions none_match;
  none_match.conditions.if_none_match = "\"" + put->etag + "\"";
  EXPECT_CODE(client_->Get("bkt", "k", none_match).status(), Code::kNotModified);
  EXPECT_CODE(client_->Head("bkt", "k", none_match).status(), Code::kNotModified);

  GetOptions match;
  match.conditions.if_match = "other";
  Status st = client_->Get("bkt", "k", match).status();
  EXPECT_EQ(st.code(), Code::kPreconditionFailed);
  EXPECT_EQ(st, api_->Get("bkt", "k", match).status());

  GetOptions version;
  version.conditions.if_version = put->version;
  EXPECT_TRUE(client_->Get("bkt", "k", version).ok());
  version.conditions.if_version = put->version + 100;
  EXPECT_CODE(client_->Get("bkt", "k", version).status(), Code::kPreconditionFailed);

  PutOptions create_only;
  create_only.conditions.if_none_match = "*";
  EXPECT_CODE(client_->Put("bkt", "k", "new", create_only).status(), Code::kPreconditionFailed);
  EXPECT_EQ(*client_->Get("bkt", "k"), "data");
  ASSERT_TRUE(client_->Put("bkt", "k2", "new", create_only).ok());

  PutOptions digest;
  digest.content_md5 = "AAAAAAAAAAAAAAAAAAAAAA==";
  EXPECT_CODE(client_->Put("bkt", "k3", "x", digest).status(), Code::kBadDigest);
  EXPECT_CODE(client_->Head("bkt", "k3", {}).status(), Code::kNotFound);
}

TEST_F(ClientTest, Ranges) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  std::string data = Pattern(1000);
  ASSERT_TRUE(client_->Put("bkt", "k", data).ok());

  GetOptions range;
  range.offset = 10;
  range.length = 20;
  EXPECT_EQ(*client_->Get("bkt", "k", range), data.substr(10, 20));
  range.length = UINT64_MAX;
  EXPECT_EQ(*client_->Get("bkt", "k", range), data.substr(10));
  range.offset = 990;
  range.length = 100;  // cut at the end
  EXPECT_EQ(*client_->Get("bkt", "k", range), data.substr(990));

  GetOptions suffix;
  suffix.suffix_length = 7;
  auto reader = client_->Open("bkt", "k", suffix);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->offset(), 993u);
  EXPECT_EQ((*reader)->length(), 7u);
  EXPECT_EQ(*client_->Get("bkt", "k", suffix), data.substr(993));

  GetOptions past;
  past.offset = 1000;
  Status st = client_->Get("bkt", "k", past).status();
  EXPECT_EQ(st.code(), Code::kInvalidRange);
  EXPECT_EQ(st, api_->Get("bkt", "k", past).status());
}

TEST_F(ClientTest, ListWithDelimiterAndContinuation) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  for (std::string key : {"a/1", "a/2", "b", "c/x/1", "c/y", "d"}) {
    ASSERT_TRUE(client_->Put("bkt", key, key).ok());
  }
  ListOptions options;
  options.delimiter = "/";
  options.max_keys = 2;
  std::vector<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    Result<ListResult> r = client_->List("bkt", options);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Result<ListResult> direct = api_->List("bkt", options);
    ASSERT_EQ(r->objects.size(), direct->objects.size());
    for (const ObjectInfo& o : r->objects) seen.push_back(o.key);
    for (const std::string& p : r->common_prefixes) seen.push_back(p);
    EXPECT_EQ(r->next_continuation_token, direct->next_continuation_token);
    EXPECT_EQ(r->next_marker, direct->next_marker);
    if (!r->truncated) break;
    options.continuation_token = r->next_continuation_token;
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"a/", "b", "c/", "d"}));

  ListOptions prefix;
  prefix.prefix = "c/";
  Result<ListResult> r = client_->List("bkt", prefix);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->objects[0].key, "c/x/1");
  EXPECT_EQ(r->objects[0].etag, Md5Hex("c/x/1"));
  EXPECT_CODE(client_->List("nobucket", {}).status(), Code::kNoSuchBucket);
}

TEST_F(ClientTest, Copy) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  PutOptions options;
  options.content_type = "image/png";
  options.user_metadata = {{"a", "1"}};
  ASSERT_TRUE(client_->Put("bkt", "src", "payload", options).ok());

  Result<ObjectInfo> copy = client_->Copy("bkt", "src", "bkt", "dst", {});
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ(copy->content_type, "image/png");
  EXPECT_EQ(copy->user_metadata, options.user_metadata);
  EXPECT_EQ(*client_->Get("bkt", "dst"), "payload");

  CopyOptions replace;
  replace.replace_metadata = true;
  replace.put.content_type = "text/plain";
  copy = client_->Copy("bkt", "src", "bkt", "dst2", replace);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->content_type, "text/plain");
  EXPECT_TRUE(copy->user_metadata.empty());

  CopyOptions cond;
  cond.source_conditions.if_match = "nope";
  EXPECT_CODE(client_->Copy("bkt", "src", "bkt", "dst3", cond).status(), Code::kPreconditionFailed);
  EXPECT_CODE(client_->Copy("bkt", "missing", "bkt", "dst3", {}).status(), Code::kNotFound);
}

TEST_F(ClientTest, MultipartUpload) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  PutOptions options;
  options.content_type = "application/x-tar";
  Result<std::string> id = client_->CreateMultipartUpload("bkt", "big", options);
  ASSERT_TRUE(id.ok()) << id.status().ToString();

  std::string part1 = Pattern(kMinPartBytes, 1);
  std::string part2 = Pattern(12345, 2);
  std::vector<CompletedPart> parts;
  for (auto [n, data] : {std::pair{1, &part1}, std::pair{2, &part2}}) {
    auto writer = client_->UploadPart("bkt", "big", *id, n, "", data->size());
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    // Several appends of uneven sizes.
    ASSERT_OK((*writer)->Append(std::string_view(*data).substr(0, 1000)));
    ASSERT_OK((*writer)->Append(std::string_view(*data).substr(1000)));
    Result<ObjectInfo> info = (*writer)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->etag, Md5Hex(*data));
    parts.push_back(CompletedPart{n, "\"" + info->etag + "\""});
  }

  Result<ListPartsResult> listed = client_->ListParts("bkt", "big", *id, 0, 1);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->parts.size(), 1u);
  EXPECT_TRUE(listed->truncated);
  EXPECT_EQ(listed->next_part_number_marker, 1);
  EXPECT_EQ(listed->parts[0].size, part1.size());
  listed = client_->ListParts("bkt", "big", *id, 1, 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->parts.size(), 1u);
  EXPECT_EQ(listed->parts[0].part_number, 2);

  ListUploadsOptions uo;
  Result<ListUploadsResult> uploads = client_->ListMultipartUploads("bkt", uo);
  ASSERT_TRUE(uploads.ok());
  ASSERT_EQ(uploads->uploads.size(), 1u);
  EXPECT_EQ(uploads->uploads[0].upload_id, *id);
  EXPECT_EQ(uploads->uploads[0].key, "big");

  // A wrong ETag is kInvalidPart, with the API's message.
  std::vector<CompletedPart> wrong = {parts[0], CompletedPart{2, "0123"}};
  Status st = client_->CompleteMultipartUpload("bkt", "big", *id, wrong, {}).status();
  EXPECT_EQ(st.code(), Code::kInvalidPart);
  EXPECT_EQ(st.message(), "part 2 is missing, out of order or has another ETag");

  Result<ObjectInfo> done = client_->CompleteMultipartUpload("bkt", "big", *id, parts, {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->parts, 2u);
  EXPECT_EQ(done->size, part1.size() + part2.size());
  EXPECT_EQ(done->content_type, "application/x-tar");
  EXPECT_TRUE(done->etag.ends_with("-2"));
  EXPECT_EQ(*client_->Get("bkt", "big"), part1 + part2);

  EXPECT_CODE(client_->AbortMultipartUpload("bkt", "big", *id), Code::kNoSuchUpload);
  // A writer's errors may arrive with its first Append or at Commit.
  auto late = client_->UploadPart("bkt", "big", *id, 1, "", 1);
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  (*late)->Append("x").IgnoreError();
  EXPECT_CODE((*late)->Commit().status(), Code::kNoSuchUpload);
}

TEST_F(ClientTest, MultipartErrors) {
  ASSERT_OK(client_->CreateBucket("bkt"));
  Result<std::string> id = client_->CreateMultipartUpload("bkt", "k", {});
  ASSERT_TRUE(id.ok());
  std::vector<CompletedPart> parts;
  for (int n = 1; n <= 2; ++n) {
    auto writer = client_->UploadPart("bkt", "k", *id, n, "", UINT64_MAX);  // chunked
    ASSERT_TRUE(writer.ok());
    ASSERT_OK((*writer)->Append("small part"));
    Result<ObjectInfo> info = (*writer)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    parts.push_back({n, info->etag});
  }
  Status st = client_->CompleteMultipartUpload("bkt", "k", *id, parts, {}).status();
  EXPECT_EQ(st.code(), Code::kEntityTooSmall);
  EXPECT_EQ(st.message(), "part 1 is below 5 MiB");
  ASSERT_OK(client_->AbortMultipartUpload("bkt", "k", *id));
  Result<ListUploadsResult> uploads = client_->ListMultipartUploads("bkt", {});
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->uploads.empty());
}

}  // namespace
}  // namespace granary::testing
