#include "io/uring.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/logging.h"

namespace granary::io {

namespace {

// The largest length one SQE carries (its result is an int); longer reads and writes are split.
constexpr size_t kMaxIoBytes = size_t{1} << 30;
// Times in a row a submission may make no progress (EAGAIN, EINTR) before the ring is given up.
constexpr int kMaxSubmitStalls = 64;

bool Transient(int err) { return err == EINTR || err == EAGAIN || err == EBUSY; }

std::string ReadWhat(const ReadOp& op) {
  return "read of " + std::to_string(op.n) + " bytes at offset " + std::to_string(op.offset);
}

// Finishes `op` (whose first bytes_read bytes are done) with pread.
void PreadRest(int fd, ReadOp& op) {
  while (op.bytes_read < op.n) {
    ssize_t r = ::pread(fd, op.dst + op.bytes_read, std::min(op.n - op.bytes_read, kMaxIoBytes),
                        static_cast<off_t>(op.offset + op.bytes_read));
    if (r < 0) {
      if (errno == EINTR) continue;
      op.status = Status::FromErrno(errno, ReadWhat(op));
      return;
    }
    if (r == 0) break;  // end of file
    op.bytes_read += static_cast<size_t>(r);
  }
  op.status = Status::OK();
}

}  // namespace

Result<std::unique_ptr<Ring>> Ring::Create(unsigned depth) {
  if (depth == 0 || depth > 4096) {
    return Status::InvalidArgument("io_uring depth " + std::to_string(depth) +
                                   " is out of range: use 1 to 4096");
  }
  std::unique_ptr<Ring> ring(new Ring(depth));
  int ret = io_uring_queue_init(depth, &ring->ring_, 0);
  if (ret < 0) {
    return Status::FromErrno(-ret, "io_uring_queue_init(" + std::to_string(depth) + ")")
        .WithContext("creating an io_uring (disabled by seccomp or kernel.io_uring_disabled?)");
  }
  ring->initialized_ = true;
  return ring;
}

Ring::~Ring() {
  // No request is in flight here: every call reaps all that the kernel accepted.
  if (initialized_) io_uring_queue_exit(&ring_);
}

template <typename Fn>
Status Ring::SubmitAndReap(unsigned prepared, Fn&& on_cqe) {
  int ret = io_uring_submit_and_wait(&ring_, prepared);
  // io_uring_sq_ready counts the SQEs the kernel has not consumed yet: the truth after any
  // partial or interrupted submission.
  int stalls = 0;
  Status failure;
  while (io_uring_sq_ready(&ring_) > 0) {
    if (ret < 0 && !Transient(-ret)) {
      failure = Status::FromErrno(-ret, "io_uring_submit");
      break;
    }
    if (++stalls > kMaxSubmitStalls) {
      failure = Status::IOError("io_uring_submit made no progress after " +
                                std::to_string(kMaxSubmitStalls) + " attempts");
      break;
    }
    ret = io_uring_submit(&ring_);
  }
  const unsigned in_flight = prepared - io_uring_sq_ready(&ring_);
  unsigned reaped = 0;
  while (reaped < in_flight) {
    io_uring_cqe* cqe = nullptr;
    int wret = io_uring_wait_cqe(&ring_, &cqe);
    if (wret < 0) {
      if (Transient(-wret)) continue;
      // The kernel still owns buffers of requests in flight: returning would let the caller free
      // them under a pending read. This cannot happen with a valid ring; stop loudly.
      std::fprintf(stderr, "granary: io_uring_wait_cqe failed with errno %d; aborting\n", -wret);
      std::abort();
    }
    io_uring_cqe* cqes[64];
    unsigned got = io_uring_peek_batch_cqe(&ring_, cqes, std::min(64u, in_flight - reaped));
    for (unsigned i = 0; i < got; ++i) on_cqe(cqes[i]);
    io_uring_cq_advance(&ring_, got);
    reaped += got;
  }
  if (!failure.ok()) {
    // The SQEs the kernel refused stay in the queue; they must never be submitted later.
    broken_ = true;
    return failure;
  }
  return Status::OK();
}

Status Ring::ReadBatch(int fd, std::span<ReadOp> ops) {
  for (size_t start = 0; start < ops.size(); start += depth_) {
    ReadChunk(fd, ops.subspan(start, std::min<size_t>(depth_, ops.size() - start)));
  }
  return Status::OK();
}

void Ring::ReadChunk(int fd, std::span<ReadOp> ops) {
  std::vector<uint32_t> pending;
  std::vector<uint32_t> next;
  std::vector<bool> done(ops.size(), false);
  pending.reserve(ops.size());
  for (uint32_t i = 0; i < ops.size(); ++i) {
    ops[i].bytes_read = 0;
    ops[i].status = Status::OK();
    if (ops[i].n == 0) {
      done[i] = true;
    } else {
      pending.push_back(i);
    }
  }
  while (!pending.empty() && !broken_) {
    for (uint32_t i : pending) {
      ReadOp& op = ops[i];
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {  // cannot happen: pending.size() <= depth_ and the queue is drained
        broken_ = true;
        break;
      }
      io_uring_prep_read(sqe, fd, op.dst + op.bytes_read,
                         static_cast<unsigned>(std::min(op.n - op.bytes_read, kMaxIoBytes)),
                         op.offset + op.bytes_read);
      io_uring_sqe_set_data64(sqe, i);
    }
    if (broken_) break;
    next.clear();
    Status st = SubmitAndReap(static_cast<unsigned>(pending.size()), [&](io_uring_cqe* cqe) {
      const auto i = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
      ReadOp& op = ops[i];
      if (cqe->res < 0) {
        if (Transient(-cqe->res)) {
          next.push_back(i);
        } else {
          op.status = Status::FromErrno(-cqe->res, ReadWhat(op));
          done[i] = true;
        }
      } else if (cqe->res == 0) {
        done[i] = true;  // end of file
      } else {
        op.bytes_read += static_cast<size_t>(cqe->res);
        if (op.bytes_read < op.n) {
          next.push_back(i);  // short read: ask for the rest; a read of 0 bytes means EOF
        } else {
          done[i] = true;
        }
      }
    });
    if (!st.ok()) {
      GLOG_WARN("io_uring read batch failed ({}); finishing it with pread", st.ToString());
    }
    pending.swap(next);
  }
  if (broken_) {
    for (uint32_t i = 0; i < ops.size(); ++i) {
      if (!done[i]) PreadRest(fd, ops[i]);
    }
  }
}

Status Ring::WriteAndSync(int fd, uint64_t offset, const void* data, size_t n) {
  if (broken_) return Status::Unavailable("io_uring ring is broken: use another ring");
  const char* p = static_cast<const char*>(data);
  size_t written = 0;
  while (true) {
    const bool write_left = written < n;
    const size_t chunk = std::min(n - written, kMaxIoBytes);
    // This submission can finish the job; a ring of depth 1 cannot link, so it syncs alone.
    const bool sync_now = written + chunk == n && (!write_left || depth_ >= 2);
    int write_res = 0;
    int sync_res = -ECANCELED;
    unsigned prepared = 0;
    if (write_left) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_write(sqe, fd, p + written, static_cast<unsigned>(chunk), offset + written);
      io_uring_sqe_set_data64(sqe, 0);
      if (sync_now) sqe->flags |= IOSQE_IO_LINK;
      ++prepared;
    }
    if (sync_now) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      io_uring_sqe_set_data64(sqe, 1);
      ++prepared;
    }
    RETURN_IF_ERROR(SubmitAndReap(prepared, [&](io_uring_cqe* cqe) {
      if (io_uring_cqe_get_data64(cqe) == 0) {
        write_res = cqe->res;
      } else {
        sync_res = cqe->res;
      }
    }));
    if (write_left) {
      if (write_res < 0) {
        if (Transient(-write_res)) continue;
        return Status::FromErrno(-write_res, "io_uring write of " + std::to_string(chunk) +
                                                 " bytes at offset " +
                                                 std::to_string(offset + written));
      }
      if (write_res == 0) {
        return Status::IOError("io_uring write at offset " + std::to_string(offset + written) +
                               " wrote nothing: check free space on the disk");
      }
      // A short write breaks the link, so its sync was cancelled: the next round syncs.
      written += static_cast<size_t>(write_res);
      if (written < n) continue;
    }
    if (!sync_now) continue;  // a full chunk of a long write; more to come
    if (sync_res == -ECANCELED || Transient(-sync_res)) {
      // Everything is written but the sync did not run: the next round syncs alone.
      continue;
    }
    if (sync_res < 0) return Status::FromErrno(-sync_res, "io_uring fdatasync");
    return Status::OK();
  }
}

