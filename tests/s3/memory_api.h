// An in-memory ObjectApi for the gateway's tests: buckets, objects, conditions, ranges,
// listings with prefixes and delimiters, multipart uploads. Semantics follow
// include/granary/object_api.h. Thread-safe (one mutex).
#pragma once

#include <map>
#include <memory>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

#include "granary/object_api.h"

namespace granary::s3::testing {

class MemoryApi : public ObjectApi {
 public:
  Status CreateBucket(std::string_view bucket) override;
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

  // For tests: parts below this size (but the last) are EntityTooSmall.
  void set_min_part_bytes(uint64_t n) { min_part_bytes_ = n; }
  // Writers begun and not yet committed or destroyed.
  int open_writers() const { return open_writers_.load(); }
  // Waits until no writer is open; false after `timeout_ms`.
  bool WaitNoOpenWriters(int timeout_ms);
  void WriterClosed();
  size_t object_count(std::string_view bucket);

  struct Object {
    ObjectInfo info;
    std::shared_ptr<const std::string> data;
  };
  struct Part {
    PartInfo info;
    std::string data;
  };
  struct Upload {
    std::string bucket, key;
    PutOptions options;
    int64_t initiated_ns = 0;
    std::map<int, Part> parts;
  };
  struct Bucket {
    int64_t created_ns = 0;
    std::map<std::string, Object, std::less<>> objects;
  };

  // Used by the writer: stores an object (conditions checked under the lock).
  Result<ObjectInfo> Store(std::string bucket, std::string key, std::string data,
                           const PutOptions& options, uint32_t parts, std::string etag);
  Result<PartInfo> StorePart(std::string upload_id, int part_number, std::string data);
  std::atomic<int> open_writers_{0};

 private:
  std::mutex mu_;
  std::mutex writers_mu_;
  std::condition_variable writers_cv_;
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::map<std::string, Upload, std::less<>> uploads_;
  uint64_t next_version_ = 1;
  uint64_t next_upload_ = 1;
  uint64_t min_part_bytes_ = kMinPartBytes;
};

}  // namespace granary::s3::testing
