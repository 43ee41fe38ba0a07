#include "client/mem_object_api.h"

#include <openssl/evp.h>
#include <openssl/md5.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>

#include "common/names.h"

namespace granary::testing {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Md5Raw(std::string_view data) {
  unsigned char out[16];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(out), 16);
}

std::string Hex(std::string_view raw) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string Base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(n);
  return out;
}

std::string Unquote(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '"')) s.remove_suffix(1);
  return std::string(s);
}

bool EtagMatches(const std::string& list, const std::string& etag) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string item = Unquote(std::string_view(list).substr(
        start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item == "*" || item == etag) return true;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return false;
}

Status CheckRead(const ObjectInfo& info, const Conditions& c) {
  if (c.if_version != 0 && c.if_version != info.version) {
    return Status::PreconditionFailed("version is " + std::to_string(info.version) + ", not " +
                                      std::to_string(c.if_version));
  }
  if (!c.if_match.empty()) {
    if (!EtagMatches(c.if_match, info.etag)) return Status::PreconditionFailed("If-Match failed");
  } else if (c.if_unmodified_since_ns != 0 && info.mtime_ns > c.if_unmodified_since_ns) {
    return Status::PreconditionFailed("modified since If-Unmodified-Since");
  }
  if (!c.if_none_match.empty()) {
    if (EtagMatches(c.if_none_match, info.etag)) {
      return Status(Code::kNotModified, "If-None-Match matched");
    }
  } else if (c.if_modified_since_ns != 0 && info.mtime_ns <= c.if_modified_since_ns) {
    return Status(Code::kNotModified, "not modified since If-Modified-Since");
  }
  return Status::OK();
}

Status CheckWrite(const MemObjectApi::Object* existing, const Conditions& c) {
  if (c.if_none_match == "*" && existing) {
    return Status::PreconditionFailed("the key exists (If-None-Match: *)");
  }
  if (!c.if_match.empty() && (!existing || !EtagMatches(c.if_match, existing->info.etag))) {
    return Status::PreconditionFailed("If-Match failed");
  }
  if (c.if_version != 0 && (!existing || existing->info.version != c.if_version)) {
    return Status::PreconditionFailed("version does not match");
  }
  return Status::OK();
}

class MemWriter final : public ObjectWriter {
 public:
  using CommitFn = std::function<Result<ObjectInfo>(std::string)>;
  MemWriter(MemObjectApi& api, std::string content_md5, CommitFn commit)
      : api_(api), content_md5_(std::move(content_md5)), commit_(std::move(commit)) {}
  ~MemWriter() override {
    if (!committed_) ++api_.abandoned_writers;
  }
  Status Append(std::string_view data) override {
    ++api_.appends;
    uint64_t prev = api_.largest_append.load();
    while (data.size() > prev && !api_.largest_append.compare_exchange_weak(prev, data.size())) {
    }
    data_.append(data);
    return Status::OK();
  }
  Result<ObjectInfo> Commit() override {
    if (committed_) return Status::InvalidArgument("committed twice");
    if (!content_md5_.empty() && Base64(Md5Raw(data_)) != content_md5_) {
      return Status(Code::kBadDigest, "Content-MD5 does not match the bytes");
    }
    Result<ObjectInfo> r = commit_(std::move(data_));
    committed_ = r.ok();
    return r;
  }

 private:
  MemObjectApi& api_;
  std::string content_md5_;
  CommitFn commit_;
  std::string data_;
  bool committed_ = false;
};

class MemReader final : public ObjectReader {
 public:
  MemReader(ObjectInfo info, std::shared_ptr<const std::string> data, uint64_t offset,
            uint64_t length)
      : info_(std::move(info)), data_(std::move(data)), offset_(offset), length_(length) {}
  const ObjectInfo& info() const override { return info_; }
  uint64_t offset() const override { return offset_; }
  uint64_t length() const override { return length_; }
  Result<size_t> Read(std::span<char> buf) override {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), length_ - pos_));
    if (n) std::memcpy(buf.data(), data_->data() + offset_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  ObjectInfo info_;
  std::shared_ptr<const std::string> data_;
  uint64_t offset_, length_, pos_ = 0;
};

}  // namespace

std::string Md5Hex(std::string_view data) { return Hex(Md5Raw(data)); }