RingPool::Lease& RingPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = other.pool_;
    ring_ = std::move(other.ring_);
  }
  return *this;
}

RingPool::Lease::~Lease() { Release(); }

void RingPool::Lease::Release() {
  if (ring_ != nullptr && pool_ != nullptr) pool_->Return(std::move(ring_));
  ring_.reset();
}

RingPool::RingPool(unsigned depth, size_t max_idle) : depth_(depth), max_idle_(max_idle) {}

RingPool::~RingPool() = default;

RingPool::Lease RingPool::Acquire() {
  {
    MutexLock lock(&mu_);
    if (disabled_) return Lease();
    if (!idle_.empty()) {
      std::unique_ptr<Ring> ring = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(ring));
    }
  }
  // Created outside the lock: io_uring_queue_init is a system call and may be slow.
  Result<std::unique_ptr<Ring>> ring = Ring::Create(depth_);
  if (!ring.ok()) {
    MutexLock lock(&mu_);
    if (!disabled_) {
      GLOG_WARN("io_uring is unavailable ({}); batched reads will use pread from now on",
                ring.status().ToString());
      disabled_ = true;
    }
    return Lease();
  }
  return Lease(this, std::move(*ring));
}

void RingPool::Return(std::unique_ptr<Ring> ring) {
  if (ring->broken()) return;  // discarded
  MutexLock lock(&mu_);
  if (!disabled_ && idle_.size() < max_idle_) idle_.push_back(std::move(ring));
  // Otherwise `ring` is destroyed on return.
}

void RingPool::Disable() {
  MutexLock lock(&mu_);
  disabled_ = true;
  idle_.clear();
}

bool RingPool::usable() const {
  MutexLock lock(&mu_);
  return !disabled_;
}

}  // namespace granary::io
