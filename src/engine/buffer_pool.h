// AlignedBufferPool: reuses the 4 KiB-aligned buffers that direct records are built in, so that
// a stream of large puts does not pay for mmap, page faults and kernel zeroing on every record.
// Buffers are pooled by size rounded up to 1 MiB; at most `max_pooled_bytes` are kept idle.
//
// Thread-safe. Buffers handed out keep the pool alive (they hold a shared_ptr to it).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace granary::engine {

class AlignedBufferPool : public std::enable_shared_from_this<AlignedBufferPool> {
 public:
  explicit AlignedBufferPool(size_t max_pooled_bytes) : max_pooled_(max_pooled_bytes) {}
  ~AlignedBufferPool();

  // A buffer of at least `n` bytes, aligned to 4096, returned to the pool when released.
  std::shared_ptr<char> Get(size_t n);

 private:
  void Put(char* p, size_t capacity);

  const size_t max_pooled_;
  std::mutex mu_;
  std::multimap<size_t, char*> idle_;  // capacity -> buffer; guarded by mu_
  size_t idle_bytes_ = 0;              // guarded by mu_
};

}  // namespace granary::engine
