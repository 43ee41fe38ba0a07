// BlobEngine: an append-only, log-structured store of immutable blobs in one disk directory.
// It sits under data chunks, small objects, metadata logs and the KV-cache's disk tier.
//
// Layout and recovery are specified byte by byte in docs/formats/engine.md. In short: blobs are
// records appended to segment files that only grow; an in-memory index maps a 128-bit hash of
// each key to the record's place; the index is checkpointed so that a restart replays only the
// log written after the checkpoint; compaction rewrites segments that are mostly garbage.
//
// Thread-safety: every method may be called from any number of threads at once. Writes are
// applied in one total order (the log's); a Get sees every write whose call has returned.
//
// Durability: with EngineOptions::sync (the default), a write returns only after its record is
// durable on disk; concurrent writers share one fdatasync (group commit). Without it, a write
// returns once the record is in the file and Flush() makes everything before it durable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "io/file_system.h"

namespace granary::engine {

inline constexpr size_t kMaxKeySize = 1024;
inline constexpr uint64_t kMaxValueSize = 1ull << 30;  // 1 GiB

struct EngineOptions {
  // Where files go; the POSIX file system when null.
  std::shared_ptr<io::FileSystem> fs;
  Clock* clock = nullptr;  // SystemClock when null

  // A segment is sealed once it reaches this size and a new one is started.
  uint64_t segment_size = 1ull << 30;

  // true: a write returns once durable. false: once written; call Flush() to make it durable.
  bool sync = true;

  // Records whose value is at least this large are written with direct I/O at 4 KiB-aligned
  // offsets (the page cache path is CPU-bound for large writes); smaller ones go through the
  // page cache, where reads of recently written small blobs find them.
  uint64_t direct_io_threshold = 256 * 1024;

  // Sealed segments whose live fraction falls below this are compacted.
  double compaction_threshold = 0.5;
  // Run compaction on a background thread. When false, only Compact() compacts.
  bool background_compaction = true;

  // Write an index checkpoint after this many bytes of log, so that a restart replays at most
  // about this much. 0 disables automatic checkpoints (Close() still writes one).
  uint64_t checkpoint_interval_bytes = 256ull << 20;

  // Keep this many bytes of the active segment pre-written with zeros ahead of the log's end,
  // so that small synced writes overwrite allocated blocks and fdatasync need not journal the
  // file's size. 0 disables.
  uint64_t preallocate_bytes = 64ull << 20;
};

// A group of writes submitted together: they are appended contiguously and made durable by one
// sync. A batch is atomic: after a crash either all of its writes are present or none is.
class WriteBatch {
 public:
  void Put(std::string_view key, std::string_view value);
  // Put that takes ownership of `value` instead of copying it (large chunks).
  void PutOwned(std::string_view key, std::string value);
  void Delete(std::string_view key);
  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  void Clear() { ops_.clear(); bytes_ = 0; }
  uint64_t ApproximateBytes() const { return bytes_; }

  struct Op {
    bool is_delete = false;
    std::string key;
    std::string value;
  };
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  uint64_t bytes_ = 0;
};

struct BlobInfo {
  uint64_t size = 0;      // bytes of the value
  uint64_t sequence = 0;  // position of the write in the engine's total order
};

struct EngineStats {
  uint64_t live_blobs = 0;
  uint64_t live_bytes = 0;       // bytes of live records (headers included)
  uint64_t disk_bytes = 0;       // bytes in segment files (the log's size on disk)
  uint64_t garbage_bytes = 0;    // disk_bytes - live_bytes: what compaction can reclaim
  uint64_t segments = 0;
  uint64_t index_memory_bytes = 0;
  uint64_t capacity_bytes = 0;   // free space on the file system + disk_bytes
  uint64_t compactions = 0;      // segments compacted since open
  uint64_t compacted_bytes_reclaimed = 0;
  uint64_t syncs = 0;            // fdatasync calls made for writes
  uint64_t records_written = 0;
  uint64_t corruptions_detected = 0;
  uint64_t replayed_bytes = 0;   // log bytes replayed at the last open
  uint64_t truncated_bytes = 0;  // torn tail bytes cut at the last open
};

class BlobEngine {
 public:
  // Opens the engine in `dir`, creating it if empty. Loads the newest valid index checkpoint
  // and replays the log written after it; a torn tail is truncated; records that fail their
  // checksum before the tail are reported (stats, log) and skipped, never returned as data.
  static Result<std::unique_ptr<BlobEngine>> Open(const std::string& dir, EngineOptions options);

  virtual ~BlobEngine() = default;

  // Stores `value` under `key`, replacing any previous value. Key: 1..kMaxKeySize bytes.
  virtual Status Put(std::string_view key, std::string_view value) = 0;
  // Removes `key`. Deleting a key that does not exist is not an error.
  virtual Status Delete(std::string_view key) = 0;
  // Applies every write of `batch` atomically (see WriteBatch).
  virtual Status Write(const WriteBatch& batch) = 0;
  // Same as Write, but returns at once; `done` runs on the engine's writer thread when the
  // batch is durable (or written, without sync). `done` must be quick and must not call the
  // engine (such calls fail with InvalidArgument). The engine keeps `batch`.
  virtual void WriteAsync(WriteBatch batch, std::function<void(Status)> done) = 0;

  // The whole value of `key`: NotFound if absent, Corruption if the record fails its checksum.
  virtual Result<std::string> Get(std::string_view key) = 0;
  // `length` bytes of the value starting at `offset` (fewer if the value ends sooner).
  // InvalidArgument if offset is past the end. Only the checksum blocks covering the range are
  // read and verified.
  virtual Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) = 0;
  // Reads value bytes from `offset` into `dst` without an intermediate copy; returns the count.
  virtual Result<size_t> ReadInto(std::string_view key, uint64_t offset, std::span<char> dst) = 0;
  // Gets of many keys in one call: the reads are submitted together (io_uring).
  virtual std::vector<Result<std::string>> MultiGet(std::span<const std::string_view> keys) = 0;
  // Whether `key` exists, from the index alone (no disk read).
  virtual bool Exists(std::string_view key) = 0;
  // Size and sequence of the live value of `key`.
  virtual Result<BlobInfo> Stat(std::string_view key) = 0;

  // Calls `visit(key, info)` for every live blob, segment by segment (no particular order),
  // reading record headers sequentially. Stops early, returning OK, when `visit` returns false.
  // Writes that happen during the scan may or may not be visited (a key rewritten during the
  // scan may be visited with its old and its new size). Compaction waits while a scan runs;
  // `visit` must not call Compact().
  virtual Status Scan(const std::function<bool(std::string_view key, const BlobInfo&)>& visit) = 0;

  // Makes every write that has returned durable (useful with sync = false).
  virtual Status Flush() = 0;
  // Compacts, now, every sealed segment below the threshold; returns when done.
  virtual Status Compact() = 0;
  // Writes an index checkpoint now.
  virtual Status Checkpoint() = 0;

  virtual EngineStats Stats() = 0;

  // Stops background work, writes a checkpoint and closes files. Later calls return
  // Unavailable. The destructor calls it if needed.
  virtual Status Close() = 0;
};

}  // namespace granary::engine
