// Authenticate(): SigV4 verification of the Authorization header and of presigned URLs.
//
// The order of the checks follows S3: the form of the credentials (Malformed), the access key
// (InvalidAccessKeyId), the time (RequestTimeTooSkewed, expiry), then the signature.
#include "s3/auth.h"

#include <algorithm>
#include <array>
#include <optional>

#include "common/logging.h"
#include "s3/auth_internal.h"

namespace granary::s3 {
namespace {

using internal::kAlgorithm;

constexpr int64_t kMaxSkewSeconds = 15 * 60;
constexpr int64_t kMaxPresignExpires = 604800;  // one week
constexpr size_t kMaxSignedHeaders = 64;
constexpr size_t kMaxHeaderNameLength = 256;

// The credential scope and signature, from the Authorization header or the query.
struct Credentials {
  std::string access_key;
  std::string date;  // yyyymmdd
  std::string region;
  std::string signed_headers;                  // as sent, ';'-separated
  std::vector<std::string_view> signed_names;  // views into signed_headers
  std::string signature;                       // lower-case hex
};

Status Malformed(bool presigned, std::string message) {
  return Status(Code::kInvalidArgument,
                std::string(presigned ? "AuthorizationQueryParametersError: "
                                      : "AuthorizationHeaderMalformed: ") +
                    std::move(message));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Clip(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out(s.substr(0, kMax));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  if (s.size() > kMax) out += "...";
  return out;
}

bool IsRegionChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

bool IsHeaderNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

// "<access key>/<yyyymmdd>/<region>/s3/aws4_request".
Status ParseCredential(std::string_view text, bool presigned, Credentials* out) {
  std::array<std::string_view, 4> parts;
  for (int i = 3; i >= 0; --i) {
    size_t slash = text.rfind('/');
    if (slash == std::string_view::npos) {
      return Malformed(presigned, "Credential \"" + Clip(text) +
                                      "\" must have the form "
                                      "<access-key>/<yyyymmdd>/<region>/s3/aws4_request");
    }
    parts[static_cast<size_t>(i)] = text.substr(slash + 1);
    text = text.substr(0, slash);
  }
  if (text.empty()) return Malformed(presigned, "Credential has an empty access key");
  out->access_key = std::string(text);
  std::string_view date = parts[0], region = parts[1], service = parts[2], terminal = parts[3];
  if (date.size() != 8 || date.find_first_not_of("0123456789") != std::string_view::npos) {
    return Malformed(presigned, "Credential date \"" + Clip(date) + "\" is not yyyymmdd");
  }
  if (region.empty() || region.size() > 64 ||
      !std::all_of(region.begin(), region.end(), IsRegionChar)) {
    return Malformed(presigned, "Credential region \"" + Clip(region) + "\" is not a region name");
  }
  if (service != "s3") {
    return Malformed(presigned, "Credential service \"" + Clip(service) +
                                    "\" is wrong: this is an S3 endpoint, sign for service s3");
  }
  if (terminal != "aws4_request") {
    return Malformed(presigned,
                     "Credential must end in aws4_request, not \"" + Clip(terminal) + "\"");
  }
  out->date = std::string(date);
  out->region = std::string(region);
  return Status::OK();
}

Status ParseSignedHeaders(std::string_view text, bool presigned, Credentials* out) {
  out->signed_headers = std::string(text);
  out->signed_names.clear();
  std::string_view rest = out->signed_headers;
  while (true) {
    size_t semi = rest.find(';');
    std::string_view name = rest.substr(0, semi);
    if (name.empty() || name.size() > kMaxHeaderNameLength ||
        !std::all_of(name.begin(), name.end(), IsHeaderNameChar)) {
      return Malformed(presigned, "SignedHeaders \"" + Clip(text) +
                                      "\" must be lower-case header names separated by ';'");
    }
    for (std::string_view seen : out->signed_names) {
      if (seen == name) {
        return Malformed(presigned, "SignedHeaders names \"" + Clip(name) + "\" twice");
      }
    }
    if (out->signed_names.size() == kMaxSignedHeaders) {
      return Malformed(presigned, "SignedHeaders names more than " +
                                      std::to_string(kMaxSignedHeaders) + " headers");
    }
    out->signed_names.push_back(name);
    if (semi == std::string_view::npos) break;
    rest = rest.substr(semi + 1);
  }
  if (std::find(out->signed_names.begin(), out->signed_names.end(), "host") ==
      out->signed_names.end()) {
    return Malformed(presigned, "SignedHeaders must include host");
  }
  return Status::OK();
}

Status ParseSignature(std::string_view text, bool presigned, Credentials* out) {
  if (text.size() != 64 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return Malformed(presigned, "Signature must be 64 hex digits, not \"" + Clip(text) + "\"");
  }
  out->signature = std::string(text);
  for (char& c : out->signature) c = static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c);
  return Status::OK();
}

// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." (any order, any blanks
// around the commas).
Status ParseAuthorization(std::string_view value, Credentials* out) {
  value = Trim(value);
  if (value.starts_with("AWS ")) {
    return Status(Code::kInvalidArgument,
                  "InvalidRequest: Signature Version 2 is not supported; configure the client "
                  "for AWS Signature Version 4 (s3v4)");
  }
  if (value.starts_with("AWS4-ECDSA-P256-SHA256")) {
    return Status(Code::kNotSupported,
                  "NotImplemented: Signature Version 4A is not supported; use AWS4-HMAC-SHA256");
  }
  if (!value.starts_with(kAlgorithm) || value.size() == kAlgorithm.size() ||
      (value[kAlgorithm.size()] != ' ' && value[kAlgorithm.size()] != '\t')) {
    return Malformed(false,
                     "the Authorization header must start with \"AWS4-HMAC-SHA256 \", not \"" +
                         Clip(value) + "\"");
  }
  std::string_view rest = value.substr(kAlgorithm.size());
  bool have_credential = false, have_signed = false, have_signature = false;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) {
      return Malformed(false, "the Authorization header has an empty component");
    }
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Malformed(false, "Authorization component \"" + Clip(item) + "\" is not name=value");
    }
    std::string_view name = item.substr(0, eq), val = item.substr(eq + 1);
    bool* seen = nullptr;
    Status st;
    if (name == "Credential") {
      seen = &have_credential;
      st = ParseCredential(val, false, out);
    } else if (name == "SignedHeaders") {
      seen = &have_signed;
      st = ParseSignedHeaders(val, false, out);
    } else if (name == "Signature") {
      seen = &have_signature;
      st = ParseSignature(val, false, out);
    } else {
      return Malformed(false, "unknown Authorization component \"" + Clip(name) + "\"");
    }
    if (*seen) return Malformed(false, "Authorization has " + std::string(name) + " twice");
    *seen = true;
    RETURN_IF_ERROR(st);
  }
  if (!have_credential || !have_signed || !have_signature) {
    return Malformed(false,
                     "the Authorization header needs Credential, SignedHeaders and Signature");
  }
  return Status::OK();
}

