#include "tools/bench_report.h"

#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <sstream>

namespace granary::tools {

uint64_t BenchNowNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Values below 2^kSubBits have a bucket each; above, a power of two [2^e, 2^(e+1)) is split into
// 2^kSubBits equal sub-buckets.
int LatencyHistogram::BucketOf(uint64_t value) {
  if (value < (1ull << kSubBits)) return static_cast<int>(value);
  const int msb = 63 - std::countl_zero(value);
  const int shift = msb - kSubBits;
  const uint64_t sub = (value >> shift) & ((1ull << kSubBits) - 1);
  return ((shift + 1) << kSubBits) | static_cast<int>(sub);
}

double LatencyHistogram::BucketMid(int bucket) {
  if (bucket < (1 << kSubBits)) return bucket;
  const int shift = (bucket >> kSubBits) - 1;
  const uint64_t mantissa =
      (static_cast<uint64_t>(bucket) & ((1ull << kSubBits) - 1)) | (1ull << kSubBits);
  const double low = std::ldexp(static_cast<double>(mantissa), shift);
  return low + std::ldexp(1.0, shift) / 2.0;
}

void LatencyHistogram::Add(uint64_t value) {
  ++buckets_[BucketOf(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0.0;
  p = std::clamp(p, 0.0, 100.0);
  // The rank of the value wanted, 1-based: the smallest value with at least p% at or below it.
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  if (rank >= count_) return static_cast<double>(max_);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      return std::clamp(BucketMid(i), static_cast<double>(min_), static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

std::optional<double> BenchRow::Ratio() const {
  if (!granary || !baseline_value) return std::nullopt;
  const double num = higher_is_better ? *granary : *baseline_value;
  const double den = higher_is_better ? *baseline_value : *granary;
  if (den <= 0.0) return std::nullopt;
  return num / den;
}

std::string FormatFigure(double value) {
  if (!std::isfinite(value)) return "-";
  char buf[64];
  const double mag = std::fabs(value);
  if (mag >= 100.0 || mag == 0.0) {
    std::snprintf(buf, sizeof(buf), "%.0f", value);
  } else if (mag >= 10.0) {
    std::snprintf(buf, sizeof(buf), "%.1f", value);
  } else if (mag >= 0.01) {
    std::snprintf(buf, sizeof(buf), "%.2f", value);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2g", value);
  }
  std::string s = buf;
  if (mag < 10000.0) return s;
  // Thousands separators in the integer part (which is all of s: no decimals above 100).
  const size_t sign = (s[0] == '-') ? 1 : 0;
  std::string out = s.substr(0, sign);
  const size_t digits = s.size() - sign;
  for (size_t i = 0; i < digits; ++i) {
    if (i > 0 && (digits - i) % 3 == 0) out += ',';
    out += s[sign + i];
  }
  return out;
}

namespace {

std::string WithUnit(const std::optional<double>& v, const std::string& unit) {
  if (!v) return "-";
  return FormatFigure(*v) + " " + unit;
}

std::string Pad(const std::string& s, size_t width, bool right) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return right ? fill + s : s + fill;
}

nlohmann::json Nullable(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

void BenchReport::PrintTable(std::ostream& out) const {
  const std::vector<std::string> header = {"workload", "granary", "baseline", "baseline figure",
                                           "ratio"};
  // machine: 2 cores (AMD EPYC), 24 GiB, ext4 on /dev/vda, Linux 6.1, load 6.43 6.95 4.30
  if (!machine_.empty()) {
    std::string line = "machine:";
    auto str = [&](const char* key) -> std::string {
      auto it = machine_.find(key);
      return it != machine_.end() && it->is_string() ? it->get<std::string>() : "";
    };
    if (machine_.contains("cores")) line += " " + machine_["cores"].dump() + " cores";
    if (!str("cpu").empty()) line += " (" + str("cpu") + ")";
    if (machine_.contains("memory_bytes") && machine_["memory_bytes"].is_number()) {
      line += ", " + FormatFigure(machine_["memory_bytes"].get<double>() / (1ull << 30)) + " GiB";
    }
    if (!str("fs_type").empty()) line += ", " + str("fs_type") + " on " + str("fs_device");
    if (!str("kernel").empty()) line += ", " + str("kernel");
    if (!str("load_average").empty()) line += ", load " + str("load_average");
    if (!str("load_average_end").empty()) line += " (at the end: " + str("load_average_end") + ")";
    out << line << "\n\n";
  }
  std::vector<std::vector<std::string>> cells;
  for (const BenchRow& r : rows_) {
    const auto ratio = r.Ratio();
    cells.push_back({r.name, WithUnit(r.granary, r.unit), r.baseline.empty() ? "-" : r.baseline,
                     r.baseline.empty() ? "-" : WithUnit(r.baseline_value, r.unit),
                     ratio ? FormatFigure(*ratio) + "x" : "-"});
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : cells) width[c] = std::max(width[c], row[c].size());
  }
  // Figures are right-aligned, names left-aligned.
  const std::vector<bool> right = {false, true, false, true, true};
  auto print_line = [&](const std::vector<std::string>& line) {
    std::string s;
    for (size_t c = 0; c < line.size(); ++c) {
      if (c) s += "  ";
      s += Pad(line[c], width[c], right[c]);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  print_line(header);
  size_t total = 0;
  for (size_t w : width) total += w;
  out << std::string(total + 2 * (width.size() - 1), '-') << "\n";
  for (const auto& row : cells) print_line(row);

  bool any_note = false;
  auto notes_header = [&] {
    if (!any_note) out << "\nnotes:\n";
    any_note = true;
  };
  for (const BenchRow& r : rows_) {
    if (r.note.empty()) continue;
    notes_header();
    out << "  " << r.name << (r.baseline.empty() ? "" : " vs " + r.baseline) << ": " << r.note
        << "\n";
  }
  for (const auto& n : notes_) {
    notes_header();
    out << "  " << n << "\n";
  }
  if (!errors_.empty()) {
    out << "\nerrors:\n";
    for (const auto& e : errors_) out << "  " << e << "\n";
  }
  out.flush();
}

nlohmann::json BenchReport::ToJson() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const BenchRow& r : rows_) {
    nlohmann::json j = {
        {"name", r.name},
        {"unit", r.unit},
        {"granary", Nullable(r.granary)},
        {"baseline", r.baseline.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.baseline)},
        {"baseline_value", Nullable(r.baseline_value)},
        {"ratio", Nullable(r.Ratio())},
        {"higher_is_better", r.higher_is_better},
    };
    if (!r.note.empty()) j["note"] = r.note;
    if (!r.details.empty()) j["details"] = r.details;
    rows.push_back(std::move(j));
  }
  return {{"benchmark", benchmark_}, {"workloads", std::move(rows)},
          {"machine", machine_},     {"config", config_},
          {"notes", notes_},         {"errors", errors_}};
}

namespace {

// The first "key : value" line of /proc/cpuinfo with this key.
std::optional<std::string> CpuInfoField(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    return value;
  }
  return std::nullopt;
}

// Unescapes the octal escapes (\040 for a space) of a /proc/self/mounts field.
std::string UnescapeMountField(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct = s.substr(i + 1, 3);
      if (std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "";
  return a + " " + b + " " + c;
}

nlohmann::json DescribeMachine(const std::string& dir) {
  nlohmann::json m = nlohmann::json::object();
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online > 0) m["cores"] = online;
  if (auto model = CpuInfoField("model name")) m["cpu"] = *model;
  struct sysinfo si {};
  if (sysinfo(&si) == 0) {
    m["memory_bytes"] = static_cast<uint64_t>(si.totalram) * si.mem_unit;
  }
  struct utsname un {};
  if (uname(&un) == 0) m["kernel"] = std::string(un.sysname) + " " + un.release;
  if (auto load = LoadAverage(); !load.empty()) m["load_average"] = load;

  std::error_code ec;
  const auto real = std::filesystem::canonical(dir, ec);
  if (!ec) {
    m["dir"] = real.string();
    // The mount whose mount point is the longest prefix of `dir`.
    std::ifstream in("/proc/self/mounts");
    std::string line, best_point, best_type, best_source;
    const std::string path = real.string();
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string source, point, type;
      if (!(fields >> source >> point >> type)) continue;
      point = UnescapeMountField(point);
      const bool prefix =
          point == "/" || path == point ||
          (path.rfind(point, 0) == 0 && path.size() > point.size() && path[point.size()] == '/');
      if (prefix && point.size() >= best_point.size()) {
        best_point = point;
        best_type = type;
        best_source = UnescapeMountField(source);
      }
    }
    if (!best_type.empty()) {
      m["fs_type"] = best_type;
      m["fs_device"] = best_source;
      m["fs_mount"] = best_point;
    }
  }
  return m;
}

int BenchReport::Finish(bool json) const {
  std::cerr << std::endl;
  PrintTable(json ? std::cerr : std::cout);
  if (json) {
    // Replace, rather than throw on, invalid UTF-8 (a path, a CPU name, fio's stderr).
    std::cout << ToJson().dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << std::endl;
  }
  return errors_.empty() ? 0 : 1;
}

}  // namespace granary::tools
