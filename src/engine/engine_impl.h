// EngineImpl: the BlobEngine implementation. Its parts live in separate files:
//   engine_impl.cc  open/close, the public read and write calls
//   writer.cc       the log writer thread (group commit) and the pre-zeroing thread
//   recovery.cc     loading the checkpoint and replaying the log
//   compaction.cc   compaction, checkpoints and the maintenance thread
//
// Threads and what they own:
//   - callers: build records (checksums computed here, in parallel), enqueue them, read.
//   - writer thread: owns the active segment's end and the sequence counter; the only thread
//     that appends to segments and mutates the index.
//   - preparer thread: writes zeros ahead of the log's end in the active segment.
//   - maintenance thread: checkpoints and compaction (compaction's copies go through the writer).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/hash.h"
#include "common/mutex.h"
#include "engine/buffer_pool.h"
#include "engine/engine.h"
#include "engine/format.h"
#include "engine/index.h"

namespace granary::engine {

struct Segment {
  uint32_t id = 0;
  std::string path;
  std::shared_ptr<io::File> file;
  std::atomic<uint64_t> end{0};         // bytes of records (the log's end within the segment)
  std::atomic<int64_t> live_bytes{0};   // bytes of records the index points to
  std::atomic<bool> sealed{false};      // no more appends; a compaction candidate
};

// One record on its way to the log.
struct PendingRecord {
  RecordType type = RecordType::kPut;
  uint8_t flags = 0;
  std::string_view key;
  KeyHash hash;
  std::string_view value;
  std::string crcs;                // the value's block checksums, as stored
  bool direct = false;             // written with direct I/O from `image`
  std::shared_ptr<char> image;     // direct records: the whole aligned record image
  std::optional<Location> move_from;  // compaction: copy only if the key still lives there
  bool tombstone_copy = false;        // compaction: copy only if the key is still deleted
  // Set by the writer.
  bool skipped = false;
  Location loc;

  // Upper bound of the log bytes the record takes, including, for a direct record, the
  // padding that aligns it.
  uint64_t LogBytes() const {
    return LayoutFor(key.size(), value.size(), direct).size +
           (direct ? 2 * io::kDirectAlignment : 0);
  }
};

// One WriteBatch (or compaction copy) waiting for the writer.
struct WriteRequest {
  std::vector<PendingRecord> records;
  WriteBatch owned;  // WriteAsync keeps its batch here; records point into it
  bool flush_only = false;
  std::function<void(Status)> done;
  uint64_t bytes = 0;  // upper bound of the log bytes it needs
};

class EngineImpl final : public BlobEngine {
 public:
  EngineImpl(std::string dir, EngineOptions options);
  ~EngineImpl() override;

  Status Put(std::string_view key, std::string_view value) override;
  Status Delete(std::string_view key) override;
  Status Write(const WriteBatch& batch) override;
  void WriteAsync(WriteBatch batch, std::function<void(Status)> done) override;
  Result<std::string> Get(std::string_view key) override;
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) override;
  Result<size_t> ReadInto(std::string_view key, uint64_t offset, std::span<char> dst) override;
  std::vector<Result<std::string>> MultiGet(std::span<const std::string_view> keys) override;
  bool Exists(std::string_view key) override;
  Result<BlobInfo> Stat(std::string_view key) override;
  Status Scan(const std::function<bool(std::string_view, const BlobInfo&)>& visit) override;
  Status Flush() override;
  Status Compact() override;
  Status Checkpoint() override;
  EngineStats Stats() override;
  Status Close() override;

  Status Start();  // recovery, then the threads

 private:
  // --- engine_impl.cc
  Status BuildRequest(const WriteBatch& batch, WriteRequest* req);
  Status PrepareRecord(PendingRecord* rec) const;
  Status Submit(WriteRequest* req);  // waits for completion
  std::shared_ptr<Segment> FindSegment(uint32_t id) const;
  std::vector<std::shared_ptr<Segment>> SegmentsSnapshot() const;
  std::string SegmentPath(uint32_t id) const;
  // Reads value bytes [offset, offset + n) of the record of `key` at `loc` into dst; `info`
  // receives the value's size and sequence. n == UINT64_MAX means "to the end".
  Status ReadValue(std::string_view key, const Location& loc, uint64_t offset, uint64_t n,
                   std::string* dst, char* raw_dst, size_t raw_cap, size_t* copied,
                   BlobInfo* info);
  // --- engine_read.cc
  // Reads the whole value of the small record of `key` at `loc` straight into `out` (up to
  // `cap` bytes) with one read and no copy of our own; sets *value_len. False when the record
  // does not fit that path (laid out for direct I/O, a value larger than `cap`, damaged): the
  // caller then reads it the general way, which also reports damage. `out` may have been
  // written either way.
  bool ReadWholeInto(std::string_view key, const Location& loc, io::File& file, char* out,
                     uint64_t cap, uint64_t* value_len, BlobInfo* info);
  // Looks up `key` and reads from its record, retrying if compaction moved it meanwhile.
  Status ReadKey(std::string_view key, uint64_t offset, uint64_t n, std::string* dst,
                 char* raw_dst, size_t raw_cap, size_t* copied, BlobInfo* info);