// The values of the headers named `name`; an error if there is more than one.
Result<std::optional<std::string_view>> SingleHeader(const RequestView& request,
                                                     std::string_view name) {
  std::optional<std::string_view> found;
  for (const auto& [key, value] : request.headers) {
    if (key != name) continue;
    if (found) {
      return Status(Code::kInvalidArgument, "InvalidArgument: the request has more than one " +
                                                std::string(name) + " header");
    }
    found = Trim(value);
  }
  return found;
}

// The presigned-URL parameters, decoded.
struct QueryAuth {
  std::optional<std::string> algorithm, credential, date, expires, signed_headers, signature,
      content_sha256;
  bool sigv2 = false;  // AWSAccessKeyId: a Signature Version 2 presigned URL
  bool any() const { return algorithm || credential || signature; }
};

Result<QueryAuth> ScanQuery(std::string_view query) {
  QueryAuth q;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view item = query.substr(pos, end - pos);
    pos = end + 1;
    size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    // Clients send these names as they are (they need no escaping), so they are compared raw.
    if (!name.starts_with("X-Amz-") && name != "AWSAccessKeyId") continue;
    if (name == "AWSAccessKeyId") {
      q.sigv2 = true;
      continue;
    }
    std::optional<std::string>* slot = nullptr;
    if (name == "X-Amz-Algorithm") slot = &q.algorithm;
    if (name == "X-Amz-Credential") slot = &q.credential;
    if (name == "X-Amz-Date") slot = &q.date;
    if (name == "X-Amz-Expires") slot = &q.expires;
    if (name == "X-Amz-SignedHeaders") slot = &q.signed_headers;
    if (name == "X-Amz-Signature") slot = &q.signature;
    if (name == "X-Amz-Content-Sha256") slot = &q.content_sha256;
    if (slot == nullptr) continue;
    if (slot->has_value()) {
      return Malformed(true, "the query has " + std::string(name) + " twice");
    }
    auto value = internal::PercentDecode(
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1), true);
    if (!value.ok()) return Malformed(true, std::string(name) + " has a bad percent escape");
    *slot = std::move(*value);
  }
  return q;
}

