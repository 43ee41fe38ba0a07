#include "common/clock.h"

namespace granary {

uint64_t SystemClock::NowNanos() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint64_t SystemClock::WallMicros() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Clock* SystemClock::Default() {
  static SystemClock clock;
  return &clock;
}

}  // namespace granary
