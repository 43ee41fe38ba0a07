// CRC32C (Castagnoli), computed with ISA-L's hardware-accelerated crc32_iscsi.
// Thread-safe: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace granary::crc32c {

// Extends `crc` (the CRC of some preceding bytes, 0 for none) over `data[0, n)`.
uint32_t Extend(uint32_t crc, const void* data, size_t n);

inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Value(s.data(), s.size()); }

}  // namespace granary::crc32c
