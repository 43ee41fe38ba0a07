#include "common/names.h"

#include <string>

#include "granary/object_api.h"

namespace granary {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool LooksLikeIpv4(std::string_view s) {
  int dots = 0;
  int digits = 0;
  for (char c : s) {
    if (c == '.') {
      if (digits == 0 || digits > 3) return false;
      ++dots;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  return dots == 3 && digits > 0 && digits <= 3;
}

Status BadBucket(std::string_view name, std::string_view rule) {
  return Status::InvalidArgument("bucket name \"" + std::string(name) + "\" is invalid: " +
                                 std::string(rule));
}

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not valid UTF-8.
size_t Utf8Length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

Status ValidateBucketName(std::string_view name) {
  constexpr std::string_view kRule = "use 3-63 lowercase letters, digits, dots or hyphens";
  if (name.size() < 3 || name.size() > 63) return BadBucket(name, kRule);
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-') return BadBucket(name, kRule);
  }
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) {
    return BadBucket(name, "it must start and end with a lowercase letter or digit");
  }
  if (name.find("..") != std::string_view::npos) {
    return BadBucket(name, "it must not contain two adjacent dots");
  }
  if (LooksLikeIpv4(name)) return BadBucket(name, "it must not be an IP address");
  if (name.starts_with("xn--") || name.starts_with("sthree-") || name.ends_with("-s3alias") ||
      name.ends_with("--ol-s3")) {
    return BadBucket(name, "the prefixes xn-- and sthree- and the suffixes -s3alias and --ol-s3 "
                           "are reserved");
  }
  return Status::OK();
}

Status ValidateObjectKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("object key is empty");
  if (key.size() > kMaxObjectKeyBytes) {
    return Status::InvalidArgument("object key of " + std::to_string(key.size()) +
                                   " bytes is too long: the limit is 1024 bytes");
  }
  for (size_t i = 0; i < key.size();) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 && c != '\t') {
      return Status::InvalidArgument("object key contains control character " +
                                     std::to_string(c) + " at byte " + std::to_string(i) +
                                     ": keys must not contain NUL or control characters");
    }
    size_t n = Utf8Length(key, i);
    if (n == 0) {
      return Status::InvalidArgument("object key is not valid UTF-8 at byte " +
                                     std::to_string(i));
    }
    i += n;
  }
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view segment = key.substr(start, end - start);
    if (segment == "." || segment == "..") {
      return Status::InvalidArgument("object key \"" + std::string(key) +
                                     "\" has a \"" + std::string(segment) +
                                     "\" path segment: keys must not contain . or .. segments");
    }
    start = end + 1;
  }
  return Status::OK();
}

Status ValidateBucketReplicas(int64_t replicas) {
  if (replicas >= 0 && replicas <= kMaxReplicas) return Status::OK();
  return Status::InvalidArgument("a bucket's replica count must be 1 to " +
                                 std::to_string(kMaxReplicas) + " (0: the default), not " +
                                 std::to_string(replicas));
}

}  // namespace granary
