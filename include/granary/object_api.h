// ObjectApi: buckets and objects, the operations every door of Granary offers (S3, the native
// protocol, Python). The server implements it in-process over its namespace and disks
// (meta::ObjectStore); the native client implements it over the network (granary::Client). The
// S3 gateway and the native protocol's service are written against this interface alone, so the
// same gateway serves a single node in-process or a cluster through the client.
//
// Thread-safety: every method of an ObjectApi may be called from any number of threads at once.
// An ObjectWriter or ObjectReader belongs to one thread at a time.
//
// Consistency: a write is atomic. Its data is stored first and becomes visible with one metadata
// commit; a reader sees the old object or the new one, never a mix. A writer destroyed without
// Commit() leaves nothing visible and its data is reclaimed.
//
// Errors: every call returns a Status whose code (include/granary/status.h) says what went wrong:
// kNoSuchBucket, kNotFound (no such key), kNoSuchUpload, kPreconditionFailed, kNotModified,
// kInvalidRange, kBadDigest, kInvalidPart, kEntityTooSmall, kBucketNotEmpty, kAlreadyExists,
// kInvalidArgument (bad name or argument; the message says which rule), kUnavailable, kIOError...
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "granary/status.h"

namespace granary {

// Limits shared by every door.
inline constexpr size_t kMaxObjectKeyBytes = 1024;           // S3's limit, in UTF-8 bytes
inline constexpr uint64_t kMaxObjectBytes = 5ull << 40;      // 5 TiB, as S3
inline constexpr uint64_t kMaxSinglePutBytes = 5ull << 30;   // one PUT (not multipart): 5 GiB
inline constexpr int kMaxPartNumber = 10000;
inline constexpr uint64_t kMinPartBytes = 5ull << 20;        // every part but the last
inline constexpr size_t kMaxUserMetadataBytes = 2048;        // names + values, as S3

inline constexpr int kMaxReplicas = 5;

struct BucketInfo {
  std::string name;
  int64_t created_ns = 0;  // ns since the Unix epoch
  int replicas = 0;        // copies of its data in a cluster; 0: the cluster's default
};

struct BucketOptions {
  // Copies a cluster keeps of the bucket's data, 1 to kMaxReplicas; 0 for the cluster's default.
  // Fixed for the bucket's life. A single server keeps one copy, and accepts 0 or 1.
  int replicas = 0;
};

struct ObjectInfo {
  std::string bucket;
  std::string key;
  uint64_t size = 0;
  // S3 ETag without quotes: hex MD5 of the bytes, or "<hex MD5 of the parts' MD5s>-<parts>" for an
  // object made by a multipart upload.
  std::string etag;
  std::string content_type;  // empty when the writer gave none
  int64_t mtime_ns = 0;      // last modified, ns since the Unix epoch
  // Different for every write of any key, never reused; lets a reader that makes several requests
  // insist on the object it started with (Conditions::if_version).
  uint64_t version = 0;
  uint32_t parts = 0;  // parts of the multipart upload that made it; 0 for a plain PUT
  // x-amz-meta-NAME headers: lower-case NAME (without the prefix) -> value.
  std::map<std::string, std::string> user_metadata;
  // Standard headers stored with the object and returned on reads, lower-case name -> value:
  // content-encoding, content-disposition, content-language, cache-control, expires.
  std::map<std::string, std::string> headers;
};

// Conditions on a request (RFC 9110 section 13, as S3 applies them). Empty / zero means absent.
// On reads: If-Match fails -> kPreconditionFailed; If-None-Match matches -> kNotModified;
// If-Unmodified-Since fails (without If-Match) -> kPreconditionFailed; If-Modified-Since fails
// (without If-None-Match) -> kNotModified. On writes: If-None-Match "*" on an existing key, or an
// If-Match that does not match -> kPreconditionFailed.
struct Conditions {
  std::string if_match;       // "*" or a comma-separated list of ETags (quoted or not)
  std::string if_none_match;  // the same
  int64_t if_modified_since_ns = 0;
  int64_t if_unmodified_since_ns = 0;
  uint64_t if_version = 0;    // the object must have this ObjectInfo::version
  bool empty() const {
    return if_match.empty() && if_none_match.empty() && if_modified_since_ns == 0 &&
           if_unmodified_since_ns == 0 && if_version == 0;
  }
};

struct PutOptions {
  std::string content_type;
  std::map<std::string, std::string> user_metadata;
  std::map<std::string, std::string> headers;  // see ObjectInfo::headers
  // The Content-MD5 the caller sent (base64 of the 16-byte MD5), checked at Commit(): a mismatch
  // is kBadDigest and nothing is stored. Empty: not checked.
  std::string content_md5;
  // The number of bytes the caller will append, when known (Content-Length); lets the store
  // choose inline, blob or chunks up front. UINT64_MAX: unknown.
  uint64_t expected_size = UINT64_MAX;
  Conditions conditions;  // evaluated at Commit(), atomically with the commit
};

// A streaming upload of one object (or one multipart part). Append() the bytes in order, then
// Commit(). Destroying the writer without a successful Commit() abandons the upload: nothing
// becomes visible and stored data is reclaimed.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  // Appends bytes; may store a chunk once enough is buffered.
  virtual Status Append(std::string_view data) = 0;
  // Makes the object visible (or records the part) and returns what was stored. For a part,
  // `key` is the object's key, `etag` the part's, `parts` its part number.
  virtual Result<ObjectInfo> Commit() = 0;
};

