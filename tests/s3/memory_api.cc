// The in-memory ObjectApi for tests (memory_api.h).
#include "s3/memory_api.h"

#include <algorithm>
#include <chrono>

#include "common/names.h"
#include "s3/auth.h"

namespace granary::s3::testing {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view Unquote(std::string_view e) {
  e = Trim(e);
  if (e.starts_with("W/")) e.remove_prefix(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

bool EtagMatches(std::string_view list, std::string_view etag) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view one = Unquote(list.substr(0, comma));
    if (one == "*" || one == etag) return true;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return false;
}

int64_t Seconds(int64_t ns) { return ns / 1000000000 * 1000000000; }

Status CheckRead(const ObjectInfo& info, const Conditions& c) {
  if (c.if_version != 0 && c.if_version != info.version) {
    return Status(Code::kPreconditionFailed, "the object changed");
  }
  if (!c.if_match.empty()) {
    if (!EtagMatches(c.if_match, info.etag)) {
      return Status(Code::kPreconditionFailed, "At least one of the pre-conditions you "
                                               "specified did not hold");
    }
  } else if (c.if_unmodified_since_ns != 0 && Seconds(info.mtime_ns) > c.if_unmodified_since_ns) {
    return Status(Code::kPreconditionFailed, "the object was modified since then");
  }
  if (!c.if_none_match.empty()) {
    if (EtagMatches(c.if_none_match, info.etag)) return Status(Code::kNotModified, "not modified");
  } else if (c.if_modified_since_ns != 0 && Seconds(info.mtime_ns) <= c.if_modified_since_ns) {
    return Status(Code::kNotModified, "not modified");
  }
  return Status::OK();
}

Status CheckWrite(const MemoryApi::Object* existing, const Conditions& c) {
  if (!c.if_none_match.empty() && existing != nullptr &&
      EtagMatches(c.if_none_match, existing->info.etag)) {
    return Status(Code::kPreconditionFailed, "At least one of the pre-conditions you specified "
                                             "did not hold");
  }
  if (!c.if_match.empty()) {
    if (existing == nullptr) return Status::NotFound("The specified key does not exist.");
    if (!EtagMatches(c.if_match, existing->info.etag)) {
      return Status(Code::kPreconditionFailed, "At least one of the pre-conditions you "
                                               "specified did not hold");
    }
  }
  return Status::OK();
}

Status NoBucket(std::string_view b) {
  return Status::NoSuchBucket("The specified bucket does not exist: " + std::string(b));
}
Status NoKey() { return Status::NotFound("The specified key does not exist."); }
Status NoUpload() {
  return Status(Code::kNoSuchUpload, "The specified multipart upload does not exist.");
}

class Writer : public ObjectWriter {
 public:
  Writer(MemoryApi* api, std::string bucket, std::string key, PutOptions options,
         std::string upload_id, int part_number)
      : api_(api), bucket_(std::move(bucket)), key_(std::move(key)),
        options_(std::move(options)), upload_id_(std::move(upload_id)),
        part_number_(part_number) {
    ++api_->open_writers_;
  }
  ~Writer() override {
    if (!done_) api_->WriterClosed();
  }
  Status Append(std::string_view data) override {
    data_.append(data);
    return Status::OK();
  }
  Result<ObjectInfo> Commit() override {
    Md5 md5;
    md5.Update(data_);
    std::string raw = md5.Finish();
    if (!options_.content_md5.empty() && Base64Encode(raw) != options_.content_md5) {
      return Status(Code::kBadDigest, "The Content-MD5 you specified did not match what we "
                                      "received.");
    }
    done_ = true;
    api_->WriterClosed();
    if (!upload_id_.empty()) {
      ASSIGN_OR_RETURN(PartInfo p, api_->StorePart(upload_id_, part_number_, std::move(data_)));
      ObjectInfo info;
      info.bucket = bucket_;
      info.key = key_;
      info.etag = p.etag;
      info.size = p.size;
      info.parts = static_cast<uint32_t>(part_number_);
      info.mtime_ns = p.mtime_ns;
      return info;
    }
    return api_->Store(bucket_, key_, std::move(data_), options_, 0, HexEncode(raw));
  }

