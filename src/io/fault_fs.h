// FaultInjectionFileSystem: a FileSystem for tests that wraps a real one and can
//   - drop everything written but not yet synced (a simulated power loss): DropUnsyncedData();
//   - fail the N-th next write or sync with an IOError: FailNthWrite(), FailNthSync();
//   - tear a write: the N-th next write stores only a prefix of its bytes and then every later
//     write and sync fails, as if the machine died mid-write: TearNthWrite();
//   - flip bits in bytes already stored: FlipBit().
// Synced state is tracked per file: a File::Sync() makes that file's writes durable; a SyncDir()
// makes the directory's creations, removals and renames durable. DropUnsyncedData() restores
// every file to its content as of its last sync, removes files created since their directory's
// last sync, and restores the files removed or renamed since then.
//
// Details tests may rely on:
//   - syncs() and FailNthSync() count SyncDir() as well as File::Sync().
//   - Truncate is not a write; but while the file system is dead after a tear, truncate,
//     create, rename, remove and CreateDir fail too.
//   - n == 0 cancels a pending FailNthWrite, FailNthSync or TearNthWrite. FlipBit is not counted.
//   - Directories themselves are not tracked: CreateDir is durable at once.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "io/file_system.h"

namespace granary::io {

class FaultInjectionFileSystem final : public FileSystem {
 public:
  explicit FaultInjectionFileSystem(std::shared_ptr<FileSystem> base);
  ~FaultInjectionFileSystem() override;

  Result<std::unique_ptr<File>> Open(const std::string& path, OpenOptions options) override;
  Status CreateDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Result<bool> Exists(const std::string& path) override;
  Result<uint64_t> FreeSpace(const std::string& path) override;

  // Simulates a power loss: every file returns to its last synced content (see above). Open
  // File objects keep working afterwards but the caller is expected to drop them and reopen.
  Status DropUnsyncedData();

  // The n-th write from now (1 = the next one) fails with IOError and writes nothing.
  void FailNthWrite(uint64_t n);
  // The n-th sync from now fails with IOError (and syncs nothing).
  void FailNthSync(uint64_t n);
  // The n-th write from now stores only its first `keep_bytes` bytes (clamped to its length)
  // and fails; from then on the file system is "dead": every write and sync fails until
  // Revive(). Combine with DropUnsyncedData() to model a crash in the middle of a write.
  void TearNthWrite(uint64_t n, uint64_t keep_bytes);
  // Lets writes and syncs succeed again after a tear.
  void Revive();
  // Flips bit `bit` (0..7) of the byte at `offset` in `path`, in place and durably, as silent
  // disk corruption would.
  Status FlipBit(const std::string& path, uint64_t offset, int bit);

  // Counters, for tests that pick a random point to inject at.
  uint64_t writes() const;
  uint64_t syncs() const;

 private:
  struct State;
  friend class FaultInjectionFile;
  std::shared_ptr<State> state_;
  std::shared_ptr<FileSystem> base_;
};

}  // namespace granary::io
