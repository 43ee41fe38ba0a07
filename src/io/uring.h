// A small io_uring wrapper (liburing): a Ring performs a batch of positioned reads with one
// submission, or a write linked to an fdatasync; a RingPool hands rings out to threads.
//
// Thread-safety: a Ring is used by one thread at a time (a RingPool::Lease gives exclusive use).
// A RingPool is thread-safe.
//
// Failure model: a read that fails gets its own status in its ReadOp; the batch still completes.
// If the ring itself fails (a submission the kernel refuses), the reads not yet completed are
// finished with pread, and the ring marks itself broken so that its pool discards it. If rings
// cannot be created at all (ENOSYS, seccomp, io_uring disabled by sysctl), the pool logs it once
// and from then on hands out empty leases; callers fall back to pread.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "io/file_system.h"

namespace granary::io {

// Default submission queue depth of a ring; batches larger than a ring's depth are split.
inline constexpr unsigned kDefaultRingDepth = 256;

class Ring {
 public:
  // Creates a ring with room for `depth` submissions (REQUIRES: 1 <= depth <= 4096). Fails with
  // io_uring_queue_init's errno as an IOError (e.g. "Function not implemented" under seccomp).
  [[nodiscard]] static Result<std::unique_ptr<Ring>> Create(unsigned depth);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  unsigned depth() const { return depth_; }
  // True once the ring failed in a way that leaves it unusable; its owner should discard it.
  bool broken() const { return broken_; }

  // Performs every read of `ops` on `fd`: submits up to depth() reads with one
  // io_uring_submit_and_wait, reaps their completions, and resubmits the rest of short reads
  // until each read is complete or reaches end of file. Each op gets bytes_read and its own
  // status (Status::FromErrno of its errno). Always returns OK: if the ring breaks, the reads
  // not yet done are finished with pread. REQUIRES: the op buffers stay valid until the call
  // returns.
  [[nodiscard]] Status ReadBatch(int fd, std::span<ReadOp> ops);

  // Writes all of `data[0, n)` at `offset` to `fd` and then fdatasyncs `fd`, the sync linked to
  // the write (IOSQE_IO_LINK) so that both go down in one submission (a ring of depth 1 submits
  // them one after the other). Returns OK only when the data was fully written and the sync
  // succeeded; on failure some prefix of the data may have been written. With n == 0 it only
  // syncs.
  [[nodiscard]] Status WriteAndSync(int fd, uint64_t offset, const void* data, size_t n);

 private:
  explicit Ring(unsigned depth) : depth_(depth) {}

  // Submits the `prepared` SQEs in the submission queue, waits for and passes each of their
  // completions to `on_cqe`. Fails (and marks the ring broken) if the kernel will not accept
  // them; the completions of those it accepted are still reaped and passed on.
  template <typename Fn>
  Status SubmitAndReap(unsigned prepared, Fn&& on_cqe);
  void ReadChunk(int fd, std::span<ReadOp> ops);

  io_uring ring_{};
  unsigned depth_;
  bool initialized_ = false;  // io_uring_queue_init succeeded
  bool broken_ = false;
};

class RingPool {
 public:
  // Exclusive use of one ring; gives it back to the pool when destroyed. Empty (false) when the
  // pool cannot provide rings.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();
    explicit operator bool() const { return ring_ != nullptr; }
    Ring* operator->() const { return ring_.get(); }
    Ring& operator*() const { return *ring_; }

   private:
    friend class RingPool;
    Lease(RingPool* pool, std::unique_ptr<Ring> ring) : pool_(pool), ring_(std::move(ring)) {}
    void Release();
    RingPool* pool_ = nullptr;
    std::unique_ptr<Ring> ring_;
  };

  // Rings are created on demand with `depth` entries; at most `max_idle` are kept for reuse.
  explicit RingPool(unsigned depth = kDefaultRingDepth, size_t max_idle = 64);
  ~RingPool();
  RingPool(const RingPool&) = delete;
  RingPool& operator=(const RingPool&) = delete;

  // REQUIRES: every Lease is destroyed before the pool.
  Lease Acquire() EXCLUDES(mu_);

  // Never hand out rings again (a configuration switch, and how tests exercise the fallback).
  void Disable() EXCLUDES(mu_);
  // False once io_uring was found unusable or Disable() was called.
  bool usable() const EXCLUDES(mu_);
  unsigned depth() const { return depth_; }

 private:
  void Return(std::unique_ptr<Ring> ring) EXCLUDES(mu_);

  const unsigned depth_;
  const size_t max_idle_;
  mutable Mutex mu_;
  std::vector<std::unique_ptr<Ring>> idle_ GUARDED_BY(mu_);
  bool disabled_ GUARDED_BY(mu_) = false;
};

}  // namespace granary::io