 private:
  MemoryApi* api_;
  std::string bucket_, key_;
  PutOptions options_;
  std::string upload_id_;
  int part_number_;
  std::string data_;
  bool done_ = false;
};

class Reader : public ObjectReader {
 public:
  Reader(ObjectInfo info, std::shared_ptr<const std::string> data, uint64_t offset,
         uint64_t length)
      : info_(std::move(info)), data_(std::move(data)), offset_(offset), length_(length) {}
  const ObjectInfo& info() const override { return info_; }
  uint64_t offset() const override { return offset_; }
  uint64_t length() const override { return length_; }
  Result<size_t> Read(std::span<char> buf) override {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), length_ - pos_));
    std::copy_n(data_->data() + offset_ + pos_, n, buf.data());
    pos_ += n;
    return n;
  }

 private:
  ObjectInfo info_;
  std::shared_ptr<const std::string> data_;
  uint64_t offset_, length_, pos_ = 0;
};

}  // namespace

void MemoryApi::WriterClosed() {
  std::lock_guard<std::mutex> lock(writers_mu_);
  --open_writers_;
  writers_cv_.notify_all();
}

bool MemoryApi::WaitNoOpenWriters(int timeout_ms) {
  std::unique_lock<std::mutex> lock(writers_mu_);
  return writers_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                              [this] { return open_writers_.load() == 0; });
}

size_t MemoryApi::object_count(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  return it == buckets_.end() ? 0 : it->second.objects.size();
}

Status MemoryApi::CreateBucket(std::string_view bucket) {
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  std::lock_guard<std::mutex> lock(mu_);
  if (buckets_.count(bucket)) return Status::AlreadyExists("bucket exists");
  buckets_[std::string(bucket)].created_ns = NowNs();
  return Status::OK();
}

Status MemoryApi::DeleteBucket(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  if (it == buckets_.end()) return NoBucket(bucket);
  if (!it->second.objects.empty()) {
    return Status(Code::kBucketNotEmpty, "The bucket you tried to delete is not empty");
  }
  buckets_.erase(it);
  return Status::OK();
}

Result<BucketInfo> MemoryApi::HeadBucket(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  if (it == buckets_.end()) return NoBucket(bucket);
  return BucketInfo{it->first, it->second.created_ns};
}

Result<std::vector<BucketInfo>> MemoryApi::ListBuckets() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<BucketInfo> out;
  for (const auto& [name, b] : buckets_) out.push_back({name, b.created_ns});
  return out;
}

Result<std::unique_ptr<ObjectWriter>> MemoryApi::BeginPut(std::string_view bucket,
                                                          std::string_view key,
                                                          PutOptions options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!buckets_.count(bucket)) return NoBucket(bucket);
  }
  return std::unique_ptr<ObjectWriter>(
      new Writer(this, std::string(bucket), std::string(key), std::move(options), "", 0));
}

Result<ObjectInfo> MemoryApi::Store(std::string bucket, std::string key, std::string data,
                                    const PutOptions& options, uint32_t parts, std::string etag) {
  std::lock_guard<std::mutex> lock(mu_);
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return NoBucket(bucket);
  auto it = b->second.objects.find(key);
  RETURN_IF_ERROR(CheckWrite(it == b->second.objects.end() ? nullptr : &it->second,
                             options.conditions));
  Object obj;
  obj.info.bucket = bucket;
  obj.info.key = key;
  obj.info.size = data.size();
  obj.info.etag = std::move(etag);
  obj.info.content_type = options.content_type;
  obj.info.mtime_ns = NowNs();
  obj.info.version = next_version_++;
  obj.info.parts = parts;
  obj.info.user_metadata = options.user_metadata;
  obj.info.headers = options.headers;
  obj.data = std::make_shared<const std::string>(std::move(data));
  ObjectInfo info = obj.info;
  b->second.objects[key] = std::move(obj);
  return info;
}

Result<std::unique_ptr<ObjectReader>> MemoryApi::Open(std::string_view bucket,
                                                      std::string_view key,
                                                      const GetOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return NoBucket(bucket);
  auto it = b->second.objects.find(key);
  if (it == b->second.objects.end()) return NoKey();
  const Object& o = it->second;
  RETURN_IF_ERROR(CheckRead(o.info, options.conditions));
  uint64_t size = o.info.size, offset = 0, length = size;
  if (options.suffix_length != 0) {
    length = std::min(size, options.suffix_length);
    offset = size - length;
  } else if (options.has_range()) {
    if (size > 0 && options.offset >= size) {
      return Status(Code::kInvalidRange, "The requested range is not satisfiable");
    }
    offset = std::min(options.offset, size);
    length = std::min(options.length, size - offset);
  }
  return std::unique_ptr<ObjectReader>(new Reader(o.info, o.data, offset, length));
}

