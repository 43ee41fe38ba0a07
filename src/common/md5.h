// MD5 of many streams at once: the ETag of every object written is the MD5 of its bytes, and a
// scalar MD5 runs at well under 1 GB/s a core, about half the CPU of a server taking large puts.
// MD5 cannot be parallelised within one stream, but a server hashes many streams at the same
// time (one per upload), so Md5Lanes hashes up to 16 of them together, one per 32-bit lane of
// AVX-512 registers, for about the CPU of hashing one with the scalar code.
//
// Streams meet in the lanes because their bytes are queued rather than hashed as they arrive
// (Md5Stream::UpdateLater): an upload queues each piece it receives and only waits for its digest
// when it needs it (Sync, Finish). The first caller that waits, or that queues work when four
// streams have some, becomes the combiner: it loads the streams with queued work into free lanes
// and hashes them all together, its own and the others', until its own work is done (or, when it
// did not have to wait, until fewer than three streams are left), then hands the lanes to another
// waiting caller. One or two streams
// are hashed by the scalar code, which is faster than a pass of the lanes for so few. On a CPU
// without AVX-512 every stream is hashed by the scalar code on its own thread, as it arrives.
//
// Thread-safety: Md5Lanes is thread-safe; an Md5Stream belongs to one thread at a time.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

namespace granary {

class Md5Lanes {
 public:
  // `simd`: use the AVX-512 lanes where the CPU has them (false: always the scalar code).
  explicit Md5Lanes(bool simd = true);
  Md5Lanes(const Md5Lanes&) = delete;
  Md5Lanes& operator=(const Md5Lanes&) = delete;

  // Whether streams are hashed on SIMD lanes.
  bool simd() const { return simd_; }

  // One stream's queued blocks, hashed in order into `state` (MD5's four words).
  struct Piece {
    const char* data;
    size_t blocks;
  };
  struct Work {
    uint32_t* state = nullptr;
    std::deque<Piece> pieces;  // GUARDED_BY(Md5Lanes::mu_)
    bool scheduled = false;    // GUARDED_BY(Md5Lanes::mu_): in the queue or in a lane
  };

  // Queues `blocks` 64-byte blocks at `data` for `work`; they must stay valid until Sync(work).
  void Queue(Work* work, const char* data, size_t blocks);
  // Returns once every queued block of `work` is folded into its state.
  void Sync(Work* work);

 private:
  static constexpr int kLanes = 16;
  // Streams with queued blocks that make the caller of Queue() run the lanes at once.
  static constexpr size_t kCrowd = 4;

  // Runs the lanes until `mine` has no queued blocks, or, unless `urgent`, until fewer than three
  // streams have any (the rest waits for more streams or for its Sync). REQUIRES: the caller is
  // the combiner.
  void Combine(Work* mine, bool urgent);
  // Moves queued streams into free lanes; returns the number of busy lanes. REQUIRES: mu_ held.
  int FillLanes();

  const bool simd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work*> queue_;  // GUARDED_BY(mu_): streams with queued blocks and no lane
  bool combining_ = false;   // GUARDED_BY(mu_): someone runs the lanes
  // Owned by the combiner (the thread that set combining_): the stream of each lane.
  Work* lanes_[kLanes] = {};
};

// The MD5 of one stream of bytes, fed in pieces. Finish() returns the 16 raw bytes and starts
// over.
class Md5Stream {
 public:
  // `lanes` null: hashed on the calling thread by the scalar code.
  explicit Md5Stream(Md5Lanes* lanes = nullptr);
  // Waits for queued bytes (which must still be valid).
  ~Md5Stream();
  Md5Stream(const Md5Stream&) = delete;
  Md5Stream& operator=(const Md5Stream&) = delete;

  // Hashes `data` now (after any queued bytes).
  void Update(std::string_view data);
  // Hashes `data` later, together with other streams: it must stay valid and unchanged until
  // Sync() or Finish() returns.
  void UpdateLater(std::string_view data);
  // Returns once every queued byte is hashed.
  void Sync();
  std::string Finish();

 private:
  void Reset();

  Md5Lanes* const lanes_;
  uint32_t state_[4];
  uint64_t length_ = 0;
  char tail_[64];
  size_t tail_length_ = 0;
  Md5Lanes::Work work_;
};

// The scalar MD5 compression: folds `blocks` 64-byte blocks at `data` into `state`.
void Md5Compress(uint32_t state[4], const char* data, size_t blocks);

}  // namespace granary
