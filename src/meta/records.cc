#include "meta/records.h"

#include <algorithm>

namespace granary::meta {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether `etag` is in the comma-separated list (entries quoted or not, W/ ignored) or it is "*".
bool EtagListMatches(std::string_view list, std::string_view etag) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"') {
      item = item.substr(1, item.size() - 2);
    }
    if (item == "*" || item == etag) return true;
  }
  return false;
}

// HTTP dates have a resolution of one second: compare in whole seconds.
int64_t Seconds(int64_t ns) { return ns / 1'000'000'000; }

}  // namespace

std::string EtagOf(std::string_view md5, uint32_t parts) {
  std::string etag = HexEncode(md5);
  if (parts > 0) etag += "-" + std::to_string(parts);
  return etag;
}

ObjectInfo InfoOf(std::string_view bucket, std::string_view key, const proto::ObjectRecord& r) {
  ObjectInfo info;
  info.bucket = std::string(bucket);
  info.key = std::string(key);
  info.size = r.size();
  info.etag = EtagOf(r.md5(), r.parts());
  info.content_type = r.content_type();
  info.mtime_ns = r.mtime_ns();
  info.version = r.version();
  info.parts = r.parts();
  info.user_metadata.insert(r.user_metadata().begin(), r.user_metadata().end());
  info.headers.insert(r.headers().begin(), r.headers().end());
  return info;
}

uint64_t ChunkCount(const proto::DataRun& run) {
  if (run.chunk_bytes() == 0) return run.size() > 0 ? 1 : 0;
  return (run.size() + run.chunk_bytes() - 1) / run.chunk_bytes();
}

Status CheckReadConditions(const ObjectInfo& info, const Conditions& c) {
  if (c.if_version != 0 && c.if_version != info.version) {
    return Status::PreconditionFailed("the object changed while it was being read (version " +
                                      std::to_string(info.version) + ", expected " +
                                      std::to_string(c.if_version) + "): read it again");
  }
  if (!c.if_match.empty()) {
    if (!EtagListMatches(c.if_match, info.etag)) {
      return Status::PreconditionFailed("If-Match does not match the object's ETag \"" +
                                        info.etag + "\"");
    }
  } else if (c.if_unmodified_since_ns != 0 &&
             Seconds(info.mtime_ns) > Seconds(c.if_unmodified_since_ns)) {
    return Status::PreconditionFailed("the object was modified after If-Unmodified-Since");
  }
  if (!c.if_none_match.empty()) {
    if (EtagListMatches(c.if_none_match, info.etag)) {
      return Status(Code::kNotModified, "the object matches If-None-Match");
    }
  } else if (c.if_modified_since_ns != 0 &&
             Seconds(info.mtime_ns) <= Seconds(c.if_modified_since_ns)) {
    return Status(Code::kNotModified, "the object was not modified since If-Modified-Since");
  }
  return Status::OK();
}

Status CheckWriteConditions(const ObjectInfo* current, const Conditions& c) {
  if (!c.if_none_match.empty() && current != nullptr &&
      EtagListMatches(c.if_none_match, current->etag)) {
    return Status::PreconditionFailed("the object already exists (If-None-Match)");
  }
  if (!c.if_match.empty() && (current == nullptr || !EtagListMatches(c.if_match, current->etag))) {
    return Status::PreconditionFailed(current == nullptr
                                          ? "the object does not exist (If-Match)"
                                          : "If-Match does not match the object's ETag \"" +
                                                current->etag + "\"");
  }
  if (c.if_version != 0 && (current == nullptr || current->version != c.if_version)) {
    return Status::PreconditionFailed("the object's version changed");
  }
  return Status::OK();
}

Status CheckContentMd5(std::string_view content_md5_base64, std::string_view md5) {
  Result<std::string> decoded = Base64Decode(Trim(content_md5_base64));
  if (!decoded.ok() || decoded->size() != 16) {
    return Status::InvalidArgument("InvalidDigest: the Content-MD5 you specified is not valid "
                                   "base64 of a 16-byte MD5");
  }
  if (*decoded != md5) {
    return Status(Code::kBadDigest, "BadDigest: the Content-MD5 you specified did not match what "
                                    "was received");
  }
  return Status::OK();
}

}  // namespace granary::meta
