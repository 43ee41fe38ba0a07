#include "io/posix_fs.h"

#include <limits.h>
#include <sys/uio.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include "common/logging.h"

namespace granary::io {

namespace {

// Largest transfer of one pread/pwrite call (Linux caps them near 2 GiB anyway).
constexpr size_t kMaxIoBytes = size_t{1} << 30;

std::string Quote(const std::string& path) { return "\"" + path + "\""; }

// Status::FromErrno plus advice for the errors an operator can fix.
Status Errno(int err, const std::string& what) {
  Status st = Status::FromErrno(err, what);
  switch (err) {
    case EACCES:
    case EPERM:
      return Status(st.code(), st.message() +
                                   " (check the permissions of the path and its "
                                   "directories, and the user Granary runs as)");
    case EROFS:
      return Status(st.code(), st.message() + " (the file system is mounted read-only)");
    case EMFILE:
    case ENFILE:
      return Status(st.code(), st.message() + " (raise the open-files limit, ulimit -n)");
    default:
      return st;
  }
}

std::string RangeWhat(const char* op, size_t n, uint64_t offset, const std::string& path) {
  return std::string(op) + " of " + std::to_string(n) + " bytes at offset " +
         std::to_string(offset) + " of " + Quote(path);
}

int OpenRetry(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Writes all of data[0, n) at offset to fd. On failure, `*done` (if given) tells how much went
// and `*err` (if given) the errno (0 if none).
Status PwriteAll(int fd, uint64_t offset, const char* p, size_t n, const std::string& path,
                 size_t* done = nullptr, int* err = nullptr) {
  size_t written = 0;
  Status st;
  if (err != nullptr) *err = 0;
  while (written < n) {
    ssize_t r = ::pwrite(fd, p + written, std::min(n - written, kMaxIoBytes),
                         static_cast<off_t>(offset + written));
    if (r < 0) {
      if (errno == EINTR) continue;
      if (err != nullptr) *err = errno;
      st = Errno(errno, RangeWhat("write", n - written, offset + written, path));
      break;
    }
    if (r == 0) {
      st = Status::IOError(RangeWhat("write", n - written, offset + written, path) +
                           " wrote nothing: check free space on the disk");
      break;
    }
    written += static_cast<size_t>(r);
  }
  if (done != nullptr) *done = written;
  return st;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PosixFile

PosixFile::PosixFile(std::string path, int fd, bool read_only, std::shared_ptr<RingPool> rings)
    : File(std::move(path)), fd_(fd), read_only_(read_only), rings_(std::move(rings)) {}

PosixFile::~PosixFile() {
  MutexLock lock(&direct_mu_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
  ::close(fd_);
}

Status PosixFile::CheckWritable(const char* what) const {
  if (!read_only_) return Status::OK();
  return Status::InvalidArgument(std::string(what) + " on " + Quote(path()) +
                                 ", which was opened read-only: open it without read_only");
}

Result<size_t> PosixFile::Read(uint64_t offset, size_t n, char* dst) {
  size_t got = 0;
  while (got < n) {
    ssize_t r =
        ::pread(fd_, dst + got, std::min(n - got, kMaxIoBytes), static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, RangeWhat("read", n - got, offset + got, path()));
    }
    if (r == 0) break;  // end of file
    got += static_cast<size_t>(r);
  }
  return got;
}

Status PosixFile::ReadBatch(std::span<ReadOp> ops) {
  if (rings_ != nullptr) {
    RingPool::Lease ring = rings_->Acquire();
    if (ring) {
      RETURN_IF_ERROR(ring->ReadBatch(fd_, ops));
      for (ReadOp& op : ops) {
        if (!op.status.ok()) op.status = op.status.WithContext(Quote(path()));
      }
      return Status::OK();
    }
  }
  return File::ReadBatch(ops);
}

Result<size_t> PosixFile::ReadV(uint64_t offset, std::span<const std::span<char>> pieces) {
  constexpr size_t kMaxPieces = 8;
  size_t total = 0;
  iovec iov[kMaxPieces];
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (i == kMaxPieces || pieces[i].size() > kMaxIoBytes) return File::ReadV(offset, pieces);
    iov[i] = iovec{pieces[i].data(), pieces[i].size()};
    total += pieces[i].size();
  }
  ssize_t r;
  do {
    r = ::preadv(fd_, iov, static_cast<int>(pieces.size()), static_cast<off_t>(offset));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Errno(errno, RangeWhat("read", total, offset, path()));
  if (static_cast<size_t>(r) == total || r == 0) return static_cast<size_t>(r);
  // Short: at the end of the file, or a read the kernel split. Rare: read it again piece by
  // piece, where each pread reports how far the file goes.
  return File::ReadV(offset, pieces);
}

Status PosixFile::Write(uint64_t offset, const void* data, size_t n) {
  RETURN_IF_ERROR(CheckWritable("write"));
  return PwriteAll(fd_, offset, static_cast<const char*>(data), n, path());
}

Result<int> PosixFile::DirectFd() {
  MutexLock lock(&direct_mu_);
  if (direct_state_ == DirectState::kOpen) return direct_fd_;
  if (direct_state_ == DirectState::kUnsupported) return -1;
  // Reopen the open file itself through /proc, which follows it across renames; without /proc,
  // reopen the path and check that it is still the same file.
  const int flags = O_WRONLY | O_DIRECT | O_CLOEXEC;
  int fd = OpenRetry(("/proc/self/fd/" + std::to_string(fd_)).c_str(), flags);
  if (fd < 0 && errno != EINVAL) {
    fd = OpenRetry(path().c_str(), flags);
    if (fd >= 0) {
      struct stat a {};
      struct stat b {};
      if (::fstat(fd_, &a) != 0 || ::fstat(fd, &b) != 0 || a.st_dev != b.st_dev ||
          a.st_ino != b.st_ino) {
        ::close(fd);
        fd = -1;
        errno = EINVAL;  // treat as unsupported: buffered writes to fd_ remain correct
      }
    }
  }
  if (fd < 0) {
    if (errno == EINVAL) {
      GLOG_DEBUG("O_DIRECT is not supported for {}; direct writes use the page cache", path());
      direct_state_ = DirectState::kUnsupported;
      return -1;
    }
    return Errno(errno, "open " + Quote(path()) + " with O_DIRECT");
  }
  direct_fd_ = fd;
  direct_state_ = DirectState::kOpen;
  return fd;
}

Status PosixFile::WriteDirect(uint64_t offset, const void* data, size_t n) {
  RETURN_IF_ERROR(CheckWritable("direct write"));
  const auto addr = reinterpret_cast<uintptr_t>(data);
  if (offset % kDirectAlignment != 0 || n % kDirectAlignment != 0 || addr % kDirectAlignment != 0) {
    return Status::InvalidArgument(
        "direct write to " + Quote(path()) + " of " + std::to_string(n) + " bytes at offset " +
        std::to_string(offset) + " is not aligned: offset, length and buffer address must be " +
        "multiples of " + std::to_string(kDirectAlignment) + " (use Write for unaligned data)");
  }
  ASSIGN_OR_RETURN(int dfd, DirectFd());
  const char* p = static_cast<const char*>(data);
  if (dfd < 0) return PwriteAll(fd_, offset, p, n, path());
  size_t done = 0;
  int err = 0;
  Status st = PwriteAll(dfd, offset, p, n, path(), &done, &err);
  if (st.ok()) return st;
  // Some file systems accept O_DIRECT at open but refuse the I/O (EINVAL), and a short direct
  // write leaves an unaligned rest: finish through the page cache, which has no such rules.
  if (done % kDirectAlignment != 0 || err == EINVAL) {
    return PwriteAll(fd_, offset + done, p + done, n - done, path());
  }
  return st;
}

Status PosixFile::WriteDirectV(uint64_t offset, std::span<const std::span<const char>> pieces) {
  RETURN_IF_ERROR(CheckWritable("direct write"));
  for (std::span<const char> piece : pieces) {
    const auto addr = reinterpret_cast<uintptr_t>(piece.data());
    if (piece.size() % kDirectAlignment != 0 || addr % kDirectAlignment != 0 ||
        offset % kDirectAlignment != 0) {
      return File::WriteDirectV(offset, pieces);  // WriteDirect reports the misalignment
    }
  }
  ASSIGN_OR_RETURN(int dfd, DirectFd());
  if (dfd < 0 || pieces.size() > IOV_MAX) return File::WriteDirectV(offset, pieces);
  std::vector<iovec> iov(pieces.size());
  size_t total = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    iov[i] = iovec{const_cast<char*>(pieces[i].data()), pieces[i].size()};
    total += pieces[i].size();
  }
  ssize_t r;
  do {
    r = ::pwritev(dfd, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(offset));
  } while (r < 0 && errno == EINTR);
  if (r == static_cast<ssize_t>(total)) return Status::OK();
  // A short or refused vectored write: redo it piece by piece (rewriting the same bytes is
  // harmless), where WriteDirect handles every fallback.
  return File::WriteDirectV(offset, pieces);
}

Status PosixFile::Sync() {
  int r;
  do {
    r = ::fdatasync(fd_);
  } while (r != 0 && errno == EINTR);
  if (r != 0) return Errno(errno, "fdatasync " + Quote(path()));
  return Status::OK();
}

Status PosixFile::Truncate(uint64_t size) {
  RETURN_IF_ERROR(CheckWritable("truncate"));
  int r;
  do {
    r = ::ftruncate(fd_, static_cast<off_t>(size));
  } while (r != 0 && errno == EINTR);
  if (r != 0) return Errno(errno, "truncate " + Quote(path()) + " to " + std::to_string(size));
  return Status::OK();
}

Result<uint64_t> PosixFile::Size() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return Errno(errno, "stat " + Quote(path()));
  return static_cast<uint64_t>(st.st_size);
}

void PosixFile::DropCache(uint64_t offset, uint64_t n) {
  // Advice only: a failure changes nothing the caller could act on.
  (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n),
                        POSIX_FADV_DONTNEED);
}

// ---------------------------------------------------------------------------------------------
// PosixFileSystem

PosixFileSystem::PosixFileSystem(PosixOptions options)
    : rings_(std::make_shared<RingPool>(options.ring_depth)) {
  if (!options.use_io_uring) rings_->Disable();
}

PosixFileSystem::~PosixFileSystem() = default;

Result<std::unique_ptr<File>> PosixFileSystem::Open(const std::string& path, OpenOptions options) {
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (options.create) flags |= O_CREAT;
  if (options.create && options.exclusive) flags |= O_EXCL;
  int fd = OpenRetry(path.c_str(), flags, 0644);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::AlreadyExists("file " + Quote(path) +
                                   " already exists: remove it or choose another name");
    }
    if (errno == ENOENT) {
      return Status::NotFound("file " + Quote(path) + " does not exist" +
                              (options.create ? " (nor does its directory: create it first)" : ""));
    }
    return Errno(errno, "open " + Quote(path));
  }
  return std::unique_ptr<File>(std::make_unique<PosixFile>(path, fd, options.read_only, rings_));
}

