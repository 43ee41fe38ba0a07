// MemoryObjectApi: an in-memory ObjectApi for tests (the native client's, the RPC service's and
// the S3 gateway's), with the semantics of include/granary/object_api.h as meta::ObjectStore
// implements them: conditions (HTTP dates compared in whole seconds), ranges, listings with
// delimiters and continuation tokens, multipart uploads. It adds counters and hooks that let a
// test see how requests reached it. Subclass it and override a method to inject a fault.
//
// Thread-safe: one mutex guards the buckets and uploads; counters are atomics.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "granary/object_api.h"

namespace granary::testing {

class MemoryObjectApi : public ObjectApi {
 public:
  using ObjectApi::CreateBucket;
  Status CreateBucket(std::string_view bucket, const BucketOptions& options) override;
  Status DeleteBucket(std::string_view bucket) override;
  Result<BucketInfo> HeadBucket(std::string_view bucket) override;
  Result<std::vector<BucketInfo>> ListBuckets() override;
  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view bucket, std::string_view key,
                                                 PutOptions options) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view bucket, std::string_view key,
                                             const GetOptions& options) override;
  Result<ObjectInfo> Head(std::string_view bucket, std::string_view key,
                          const GetOptions& options) override;
  Status Delete(std::string_view bucket, std::string_view key) override;
  Result<ObjectInfo> Copy(std::string_view src_bucket, std::string_view src_key,
                          std::string_view dst_bucket, std::string_view dst_key,
                          const CopyOptions& options) override;
  Result<ListResult> List(std::string_view bucket, const ListOptions& options) override;
  std::vector<Result<ObjectInfo>> PutMany(std::string_view bucket,
                                          std::span<const PutItem> items) override;
  std::vector<Result<std::string>> GetMany(std::string_view bucket,
                                           std::span<const std::string> keys) override;
  std::vector<Status> DeleteMany(std::string_view bucket,
                                 std::span<const std::string> keys) override;
  Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                            PutOptions options) override;
  Result<std::unique_ptr<ObjectWriter>> UploadPart(std::string_view bucket, std::string_view key,
                                                   std::string_view upload_id, int part_number,
                                                   std::string content_md5,
                                                   uint64_t expected_size) override;
  Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id,
                                             std::span<const CompletedPart> parts,
                                             const Conditions& conditions) override;
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id) override;
  Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key,
                                    std::string_view upload_id, int part_number_marker,
                                    int max_parts) override;
  Result<ListUploadsResult> ListMultipartUploads(std::string_view bucket,
                                                 const ListUploadsOptions& options) override;

  // Hooks.
  // Parts below this size (all but the last) make CompleteMultipartUpload kEntityTooSmall.
  // Default kMinPartBytes. Set it before the test sends requests.
  void set_min_part_bytes(uint64_t n) { min_part_bytes_ = n; }
  // Objects in `bucket` (0 when there is no such bucket).
  size_t object_count(std::string_view bucket);
  // Writers begun and neither committed nor destroyed yet.
  int open_writers() const { return open_writers_.load(); }
  // Waits until no writer is open; false after `timeout_ms`.
  bool WaitNoOpenWriters(int timeout_ms);

  // Counters.
  std::atomic<int> opens{0};           // Open() calls
  std::atomic<int> pinned_opens{0};    // Open() calls with Conditions::if_version set
  std::atomic<int> put_many_calls{0};  // PutMany() calls (each one request)
  std::atomic<int> get_many_calls{0};
  std::atomic<int> delete_many_calls{0};
  std::atomic<uint64_t> largest_append{0};  // bytes of the largest ObjectWriter::Append()
  std::atomic<int> appends{0};
  std::atomic<int> abandoned_writers{0};  // writers destroyed without a successful Commit()

 private:
  class Writer;

  struct Object {
    ObjectInfo info;
    std::shared_ptr<const std::string> data;
  };
  struct Upload {
    std::string bucket;
    std::string key;
    PutOptions options;
    int64_t initiated_ns = 0;
    std::map<int, Object> parts;  // info.parts holds the part number
  };
  struct Bucket {
    BucketInfo info;
    std::map<std::string, Object, std::less<>> objects;
  };

  // REQUIRES: mu_ held. Checks `options.conditions` against the current object and stores.
  Result<ObjectInfo> StoreLocked(const std::string& bucket, const std::string& key,
                                 const PutOptions& options, std::string data, std::string etag,
                                 uint32_t parts);
  Result<ObjectInfo> CommitObject(const std::string& bucket, const std::string& key,
                                  const PutOptions& options, std::string data);
  Result<ObjectInfo> CommitPart(const std::string& bucket, const std::string& upload_id,
                                int part_number, std::string data);
  // REQUIRES: mu_ held. The upload `upload_id` of `bucket`/`key`, or null.
  Upload* FindUploadLocked(std::string_view bucket, std::string_view key,
                           std::string_view upload_id);
  void WriterOpened();
  void WriterClosed();

  std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::map<std::string, Upload, std::less<>> uploads_;
  uint64_t next_version_ = 1;
  uint64_t next_upload_ = 1;
  std::atomic<uint64_t> min_part_bytes_{kMinPartBytes};

  std::mutex writers_mu_;
  std::condition_variable writers_cv_;
  std::atomic<int> open_writers_{0};
};

// Hex MD5 of `data`: the ETag of an object written with one PUT.
std::string Md5Hex(std::string_view data);

}  // namespace granary::testing
