// What every `granary bench ...` command shares: latency histograms, the rows of a report (a
// Granary figure beside a baseline measured in the same run), the table for people and the JSON
// document for machines, and a description of the machine the figures come from.
//
// Thread-safety: LatencyHistogram is not thread-safe (keep one per thread and Merge them);
// BenchReport is not thread-safe (fill it from the command's thread).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace granary::tools {

// Monotonic time in nanoseconds (steady_clock), for timing loops.
uint64_t BenchNowNanos();

// A log-linear histogram of non-negative values (nanoseconds, usually): 64 sub-buckets per power
// of two, so a reported percentile is within about 1.6% of the true value. Fixed size (~30 KiB),
// no allocation while recording.
class LatencyHistogram {
 public:
  void Add(uint64_t value);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double Mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value below which `p` percent (0..100) of the recorded values lie; 0 when empty.
  double Percentile(double p) const;

 private:
  static constexpr int kSubBits = 6;
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;
  static int BucketOf(uint64_t value);
  static double BucketMid(int bucket);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

// One line of a report: a Granary figure and a baseline's figure for the same measurement.
struct BenchRow {
  std::string name;  // "randwrite-4k qd1 iops": unique together with `baseline`
  std::string unit;  // "IOPS", "us", "ops/s", "MB/s", "bytes/blob"
  std::optional<double> granary;
  std::string baseline;                  // "fio fdatasync", "rocksdb"; empty when there is none
  std::optional<double> baseline_value;  // empty when the baseline could not be measured
  bool higher_is_better = true;          // false for latencies
  std::string note;                      // shown under the table; why a figure is missing
  nlohmann::json details = nlohmann::json::object();  // extra figures for machines only

  // granary/baseline when higher is better, baseline/granary otherwise: above 1 means Granary
  // is better. Empty when either figure is missing or the divisor is 0.
  std::optional<double> Ratio() const;
};

// A report: rows in the order they were measured, the machine, the settings, and errors.
class BenchReport {
 public:
  explicit BenchReport(std::string benchmark) : benchmark_(std::move(benchmark)) {}

  void Add(BenchRow row) { rows_.push_back(std::move(row)); }
  // Something went wrong that is not one row's missing figure (printed and put in the JSON).
  void AddError(std::string error) { errors_.push_back(std::move(error)); }
  // Something the reader should know that is not a failure ("fio is not installed").
  void AddNote(std::string note) { notes_.push_back(std::move(note)); }
  void SetMachine(nlohmann::json machine) { machine_ = std::move(machine); }
  nlohmann::json& machine() { return machine_; }
  void SetConfig(nlohmann::json config) { config_ = std::move(config); }

  const std::vector<BenchRow>& rows() const { return rows_; }
  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<std::string>& notes() const { return notes_; }

  // A line about the machine, an aligned table (workload | granary | baseline | baseline figure
  // | ratio), then the notes and errors.
  void PrintTable(std::ostream& out) const;
  // {"benchmark", "workloads": [{name, unit, granary, baseline, baseline_value, ratio,
  // higher_is_better, note?, details?}], "machine", "config", "notes", "errors"}. Missing
  // figures are null.
  nlohmann::json ToJson() const;

  // What every bench command ends with: the table (on stderr when `json`, else stdout), the
  // JSON document on stdout when `json`; returns the exit code (1 if any error was recorded).
  int Finish(bool json) const;

 private:
  std::string benchmark_;
  std::vector<BenchRow> rows_;
  std::vector<std::string> errors_;
  std::vector<std::string> notes_;
  nlohmann::json machine_ = nlohmann::json::object();
  nlohmann::json config_ = nlohmann::json::object();
};

// "41,234", "512", "85.3", "1.27": three significant digits, thousands separators above 9,999.
std::string FormatFigure(double value);

// Cores, CPU model, memory, kernel, load average, and the file system (type, device, mount
// point) holding `dir`. Fields that cannot be read are left out.
nlohmann::json DescribeMachine(const std::string& dir);

// The 1-, 5- and 15-minute load averages ("6.43 6.95 4.30"), or empty if unreadable. Figures
// taken while other work shares the CPUs are not comparable with those of an idle machine.
std::string LoadAverage();

}  // namespace granary::tools
