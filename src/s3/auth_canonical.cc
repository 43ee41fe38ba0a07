// SigV4 canonical forms: dates, URI and query encoding, canonical headers and requests, and the
// strings to sign.
#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>

#include "s3/auth.h"
#include "s3/auth_internal.h"

namespace granary::s3 {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Parses exactly `n` decimal digits at `text[pos]`; -1 if they are not all digits.
int64_t Digits(std::string_view text, size_t pos, size_t n) {
  if (pos + n > text.size()) return -1;
  int64_t v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

Result<int64_t> ToUnix(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s) {
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 ||
      s > 60 || d > DaysInMonth(y, static_cast<unsigned>(mo))) {
    return Status::InvalidArgument("date is out of range");
  }
  return DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
         mi * 60 + s;
}

// The strings SigV4 signs are lines joined by newlines, the last without one.
std::string JoinLines(std::initializer_list<std::string_view> lines) {
  size_t size = lines.size();
  for (std::string_view line : lines) size += line.size();
  std::string out;
  out.reserve(size);
  for (const std::string_view* line = lines.begin(); line != lines.end(); ++line) {
    if (line != lines.begin()) out += '\n';
    out += *line;
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view raw, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

Result<std::string> CanonicalQueryString(std::string_view raw_query, std::string_view skip) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t pos = 0;
  while (pos <= raw_query.size()) {
    size_t end = raw_query.find('&', pos);
    if (end == std::string_view::npos) end = raw_query.size();
    std::string_view item = raw_query.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    auto decoded_name = internal::PercentDecode(name, true);
    auto decoded_value = internal::PercentDecode(value, true);
    if (!decoded_name.ok() || !decoded_value.ok()) {
      return Status::InvalidArgument("query parameter \"" + std::string(item.substr(0, 64)) +
                                     "\" has a bad percent escape");
    }
    if (!skip.empty() && *decoded_name == skip) continue;
    params.emplace_back(UriEncode(*decoded_name, false), UriEncode(*decoded_value, false));
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

namespace internal {

std::string FormatAmzDate(int64_t unix_s) {
  int64_t days = unix_s >= 0 ? unix_s / 86400 : (unix_s - 86399) / 86400;
  int64_t secs = unix_s - days * 86400;
  // civil_from_days (Howard Hinnant).
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld%02u%02uT%02d%02d%02dZ", static_cast<long long>(y), m, d,
                static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                static_cast<int>(secs % 60));
  return buf;
}

Result<int64_t> ParseAmzDate(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') {
    return Status::InvalidArgument("date \"" + std::string(text.substr(0, 32)) +
                                   "\" is not in the form yyyymmddThhmmssZ");
  }
  int64_t y = Digits(text, 0, 4), mo = Digits(text, 4, 2), d = Digits(text, 6, 2);
  int64_t h = Digits(text, 9, 2), mi = Digits(text, 11, 2), s = Digits(text, 13, 2);
  auto t = ToUnix(y, mo, d, h, mi, s);
  if (!t.ok()) {
    return Status::InvalidArgument("date \"" + std::string(text) +
                                   "\" is not a valid yyyymmddThhmmssZ time");
  }
  return t;
}

Result<int64_t> ParseHttpDate(std::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto bad = [&] {
    return Status::InvalidArgument("date \"" + std::string(text.substr(0, 64)) +
                                   "\" is not an HTTP date like \"Sun, 06 Nov 1994 08:49:37 GMT\"");
  };
  if (text.size() < 29 || text[3] != ',' || text[4] != ' ' || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text[25] != ' ') {
    return bad();
  }
  std::string_view zone = text.substr(26);
  if (zone != "GMT" && zone != "UTC" && zone != "+0000") return bad();
  int64_t mo = 0;
  for (int i = 0; i < 12; ++i) {
    if (text.substr(8, 3) == kMonths[i]) mo = i + 1;
  }
  int64_t d = Digits(text, 5, 2), y = Digits(text, 12, 4);
  int64_t h = Digits(text, 17, 2), mi = Digits(text, 20, 2), s = Digits(text, 23, 2);
  auto t = ToUnix(y, mo, d, h, mi, s);
  if (!t.ok()) return bad();
  return t;
}

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return Status::InvalidArgument("truncated percent escape");
      }
      auto hex = [](char h) {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return Status::InvalidArgument("bad percent escape");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::pair<std::string_view, std::string_view>> SplitTarget(std::string_view target) {
  // Absolute form (through a proxy): drop "scheme://authority".
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() &&
        std::equal(scheme.begin(), scheme.end(), target.begin(),
                   [](char a, char b) { return a == (b | 0x20) || a == b; })) {
      size_t slash = target.find_first_of("/?", scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      if (!target.empty() && target[0] == '?') {
        return Status::InvalidArgument("request target has a query but no path");
      }
      break;
    }
  }
  if (target.empty() || target[0] != '/') {
    return Status::InvalidArgument("request target \"" + std::string(target.substr(0, 64)) +
                                   "\" does not start with '/'");
  }
  size_t q = target.find('?');
  if (q == std::string_view::npos) return std::make_pair(target, std::string_view());
  return std::make_pair(target.substr(0, q), target.substr(q + 1));
}

std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsBlank(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

Result<std::string> CanonicalHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::vector<std::string_view>& signed_names, std::string* missing) {
  std::string out;
  for (std::string_view name : signed_names) {
    out += name;
    out += ':';
    bool found = false;
    for (const auto& [key, value] : headers) {
      if (key != name) continue;
      if (found) out += ',';
      out += CanonicalHeaderValue(value);
      found = true;
    }
    if (!found) {
      if (missing != nullptr) *missing = std::string(name);
      return Status::InvalidArgument("signed header \"" + std::string(name) + "\" is missing");
    }
    out += '\n';
  }
  return out;
}

std::string CanonicalRequest(std::string_view method, std::string_view canonical_uri,
                             std::string_view canonical_query, std::string_view canonical_headers,
                             std::string_view signed_headers, std::string_view payload_hash) {
  return JoinLines({method, canonical_uri, canonical_query, canonical_headers, signed_headers,
                    payload_hash});
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  return JoinLines({kAlgorithm, amz_date, scope, Sha256Hex(canonical_request)});
}

std::string ChunkStringToSign(std::string_view amz_date, std::string_view scope,
                              std::string_view previous_signature, std::string_view chunk_sha256) {
  return JoinLines({"AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous_signature,
                    kEmptySha256, chunk_sha256});
}

std::string TrailerStringToSign(std::string_view amz_date, std::string_view scope,
                                std::string_view previous_signature,
                                std::string_view trailer_sha256) {
  return JoinLines(
      {"AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous_signature, trailer_sha256});
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace internal
}  // namespace granary::s3