  // --- writer.cc
  void WriterLoop();
  void TakeGroup(std::vector<WriteRequest*>* group);
  // When no group is being written and none is queued, writes `req` on the calling thread
  // (saving two thread hand-offs at queue depth 1) and returns true.
  bool TryWriteInline(WriteRequest* req);
  void ProcessGroup(std::vector<WriteRequest*>& group);
  Status WriteGroup(std::vector<WriteRequest*>& group);
  // Seals the active segment and starts the next; the writer will write up to `reserve` bytes
  // into it at once. Writer thread only.
  Status RollSegment(uint64_t reserve);
  Status OpenNewSegment(uint32_t id, uint64_t reserve);
  void ApplyToIndex(const PendingRecord& rec);
  void AddLive(const Location& loc, int64_t delta);
  void PreparerLoop();

  // --- recovery.cc
  Status Recover();
  struct ReplayState {
    uint64_t last_sequence = 0;  // of the last record replayed (or before the checkpoint)
    uint64_t last_group = 0;
  };
  Status ReplaySegment(const std::shared_ptr<Segment>& seg, uint64_t start, bool is_last,
                       ReplayState* state);

  // --- compaction.cc
  void MaintenanceLoop();
  Status CompactSegment(const std::shared_ptr<Segment>& seg);
  Status DoCheckpoint();
  uint64_t CheckpointThreshold() const;
  std::vector<std::shared_ptr<Segment>> CompactionCandidates() const;

  const std::string dir_;
  const EngineOptions options_;
  std::shared_ptr<io::FileSystem> fs_;
  Clock* clock_;
  KeyIndex index_;
  std::shared_ptr<AlignedBufferPool> buffers_ = std::make_shared<AlignedBufferPool>(128 << 20);

  mutable Mutex seg_mu_;
  std::map<uint32_t, std::shared_ptr<Segment>> segments_ GUARDED_BY(seg_mu_);

  // Writer queue.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<WriteRequest*> queue_;  // guarded by queue_mu_
  bool stopping_ = false;            // guarded by queue_mu_
  // Some thread (the writer, or a caller writing inline) is writing a group; the writer-role
  // state below belongs to that thread. Guarded by queue_mu_.
  bool busy_ = false;
  // The engine whose group this thread is writing (callbacks run there), to refuse re-entry.
  static thread_local const EngineImpl* t_writing_engine;
  std::thread writer_;

  // Writer-role state: touched only by the thread that set busy_ (read by others only under
  // applied_mu_ as noted).
  std::shared_ptr<Segment> active_;
  uint64_t next_sequence_ = 1;
  Status writer_error_;  // sticky: after a failed write or sync, every write fails
  std::string buffer_;   // serialized small records of the group being written
  std::atomic<uint64_t> group_bytes_avg_{0};  // moving average of a group's bytes (writer)

  // The log position up to which every record is applied to the index (for checkpoints).
  std::mutex applied_mu_;
  uint32_t applied_segment_ = 0;  // guarded by applied_mu_
  uint64_t applied_end_ = 0;      // guarded by applied_mu_
  uint64_t applied_sequence_ = 1; // next sequence; guarded by applied_mu_

  // Pre-zeroing of the active segment.
  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  std::shared_ptr<Segment> prep_segment_;  // guarded by prep_mu_
  uint64_t prep_reserved_ = 0;  // the writer will write below this; guarded by prep_mu_
  std::atomic<uint64_t> prepared_{0};  // zeros are written up to here in prep_segment_
  bool prep_stop_ = false;             // guarded by prep_mu_
  std::thread preparer_;

  // Maintenance.
  std::mutex maint_mu_;
  std::condition_variable maint_cv_;
  bool maint_stop_ = false;  // guarded by maint_mu_
  std::thread maintenance_;
  std::mutex compact_mu_;     // one compaction at a time; Scan holds it too
  std::mutex checkpoint_mu_;  // one checkpoint at a time (they share the temporary file)

  std::atomic<uint64_t> bytes_since_checkpoint_{0};

  std::atomic<bool> closed_{false};
  std::mutex close_mu_;
  Status close_status_;

  struct Counters {
    std::atomic<uint64_t> compactions{0}, reclaimed{0}, syncs{0}, records{0}, corruptions{0},
        replayed{0}, truncated{0};
  } counters_;
};

}  // namespace granary::engine
