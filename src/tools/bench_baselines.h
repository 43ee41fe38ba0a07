// The key-value stores a blob benchmark drives through one loop: Granary's BlobEngine and the
// baselines it is compared with on the same file system, in the same run:
//   - "files":   one file per blob, spread over 256 subdirectories; a put is open(O_CREAT |
//                O_TRUNC) + write + fsync + close, a get is open + read + close. The directory
//                is not fsynced after a create, which a crash-safe store would need, so this
//                baseline is slightly flattered.
//   - "rocksdb": RocksDB (Debian's librocksdb) with WriteOptions::sync = true; default options
//                except no compression (the values are random bytes), 10-bit Bloom filters
//                and a 256 MiB block cache; Get into a std::string.
//
// Thread-safety: Put and Get may be called from many threads at once.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/engine.h"

namespace granary::tools {

class BlobTarget {
 public:
  virtual ~BlobTarget() = default;
  virtual std::string name() const = 0;
  // Stores `value` durably: it survives a crash once Put returns.
  virtual Status Put(std::string_view key, std::string_view value) = 0;
  // Reads the whole value of `key` into `*value`.
  virtual Status Get(std::string_view key, std::string* value) = 0;
  // Reads the whole value of `key` and returns it, valid until the calling thread's next call:
  // in `*scratch` (through Get), or for a target that delivers into memory of its own (shared
  // buffers), there.
  virtual Result<std::string_view> Read(std::string_view key, std::string* scratch) {
    RETURN_IF_ERROR(Get(key, scratch));
    return std::string_view(*scratch);
  }
  // Stores values[i] under keys[i] for every i, as a store's batch call does; the default puts
  // them one at a time.
  virtual Status PutBatch(std::span<const std::string_view> keys,
                          std::span<const std::string_view> values) {
    for (size_t i = 0; i < keys.size(); ++i) RETURN_IF_ERROR(Put(keys[i], values[i]));
    return Status::OK();
  }
  // Reads every key of `keys`, each `length` bytes (kCorruption if one has another size), as a
  // store's batch call does; the default reads them one at a time.
  virtual Status ReadBatch(std::span<const std::string_view> keys, size_t length,
                           std::string* scratch) {
    for (std::string_view key : keys) {
      ASSIGN_OR_RETURN(std::string_view got, Read(key, scratch));
      if (got.size() != length) return Status::Corruption("a get returned the wrong size");
    }
    return Status::OK();
  }
  // Makes the next reads come from the device rather than memory: flushes what the store
  // buffers in memory and drops the page cache of its files (posix_fadvise DONTNEED).
  virtual Status DropCaches() = 0;
  // Closes the store; later calls fail.
  virtual Status Close() = 0;
};

// Granary's engine in `dir` with default options (durable writes, group commit), settled
// (SettleEngine) before it is returned.
Result<std::unique_ptr<BlobTarget>> OpenGranaryTarget(const std::string& dir);

// Opens the engine in `dir` with default options and waits until it has done the work that
// follows an open: the EngineOptions::preallocate_bytes of zeros that a new engine writes ahead
// of its log on a background thread, then synced by a Flush. Without this, the first second of
// a timed run would measure that one-time fill rather than the workload.
Result<std::unique_ptr<engine::BlobEngine>> OpenSettledEngine(const std::string& dir);
// The engine behind a target from OpenGranaryTarget, for its statistics.
engine::BlobEngine* GranaryEngineOf(BlobTarget& target);

Result<std::unique_ptr<BlobTarget>> OpenFilesTarget(const std::string& dir);
Result<std::unique_ptr<BlobTarget>> OpenRocksDbTarget(const std::string& dir);

// Drops the page cache of every regular file under `dir` (posix_fadvise DONTNEED); dirty pages
// stay, so sync first.
Status DropPageCache(const std::string& dir);

// Removes `dir` and everything in it, its top-level entries in parallel: on some file systems
// (ext4 mounted with discard) one unlink waits milliseconds, and the file-per-blob store holds
// tens of thousands of files.
Status RemoveTree(const std::string& dir);

// "7.8.3": the RocksDB this binary was built against.
std::string RocksDbVersion();

}  // namespace granary::tools
