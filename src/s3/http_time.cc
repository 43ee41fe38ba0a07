// Timestamp formats (http_time.h).
#include "s3/http_time.h"

#include <cstdio>
#include <ctime>
#include <vector>

namespace granary::s3 {
namespace {

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct tm ToTm(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  if (unix_ns < 0 && unix_ns % 1000000000 != 0) --secs;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  return tm;
}

int MonthIndex(std::string_view m) {
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[i]) return i;
  }
  return -1;
}

bool ParseUint(std::string_view s, int* out) {
  if (s.empty() || s.size() > 4) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// "HH:MM:SS"
bool ParseClock(std::string_view s, struct tm* tm) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  return ParseUint(s.substr(0, 2), &tm->tm_hour) && ParseUint(s.substr(3, 2), &tm->tm_min) &&
         ParseUint(s.substr(6, 2), &tm->tm_sec) && tm->tm_hour < 24 && tm->tm_min < 60 &&
         tm->tm_sec <= 60;
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::string FormatIso8601(int64_t unix_ns) {
  struct tm tm = ToTm(unix_ns);
  int64_t ms = (unix_ns % 1000000000 + 1000000000) % 1000000000 / 1000000;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string FormatRfc1123(int64_t unix_ns) {
  struct tm tm = ToTm(unix_ns);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

Result<int64_t> ParseHttpDate(std::string_view text) {
  std::vector<std::string_view> f = Split(text);
  struct tm tm {};
  bool ok = false;
  if (f.size() == 6 && f[0].size() == 4 && f[0][3] == ',' && f[5] == "GMT") {
    // RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT"
    int mon = MonthIndex(f[2]);
    ok = mon >= 0 && ParseUint(f[1], &tm.tm_mday) && ParseUint(f[3], &tm.tm_year) &&
         f[3].size() == 4 && ParseClock(f[4], &tm);
    tm.tm_mon = mon;
    tm.tm_year -= 1900;
  } else if (f.size() == 4 && f[0].ends_with(',') && f[3] == "GMT" && f[1].size() == 9) {
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    std::string_view d = f[1];
    int mon = MonthIndex(d.substr(3, 3));
    ok = d[2] == '-' && d[6] == '-' && mon >= 0 && ParseUint(d.substr(0, 2), &tm.tm_mday) &&
         ParseUint(d.substr(7, 2), &tm.tm_year) && ParseClock(f[2], &tm);
    tm.tm_mon = mon;
    if (tm.tm_year < 70) tm.tm_year += 100;
  } else if (f.size() == 5) {
    // asctime: "Sun Nov  6 08:49:37 1994"
    int mon = MonthIndex(f[1]);
    ok = mon >= 0 && ParseUint(f[2], &tm.tm_mday) && ParseClock(f[3], &tm) &&
         ParseUint(f[4], &tm.tm_year) && f[4].size() == 4;
    tm.tm_mon = mon;
    tm.tm_year -= 1900;
  }
  if (!ok || tm.tm_mday < 1 || tm.tm_mday > 31) {
    return Status::InvalidArgument("\"" + std::string(text) +
                                   "\" is not an HTTP date such as \"Sun, 06 Nov 1994 08:49:37 GMT\"");
  }
  time_t secs = timegm(&tm);
  return static_cast<int64_t>(secs) * 1000000000;
}

}  // namespace granary::s3