struct GetOptions {
  // Byte range: `offset` and `length` (UINT64_MAX: to the end), or the last `suffix_length`
  // bytes when that is set (all of them if the object is shorter). A range whose first byte is
  // at or past the object's end is kInvalidRange; a range running past the end is cut there.
  uint64_t offset = 0;
  uint64_t length = UINT64_MAX;
  uint64_t suffix_length = 0;
  bool has_range() const { return offset != 0 || length != UINT64_MAX || suffix_length != 0; }
  Conditions conditions;
};

// An open read of one object's range, pinned to the object as it was at Open(): a concurrent
// overwrite or delete does not change what this reader returns.
class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  virtual const ObjectInfo& info() const = 0;
  // The resolved range: the first byte and how many bytes the reader will return in all.
  virtual uint64_t offset() const = 0;
  virtual uint64_t length() const = 0;
  // Reads the next bytes of the range into `buf`, as many as fit; returns how many (0 at the
  // end). Bytes are verified by checksum; damaged data is kCorruption, never returned.
  virtual Result<size_t> Read(std::span<char> buf) = 0;
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;  // "" or one string (usually "/"): keys are rolled up into prefixes
  // Start after this key (S3's start-after, or V1's marker).
  std::string start_after;
  // From a previous ListResult::next_continuation_token; takes precedence over start_after.
  std::string continuation_token;
  uint32_t max_keys = 1000;  // at most 1000 are returned even if more is asked
};

struct ListResult {
  std::vector<ObjectInfo> objects;          // in key order (UTF-8 bytes)
  std::vector<std::string> common_prefixes; // in order, each once
  bool truncated = false;
  // When truncated: pass it back to continue. Opaque, stable across restarts and writes.
  std::string next_continuation_token;
  // When truncated: the last key or common prefix returned (V1's NextMarker).
  std::string next_marker;
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;  // as UploadPart returned it; quotes allowed
};

struct PartInfo {
  int part_number = 0;
  uint64_t size = 0;
  std::string etag;
  int64_t mtime_ns = 0;
};

struct ListPartsResult {
  std::vector<PartInfo> parts;
  bool truncated = false;
  int next_part_number_marker = 0;
};

struct UploadInfo {
  std::string key;
  std::string upload_id;
  int64_t initiated_ns = 0;
};

struct ListUploadsOptions {
  std::string prefix;
  std::string delimiter;
  std::string key_marker;
  std::string upload_id_marker;
  uint32_t max_uploads = 1000;
};

struct ListUploadsResult {
  std::vector<UploadInfo> uploads;  // ordered by key, then by initiation
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

struct CopyOptions {
  Conditions source_conditions;  // x-amz-copy-source-if-*
  // false: the copy keeps the source's content type and metadata (S3's COPY directive);
  // true: it takes them from `put` (REPLACE). `put.conditions` applies to the destination.
  bool replace_metadata = false;
  PutOptions put;
};

// One object of a batch put.
struct PutItem {
  std::string key;
  std::string_view data;
  PutOptions options;
};

class ObjectApi {
 public:
  virtual ~ObjectApi() = default;