Status PosixFileSystem::CreateDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return Status::OK();
  int err = errno;
  if (err == EEXIST) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::OK();
    return Status::AlreadyExists(Quote(path) +
                                 " exists and is not a directory: remove it or choose another "
                                 "path");
  }
  if (err == ENOENT) {
    return Status::NotFound("cannot create directory " + Quote(path) +
                            ": its parent does not exist (create it first)");
  }
  return Errno(err, "create directory " + Quote(path));
}

Result<std::vector<std::string>> PosixFileSystem::ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Errno(errno, "list directory " + Quote(dir));
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    dirent* e = ::readdir(d);
    if (e == nullptr) break;
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Errno(err, "list directory " + Quote(dir));
  return names;
}

Status PosixFileSystem::Remove(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return Status::OK();
  int err = errno;
  if (err == EISDIR || err == EPERM) {
    // Linux reports a directory as EISDIR (POSIX allows EPERM).
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      if (::rmdir(path.c_str()) == 0) return Status::OK();
      return Errno(errno, "remove directory " + Quote(path));
    }
  }
  if (err == ENOENT) {
    return Status::NotFound("cannot remove " + Quote(path) + ": it does not exist");
  }
  return Errno(err, "remove " + Quote(path));
}

Status PosixFileSystem::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return Status::OK();
  int err = errno;
  if (err == ENOENT) {
    return Status::NotFound("cannot rename " + Quote(from) + " to " + Quote(to) +
                            ": the source or the target's directory does not exist");
  }
  return Errno(err, "rename " + Quote(from) + " to " + Quote(to));
}

Status PosixFileSystem::SyncDir(const std::string& dir) {
  int fd = OpenRetry(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno(errno, "open directory " + Quote(dir) + " to sync it");
  int r;
  do {
    r = ::fsync(fd);
  } while (r != 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (r != 0) return Errno(err, "fsync directory " + Quote(dir));
  return Status::OK();
}

Result<bool> PosixFileSystem::Exists(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return Errno(errno, "stat " + Quote(path));
}

Result<uint64_t> PosixFileSystem::FreeSpace(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return Errno(errno, "statvfs " + Quote(path));
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

std::shared_ptr<FileSystem> DefaultFileSystem() {
  // The one process-wide instance: stateless apart from its ring pool, which is thread-safe.
  static const std::shared_ptr<FileSystem> fs = std::make_shared<PosixFileSystem>();
  return fs;
}

}  // namespace granary::io
