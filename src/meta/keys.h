// The layout of the namespace's keys in RocksDB (docs/formats/meta.md). Every key of a bucket
// begins with a one-byte kind, then the bucket's name and a 0 byte (bucket names never contain
// one), so a bucket's objects are one contiguous range ordered by key bytes.
//
//   B <bucket>                                  BucketRecord
//   O <bucket> 0 <key>                          ObjectRecord
//   U <bucket> 0 <key> 0 <upload id>            UploadRecord
//   P <upload id> 0 <part number, 4 bytes BE>   PartRecord
//   D <bucket> 0 <chain, 4 bytes BE>            (empty) a partition holding a shard of the bucket
//   G <sequence, 8 bytes BE>                    GarbageRecord
//   C <version, 8 bytes BE>                     PendingCommit: a record whose data is being synced
//   I <version, 8 bytes BE>                     IntentRecord (in the intents database)
//   V                                           the end of the last reserved block of versions
//
// Blob keys in the BlobStore: 'd' <version, 8 bytes BE> <chunk index, 4 bytes BE>.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace granary::meta {

std::string BucketKey(std::string_view bucket);
std::string ObjectKey(std::string_view bucket, std::string_view key);
std::string ObjectPrefix(std::string_view bucket);  // O <bucket> 0
std::string UploadKey(std::string_view bucket, std::string_view key, std::string_view upload_id);
std::string UploadPrefix(std::string_view bucket);  // U <bucket> 0
std::string ShardKey(std::string_view bucket, uint32_t chain);
std::string ShardPrefix(std::string_view bucket);  // D <bucket> 0
std::string PartKey(std::string_view upload_id, uint32_t part_number);
std::string PartPrefix(std::string_view upload_id);
std::string GarbageKey(uint64_t seq);
std::string IntentKey(uint64_t version);
std::string PendingCommitKey(uint64_t version);
inline constexpr std::string_view kVersionKey = "V";
inline constexpr char kGarbageKind = 'G';
inline constexpr char kIntentKind = 'I';
inline constexpr char kBucketKind = 'B';
inline constexpr char kPendingCommitKind = 'C';

// A data blob's key: `prefix` (ObjectStoreOptions::blob_prefix; empty on a single server),
// then 'd', the version and the chunk.
std::string BlobKey(std::string_view prefix, uint64_t version, uint32_t chunk);

void PutBigEndian64(std::string* out, uint64_t v);
void PutBigEndian32(std::string* out, uint32_t v);
uint64_t GetBigEndian64(std::string_view in);  // REQUIRES: in.size() >= 8
uint32_t GetBigEndian32(std::string_view in);  // REQUIRES: in.size() >= 4

// The smallest string greater than every string that starts with `prefix`; empty if none
// (the prefix is all 0xff bytes).
std::string PrefixSuccessor(std::string_view prefix);

// Continuation tokens of listings: opaque, URL-safe, and stable across restarts: they name the
// place to resume (after a key, or after every key under a common prefix).
struct ListPosition {
  bool after_prefix = false;  // resume after every key starting with `name`
  std::string name;
};
std::string EncodeContinuation(const ListPosition& position);
std::optional<ListPosition> DecodeContinuation(std::string_view token);

}  // namespace granary::meta
