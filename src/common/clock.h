// Clock: the source of time for everything that waits or measures. Components take a Clock* so
// that tests can drive time instead of sleeping.
// Thread-safe: both implementations may be used from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace granary {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time in nanoseconds since an arbitrary origin.
  virtual uint64_t NowNanos() const = 0;
  // Wall-clock time in microseconds since the Unix epoch.
  virtual uint64_t WallMicros() const = 0;
};

class SystemClock final : public Clock {
 public:
  uint64_t NowNanos() const override;
  uint64_t WallMicros() const override;
  // The process-wide instance; stateless, so sharing it is safe.
  static Clock* Default();
};

// A clock that only moves when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t start_nanos = 0) : now_(start_nanos) {}
  uint64_t NowNanos() const override { return now_.load(); }
  uint64_t WallMicros() const override { return now_.load() / 1000; }
  void Advance(std::chrono::nanoseconds d) { now_ += static_cast<uint64_t>(d.count()); }

 private:
  std::atomic<uint64_t> now_;
};

}  // namespace granary
