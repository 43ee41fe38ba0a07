// FileSystem: the only way Granary's storage code touches files. Three implementations:
//   - PosixFileSystem (posix_fs.h): pread/pwrite/fdatasync, O_DIRECT for large aligned writes,
//     and io_uring (uring.h) for batches of reads.
//   - FaultInjectionFileSystem (fault_fs.h): wraps another FileSystem for tests; drops unsynced
//     data, fails chosen writes or syncs, tears writes, flips bits.
//
// Thread-safety: a FileSystem is thread-safe. A File may be read from many threads at once;
// writes to one File must not overlap in range (the engine has one writer per file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::io {

// Alignment required for direct writes: offset, length and buffer address.
inline constexpr size_t kDirectAlignment = 4096;

struct OpenOptions {
  bool create = false;     // create the file if it does not exist
  bool exclusive = false;  // with create: fail with AlreadyExists if it exists
  bool read_only = false;
};

// One positioned read of a batch: `n` bytes at `offset` into `dst`.
struct ReadOp {
  uint64_t offset = 0;
  size_t n = 0;
  char* dst = nullptr;
  // Out: bytes read (short only at end of file) and the status of this read.
  size_t bytes_read = 0;
  Status status;
};

class File {
 public:
  virtual ~File() = default;

  // Reads up to `n` bytes at `offset` into `dst`; returns the count read, short only at end of
  // file.
  virtual Result<size_t> Read(uint64_t offset, size_t n, char* dst) = 0;

  // Performs every read of `ops` (each gets its own status). The POSIX implementation submits
  // them together through io_uring, so a batch costs one system call rather than one each.
  // Returns non-OK only if the batch could not be attempted at all.
  virtual Status ReadBatch(std::span<ReadOp> ops);

  // Reads the bytes at `offset` into `pieces`, back to back, as one read where the
  // implementation can (preadv); returns the count read, short only at end of file.
  virtual Result<size_t> ReadV(uint64_t offset, std::span<const std::span<char>> pieces);

  // Writes all of `data[0, n)` at `offset` through the page cache.
  virtual Status Write(uint64_t offset, const void* data, size_t n) = 0;

  // Writes all of `data[0, n)` at `offset`, bypassing the page cache (O_DIRECT). REQUIRES:
  // offset, n and the address of data are multiples of kDirectAlignment. Implementations
  // without direct I/O fall back to Write().
  virtual Status WriteDirect(uint64_t offset, const void* data, size_t n) = 0;

  // Writes `pieces`, back to back, starting at `offset`, bypassing the page cache: one system
  // call where the implementation can (pwritev), so the device sees the whole run at once.
  // REQUIRES: the same alignment as WriteDirect for offset and every piece.
  virtual Status WriteDirectV(uint64_t offset, std::span<const std::span<const char>> pieces);

  // Makes every completed write durable (fdatasync).
  virtual Status Sync() = 0;

  // Sets the file's size; the bytes past `size` are gone.
  virtual Status Truncate(uint64_t size) = 0;

  virtual Result<uint64_t> Size() = 0;

  // Hints that the page cache may drop `[offset, offset+n)` (posix_fadvise DONTNEED).
  virtual void DropCache(uint64_t /*offset*/, uint64_t /*n*/) {}

  const std::string& path() const { return path_; }

 protected:
  explicit File(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens (and with options.create, creates) a file for reading and writing.
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, OpenOptions options) = 0;

  virtual Status CreateDir(const std::string& path) = 0;  // OK if it already exists
  // Names (not paths) of the entries of `dir`, in no particular order, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual Status Remove(const std::string& path) = 0;  // NotFound if missing
  // Atomically replaces `to` with `from` (rename(2)).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Makes the directory's entries (creations, removals, renames) durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Result<bool> Exists(const std::string& path) = 0;
  // Bytes available to an unprivileged writer on the file system holding `path`.
  virtual Result<uint64_t> FreeSpace(const std::string& path) = 0;
};

// The process's POSIX file system. Stateless apart from a pool of io_uring rings.
std::shared_ptr<FileSystem> DefaultFileSystem();

// Reads the whole file at `path`.
Result<std::string> ReadFileToString(FileSystem& fs, const std::string& path);

// Writes `data` to `path` atomically and durably: write to a temporary name, sync, rename over
// `path`, sync the directory. A crash leaves either the old file or the new one.
Status WriteFileAtomic(FileSystem& fs, const std::string& path, std::string_view data);

// Joins two path components with exactly one '/'.
std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace granary::io
