// The AVX-512 kernel of Md5Lanes: 16 MD5 streams, one per 32-bit lane. This file alone is
// compiled for AVX-512 (CMakeLists.txt); Md5Lanes calls it only where the CPU has it.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "common/md5_rounds.h"

namespace granary::md5 {
namespace {

struct LaneOps {
  using V = __m512i;
  static V Add(V x, V y) { return _mm512_add_epi32(x, y); }
  static V Const(uint32_t k) { return _mm512_set1_epi32(static_cast<int>(k)); }
  static V Rotl(V x, int n) { return _mm512_rolv_epi32(x, _mm512_set1_epi32(n)); }
  // Truth tables over (b, c, d): b ? c : d; d ? b : c; b ^ c ^ d; c ^ (b | ~d).
  static V F(V b, V c, V d) { return _mm512_ternarylogic_epi32(b, c, d, 0xca); }
  static V G(V b, V c, V d) { return _mm512_ternarylogic_epi32(d, b, c, 0xca); }
  static V H(V b, V c, V d) { return _mm512_ternarylogic_epi32(b, c, d, 0x96); }
  static V I(V b, V c, V d) { return _mm512_ternarylogic_epi32(b, c, d, 0x39); }
};

// The 16 message words of each lane's block, transposed: m[w] holds word w of every lane. `r[j]`
// is lane j's block. Two rounds of 32- and 64-bit interleaves leave, for lanes 4L..4L+3 and
// o = 0..3, words 4q+o in 128-bit quarter q of x[L][o]; two rounds of quarter shuffles move
// quarter q of x[L][o] to quarter L of m[4q+o].
inline void Transpose(const __m512i r[16], __m512i m[16]) {
  __m512i t[16], x[4][4];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  for (int l = 0; l < 4; ++l) {
    const __m512i* p = t + 4 * l;  // lo01, hi01, lo23, hi23 of lanes 4l..4l+3
    x[l][0] = _mm512_unpacklo_epi64(p[0], p[2]);
    x[l][1] = _mm512_unpackhi_epi64(p[0], p[2]);
    x[l][2] = _mm512_unpacklo_epi64(p[1], p[3]);
    x[l][3] = _mm512_unpackhi_epi64(p[1], p[3]);
  }
  for (int o = 0; o < 4; ++o) {
    __m512i y0 = _mm512_shuffle_i32x4(x[0][o], x[1][o], 0x44);
    __m512i y1 = _mm512_shuffle_i32x4(x[0][o], x[1][o], 0xee);
    __m512i y2 = _mm512_shuffle_i32x4(x[2][o], x[3][o], 0x44);
    __m512i y3 = _mm512_shuffle_i32x4(x[2][o], x[3][o], 0xee);
    m[o] = _mm512_shuffle_i32x4(y0, y2, 0x88);
    m[4 + o] = _mm512_shuffle_i32x4(y0, y2, 0xdd);
    m[8 + o] = _mm512_shuffle_i32x4(y1, y3, 0x88);
    m[12 + o] = _mm512_shuffle_i32x4(y1, y3, 0xdd);
  }
}

}  // namespace

// state[w][lane]: word w of each lane's stream. Lane i reads `blocks` consecutive 64-byte blocks
// from data[i], advancing by stride[i] bytes per block (0 for an idle lane reading a dummy block).
void Compress16(uint32_t state[4][16], const char* const data[16], const uint64_t stride[16],
                size_t blocks) {
  __m512i a = _mm512_loadu_si512(state[0]);
  __m512i b = _mm512_loadu_si512(state[1]);
  __m512i c = _mm512_loadu_si512(state[2]);
  __m512i d = _mm512_loadu_si512(state[3]);
  const char* p[16];
  std::memcpy(p, data, sizeof(p));
  for (size_t n = 0; n < blocks; ++n) {
    __m512i r[16], m[16];
    for (int j = 0; j < 16; ++j) {
      r[j] = _mm512_loadu_si512(p[j]);
      p[j] += stride[j];
    }
    Transpose(r, m);
    Rounds<LaneOps>(a, b, c, d, m);
  }
  _mm512_storeu_si512(state[0], a);
  _mm512_storeu_si512(state[1], b);
  _mm512_storeu_si512(state[2], c);
  _mm512_storeu_si512(state[3], d);
}

}  // namespace granary::md5
