// MemObjectApi: an in-memory ObjectApi for the client and service tests, with the semantics of
// include/granary/object_api.h (conditions, ranges, listings with delimiters and continuation,
// multipart uploads) and counters that let tests see how requests reached it.
// Thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "granary/object_api.h"

namespace granary::testing {

class MemObjectApi : public ObjectApi {
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

  // Counters.
  std::atomic<int> opens{0};           // Open() calls
  std::atomic<int> pinned_opens{0};    // Open() calls with Conditions::if_version set
  std::atomic<int> put_many_calls{0};  // PutMany() calls (each one request)
  std::atomic<int> get_many_calls{0};
  std::atomic<int> delete_many_calls{0};
  std::atomic<uint64_t> largest_append{0};  // bytes of the largest ObjectWriter::Append()
  std::atomic<int> appends{0};
  std::atomic<int> abandoned_writers{0};  // writers destroyed without Commit()

  std::vector<Result<ObjectInfo>> PutMany(std::string_view bucket,
                                          std::span<const PutItem> items) override {
    ++put_many_calls;
    return ObjectApi::PutMany(bucket, items);
  }
  std::vector<Result<std::string>> GetMany(std::string_view bucket,
                                           std::span<const std::string> keys) override {
    ++get_many_calls;
    return ObjectApi::GetMany(bucket, keys);
  }
  std::vector<Status> DeleteMany(std::string_view bucket,
                                 std::span<const std::string> keys) override {
    ++delete_many_calls;
    return ObjectApi::DeleteMany(bucket, keys);
  }

  // Used by the writers.
  struct Object {
    ObjectInfo info;
    std::shared_ptr<const std::string> data;
  };
  Result<ObjectInfo> CommitObject(const std::string& bucket, const std::string& key,
                                  const PutOptions& options, std::string data);
  Result<ObjectInfo> CommitPart(const std::string& bucket, const std::string& upload_id,
                                int part_number, std::string data);

 private:
  struct Upload {
    std::string bucket;
    std::string key;
    PutOptions options;
    int64_t initiated_ns = 0;
    std::map<int, Object> parts;
  };
  struct Bucket {
    BucketInfo info;
    std::map<std::string, Object> objects;
  };

  std::mutex mu_;
  std::map<std::string, Bucket, std::less<>> buckets_;
  std::map<std::string, Upload, std::less<>> uploads_;
  uint64_t next_version_ = 1;
  uint64_t next_upload_ = 1;
};

// Hex MD5 of `data`.
std::string Md5Hex(std::string_view data);

}  // namespace granary::testing
