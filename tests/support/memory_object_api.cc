// The in-memory ObjectApi for tests (memory_object_api.h).
#include "support/memory_object_api.h"

#include <openssl/evp.h>

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

// An ETag as a client may send it: spaces around, quoted, weak (W/"...").
std::string_view Unquote(std::string_view e) {
  while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
  while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
  if (e.starts_with("W/")) e.remove_prefix(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

// `list`: "*" or comma-separated ETags.
bool EtagMatches(std::string_view list, std::string_view etag) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view one = Unquote(list.substr(0, comma));
    if (one == "*" || one == etag) return true;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return false;
}

// HTTP dates have a resolution of one second: compare in whole seconds.
int64_t Seconds(int64_t ns) { return ns / 1'000'000'000; }

Status CheckRead(const ObjectInfo& info, const Conditions& c) {
  if (c.if_version != 0 && c.if_version != info.version) {
    return Status::PreconditionFailed("version is " + std::to_string(info.version) + ", not " +
                                      std::to_string(c.if_version));
  }
  if (!c.if_match.empty()) {
    if (!EtagMatches(c.if_match, info.etag)) return Status::PreconditionFailed("If-Match failed");
  } else if (c.if_unmodified_since_ns != 0 &&
             Seconds(info.mtime_ns) > Seconds(c.if_unmodified_since_ns)) {
    return Status::PreconditionFailed("modified since If-Unmodified-Since");
  }
  if (!c.if_none_match.empty()) {
    if (EtagMatches(c.if_none_match, info.etag)) {
      return Status(Code::kNotModified, "If-None-Match matched");
    }
  } else if (c.if_modified_since_ns != 0 &&
             Seconds(info.mtime_ns) <= Seconds(c.if_modified_since_ns)) {
    return Status(Code::kNotModified, "not modified since If-Modified-Since");
  }
  return Status::OK();
}

Status CheckWrite(const ObjectInfo* existing, const Conditions& c) {
  if (!c.if_none_match.empty() && existing && EtagMatches(c.if_none_match, existing->etag)) {
    return Status::PreconditionFailed("the key exists (If-None-Match)");
  }
  if (!c.if_match.empty() && (!existing || !EtagMatches(c.if_match, existing->etag))) {
    return Status::PreconditionFailed("If-Match failed");
  }
  if (c.if_version != 0 && (!existing || existing->version != c.if_version)) {
    return Status::PreconditionFailed("version does not match");
  }
  return Status::OK();
}

Status NoBucket(std::string_view bucket) {
  return Status::NoSuchBucket("no bucket \"" + std::string(bucket) + "\"");
}
Status NoKey(std::string_view key) {
  return Status::NotFound("no key \"" + std::string(key) + "\"");
}
Status NoUpload(std::string_view upload_id) {
  return Status(Code::kNoSuchUpload, "no upload \"" + std::string(upload_id) + "\"");
}

std::string SizeText(uint64_t bytes) {
  if (bytes != 0 && bytes % (1 << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

class Reader final : public ObjectReader {
 public:
  Reader(ObjectInfo info, std::shared_ptr<const std::string> data, uint64_t offset,
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

// Buffers the bytes; Commit() checks Content-MD5 and hands them to `commit_`.
class MemoryObjectApi::Writer final : public ObjectWriter {
 public:
  using CommitFn = std::function<Result<ObjectInfo>(std::string)>;
  Writer(MemoryObjectApi& api, std::string content_md5, CommitFn commit)
      : api_(api), content_md5_(std::move(content_md5)), commit_(std::move(commit)) {
    api_.WriterOpened();
  }
  ~Writer() override {
    if (!committed_) {
      ++api_.abandoned_writers;
      api_.WriterClosed();
    }
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
    if (committed_) api_.WriterClosed();
    return r;
  }

 private:
  MemoryObjectApi& api_;
  std::string content_md5_;
  CommitFn commit_;
  std::string data_;
  bool committed_ = false;
};

std::string Md5Hex(std::string_view data) { return Hex(Md5Raw(data)); }

void MemoryObjectApi::WriterOpened() {
  std::lock_guard<std::mutex> lock(writers_mu_);
  ++open_writers_;
}

void MemoryObjectApi::WriterClosed() {
  std::lock_guard<std::mutex> lock(writers_mu_);
  --open_writers_;
  writers_cv_.notify_all();
}

bool MemoryObjectApi::WaitNoOpenWriters(int timeout_ms) {
  std::unique_lock<std::mutex> lock(writers_mu_);
  return writers_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                              [this] { return open_writers_.load() == 0; });
}

size_t MemoryObjectApi::object_count(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  return it == buckets_.end() ? 0 : it->second.objects.size();
}

Status MemoryObjectApi::CreateBucket(std::string_view bucket, const BucketOptions& options) {
  RETURN_IF_ERROR(ValidateBucketName(bucket));
  if (options.replicas > 1) return Status::InvalidArgument("one copy of every object is kept");
  std::lock_guard<std::mutex> lock(mu_);
  if (buckets_.count(bucket)) {
    return Status::AlreadyExists("bucket \"" + std::string(bucket) + "\" already exists");
  }
  Bucket& b = buckets_[std::string(bucket)];
  b.info = BucketInfo{std::string(bucket), NowNs()};
  return Status::OK();
}

Status MemoryObjectApi::DeleteBucket(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  if (it == buckets_.end()) return NoBucket(bucket);
  if (!it->second.objects.empty()) {
    return Status(Code::kBucketNotEmpty, "bucket \"" + std::string(bucket) + "\" is not empty");
  }
  buckets_.erase(it);
  return Status::OK();
}

Result<BucketInfo> MemoryObjectApi::HeadBucket(std::string_view bucket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(bucket);
  if (it == buckets_.end()) return NoBucket(bucket);
  return it->second.info;
}

Result<std::vector<BucketInfo>> MemoryObjectApi::ListBuckets() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<BucketInfo> out;
  for (const auto& [name, b] : buckets_) out.push_back(b.info);
  return out;
}

Result<std::unique_ptr<ObjectWriter>> MemoryObjectApi::BeginPut(std::string_view bucket,
                                                                std::string_view key,
                                                                PutOptions options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  RETURN_IF_ERROR(HeadBucket(bucket).status());
  std::string b(bucket), k(key);
  std::string md5 = options.content_md5;
  return std::unique_ptr<ObjectWriter>(
      new Writer(*this, md5, [this, b, k, options = std::move(options)](std::string data) {
        return CommitObject(b, k, options, std::move(data));
      }));
}

Result<ObjectInfo> MemoryObjectApi::StoreLocked(const std::string& bucket, const std::string& key,
                                                const PutOptions& options, std::string data,
                                                std::string etag, uint32_t parts) {
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end()) return NoBucket(bucket);
  auto oit = bit->second.objects.find(key);
  RETURN_IF_ERROR(CheckWrite(oit == bit->second.objects.end() ? nullptr : &oit->second.info,
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
  bit->second.objects[key] = std::move(obj);
  return info;
}

Result<ObjectInfo> MemoryObjectApi::CommitObject(const std::string& bucket, const std::string& key,
                                                 const PutOptions& options, std::string data) {
  std::string etag = Md5Hex(data);
  std::lock_guard<std::mutex> lock(mu_);
  return StoreLocked(bucket, key, options, std::move(data), std::move(etag), 0);
}

Result<std::unique_ptr<ObjectReader>> MemoryObjectApi::Open(std::string_view bucket,
                                                            std::string_view key,
                                                            const GetOptions& options) {
  ++opens;
  if (options.conditions.if_version != 0) ++pinned_opens;
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end()) return NoBucket(bucket);
  auto oit = bit->second.objects.find(key);
  if (oit == bit->second.objects.end()) return NoKey(key);
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
  return std::unique_ptr<ObjectReader>(new Reader(obj.info, obj.data, offset, length));
}

Result<ObjectInfo> MemoryObjectApi::Head(std::string_view bucket, std::string_view key,
                                         const GetOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end()) return NoBucket(bucket);
  auto oit = bit->second.objects.find(key);
  if (oit == bit->second.objects.end()) return NoKey(key);
  RETURN_IF_ERROR(CheckRead(oit->second.info, options.conditions));
  return oit->second.info;
}

Status MemoryObjectApi::Delete(std::string_view bucket, std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end()) return NoBucket(bucket);
  auto oit = bit->second.objects.find(key);
  if (oit == bit->second.objects.end()) return NoKey(key);
  bit->second.objects.erase(oit);
  return Status::OK();
}

Result<ObjectInfo> MemoryObjectApi::Copy(std::string_view src_bucket, std::string_view src_key,
                                         std::string_view dst_bucket, std::string_view dst_key,
                                         const CopyOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(src_bucket);
  if (bit == buckets_.end()) return NoBucket(src_bucket);
  auto oit = bit->second.objects.find(src_key);
  if (oit == bit->second.objects.end()) return NoKey(src_key);
  const Object src = oit->second;
  Status st = CheckRead(src.info, options.source_conditions);
  if (st.code() == Code::kNotModified) {
    // A copy has nothing to answer "not modified" with: S3 fails it as a precondition.
    return Status::PreconditionFailed("the source object " + st.message());
  }
  RETURN_IF_ERROR(st);
  PutOptions put = options.put;
  if (!options.replace_metadata) {
    put.content_type = src.info.content_type;
    put.user_metadata = src.info.user_metadata;
    put.headers = src.info.headers;
  }
  return StoreLocked(std::string(dst_bucket), std::string(dst_key), put, *src.data,
                     Md5Hex(*src.data), 0);
}

Result<ListResult> MemoryObjectApi::List(std::string_view bucket, const ListOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  auto bit = buckets_.find(bucket);
  if (bit == buckets_.end()) return NoBucket(bucket);
  std::string after = options.start_after;
  if (!options.continuation_token.empty()) {
    if (!options.continuation_token.starts_with("k:")) {
      return Status::InvalidArgument("continuation token is not one this server issued");
    }
    after = options.continuation_token.substr(2);
  }
  uint32_t max = std::min<uint32_t>(options.max_keys, 1000);
  ListResult out;
  std::string last;
  for (auto it = bit->second.objects.upper_bound(after); it != bit->second.objects.end(); ++it) {
    const std::string& key = it->first;
    if (!key.starts_with(options.prefix)) {
      if (key > options.prefix) break;
      continue;
    }
    std::string rolled;
    if (!options.delimiter.empty()) {
      size_t d = key.find(options.delimiter, options.prefix.size());
      if (d != std::string::npos) rolled = key.substr(0, d + options.delimiter.size());
    }
    if (!rolled.empty() &&
        (rolled <= after ||
         (!out.common_prefixes.empty() && out.common_prefixes.back() == rolled))) {
      continue;
    }
    if (out.objects.size() + out.common_prefixes.size() >= max) {
      out.truncated = true;
      break;
    }
    if (!rolled.empty()) {
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
    if (!out.common_prefixes.empty() && out.common_prefixes.back() == last) resume += "\xff";
    out.next_continuation_token = "k:" + resume;
  }
  return out;
}

std::vector<Result<ObjectInfo>> MemoryObjectApi::PutMany(std::string_view bucket,
                                                         std::span<const PutItem> items) {
  ++put_many_calls;
  return ObjectApi::PutMany(bucket, items);
}

std::vector<Result<std::string>> MemoryObjectApi::GetMany(std::string_view bucket,
                                                          std::span<const std::string> keys) {
  ++get_many_calls;
  return ObjectApi::GetMany(bucket, keys);
}

std::vector<Status> MemoryObjectApi::DeleteMany(std::string_view bucket,
                                                std::span<const std::string> keys) {
  ++delete_many_calls;
  return ObjectApi::DeleteMany(bucket, keys);
}

Result<std::string> MemoryObjectApi::CreateMultipartUpload(std::string_view bucket,
                                                           std::string_view key,
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

MemoryObjectApi::Upload* MemoryObjectApi::FindUploadLocked(std::string_view bucket,
                                                           std::string_view key,
                                                           std::string_view upload_id) {
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.bucket != bucket || it->second.key != key) {
    return nullptr;
  }
  return &it->second;
}

Result<std::unique_ptr<ObjectWriter>> MemoryObjectApi::UploadPart(
    std::string_view bucket, std::string_view key, std::string_view upload_id, int part_number,
    std::string content_md5, uint64_t /*expected_size*/) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!buckets_.count(bucket)) return NoBucket(bucket);
    if (!FindUploadLocked(bucket, key, upload_id)) return NoUpload(upload_id);
  }
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return Status::InvalidArgument("part number must be 1 to 10000");
  }
  std::string b(bucket), id(upload_id);
  return std::unique_ptr<ObjectWriter>(
      new Writer(*this, std::move(content_md5), [this, b, id, part_number](std::string data) {
        return CommitPart(b, id, part_number, std::move(data));
      }));
}

