// PosixFileSystem: the FileSystem over the local POSIX file system.
//
//   - Read/Write: pread/pwrite, retried on EINTR and continued after short transfers.
//   - ReadBatch: every read of the batch submitted together through io_uring (uring.h), one
//     submission per PosixOptions::ring_depth reads; pread when io_uring is unavailable.
//   - WriteDirect: pwrite on a second descriptor opened lazily with O_DIRECT. Where the file
//     system refuses O_DIRECT (tmpfs: EINVAL), the write goes through the page cache instead.
//   - Sync: fdatasync. SyncDir: fsync of the directory. DropCache: posix_fadvise(DONTNEED).
//   - Every descriptor is opened O_CLOEXEC. Errors carry the path and what failed.
//
// Thread-safety: PosixFileSystem is thread-safe; a PosixFile follows File's rules (concurrent
// reads; writes to disjoint ranges).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "io/file_system.h"
#include "io/uring.h"

namespace granary::io {

struct PosixOptions {
  // Submit ReadBatch through io_uring; when false (or when io_uring is unavailable) it is a loop
  // of pread.
  bool use_io_uring = true;
  // Depth of each ring; larger batches are split into submissions of this many reads.
  unsigned ring_depth = kDefaultRingDepth;
};

class PosixFileSystem final : public FileSystem {
 public:
  explicit PosixFileSystem(PosixOptions options = {});
  ~PosixFileSystem() override;

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenOptions options) override;
  Status CreateDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  // Removes a file, or an empty directory.
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Result<bool> Exists(const std::string& path) override;
  Result<uint64_t> FreeSpace(const std::string& path) override;

  // The rings behind ReadBatch; shared with the files opened here, which may outlive `this`.
  const std::shared_ptr<RingPool>& rings() const { return rings_; }

 private:
  std::shared_ptr<RingPool> rings_;
};

class PosixFile final : public File {
 public:
  // Takes ownership of `fd`. `rings` may be null (no io_uring).
  PosixFile(std::string path, int fd, bool read_only, std::shared_ptr<RingPool> rings);
  ~PosixFile() override;
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Result<size_t> Read(uint64_t offset, size_t n, char* dst) override;
  Status ReadBatch(std::span<ReadOp> ops) override;
  Result<size_t> ReadV(uint64_t offset, std::span<const std::span<char>> pieces) override;
  Status Write(uint64_t offset, const void* data, size_t n) override;
  Status WriteDirect(uint64_t offset, const void* data, size_t n) override;
  Status WriteDirectV(uint64_t offset, std::span<const std::span<const char>> pieces) override;
  Status Sync() override;
  Status Truncate(uint64_t size) override;
  Result<uint64_t> Size() override;
  void DropCache(uint64_t offset, uint64_t n) override;

  int fd() const { return fd_; }

 private:
  enum class DirectState { kUnopened, kOpen, kUnsupported };

  Status CheckWritable(const char* what) const;
  // The O_DIRECT descriptor, opening it on first use; -1 when direct I/O is unsupported here.
  Result<int> DirectFd() EXCLUDES(direct_mu_);

  const int fd_;
  const bool read_only_;
  const std::shared_ptr<RingPool> rings_;
  Mutex direct_mu_;
  DirectState direct_state_ GUARDED_BY(direct_mu_) = DirectState::kUnopened;
  int direct_fd_ GUARDED_BY(direct_mu_) = -1;
};

}  // namespace granary::io
