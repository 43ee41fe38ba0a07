#include "common/hash.h"

#include <xxhash.h>

namespace granary {

KeyHash HashKey(std::string_view key) {
  XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  return KeyHash{h.low64, h.high64};
}

}  // namespace granary
