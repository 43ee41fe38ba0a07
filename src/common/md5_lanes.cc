// Md5Lanes: callers queue their streams' blocks; one waiting caller at a time (the combiner) runs
// the lanes over every stream with queued blocks.
#include <algorithm>

#include "common/md5.h"

namespace granary {
namespace md5 {
void Compress16(uint32_t state[4][16], const char* const data[16], const uint64_t stride[16],
                size_t blocks);
}  // namespace md5

namespace {

// Blocks a lane hashes before the combiner looks for new streams and finished ones.
constexpr size_t kSliceBlocks = 64;

// What idle lanes hash, to no one's benefit.
alignas(64) const char kIdleBlock[64] = {};

}  // namespace

Md5Lanes::Md5Lanes(bool simd) : simd_(simd && __builtin_cpu_supports("avx512f")) {}

void Md5Lanes::Queue(Work* work, const char* data, size_t blocks) {
  if (blocks == 0) return;
  if (!simd_) {
    Md5Compress(work->state, data, blocks);
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  work->pieces.push_back(Piece{data, blocks});
  if (!work->scheduled) {
    work->scheduled = true;
    queue_.push_back(work);
  }
  // Enough streams wait to fill the lanes well: hash them now, while they do, rather than at the
  // next Sync.
  if (combining_ || queue_.size() < kCrowd) return;
  combining_ = true;
  lock.unlock();
  Combine(work, /*urgent=*/false);
  lock.lock();
  combining_ = false;
  cv_.notify_all();
}

void Md5Lanes::Sync(Work* work) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!work->pieces.empty()) {
    if (combining_) {
      cv_.wait(lock);
      continue;
    }
    combining_ = true;
    lock.unlock();
    Combine(work, /*urgent=*/true);
    lock.lock();
    combining_ = false;
    cv_.notify_all();  // streams left in the lanes: a waiting caller takes them over
  }
}

int Md5Lanes::FillLanes() {
  int busy = 0;
  for (Work*& lane : lanes_) {
    if (lane == nullptr && !queue_.empty()) {
      lane = queue_.front();
      queue_.pop_front();
    }
    if (lane != nullptr) ++busy;
  }
  return busy;
}

void Md5Lanes::Combine(Work* mine, bool urgent) {
  // The piece each lane works on: the front of its stream's queue. Queue() only appends, which
  // leaves references to the front valid, and only the combiner removes pieces.
  Piece* piece[kLanes];
  for (;;) {
    int busy;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (mine->pieces.empty()) return;
      busy = FillLanes();
      if (!urgent && busy < 3) return;
      for (int i = 0; i < kLanes; ++i) piece[i] = lanes_[i] ? &lanes_[i]->pieces.front() : nullptr;
    }
    if (busy <= 2) {
      // One or two streams: the scalar code hashes them for less than a pass of the lanes.
      for (int i = 0; i < kLanes; ++i) {
        if (piece[i] == nullptr) continue;
        size_t n = std::min(piece[i]->blocks, kSliceBlocks);
        Md5Compress(lanes_[i]->state, piece[i]->data, n);
        piece[i]->data += 64 * n;
        piece[i]->blocks -= n;
      }
    } else {
      size_t n = kSliceBlocks;
      for (Piece* p : piece) {
        if (p != nullptr) n = std::min(n, p->blocks);
      }
      uint32_t state[4][kLanes] = {};
      const char* data[kLanes];
      uint64_t stride[kLanes];
      for (int i = 0; i < kLanes; ++i) {
        if (piece[i] == nullptr) {
          data[i] = kIdleBlock;
          stride[i] = 0;
          continue;
        }
        for (int w = 0; w < 4; ++w) state[w][i] = lanes_[i]->state[w];
        data[i] = piece[i]->data;
        stride[i] = 64;
      }
      md5::Compress16(state, data, stride, n);
      for (int i = 0; i < kLanes; ++i) {
        if (piece[i] == nullptr) continue;
        for (int w = 0; w < 4; ++w) lanes_[i]->state[w] = state[w][i];
        piece[i]->data += 64 * n;
        piece[i]->blocks -= n;
      }
    }
    bool finished = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < kLanes; ++i) {
        Work* work = lanes_[i];
        if (work == nullptr || piece[i]->blocks > 0) continue;
        work->pieces.pop_front();
        if (work->pieces.empty()) {
          work->scheduled = false;
          lanes_[i] = nullptr;
          finished = true;
        }
      }
    }
    if (finished) cv_.notify_all();
  }
}

}  // namespace granary
