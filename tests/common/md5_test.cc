#include "common/md5.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "common/crypto.h"

namespace granary {
namespace {

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string Reference(std::string_view data) {
  Md5 md5;
  md5.Update(data);
  return md5.Finish();
}

// Feeds `data` in pieces of random lengths, hashed now or queued (`data` outlives the stream's
// Finish).
std::string Pieces(Md5Stream& stream, std::string_view data, uint64_t seed) {
  std::mt19937_64 rng(seed);
  while (!data.empty()) {
    size_t n = std::min<size_t>(data.size(), rng() % 3 == 0 ? rng() % 200 : rng() % 70000);
    if (rng() % 4 == 0) {
      stream.Update(data.substr(0, n));
    } else {
      stream.UpdateLater(data.substr(0, n));
    }
    if (rng() % 8 == 0) stream.Sync();
    data.remove_prefix(n);
  }
  return stream.Finish();
}

TEST(Md5Test, KnownDigests) {
  Md5Stream md5;
  EXPECT_EQ(HexEncode(md5.Finish()), "d41d8cd98f00b204e9800998ecf8427e");
  md5.Update("abc");
  EXPECT_EQ(HexEncode(md5.Finish()), "900150983cd24fb0d6963f7d28e17f72");
  md5.Update("message ");
  md5.Update("digest");
  EXPECT_EQ(HexEncode(md5.Finish()), "f96b697d7cb7938d525a2f31aaf161d0");
  md5.Update("12345678901234567890123456789012345678901234567890123456789012345678901234567890");
  EXPECT_EQ(HexEncode(md5.Finish()), "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Md5Test, EveryLengthAroundThePadding) {
  const std::string data = RandomBytes(300, 1);
  Md5Stream md5;
  for (size_t n = 0; n <= data.size(); ++n) {
    md5.Update(std::string_view(data).substr(0, n));
    ASSERT_EQ(md5.Finish(), Reference(std::string_view(data).substr(0, n))) << n;
  }
}

TEST(Md5Test, ScalarAndLanesAgreeWithOpenSsl) {
  for (bool simd : {false, true}) {
    Md5Lanes lanes(simd);
    for (size_t n : {size_t{64}, size_t{65}, size_t{4096}, size_t{1} << 20, (size_t{3} << 20) + 17}) {
      const std::string data = RandomBytes(n, n);
      Md5Stream md5(&lanes);
      EXPECT_EQ(Pieces(md5, data, n), Reference(data)) << "simd " << simd << " length " << n;
    }
  }
}

// Many streams at once share the lanes; each digest must be its own stream's.
TEST(Md5Test, ConcurrentStreamsShareTheLanes) {
  Md5Lanes lanes;
  constexpr int kThreads = 24;
  std::vector<std::thread> threads;
  std::vector<int> wrong(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 6; ++round) {
        const uint64_t seed = static_cast<uint64_t>(t) * 100 + static_cast<uint64_t>(round);
        const std::string data = RandomBytes(100000 + seed * 997 % 400000, seed);
        Md5Stream md5(&lanes);
        if (Pieces(md5, data, seed) != Reference(data)) ++wrong[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace granary