Status ParsePayloadHash(std::string_view value, bool presigned, AuthContext* ctx) {
  if (value == internal::kUnsignedPayload) {
    ctx->payload_mode = PayloadMode::kUnsigned;
  } else if (value.size() == 64 &&
             value.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos) {
    ctx->payload_mode = PayloadMode::kSha256;
    ctx->payload_sha256 = std::string(value);
    for (char& c : ctx->payload_sha256) c = static_cast<char>(c >= 'A' && c <= 'F' ? c + 32 : c);
  } else if (!presigned && value == internal::kStreamingSigned) {
    ctx->payload_mode = PayloadMode::kStreamingSigned;
  } else if (!presigned && value == internal::kStreamingUnsignedTrailer) {
    ctx->payload_mode = PayloadMode::kStreamingUnsigned;
  } else if (!presigned && value == internal::kStreamingSignedTrailer) {
    ctx->payload_mode = PayloadMode::kStreamingSignedTrailer;
  } else if (value.starts_with("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")) {
    return Status(Code::kNotSupported,
                  "NotImplemented: SigV4A streaming payloads are not supported; use "
                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  } else {
    return Status(Code::kInvalidArgument,
                  "InvalidArgument: x-amz-content-sha256 must be UNSIGNED-PAYLOAD, " +
                      std::string(presigned ? "" : "a STREAMING-* mode, ") +
                      "or the hex SHA-256 of the body, not \"" + Clip(value) + "\"");
  }
  return Status::OK();
}

// x-amz-decoded-content-length and x-amz-trailer, for the streaming modes.
Status ParseStreamingHeaders(const RequestView& request, AuthContext* ctx) {
  ASSIGN_OR_RETURN(auto decoded, SingleHeader(request, "x-amz-decoded-content-length"));
  ASSIGN_OR_RETURN(auto trailer, SingleHeader(request, "x-amz-trailer"));
  bool streaming = IsStreaming(ctx->payload_mode);
  if (streaming && decoded) {
    uint64_t n = 0;
    bool ok = !decoded->empty() && decoded->size() <= 19 &&
              decoded->find_first_not_of("0123456789") == std::string_view::npos;
    for (char c : ok ? *decoded : std::string_view()) n = n * 10 + static_cast<uint64_t>(c - '0');
    if (!ok) {
      return Status(Code::kInvalidArgument, "InvalidArgument: x-amz-decoded-content-length \"" +
                                                Clip(*decoded) + "\" is not a byte count");
    }
    ctx->decoded_length = n;
  }
  if (trailer && !trailer->empty()) {
    if (ctx->payload_mode != PayloadMode::kStreamingUnsigned &&
        ctx->payload_mode != PayloadMode::kStreamingSignedTrailer) {
      return Status(Code::kInvalidArgument,
                    "InvalidRequest: x-amz-trailer needs x-amz-content-sha256 "
                    "STREAMING-UNSIGNED-PAYLOAD-TRAILER or "
                    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    }
    std::string name(*trailer);
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    static constexpr std::string_view kKnown[] = {"x-amz-checksum-crc32", "x-amz-checksum-crc32c",
                                                  "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1",
                                                  "x-amz-checksum-sha256"};
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      return Status(Code::kInvalidArgument,
                    "InvalidRequest: x-amz-trailer \"" + Clip(name) +
                        "\" is not supported: use one of x-amz-checksum-crc32, -crc32c, "
                        "-crc64nvme, -sha1, -sha256");
    }
    ctx->trailer = std::move(name);
  }
  return Status::OK();
}

Status SignatureMismatch() {
  return Status(Code::kUnauthenticated,
                "SignatureDoesNotMatch: the request signature we calculated does not match the "
                "signature you provided; check the secret key and the signing method");
}

// Computes the signature over the canonical request for each acceptable form of the path and
// compares it with the one sent. On success fills ctx->signing_key and ctx->seed_signature.
Status CheckSignature(const RequestView& request, std::string_view path,
                      std::string_view canonical_query, std::string_view payload_hash,
                      const Credentials& creds, const std::string& secret, AuthContext* ctx) {
  std::string missing;
  auto headers = internal::CanonicalHeaders(request.headers, creds.signed_names, &missing);
  if (!headers.ok()) {
    return Status(Code::kUnauthenticated, "SignatureDoesNotMatch: header \"" + Clip(missing) +
                                              "\" is in SignedHeaders but not in the request");
  }
  ctx->signing_key = DeriveSigningKey(secret, creds.date, creds.region, "s3");
  // S3 signs the path as sent. Some clients send characters raw ('!', '(', '\'') that they
  // signed percent-encoded; the AWS encoding of the decoded path is the second form tried. Both
  // name the same object, so accepting either gives nothing away.
  std::string uris[2] = {std::string(path.empty() ? "/" : path), {}};
  auto decoded = internal::PercentDecode(path, false);
  if (decoded.ok()) uris[1] = UriEncode(*decoded, true);
  for (int i = 0; i < 2; ++i) {
    if (i == 1 && (uris[1].empty() || uris[1] == uris[0])) break;
    std::string canonical = internal::CanonicalRequest(
        request.method, uris[i], canonical_query, *headers, creds.signed_headers, payload_hash);
    std::string to_sign = internal::StringToSign(ctx->amz_date, ctx->scope, canonical);
    std::string signature = HexEncode(HmacSha256(ctx->signing_key, to_sign));
    if (internal::ConstantTimeEquals(signature, creds.signature)) {
      ctx->seed_signature = std::move(signature);
      return Status::OK();
    }
    if (i == 0)
      GLOG_DEBUG("SigV4 mismatch for {}; canonical request:\n{}", ctx->access_key, canonical);
  }
  return SignatureMismatch();
}

Result<std::string> LookupSecret(const SecretLookup& secrets, const std::string& access_key) {
  std::optional<std::string> secret = secrets ? secrets(access_key) : std::nullopt;
  if (!secret) {
    return Status(Code::kUnauthenticated,
                  "InvalidAccessKeyId: the access key \"" + Clip(access_key) + "\" does not exist");
  }
  return std::move(*secret);
}

Result<AuthContext> AuthenticateHeader(const RequestView& request, std::string_view authorization,
                                       std::string_view path, std::string_view query,
                                       const SecretLookup& secrets, int64_t now_unix_s) {
  Credentials creds;
  RETURN_IF_ERROR(ParseAuthorization(authorization, &creds));
  AuthContext ctx;
  ctx.access_key = creds.access_key;

  ASSIGN_OR_RETURN(auto amz_date, SingleHeader(request, "x-amz-date"));
  int64_t request_time = 0;
  if (amz_date) {
    auto t = internal::ParseAmzDate(*amz_date);
    if (!t.ok())
      return Status(Code::kUnauthenticated, "AccessDenied: X-Amz-Date: " + t.status().message());
    request_time = *t;
    ctx.amz_date = std::string(*amz_date);
  } else {
    ASSIGN_OR_RETURN(auto date, SingleHeader(request, "date"));
    if (!date) {
      return Status(Code::kUnauthenticated,
                    "AccessDenied: AWS authentication requires a valid Date or x-amz-date header");
    }
    auto t = internal::ParseHttpDate(*date);
    if (!t.ok())
      return Status(Code::kUnauthenticated, "AccessDenied: Date: " + t.status().message());
    request_time = *t;
    ctx.amz_date = internal::FormatAmzDate(request_time);
  }
  if (std::string_view(ctx.amz_date).substr(0, 8) != creds.date) {
    return Malformed(false, "the Credential date " + creds.date +
                                " is not the date of the request (" + ctx.amz_date + ")");
  }
  ctx.scope = creds.date + "/" + creds.region + "/s3/aws4_request";

  ASSIGN_OR_RETURN(auto content_sha256, SingleHeader(request, "x-amz-content-sha256"));
  if (!content_sha256) {
    return Status(Code::kInvalidArgument,
                  "InvalidRequest: the x-amz-content-sha256 header is missing; SigV4 requests "
                  "to S3 must carry it");
  }
  RETURN_IF_ERROR(ParsePayloadHash(*content_sha256, false, &ctx));
  RETURN_IF_ERROR(ParseStreamingHeaders(request, &ctx));

  ASSIGN_OR_RETURN(std::string secret, LookupSecret(secrets, creds.access_key));
  int64_t skew = now_unix_s - request_time;
  if (skew > kMaxSkewSeconds || skew < -kMaxSkewSeconds) {
    return Status(Code::kUnauthenticated,
                  "RequestTimeTooSkewed: the request time " + ctx.amz_date + " is " +
                      std::to_string(skew < 0 ? -skew : skew) + " s away from the server's " +
                      internal::FormatAmzDate(now_unix_s) +
                      "; the difference may be at most 15 minutes: fix the client's clock");
  }
  auto canonical_query = CanonicalQueryString(query);
  if (!canonical_query.ok()) {
    return Status(Code::kInvalidArgument, "InvalidArgument: " + canonical_query.status().message());
  }
  RETURN_IF_ERROR(
      CheckSignature(request, path, *canonical_query, *content_sha256, creds, secret, &ctx));
  return ctx;
}

Result<AuthContext> AuthenticatePresigned(const RequestView& request, const QueryAuth& q,
                                          std::string_view path, std::string_view query,
                                          const SecretLookup& secrets, int64_t now_unix_s) {
  if (!q.algorithm || !q.credential || !q.date || !q.expires || !q.signed_headers || !q.signature) {
    return Malformed(true,
                     "query-string authentication version 4 requires the X-Amz-Algorithm, "
                     "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders and "
                     "X-Amz-Expires parameters");
  }
  if (*q.algorithm != kAlgorithm) {
    return Malformed(
        true, "X-Amz-Algorithm only supports AWS4-HMAC-SHA256, not \"" + Clip(*q.algorithm) + "\"");
  }
  Credentials creds;
  RETURN_IF_ERROR(ParseCredential(*q.credential, true, &creds));
  RETURN_IF_ERROR(ParseSignedHeaders(*q.signed_headers, true, &creds));
  RETURN_IF_ERROR(ParseSignature(*q.signature, true, &creds));
  auto t = internal::ParseAmzDate(*q.date);
  if (!t.ok()) return Malformed(true, "X-Amz-Date: " + t.status().message());
  const std::string& e = *q.expires;
  int64_t expires = 0;
  bool expires_ok =
      !e.empty() && e.size() <= 7 && e.find_first_not_of("0123456789") == std::string::npos;
  for (char c : expires_ok ? e : std::string()) expires = expires * 10 + (c - '0');
  if (!expires_ok || expires < 1 || expires > kMaxPresignExpires) {
    return Malformed(true,
                     "X-Amz-Expires must be a number of seconds from 1 to 604800 (one "
                     "week), not \"" +
                         Clip(e) + "\"");
  }
  AuthContext ctx;
  ctx.presigned = true;
  ctx.access_key = creds.access_key;
  ctx.amz_date = *q.date;
  if (std::string_view(ctx.amz_date).substr(0, 8) != creds.date) {
    return Malformed(true, "the X-Amz-Credential date " + creds.date +
                               " is not the date of X-Amz-Date (" + ctx.amz_date + ")");
  }
  ctx.scope = creds.date + "/" + creds.region + "/s3/aws4_request";
  std::string payload_hash(q.content_sha256 ? *q.content_sha256 : internal::kUnsignedPayload);
  RETURN_IF_ERROR(ParsePayloadHash(payload_hash, true, &ctx));

  ASSIGN_OR_RETURN(std::string secret, LookupSecret(secrets, creds.access_key));
  if (*t - now_unix_s > kMaxSkewSeconds) {
    return Status(Code::kUnauthenticated, "AccessDenied: request is not valid yet: X-Amz-Date " +
                                              ctx.amz_date + " is in the future");
  }
  if (now_unix_s > *t + expires) {
    return Status(Code::kUnauthenticated, "AccessDenied: request has expired: it was valid until " +
                                              internal::FormatAmzDate(*t + expires));
  }
  auto canonical_query = CanonicalQueryString(query, "X-Amz-Signature");
  if (!canonical_query.ok()) {
    return Status(Code::kInvalidArgument, "InvalidArgument: " + canonical_query.status().message());
  }
  RETURN_IF_ERROR(
      CheckSignature(request, path, *canonical_query, payload_hash, creds, secret, &ctx));
  return ctx;
}

}  // namespace

