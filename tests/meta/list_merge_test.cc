#include "meta/list_merge.h"

#include <gtest/gtest.h>

#include "meta/keys.h"

namespace granary::meta {
namespace {

ListResult Part(std::vector<std::string> keys, std::vector<std::string> prefixes,
                bool truncated = false) {
  ListResult r;
  for (std::string& k : keys) {
    ObjectInfo info;
    info.key = std::move(k);
    r.objects.push_back(std::move(info));
  }
  r.common_prefixes = std::move(prefixes);
  r.truncated = truncated;
  return r;
}

std::vector<std::string> Keys(const ListResult& r) {
  std::vector<std::string> out;
  for (const ObjectInfo& o : r.objects) out.push_back(o.key);
  return out;
}

TEST(MergeListingsTest, InterleavesPartsInKeyOrder) {
  std::vector<ListResult> parts = {Part({"a", "c", "e"}, {}), Part({"b", "d"}, {"b/"})};
  ListResult all = MergeListings(parts, 1000);
  EXPECT_EQ(Keys(all), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(all.common_prefixes, std::vector<std::string>{"b/"});
  EXPECT_FALSE(all.truncated);
  EXPECT_TRUE(all.next_continuation_token.empty());
}

TEST(MergeListingsTest, TruncatesAtMaxAndResumesAfterTheLastName) {
  std::vector<ListResult> parts = {Part({"a", "c"}, {}), Part({"b"}, {"d/"})};
  ListResult first = MergeListings(parts, 2);
  EXPECT_EQ(Keys(first), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(first.truncated);
  EXPECT_EQ(first.next_marker, "b");
  auto position = DecodeContinuation(first.next_continuation_token);
  ASSERT_TRUE(position.has_value());
  EXPECT_FALSE(position->after_prefix);
  EXPECT_EQ(position->name, "b");
  // Ending on a common prefix resumes after every key under it.
  std::vector<ListResult> with_prefix = {Part({"a"}, {}), Part({}, {"b/"}), Part({"c"}, {})};
  ListResult third = MergeListings(with_prefix, 2);
  EXPECT_EQ(third.next_marker, "b/");
  position = DecodeContinuation(third.next_continuation_token);
  ASSERT_TRUE(position.has_value());
  EXPECT_TRUE(position->after_prefix);
}

TEST(MergeListingsTest, APartTruncatedMakesTheMergeTruncated) {
  // Each part listed 2 names of more: the merge's first 2 are the whole listing's first 2.
  std::vector<ListResult> parts = {Part({"a", "d"}, {}, true), Part({"b", "c"}, {}, true)};
  ListResult merged = MergeListings(parts, 2);
  EXPECT_EQ(Keys(merged), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(merged.truncated);
  std::vector<ListResult> short_parts = {Part({"a"}, {}, false), Part({"b", "c"}, {}, true)};
  merged = MergeListings(short_parts, 3);
  EXPECT_EQ(Keys(merged), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(merged.truncated);
}

TEST(MergeListingsTest, ACommonPrefixOfSeveralPartsCountsOnce) {
  // Delimiter "-": "x-1/..." and "x-2/..." live in different partitions, both roll up to "x-".
  std::vector<ListResult> parts = {Part({}, {"x-"}), Part({"w"}, {"x-", "y-"})};
  ListResult merged = MergeListings(parts, 2);
  EXPECT_EQ(Keys(merged), std::vector<std::string>{"w"});
  EXPECT_EQ(merged.common_prefixes, std::vector<std::string>{"x-"});
  EXPECT_TRUE(merged.truncated);
  merged = MergeListings(parts, 10);
  EXPECT_EQ(merged.common_prefixes, (std::vector<std::string>{"x-", "y-"}));
  EXPECT_FALSE(merged.truncated);
}

TEST(MergeListingsTest, UploadsKeepTheirPartsOrderAndMarkers) {
  ListUploadsResult a, b;
  a.uploads = {{"k", "u2", 1}, {"k", "u1", 2}};
  b.uploads = {{"j", "u9", 3}};
  b.common_prefixes = {"m/"};
  std::vector<ListUploadsResult> parts = {a, b};
  ListUploadsResult merged = MergeUploadListings(parts, 2);
  ASSERT_EQ(merged.uploads.size(), 2u);
  EXPECT_EQ(merged.uploads[0].upload_id, "u9");
  EXPECT_EQ(merged.uploads[1].upload_id, "u2");
  EXPECT_TRUE(merged.truncated);
  EXPECT_EQ(merged.next_key_marker, "k");
  EXPECT_EQ(merged.next_upload_id_marker, "u2");
  merged = MergeUploadListings(parts, 10);
  EXPECT_EQ(merged.uploads.size(), 3u);
  EXPECT_EQ(merged.common_prefixes, std::vector<std::string>{"m/"});
  EXPECT_FALSE(merged.truncated);
}

}  // namespace
}  // namespace granary::meta