Result<ObjectInfo> MemoryObjectApi::CommitPart(const std::string& bucket,
                                               const std::string& upload_id, int part_number,
                                               std::string data) {
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

Result<ObjectInfo> MemoryObjectApi::CompleteMultipartUpload(std::string_view bucket,
                                                            std::string_view key,
                                                            std::string_view upload_id,
                                                            std::span<const CompletedPart> parts,
                                                            const Conditions& conditions) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buckets_.count(bucket)) return NoBucket(bucket);
  Upload* u = FindUploadLocked(bucket, key, upload_id);
  if (!u) return NoUpload(upload_id);
  if (parts.empty()) return Status(Code::kInvalidPart, "no parts");
  std::string data, md5s;
  int prev = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const CompletedPart& p = parts[i];
    auto pit = u->parts.find(p.part_number);
    if (p.part_number <= prev || pit == u->parts.end() ||
        Unquote(p.etag) != pit->second.info.etag) {
      return Status(Code::kInvalidPart, "part " + std::to_string(p.part_number) +
                                            " is missing, out of order or has another ETag");
    }
    if (i + 1 < parts.size() && pit->second.info.size < min_part_bytes_.load()) {
      return Status(Code::kEntityTooSmall, "part " + std::to_string(p.part_number) +
                                               " is below " + SizeText(min_part_bytes_.load()));
    }
    prev = p.part_number;
    data += *pit->second.data;
    md5s += Md5Raw(*pit->second.data);
  }
  PutOptions options = u->options;
  options.conditions = conditions;
  std::string etag = Md5Hex(md5s) + "-" + std::to_string(parts.size());
  ASSIGN_OR_RETURN(ObjectInfo info,
                   StoreLocked(std::string(bucket), std::string(key), options, std::move(data),
                               std::move(etag), static_cast<uint32_t>(parts.size())));
  uploads_.erase(std::string(upload_id));
  return info;
}

