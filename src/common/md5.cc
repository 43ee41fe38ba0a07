// MD5 streams and the scalar compression; the lanes are in md5_lanes.cc.
#include "common/md5.h"

#include <bit>
#include <cstring>

#include "common/md5_rounds.h"

namespace granary {
namespace {

static_assert(std::endian::native == std::endian::little, "MD5 words are read little-endian");

struct ScalarOps {
  using V = uint32_t;
  static V Add(V x, V y) { return x + y; }
  static V Const(uint32_t k) { return k; }
  static V Rotl(V x, int n) { return std::rotl(x, n); }
  static V F(V b, V c, V d) { return d ^ (b & (c ^ d)); }
  static V G(V b, V c, V d) { return c ^ (d & (b ^ c)); }
  static V H(V b, V c, V d) { return b ^ c ^ d; }
  static V I(V b, V c, V d) { return c ^ (b | ~d); }
};

}  // namespace

void Md5Compress(uint32_t state[4], const char* data, size_t blocks) {
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  for (size_t n = 0; n < blocks; ++n, data += 64) {
    uint32_t m[16];
    std::memcpy(m, data, 64);
    md5::Rounds<ScalarOps>(a, b, c, d, m);
  }
  state[0] = a;
  state[1] = b;
  state[2] = c;
  state[3] = d;
}

Md5Stream::Md5Stream(Md5Lanes* lanes) : lanes_(lanes) {
  work_.state = state_;
  Reset();
}

Md5Stream::~Md5Stream() { Sync(); }

void Md5Stream::Reset() {
  std::memcpy(state_, md5::kInit, sizeof(state_));
  length_ = 0;
  tail_length_ = 0;
}

void Md5Stream::Sync() {
  if (lanes_ != nullptr) lanes_->Sync(&work_);
}

void Md5Stream::Update(std::string_view data) {
  UpdateLater(data);
  Sync();
}

void Md5Stream::UpdateLater(std::string_view data) {
  length_ += data.size();
  if (tail_length_ > 0) {
    size_t take = std::min(data.size(), 64 - tail_length_);
    std::memcpy(tail_ + tail_length_, data.data(), take);
    tail_length_ += take;
    data.remove_prefix(take);
    if (tail_length_ < 64) return;
    Sync();
    Md5Compress(state_, tail_, 1);
    tail_length_ = 0;
  }
  size_t blocks = data.size() / 64;
  if (lanes_ != nullptr) {
    lanes_->Queue(&work_, data.data(), blocks);
  } else {
    Md5Compress(state_, data.data(), blocks);
  }
  data.remove_prefix(blocks * 64);
  std::memcpy(tail_, data.data(), data.size());
  tail_length_ = data.size();
}

std::string Md5Stream::Finish() {
  Sync();
  // Padding: 0x80, zeros up to 56 bytes mod 64, then the length in bits, little-endian.
  char pad[128] = {};
  size_t used = tail_length_;
  std::memcpy(pad, tail_, used);
  pad[used] = static_cast<char>(0x80);
  size_t total = used + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = length_ * 8;
  std::memcpy(pad + total - 8, &bits, 8);
  Md5Compress(state_, pad, total / 64);
  std::string digest(16, '\0');
  std::memcpy(digest.data(), state_, 16);
  Reset();
  return digest;
}

}  // namespace granary