Result<ObjectInfo> MemoryApi::Head(std::string_view bucket, std::string_view key,
                                   const GetOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return NoBucket(bucket);
  auto it = b->second.objects.find(key);
  if (it == b->second.objects.end()) return NoKey();
  RETURN_IF_ERROR(CheckRead(it->second.info, options.conditions));
  return it->second.info;
}

Status MemoryApi::Delete(std::string_view bucket, std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return NoBucket(bucket);
  auto it = b->second.objects.find(key);
  if (it == b->second.objects.end()) return NoKey();
  b->second.objects.erase(it);
  return Status::OK();
}

Result<ObjectInfo> MemoryApi::Copy(std::string_view src_bucket, std::string_view src_key,
                                   std::string_view dst_bucket, std::string_view dst_key,
                                   const CopyOptions& options) {
  Object src;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto b = buckets_.find(src_bucket);
    if (b == buckets_.end()) return NoBucket(src_bucket);
    auto it = b->second.objects.find(src_key);
    if (it == b->second.objects.end()) return NoKey();
    src = it->second;
  }
  Status st = CheckRead(src.info, options.source_conditions);
  if (st.code() == Code::kNotModified) return Status::PreconditionFailed("not modified");
  RETURN_IF_ERROR(st);
  PutOptions put = options.put;
  if (!options.replace_metadata) {
    put.content_type = src.info.content_type;
    put.user_metadata = src.info.user_metadata;
    put.headers = src.info.headers;
  }
  return Store(std::string(dst_bucket), std::string(dst_key), *src.data, put, src.info.parts,
               src.info.etag);
}

Result<ListResult> MemoryApi::List(std::string_view bucket, const ListOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return NoBucket(bucket);
  std::string after = options.continuation_token.empty() ? options.start_after
                                                         : options.continuation_token;
  uint32_t max = std::min<uint32_t>(options.max_keys, 1000);
  ListResult out;
  auto it = after.empty() ? b->second.objects.lower_bound(options.prefix)
                          : b->second.objects.upper_bound(after);
  std::string last;
  for (; it != b->second.objects.end(); ++it) {
    const std::string& key = it->first;
    if (!key.starts_with(options.prefix)) {
      if (key > options.prefix) break;
      continue;
    }
    std::string entry;
    bool is_prefix = false;
    if (!options.delimiter.empty()) {
      size_t d = key.find(options.delimiter, options.prefix.size());
      if (d != std::string::npos) {
        entry = key.substr(0, d + options.delimiter.size());
        is_prefix = true;
        if (!out.common_prefixes.empty() && out.common_prefixes.back() == entry) continue;
        if (entry <= after) continue;
      }
    }
    if (out.objects.size() + out.common_prefixes.size() >= max) {
      out.truncated = true;
      break;
    }
    if (is_prefix) {
      out.common_prefixes.push_back(entry);
      last = entry;
      // Skip every key under this prefix: continue after the prefix's last possible key.
    } else {
      out.objects.push_back(it->second.info);
      last = key;
    }
  }
  if (out.truncated) {
    out.next_marker = last;
    // For a common prefix, continue after every key it rolls up.
    out.next_continuation_token =
        !last.empty() && last.ends_with(options.delimiter) && !options.delimiter.empty()
            ? last + "\xff"
            : last;
  }
  return out;
}

Result<std::string> MemoryApi::CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                                     PutOptions options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  if (!buckets_.count(bucket)) return NoBucket(bucket);
  std::string id = "upload-" + std::to_string(next_upload_++);
  Upload& u = uploads_[id];
  u.bucket = std::string(bucket);
  u.key = std::string(key);
  u.options = std::move(options);
  u.initiated_ns = NowNs();
  return id;
}

