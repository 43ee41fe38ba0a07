// Object headers (object_headers.h).
#include "s3/object_headers.h"

#include "s3/auth.h"
#include "s3/errors.h"
#include "s3/http_time.h"

namespace granary::s3 {
namespace {

constexpr std::string_view kMetaPrefix = "x-amz-meta-";

// Stored standard headers (lower case), as ObjectInfo::headers names them.
constexpr std::string_view kStoredHeaders[] = {"content-encoding", "content-disposition",
                                               "content-language", "cache-control", "expires"};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Content-Encoding without the "aws-chunked" token.
std::string WithoutAwsChunked(std::string_view value) {
  std::string out;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view token = Trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    if (token.empty() || token == "aws-chunked") continue;
    if (!out.empty()) out += ',';
    out += token;
  }
  return out;
}

// "Content-Type" for "content-type".
std::string Canonical(std::string_view lower) {
  std::string out(lower);
  bool up = true;
  for (char& c : out) {
    if (up && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    up = c == '-';
  }
  return out;
}

}  // namespace

Status CheckContentMd5(std::string_view value) {
  Result<std::string> raw = Base64Decode(Trim(value));
  if (!raw.ok() || raw->size() != 16) {
    return S3Status(Code::kInvalidArgument, "InvalidDigest",
                    "the Content-MD5 you specified is not valid: it must be the base64 encoding "
                    "of the 16-byte MD5 of the body");
  }
  return Status::OK();
}

Result<PutOptions> PutOptionsFromHeaders(const Request& request) {
  PutOptions options;
  size_t metadata_bytes = 0;
  for (const auto& [name, value] : request.headers) {
    if (name.starts_with(kMetaPrefix)) {
      std::string meta_name = name.substr(kMetaPrefix.size());
      if (meta_name.empty()) continue;
      std::string_view v = Trim(value);
      auto [it, inserted] = options.user_metadata.emplace(std::move(meta_name), std::string(v));
      if (!inserted) {
        // Repeated headers are combined, as HTTP does.
        it->second += ',';
        it->second += v;
      }
    } else if (name == "content-type") {
      options.content_type = std::string(Trim(value));
    } else if (name == "content-encoding") {
      std::string enc = WithoutAwsChunked(value);
      if (!enc.empty()) options.headers["content-encoding"] = std::move(enc);
    } else if (name == "content-md5") {
      RETURN_IF_ERROR(CheckContentMd5(value));
      options.content_md5 = std::string(Trim(value));
    } else {
      for (std::string_view stored : kStoredHeaders) {
        if (name == stored && stored != "content-encoding") {
          options.headers[name] = std::string(Trim(value));
        }
      }
    }
  }
  for (const auto& [name, value] : options.user_metadata) metadata_bytes += name.size() + value.size();
  if (metadata_bytes > kMaxUserMetadataBytes) {
    return S3Status(Code::kInvalidArgument, "MetadataTooLarge",
                    "your metadata headers hold " + std::to_string(metadata_bytes) +
                        " bytes, over the limit of " + std::to_string(kMaxUserMetadataBytes) +
                        "; store large metadata in an object instead");
  }
  options.conditions.if_match = std::string(Trim(request.HeaderOr("if-match")));
  options.conditions.if_none_match = std::string(Trim(request.HeaderOr("if-none-match")));
  return options;
}

Conditions ConditionsFromHeaders(const Request& request, std::string_view prefix) {
  Conditions c;
  std::string name(prefix);
  auto header = [&](std::string_view n) {
    name.resize(prefix.size());
    name += n;
    return Trim(request.HeaderOr(name));
  };
  c.if_match = std::string(header("if-match"));
  c.if_none_match = std::string(header("if-none-match"));
  if (std::string_view d = header("if-modified-since"); !d.empty()) {
    Result<int64_t> t = ParseHttpDate(d);
    if (t.ok()) c.if_modified_since_ns = *t;
  }
  if (std::string_view d = header("if-unmodified-since"); !d.empty()) {
    Result<int64_t> t = ParseHttpDate(d);
    if (t.ok()) c.if_unmodified_since_ns = *t;
  }
  return c;
}

std::string QuotedEtag(std::string_view etag) {
  std::string out = "\"";
  out += etag;
  out += '"';
  return out;
}

void AddObjectHeaders(const ObjectInfo& info, const Request& request, Response* response) {
  auto override_of = [&](std::string_view header) -> const std::string* {
    std::string q = "response-";
    q += header;
    return request.method == "GET" ? request.Query(q) : nullptr;
  };
  response->AddHeader("ETag", QuotedEtag(info.etag));
  response->AddHeader("Last-Modified", FormatRfc1123(info.mtime_ns));
  response->AddHeader("Accept-Ranges", "bytes");
  const std::string* ct = override_of("content-type");
  response->AddHeader("Content-Type", ct ? *ct
                                         : info.content_type.empty() ? "binary/octet-stream"
                                                                     : info.content_type);
  for (std::string_view stored : kStoredHeaders) {
    const std::string* o = override_of(stored);
    auto it = info.headers.find(std::string(stored));
    if (o != nullptr) {
      response->AddHeader(Canonical(stored), *o);
    } else if (it != info.headers.end()) {
      response->AddHeader(Canonical(stored), it->second);
    }
  }
  for (const auto& [name, value] : info.user_metadata) {
    response->AddHeader(std::string(kMetaPrefix) + name, value);
  }
  if (info.parts > 0 && request.HasQuery("partNumber")) {
    response->AddHeader("x-amz-mp-parts-count", std::to_string(info.parts));
  }
}

}  // namespace granary::s3
