// The client side of SigV4: Authorization headers, presigned URLs and signed aws-chunked
// bodies, for tests, benchmarks and tools that talk to the gateway.
#include <algorithm>
#include <cstdio>

#include "s3/auth.h"
#include "s3/auth_internal.h"

namespace granary::s3 {
namespace {

bool ValidHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

std::string Scope(std::string_view amz_date, std::string_view region) {
  return std::string(amz_date.substr(0, 8)) + "/" + std::string(region) + "/s3/aws4_request";
}

}  // namespace

Result<SignedRequest> SignRequest(std::string_view method, std::string_view target,
                                  std::vector<std::pair<std::string, std::string>>* headers,
                                  const SignOptions& options) {
  ASSIGN_OR_RETURN(auto split, internal::SplitTarget(target));
  auto [path, query] = split;
  SignedRequest out;
  out.amz_date = internal::FormatAmzDate(options.now_unix_s);
  std::erase_if(*headers, [](const auto& h) {
    return h.first == "x-amz-date" || h.first == "x-amz-content-sha256";
  });
  headers->emplace_back("x-amz-date", out.amz_date);
  headers->emplace_back("x-amz-content-sha256", options.payload_sha256);

  std::vector<std::string_view> names;
  for (const auto& [name, value] : *headers) {
    if (!ValidHeaderName(name)) {
      return Status::InvalidArgument("header name \"" + name.substr(0, 64) +
                                     "\" must be lower-case letters, digits, '-', '_' or '.'");
    }
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (!std::binary_search(names.begin(), names.end(), "host")) {
    return Status::InvalidArgument("a signed request needs a host header");
  }
  std::string signed_headers;
  for (std::string_view name : names) {
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += name;
  }
  ASSIGN_OR_RETURN(std::string canonical_headers,
                   internal::CanonicalHeaders(*headers, names, nullptr));
  ASSIGN_OR_RETURN(std::string canonical_query, CanonicalQueryString(query));
  std::string canonical = internal::CanonicalRequest(
      method, path, canonical_query, canonical_headers, signed_headers, options.payload_sha256);
  out.scope = Scope(out.amz_date, options.region);
  out.signing_key =
      DeriveSigningKey(options.secret_key, out.amz_date.substr(0, 8), options.region, "s3");
  out.signature = HexEncode(
      HmacSha256(out.signing_key, internal::StringToSign(out.amz_date, out.scope, canonical)));
  out.authorization = std::string(internal::kAlgorithm) + " Credential=" + options.access_key +
                      "/" + out.scope + ", SignedHeaders=" + signed_headers +
                      ", Signature=" + out.signature;
  return out;
}

Result<std::string> PresignTarget(std::string_view method, std::string_view target,
                                  std::string_view host, int64_t expires_s,
                                  const SignOptions& options) {
  if (expires_s < 1 || expires_s > 604800) {
    return Status::InvalidArgument("a presigned URL expires after 1 to 604800 seconds, not " +
                                   std::to_string(expires_s));
  }
  ASSIGN_OR_RETURN(auto split, internal::SplitTarget(target));
  auto [path, query] = split;
  std::string amz_date = internal::FormatAmzDate(options.now_unix_s);
  std::string scope = Scope(amz_date, options.region);
  std::string new_query(query);
  if (!new_query.empty()) new_query += '&';
  new_query += "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
               UriEncode(options.access_key + "/" + scope, false) + "&X-Amz-Date=" + amz_date +
               "&X-Amz-Expires=" + std::to_string(expires_s) + "&X-Amz-SignedHeaders=host";
  ASSIGN_OR_RETURN(std::string canonical_query, CanonicalQueryString(new_query));
  std::string canonical_headers = "host:" + internal::CanonicalHeaderValue(host) + "\n";
  std::string canonical = internal::CanonicalRequest(
      method, path, canonical_query, canonical_headers, "host", internal::kUnsignedPayload);
  std::string key =
      DeriveSigningKey(options.secret_key, amz_date.substr(0, 8), options.region, "s3");
  std::string signature =
      HexEncode(HmacSha256(key, internal::StringToSign(amz_date, scope, canonical)));
  return std::string(path) + "?" + new_query + "&X-Amz-Signature=" + signature;
}

ChunkSigner::ChunkSigner(const SignedRequest& signed_request)
    : request_(signed_request), previous_(signed_request.signature) {}

std::string ChunkSigner::Chunk(std::string_view data) {
  std::string to_sign =
      internal::ChunkStringToSign(request_.amz_date, request_.scope, previous_, Sha256Hex(data));
  previous_ = HexEncode(HmacSha256(request_.signing_key, to_sign));
  char size[32];
  std::snprintf(size, sizeof(size), "%zx", data.size());
  std::string out = size;
  out += ";chunk-signature=";
  out += previous_;
  out += "\r\n";
  if (!data.empty()) {
    out += data;
    out += "\r\n";
  }
  return out;
}

std::string ChunkSigner::Trailer(const std::vector<std::pair<std::string, std::string>>& trailers) {
  auto sorted = trailers;
  std::sort(sorted.begin(), sorted.end());
  std::string canonical;
  std::string out;
  for (const auto& [name, value] : sorted) {
    canonical += name + ":" + value + "\n";
    out += name + ":" + value + "\r\n";
  }
  std::string to_sign = internal::TrailerStringToSign(request_.amz_date, request_.scope, previous_,
                                                      Sha256Hex(canonical));
  out += "x-amz-trailer-signature:" + HexEncode(HmacSha256(request_.signing_key, to_sign)) +
         "\r\n\r\n";
  return out;
}

}  // namespace granary::s3
