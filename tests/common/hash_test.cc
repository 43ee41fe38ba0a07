#include "common/hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

namespace granary {
namespace {

// KeyHash is persisted in index checkpoints: these values were computed once with XXH3-128 (the
// empty string's matches the xxHash reference vector) and must never change.
TEST(HashTest, StableAcrossBuilds) {
  EXPECT_EQ(HashKey(""), (KeyHash{0x6001c324468d497full, 0x99aa06d3014798d8ull}));
  EXPECT_EQ(HashKey("granary"), (KeyHash{0x99fb21a9e5815fd0ull, 0xc67b49b58d847ccfull}));
  EXPECT_EQ(HashKey("segment/000001"), (KeyHash{0xabe7845b8f2093cfull, 0x6a846e80e03f72acull}));
}

TEST(HashTest, DeterministicAndDistinct) {
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string key = "key-" + std::to_string(i);
    KeyHash h = HashKey(key);
    EXPECT_EQ(h, HashKey(std::string(key)));
    seen.emplace(h.lo, h.hi);
  }
  EXPECT_EQ(seen.size(), 10000u);
  EXPECT_FALSE(HashKey("a") == HashKey("b"));
  // Embedded NULs are part of the key.
  EXPECT_FALSE(HashKey(std::string("a\0b", 3)) == HashKey("a"));
}

}  // namespace
}  // namespace granary