Status MemObjectApi::CreateBucket(std::string_view bucket) {
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  std::lock_guard<std::mutex> lock(mu_);
  if (buckets_.count(bucket)) {
    return Status::AlreadyExists("bucket \"" + std::string(bucket) + "\" already exists");
  }
  Bucket& b = buckets_[std::string(bucket)];
  b.info = BucketInfo{std::string(bucket), NowNs()};
  return Status::OK();
}

Status MemObjectApi::DeleteBucket(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  if (it == buckets_.end())
    return Status::NoSuchBucket("no bucket \"" + std::string(bucket) + "\"");
  if (!it->second.objects.empty()) {
    return Status(Code::kBucketNotEmpty, "bucket \"" + std::string(bucket) + "\" is not empty");
  }
  buckets_.erase(it);
  return Status::OK();
}

Result<BucketInfo> MemObjectApi::HeadBucket(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  if (it == buckets_.end())
    return Status::NoSuchBucket("no bucket \"" + std::string(bucket) + "\"");
  return it->second.info;
}

Result<std::vector<BucketInfo>> MemObjectApi::ListBuckets() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<BucketInfo> out;
  for (const auto& [name, b] : buckets_) out.push_back(b.info);
  return out;
}

Result<std::unique_ptr<ObjectWriter>> MemObjectApi::BeginPut(std::string_view bucket,
                                                             std::string_view key,
                                                             PutOptions options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  RETURN_IF_ERROR(HeadBucket(bucket).status());
  std::string b(bucket), k(key);
  std::string md5 = options.content_md5;
  return std::unique_ptr<ObjectWriter>(
      new MemWriter(*this, md5, [this, b, k, options = std::move(options)](std::string data) {
        return CommitObject(b, k, options, std::move(data));
      }));
}

Result<ObjectInfo> MemObjectApi::CommitObject(const std::string& bucket, const std::string& key,
                                              const PutOptions& options, std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end()) return Status::NoSuchBucket("no bucket \"" + bucket + "\"");
  auto oit = bit->second.objects.find(key);
  RETURN_IF_ERROR(
      CheckWrite(oit == bit->second.objects.end() ? nullptr : &oit->second, options.conditions));
  Object obj;
  obj.info.bucket = bucket;
  obj.info.key = key;
  obj.info.size = data.size();
  obj.info.etag = Md5Hex(data);
  obj.info.content_type = options.content_type;
  obj.info.mtime_ns = NowNs();
  obj.info.version = next_version_++;
  obj.info.user_metadata = options.user_metadata;
  obj.info.headers = options.headers;
  obj.data = std::make_shared<const std::string>(std::move(data));
  bit->second.objects[key] = obj;
  return obj.info;
}

Result<std::unique_ptr<ObjectReader>> MemObjectApi::Open(std::string_view bucket,
                                                         std::string_view key,
                                                         const GetOptions& options) {
  ++opens;
  if (options.conditions.if_version != 0) ++pinned_opens;
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end())
    return Status::NoSuchBucket("no bucket \"" + std::string(bucket) + "\"");
  auto oit = bit->second.objects.find(std::string(key));
  if (oit == bit->second.objects.end()) {
    return Status::NotFound("no key \"" + std::string(key) + "\"");
  }
  const Object& obj = oit->second;
  RETURN_IF_ERROR(CheckRead(obj.info, options.conditions));
  uint64_t size = obj.info.size, offset = 0, length = size;
  if (options.suffix_length != 0) {
    length = std::min(options.suffix_length, size);
    offset = size - length;
  } else if (options.has_range()) {
    if ((size > 0 && options.offset >= size) || (size == 0 && options.offset > 0)) {
      return Status(Code::kInvalidRange, "range starts at " + std::to_string(options.offset) +
                                             ", past the object's " + std::to_string(size) +
                                             " bytes");
    }
    offset = options.offset;
    length = std::min(options.length, size - offset);
  }
  return std::unique_ptr<ObjectReader>(new MemReader(obj.info, obj.data, offset, length));
}

Result<ObjectInfo> MemObjectApi::Head(std::string_view bucket, std::string_view key,
                                      const GetOptions& options) {
  GetOptions no_range;
  no_range.conditions = options.conditions;
  ASSIGN_OR_RETURN(auto reader, Open(bucket, key, no_range));
  return reader->info();
}

Status MemObjectApi::Delete(std::string_view bucket, std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end())
    return Status::NoSuchBucket("no bucket \"" + std::string(bucket) + "\"");
  if (bit->second.objects.erase(std::string(key)) == 0) {
    return Status::NotFound("no key \"" + std::string(key) + "\"");
  }
  return Status::OK();
}