Result<std::unique_ptr<ObjectWriter>> MemoryApi::UploadPart(std::string_view bucket,
                                                            std::string_view key,
                                                            std::string_view upload_id,
                                                            int part_number,
                                                            std::string content_md5,
                                                            uint64_t expected_size) {
  (void)expected_size;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!buckets_.count(bucket)) return NoBucket(bucket);
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.key != key) return NoUpload();
  }
  PutOptions options;
  options.content_md5 = std::move(content_md5);
  return std::unique_ptr<ObjectWriter>(new Writer(this, std::string(bucket), std::string(key),
                                                  std::move(options), std::string(upload_id),
                                                  part_number));
}

Result<PartInfo> MemoryApi::StorePart(std::string upload_id, int part_number, std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end()) return NoUpload();
  Md5 md5;
  md5.Update(data);
  Part p;
  p.info.part_number = part_number;
  p.info.size = data.size();
  p.info.etag = md5.HexDigest();
  p.info.mtime_ns = NowNs();
  p.data = std::move(data);
  PartInfo info = p.info;
  it->second.parts[part_number] = std::move(p);
  return info;
}

Result<ObjectInfo> MemoryApi::CompleteMultipartUpload(std::string_view bucket,
                                                      std::string_view key,
                                                      std::string_view upload_id,
                                                      std::span<const CompletedPart> parts,
                                                      const Conditions& conditions) {
  std::string data, md5s, bucket_name;
  PutOptions options;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!buckets_.count(bucket)) return NoBucket(bucket);
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.key != key) return NoUpload();
    const Upload& u = it->second;
    int previous = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      const CompletedPart& cp = parts[i];
      if (cp.part_number <= previous) {
        return Status(Code::kInvalidPart, "The list of parts was not in ascending order");
      }
      previous = cp.part_number;
      auto p = u.parts.find(cp.part_number);
      if (p == u.parts.end() || Unquote(cp.etag) != p->second.info.etag) {
        return Status(Code::kInvalidPart, "One or more of the specified parts could not be "
                                          "found or its entity tag did not match");
      }
      if (i + 1 < parts.size() && p->second.info.size < min_part_bytes_) {
        return Status(Code::kEntityTooSmall, "Your proposed upload is smaller than the minimum "
                                             "allowed object size.");
      }
      data += p->second.data;
      Result<std::string> raw = HexDecode(p->second.info.etag);
      md5s += raw.ok() ? *raw : std::string();
    }
    options = u.options;
    options.conditions = conditions;
    bucket_name = u.bucket;
  }
  Md5 md5;
  md5.Update(md5s);
  std::string etag = md5.HexDigest() + "-" + std::to_string(parts.size());
  ASSIGN_OR_RETURN(ObjectInfo info, Store(bucket_name, std::string(key), std::move(data), options,
                                          static_cast<uint32_t>(parts.size()), etag));
  std::lock_guard<std::mutex> lock(mu_);
  uploads_.erase(std::string(upload_id));
  return info;
}

Status MemoryApi::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buckets_.count(bucket)) return NoBucket(bucket);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.key != key) return NoUpload();
  uploads_.erase(it);
  return Status::OK();
}

Result<ListPartsResult> MemoryApi::ListParts(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id, int part_number_marker,
                                             int max_parts) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buckets_.count(bucket)) return NoBucket(bucket);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.key != key) return NoUpload();
  ListPartsResult out;
  for (auto p = it->second.parts.upper_bound(part_number_marker); p != it->second.parts.end();
       ++p) {
    if (static_cast<int>(out.parts.size()) >= max_parts) {
      out.truncated = true;
      break;
    }
    out.parts.push_back(p->second.info);
    out.next_part_number_marker = p->first;
  }
  return out;
}

Result<ListUploadsResult> MemoryApi::ListMultipartUploads(std::string_view bucket,
                                                          const ListUploadsOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buckets_.count(bucket)) return NoBucket(bucket);
  ListUploadsResult out;
  for (const auto& [id, u] : uploads_) {
    if (u.bucket != bucket || !u.key.starts_with(options.prefix)) continue;
    if (out.uploads.size() >= options.max_uploads) {
      out.truncated = true;
      break;
    }
    out.uploads.push_back({u.key, id, u.initiated_ns});
    out.next_key_marker = u.key;
    out.next_upload_id_marker = id;
  }
  std::sort(out.uploads.begin(), out.uploads.end(),
            [](const UploadInfo& a, const UploadInfo& b) { return a.key < b.key; });
  return out;
}

}  // namespace granary::s3::testing
