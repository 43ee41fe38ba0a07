#include "common/crc32c.h"

#include <isa-l/crc.h>

namespace granary::crc32c {

// ISA-L's crc32_iscsi takes and returns the raw register value, without the customary final
// inversion; the inversions here make Extend() compute the standard CRC32C (check value of
// "123456789" is 0xE3069283) and compose: Extend(Extend(0, a), b) == Value(a + b).
uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t reg = ~crc;
  while (n > 0) {
    // crc32_iscsi takes an int length.
    int chunk = n > (1u << 30) ? (1 << 30) : static_cast<int>(n);
    reg = crc32_iscsi(const_cast<unsigned char*>(p), chunk, reg);
    p += chunk;
    n -= static_cast<size_t>(chunk);
  }
  return ~reg;
}

}  // namespace granary::crc32c