Result<ObjectInfo> MemObjectApi::Copy(std::string_view src_bucket, std::string_view src_key,
                                      std::string_view dst_bucket, std::string_view dst_key,
                                      const CopyOptions& options) {
  GetOptions get;
  get.conditions = options.source_conditions;
  ASSIGN_OR_RETURN(auto reader, Open(src_bucket, src_key, get));
  std::string data;
  {
    std::lock_guard<std::mutex> lock(mu_);
    data = *buckets_.find(src_bucket)->second.objects.find(std::string(src_key))->second.data;
  }
  PutOptions put = options.put;
  if (!options.replace_metadata) {
    put.content_type = reader->info().content_type;
    put.user_metadata = reader->info().user_metadata;
    put.headers = reader->info().headers;
  }
  return CommitObject(std::string(dst_bucket), std::string(dst_key), put, std::move(data));
}

Result<ListResult> MemObjectApi::List(std::string_view bucket, const ListOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end())
    return Status::NoSuchBucket("no bucket \"" + std::string(bucket) + "\"");
  std::string after = options.start_after;
  if (!options.continuation_token.empty()) {
    if (options.continuation_token.rfind("k:", 0) != 0) {
      return Status::InvalidArgument("continuation token is not one this server issued");
    }
    after = options.continuation_token.substr(2);
  }
  uint32_t max = std::min<uint32_t>(options.max_keys, 1000);
  ListResult out;
  std::string last;
  for (auto it = bit->second.objects.upper_bound(after); it != bit->second.objects.end(); ++it) {
    const std::string& key = it->first;
    if (key.compare(0, options.prefix.size(), options.prefix) != 0) continue;
    std::string rolled;
    if (!options.delimiter.empty()) {
      size_t d = key.find(options.delimiter, options.prefix.size());
      if (d != std::string::npos) rolled = key.substr(0, d + options.delimiter.size());
    }
    if (!rolled.empty() && !out.common_prefixes.empty() && out.common_prefixes.back() == rolled) {
      continue;
    }
    if (out.objects.size() + out.common_prefixes.size() >= max) {
      out.truncated = true;
      break;
    }
    if (!rolled.empty()) {
      if (rolled <= after) continue;
      out.common_prefixes.push_back(rolled);
      last = rolled;
    } else {
      out.objects.push_back(it->second.info);
      last = key;
    }
  }
  if (out.truncated) {
    out.next_marker = last;
    // Continue after everything under a rolled-up prefix.
    std::string resume = last;
    if (!options.delimiter.empty() && !out.common_prefixes.empty() &&
        out.common_prefixes.back() == last) {
      resume = last + "\xff";
    }
    out.next_continuation_token = "k:" + resume;
  }
  return out;
}

Result<std::string> MemObjectApi::CreateMultipartUpload(std::string_view bucket,
                                                        std::string_view key, PutOptions options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  RETURN_IF_ERROR(HeadBucket(bucket).status());
  std::lock_guard<std::mutex> lock(mu_);
  std::string id = "upload-" + std::to_string(next_upload_++);
  Upload& u = uploads_[id];
  u.bucket = std::string(bucket);
  u.key = std::string(key);
  u.options = std::move(options);
  u.initiated_ns = NowNs();
  return id;
}

Result<std::unique_ptr<ObjectWriter>> MemObjectApi::UploadPart(
    std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
    std::string content_md5, uint64_t /*expected_size*/) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.bucket != bucket || it->second.key != key) {
      return Status(Code::kNoSuchUpload, "no upload \"" + std::string(upload_id) + "\"");
    }
  }
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return Status::InvalidArgument("part number must be 1 to 10000");
  }
  std::string b(bucket), id(upload_id);
  return std::unique_ptr<ObjectWriter>(
      new MemWriter(*this, std::move(content_md5), [this, b, id, part_number](std::string data) {
        return CommitPart(b, id, part_number, std::move(data));
      }));
}

Result<ObjectInfo> MemObjectApi::CommitPart(const std::string& bucket, const std::string& upload_id,
                                            int part_number, std::string data) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end()) return Status(Code::kNoSuchUpload, "upload ended");
  Object part;
  part.info.bucket = bucket;
  part.info.key = it->second.key;
  part.info.size = data.size();
  part.info.etag = Md5Hex(data);
  part.info.parts = part_number;
  part.info.mtime_ns = NowNs();
  part.data = std::make_shared<const std::string>(std::move(data));
  it->second.parts[part_number] = part;
  return part.info;
}

