#include "replication/scrubber.h"

#include <chrono>
#include <string>
#include <vector>

#include "common/logging.h"

namespace granary::replication {

using Clock = std::chrono::steady_clock;

void Scrubber::Start() {
  if (options_.bytes_per_second == 0) return;
  thread_ = std::thread([this] { Run(); });
}

void Scrubber::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ScrubberStats Scrubber::Stats() const {
  return {passes_.load(), checked_.load(), damaged_.load(), repaired_.load()};
}

bool Scrubber::Sleep(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return !wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void Scrubber::Run() {
  for (;;) {
    const auto started = Clock::now();
    if (!Pass()) return;
    passes_.fetch_add(1);
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    if (!Sleep(std::max<int64_t>(100, options_.pass_interval_ms - elapsed))) return;
  }
}

bool Scrubber::Pass() {
  std::vector<std::string> keys;
  Status listed = store_.Scan([&](std::string_view key, uint64_t) { keys.emplace_back(key); });
  if (!listed.ok()) {
    GLOG_WARN("scrub could not list the blobs: {}", listed.ToString());
    return Sleep(1000);
  }
  // Reads are paced so that, on average, no more than bytes_per_second are read.
  const auto start = Clock::now();
  double bytes = 0;
  for (const std::string& key : keys) {
    std::vector<Result<std::string>> got = store_.GetMany(std::span<const std::string>(&key, 1));
    checked_.fetch_add(1);
    if (got[0].ok()) {
      bytes += static_cast<double>(got[0]->size());
    } else if (got[0].status().code() == Code::kCorruption) {
      damaged_.fetch_add(1);
      Status repaired = replica_.RepairBlob(key);
      if (repaired.ok()) {
        repaired_.fetch_add(1);
      } else if (repaired.code() != Code::kPreconditionFailed) {  // not a chain it serves
        GLOG_ERROR("scrub found a damaged blob it could not repair: {}", repaired.ToString());
      }
    }
    const double due = bytes / static_cast<double>(options_.bytes_per_second);
    const double spent = std::chrono::duration<double>(Clock::now() - start).count();
    if (due > spent && !Sleep(static_cast<int64_t>((due - spent) * 1000))) return false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return false;
    }
  }
  return true;
}

}  // namespace granary::replication
