// Range header parsing (range.h).
#include "s3/range.h"

#include <algorithm>
#include <charconv>

namespace granary::s3 {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseNumber(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

Result<bool> ParseRange(std::string_view header, GetOptions* options) {
  header = Trim(header);
  if (!header.starts_with("bytes=")) return false;
  std::string_view spec = Trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return false;  // several ranges: whole object
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return false;
  std::string_view first = Trim(spec.substr(0, dash));
  std::string_view last = Trim(spec.substr(dash + 1));
  if (first.empty()) {
    uint64_t n;
    if (!ParseNumber(last, &n)) return false;
    if (n == 0) {
      return Status(Code::kInvalidRange, "the range \"" + std::string(header) +
                                             "\" asks for no bytes");
    }
    options->offset = 0;
    options->length = UINT64_MAX;
    options->suffix_length = n;
    return true;
  }
  uint64_t a;
  if (!ParseNumber(first, &a)) return false;
  if (last.empty()) {
    options->offset = a;
    options->length = UINT64_MAX;
    options->suffix_length = 0;
    return true;
  }
  uint64_t b;
  if (!ParseNumber(last, &b) || b < a) return false;
  options->offset = a;
  options->length = b - a == UINT64_MAX ? UINT64_MAX : b - a + 1;
  options->suffix_length = 0;
  return true;
}

Status ResolveRange(const GetOptions& options, uint64_t size, uint64_t* offset,
                    uint64_t* length) {
  if (options.suffix_length != 0) {
    *length = std::min(options.suffix_length, size);
    *offset = size - *length;
    return Status::OK();
  }
  if (!options.has_range()) {
    *offset = 0;
    *length = size;
    return Status::OK();
  }
  if (options.offset >= size) {
    return Status(Code::kInvalidRange, "the range starts at byte " +
                                           std::to_string(options.offset) + " but the object has " +
                                           std::to_string(size) + " bytes");
  }
  *offset = options.offset;
  *length = std::min(options.length, size - options.offset);
  return Status::OK();
}

}  // namespace granary::s3