Result<ObjectInfo> MemObjectApi::CompleteMultipartUpload(std::string_view bucket,
                                                         std::string_view key,
                                                         std::string_view upload_id,
                                                         std::span<const CompletedPart> parts,
                                                         const Conditions& conditions) {
  std::string data, md5s;
  PutOptions options;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploads_.find(upload_id);
    if (it == uploads_.end() || it->second.bucket != bucket || it->second.key != key) {
      return Status(Code::kNoSuchUpload, "no upload \"" + std::string(upload_id) + "\"");
    }
    if (parts.empty()) return Status(Code::kInvalidPart, "no parts");
    int prev = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      const CompletedPart& p = parts[i];
      auto pit = it->second.parts.find(p.part_number);
      if (p.part_number <= prev || pit == it->second.parts.end() ||
          Unquote(p.etag) != pit->second.info.etag) {
        return Status(Code::kInvalidPart, "part " + std::to_string(p.part_number) +
                                              " is missing, out of order or has another ETag");
      }
      if (i + 1 < parts.size() && pit->second.info.size < kMinPartBytes) {
        return Status(Code::kEntityTooSmall,
                      "part " + std::to_string(p.part_number) + " is below 5 MiB");
      }
      prev = p.part_number;
      data += *pit->second.data;
      md5s += Md5Raw(*pit->second.data);
    }
    options = it->second.options;
    uploads_.erase(it);
  }
  options.conditions = conditions;
  ASSIGN_OR_RETURN(ObjectInfo info,
                   CommitObject(std::string(bucket), std::string(key), options, std::move(data)));
  std::lock_guard<std::mutex> lock(mu_);
  Object& obj = buckets_[std::string(bucket)].objects[std::string(key)];
  obj.info.etag = Md5Hex(md5s) + "-" + std::to_string(parts.size());
  obj.info.parts = static_cast<uint32_t>(parts.size());
  return obj.info;
}

Status MemObjectApi::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                          std::string_view upload_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.bucket != bucket || it->second.key != key) {
    return Status(Code::kNoSuchUpload, "no upload \"" + std::string(upload_id) + "\"");
  }
  uploads_.erase(it);
  return Status::OK();
}

Result<ListPartsResult> MemObjectApi::ListParts(std::string_view bucket, std::string_view key,
                                                std::string_view upload_id, int part_number_marker,
                                                int max_parts) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.bucket != bucket || it->second.key != key) {
    return Status(Code::kNoSuchUpload, "no upload \"" + std::string(upload_id) + "\"");
  }
  ListPartsResult out;
  for (auto pit = it->second.parts.upper_bound(part_number_marker); pit != it->second.parts.end();
       ++pit) {
    if (static_cast<int>(out.parts.size()) >= max_parts) {
      out.truncated = true;
      out.next_part_number_marker = out.parts.back().part_number;
      break;
    }
    out.parts.push_back(PartInfo{pit->first, pit->second.info.size, pit->second.info.etag,
                                 pit->second.info.mtime_ns});
  }
  return out;
}

Result<ListUploadsResult> MemObjectApi::ListMultipartUploads(std::string_view bucket,
                                                             const ListUploadsOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buckets_.count(bucket))
    return Status::NoSuchBucket("no bucket \"" + std::string(bucket) + "\"");
  ListUploadsResult out;
  for (const auto& [id, u] : uploads_) {
    if (u.bucket != bucket || u.key.compare(0, options.prefix.size(), options.prefix) != 0) {
      continue;
    }
    out.uploads.push_back(UploadInfo{u.key, id, u.initiated_ns});
  }
  std::sort(out.uploads.begin(), out.uploads.end(), [](const UploadInfo& a, const UploadInfo& b) {
    return a.key != b.key ? a.key < b.key : a.initiated_ns < b.initiated_ns;
  });
  if (out.uploads.size() > options.max_uploads) {
    out.uploads.resize(options.max_uploads);
    out.truncated = true;
    if (!out.uploads.empty()) {
      out.next_key_marker = out.uploads.back().key;
      out.next_upload_id_marker = out.uploads.back().upload_id;
    }
  }
  return out;
}

}  // namespace granary::testing