Status MemoryObjectApi::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!FindUploadLocked(bucket, key, upload_id)) return NoUpload(upload_id);
  uploads_.erase(std::string(upload_id));
  return Status::OK();
}

Result<ListPartsResult> MemoryObjectApi::ListParts(std::string_view bucket, std::string_view key,
                                                   std::string_view upload_id,
                                                   int part_number_marker, int max_parts) {
  std::lock_guard<std::mutex> lock(mu_);
  Upload* u = FindUploadLocked(bucket, key, upload_id);
  if (!u) return NoUpload(upload_id);
  ListPartsResult out;
  for (auto pit = u->parts.upper_bound(part_number_marker); pit != u->parts.end(); ++pit) {
    if (static_cast<int>(out.parts.size()) >= max_parts) {
      out.truncated = true;
      out.next_part_number_marker = out.parts.empty() ? 0 : out.parts.back().part_number;
      break;
    }
    out.parts.push_back(PartInfo{pit->first, pit->second.info.size, pit->second.info.etag,
                                 pit->second.info.mtime_ns});
  }
  return out;
}

Result<ListUploadsResult> MemoryObjectApi::ListMultipartUploads(
    std::string_view bucket, const ListUploadsOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buckets_.count(bucket)) return NoBucket(bucket);
  ListUploadsResult out;
  for (const auto& [id, u] : uploads_) {
    if (u.bucket != bucket || !u.key.starts_with(options.prefix)) continue;
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
