// The 64 steps of MD5's compression function (RFC 1321, section 3.4), written once over a word
// type: a 32-bit integer for the scalar code, a vector of 16 of them for the SIMD lanes.
//
// `Ops` supplies V (the word type) and Add, Const (a constant in every lane), Rotl, and the four
// round functions F, G, H, I. Thread-safety: pure functions.
#pragma once

#include <cstdint>

namespace granary::md5 {

inline constexpr uint32_t kSine[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391};

// Per step: the message word used and the rotation.
inline constexpr int kWord[64] = {
    0, 1, 2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,  // round 1: i
    1, 6, 11, 0,  5,  10, 15, 4,  9,  14, 3,  8,  13, 2,  7,  12,  // round 2: 5i + 1
    5, 8, 11, 14, 1,  4,  7,  10, 13, 0,  3,  6,  9,  12, 15, 2,   // round 3: 3i + 5
    0, 7, 14, 5,  12, 3,  10, 1,  8,  15, 6,  13, 4,  11, 2,  9};  // round 4: 7i
inline constexpr int kShift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

inline constexpr uint32_t kInit[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};

// One block: folds the 16 message words `m` into (a, b, c, d).
template <class Ops>
inline void Rounds(typename Ops::V& a0, typename Ops::V& b0, typename Ops::V& c0,
                   typename Ops::V& d0, const typename Ops::V m[16]) {
  using V = typename Ops::V;
  V a = a0, b = b0, c = c0, d = d0;
  auto step = [&](V f, int i) {
    V t = Ops::Add(Ops::Add(a, f), Ops::Add(m[kWord[i]], Ops::Const(kSine[i])));
    a = d;
    d = c;
    c = b;
    b = Ops::Add(b, Ops::Rotl(t, kShift[i / 16][i % 4]));
  };
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) step(Ops::F(b, c, d), i);
#pragma GCC unroll 16
  for (int i = 16; i < 32; ++i) step(Ops::G(b, c, d), i);
#pragma GCC unroll 16
  for (int i = 32; i < 48; ++i) step(Ops::H(b, c, d), i);
#pragma GCC unroll 16
  for (int i = 48; i < 64; ++i) step(Ops::I(b, c, d), i);
  a0 = Ops::Add(a0, a);
  b0 = Ops::Add(b0, b);
  c0 = Ops::Add(c0, c);
  d0 = Ops::Add(d0, d);
}

}  // namespace granary::md5
