// KeyHash: a 128-bit XXH3 fingerprint of a key. The engine's index stores fingerprints instead of
// keys, so its memory does not grow with key length; the full key is still checked against the
// record on every read. Stable across processes, builds and machines (it is persisted).
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace granary {

struct KeyHash {
  uint64_t lo = 0;
  uint64_t hi = 0;

  friend bool operator==(const KeyHash&, const KeyHash&) = default;
};

KeyHash HashKey(std::string_view key);

}  // namespace granary