  // Buckets. Names follow S3's rules (3-63 lowercase letters, digits, dots, hyphens...).
  // kAlreadyExists if it exists.
  virtual Status CreateBucket(std::string_view bucket, const BucketOptions& options) = 0;
  Status CreateBucket(std::string_view bucket) { return CreateBucket(bucket, BucketOptions{}); }
  virtual Status DeleteBucket(std::string_view bucket) = 0;  // kBucketNotEmpty unless empty
  virtual Result<BucketInfo> HeadBucket(std::string_view bucket) = 0;
  virtual Result<std::vector<BucketInfo>> ListBuckets() = 0;

  // Objects.
  virtual Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view bucket,
                                                         std::string_view key,
                                                         PutOptions options) = 0;
  virtual Result<std::unique_ptr<ObjectReader>> Open(std::string_view bucket, std::string_view key,
                                                     const GetOptions& options) = 0;
  // Info only; the conditions of `options` apply, the range does not.
  virtual Result<ObjectInfo> Head(std::string_view bucket, std::string_view key,
                                  const GetOptions& options) = 0;
  // kNotFound when there was no such key (S3 answers 204 either way).
  virtual Status Delete(std::string_view bucket, std::string_view key) = 0;
  virtual Result<ObjectInfo> Copy(std::string_view src_bucket, std::string_view src_key,
                                  std::string_view dst_bucket, std::string_view dst_key,
                                  const CopyOptions& options) = 0;
  virtual Result<ListResult> List(std::string_view bucket, const ListOptions& options) = 0;

  // Many small objects at once; one Status or result per item, in order. Implementations commit
  // a batch together where they can (one metadata commit, one round trip).
  virtual std::vector<Result<ObjectInfo>> PutMany(std::string_view bucket,
                                                  std::span<const PutItem> items);
  virtual std::vector<Result<std::string>> GetMany(std::string_view bucket,
                                                   std::span<const std::string> keys);
  virtual std::vector<Status> DeleteMany(std::string_view bucket,
                                         std::span<const std::string> keys);

  // Multipart uploads.
  virtual Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                                    PutOptions options) = 0;
  // Uploading a part number again replaces that part. `content_md5` as in PutOptions.
  virtual Result<std::unique_ptr<ObjectWriter>> UploadPart(std::string_view bucket,
                                                           std::string_view key,
                                                           std::string_view upload_id,
                                                           int part_number,
                                                           std::string content_md5,
                                                           uint64_t expected_size) = 0;
  virtual Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket,
                                                     std::string_view key,
                                                     std::string_view upload_id,
                                                     std::span<const CompletedPart> parts,
                                                     const Conditions& conditions) = 0;
  virtual Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                      std::string_view upload_id) = 0;
  virtual Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key,
                                            std::string_view upload_id, int part_number_marker,
                                            int max_parts) = 0;
  virtual Result<ListUploadsResult> ListMultipartUploads(std::string_view bucket,
                                                         const ListUploadsOptions& options) = 0;

  // Conveniences over the calls above.
  Result<ObjectInfo> Put(std::string_view bucket, std::string_view key, std::string_view data,
                         PutOptions options = {});
  // The whole object (or the range of `options`).
  Result<std::string> Get(std::string_view bucket, std::string_view key,
                          const GetOptions& options = {});
  // Reads the object's range into `buf` (which must hold it) without an intermediate copy;
  // returns the number of bytes read. kInvalidArgument if `buf` is too small.
  Result<size_t> GetInto(std::string_view bucket, std::string_view key, std::span<char> buf,
                         const GetOptions& options = {});

 protected:
  // What Put() and GetInto() do: over BeginPut() and Open() here; a store that can move the
  // bytes more directly (Client, through shared buffers) overrides them.
  virtual Result<ObjectInfo> PutBytes(std::string_view bucket, std::string_view key,
                                      std::string_view data, PutOptions options);
  virtual Result<size_t> GetBytesInto(std::string_view bucket, std::string_view key,
                                      std::span<char> buf, const GetOptions& options);
};

}  // namespace granary