Result<AuthContext> Authenticate(const RequestView& request, const SecretLookup& secrets,
                                 int64_t now_unix_s) {
  auto split = internal::SplitTarget(request.target);
  if (!split.ok())
    return Status(Code::kInvalidArgument, "InvalidRequest: " + split.status().message());
  auto [path, query] = *split;

  std::optional<std::string_view> authorization;
  for (const auto& [name, value] : request.headers) {
    if (name != "authorization") continue;
    if (authorization)
      return Malformed(false, "the request has more than one Authorization header");
    authorization = value;
  }
  ASSIGN_OR_RETURN(QueryAuth q, ScanQuery(query));
  if (authorization && q.any()) {
    return Status(Code::kInvalidArgument,
                  "InvalidArgument: only one authentication mechanism is allowed: the "
                  "X-Amz-Algorithm query parameter or the Authorization header");
  }
  if (authorization) {
    return AuthenticateHeader(request, *authorization, path, query, secrets, now_unix_s);
  }
  if (q.any()) return AuthenticatePresigned(request, q, path, query, secrets, now_unix_s);
  if (q.sigv2) {
    return Status(Code::kInvalidArgument,
                  "InvalidRequest: Signature Version 2 presigned URLs are not supported; presign "
                  "with AWS Signature Version 4");
  }
  return Status(Code::kPermissionDenied,
                "AccessDenied: anonymous access is not allowed; sign the request with AWS "
                "Signature Version 4");
}

}  // namespace granary::s3
