// The oracle of the engine's crash tests (crash_test.cc, fault_test.cc): deterministic keys and
// values, the set of states each key may be in after a crash, and a checker that compares an
// open BlobEngine against those sets.
//
// Values are never shipped around: a value is derived from (key, seed, size), so a writer only
// reports the seed and size of what it wrote and the checker recomputes the bytes. The first 16
// bytes of a value (when it has that many) name its key and seed, so a wrong read can be traced
// to the write it came from.
//
// Per key, the oracle keeps the committed state (the last acknowledged write, or absent) and the
// writes issued after it that are not acknowledged: after a crash, the key may hold any of them.
// Writes to one key must be issued one at a time (a writer owns its keys), so their order is known.
//
// Not thread-safe: one oracle per test, used from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace granary::engine::crash {

// What a key holds: nothing, or the value derived from (key, seed) with `size` bytes.
struct ValueSpec {
  bool present = false;
  uint64_t seed = 0;
  uint32_t size = 0;

  static ValueSpec Absent() { return {}; }
  static ValueSpec Value(uint64_t seed, uint32_t size) { return {true, seed, size}; }
  // Whether both denote the same bytes: all absents are alike, and so are all empty values.
  bool SameContent(const ValueSpec& other) const;
  std::string DebugString() const;
};

// The name of key number `key`: "k000042." followed by filler, 8 to 71 bytes long, and
// kMaxKeySize bytes for every 97th key, so records of many shapes occur.
std::string KeyName(uint32_t key);

// The bytes of `value` (REQUIRES: value.present) for key number `key`.
std::string MakeValue(uint32_t key, const ValueSpec& value);
// Whether `bytes` are exactly the value `value` of key number `key` (absent never matches).
bool ValueMatches(uint32_t key, const ValueSpec& value, std::string_view bytes);
// For messages: which write `bytes` came from, if they look like one of ours.
std::string DescribeBytes(std::string_view bytes);
// Where a value of ours (at least 16 bytes) starts with these bytes; for finding records in
// segment files. Layout: u32 key, u32 kValueMagic, u64 seed, little-endian.
inline constexpr uint32_t kValueMagic = 0x5EED0B1B;

// A value size from 0 to max_size bytes, skewed towards small ones: 40% under 256 B, 37% under
// 8 KiB, 19% under 128 KiB, 1% at the edges of checksum blocks and of the direct I/O threshold,
// 2.8% under 1 MiB and 0.2% up to max_size (a quarter of those exactly max_size).
uint32_t RandomValueSize(std::mt19937_64& rng, uint32_t max_size);

struct KeyOp {
  uint32_t key = 0;
  ValueSpec value;  // absent: a delete
};

class Oracle {
 public:
  explicit Oracle(uint32_t num_keys);

  uint32_t num_keys() const { return static_cast<uint32_t>(keys_.size()); }
  const ValueSpec& committed(uint32_t key) const { return keys_[key].committed; }
  // Whether some write to `key` was issued and not acknowledged.
  bool has_pending(uint32_t key) const { return !keys_[key].pending.empty(); }

  // An operation (one write, or a WriteBatch) was submitted: from now on its writes may be
  // applied. Returns the ticket to acknowledge it with. Keys of one operation must be distinct.
  uint64_t Issue(std::vector<KeyOp> ops);
  // The operation of `ticket` returned OK: its writes are applied and durable, and every write
  // to the same keys issued before it is superseded.
  void Ack(uint64_t ticket);

  struct CheckOptions {
    // A key whose record the test corrupted on purpose: Get may return Corruption for it.
    std::optional<uint32_t> may_be_corrupt;
    // Earlier states of may_be_corrupt it may also hold: when the corrupted bytes are the
    // record's header, recovery cannot tell whose record it was and skips it.
    std::vector<ValueSpec> may_roll_back_to;
    // Chooses the keys also read through MultiGet, GetRange and ReadInto.
    uint64_t seed = 0;
  };
  struct CheckResult {
    std::string errors;          // empty when the engine holds an acceptable state
    uint64_t corrupt_reads = 0;  // reads of may_be_corrupt that returned Corruption
    bool rolled_back = false;    // may_be_corrupt held one of may_roll_back_to
    uint64_t present_keys = 0;
    uint64_t present_bytes = 0;
  };

  // Reads every key (Get, Exists, Stat, and for some keys MultiGet, GetRange and ReadInto),
  // Scans, and checks that each key holds one of its acceptable states, that Scan lists exactly
  // the keys found, and that no unacknowledged batch is half applied. Then makes what was
  // observed the committed state (keys that read as Corruption keep their sets).
  // REQUIRES: nothing writes to `engine` meanwhile.
  CheckResult CheckAndCollapse(BlobEngine& engine, const CheckOptions& options);

 private:
  struct Pending {
    uint64_t ticket = 0;
    ValueSpec value;
  };
  struct KeyState {
    ValueSpec committed;
    std::vector<Pending> pending;  // issued after `committed`, in issue order
  };
  // How the check saw a key.
  struct Observation {
    enum Kind { kValue, kCorrupt, kError } kind = kError;
    ValueSpec value;                // kValue: the first acceptable state that matched
    std::vector<uint64_t> matched;  // tickets of the states that matched; 0 = committed
    uint64_t sequence = 0;          // from Stat, when found
  };

  Observation ReadKey(BlobEngine& engine, uint32_t key, const CheckOptions& options,
                      std::string* errors, CheckResult* result);
  void CheckBatchAtomicity(const std::vector<Observation>& seen, std::string* errors) const;
  void CheckScan(BlobEngine& engine, const std::vector<Observation>& seen,
                 const CheckOptions& options, std::string* errors) const;
  void CheckExtraReads(BlobEngine& engine, const std::vector<Observation>& seen,
                       const CheckOptions& options, std::string* errors) const;
  std::string Candidates(uint32_t key) const;

  std::vector<KeyState> keys_;
  std::map<std::string, uint32_t, std::less<>> key_numbers_;
  // Issued operations not yet acknowledged, by ticket; an acknowledged later write to one of
  // their keys removes that key from them (its state no longer tells whether they applied).
  std::map<uint64_t, std::vector<KeyOp>> open_;
  uint64_t next_ticket_ = 1;
};

// A segment file as the tests read it on their own (docs/formats/engine.md, "Records"), to
// find records to corrupt and to check the layout the engine leaves behind.
struct SegmentFile {
  struct Record {
    uint64_t offset = 0;
    uint64_t size = 0;
    uint8_t type = 0;  // 1 put, 2 delete, 3 padding
    uint64_t sequence = 0;
    uint64_t group = 0;
    uint32_t value_offset = 0;
    std::string_view key;    // into `data`
    std::string_view value;  // into `data`
  };
  std::string path;
  std::string data;
  // From the start of the file up to the first bytes that do not parse as a record (fields are
  // checked for consistency; checksums are not).
  std::vector<Record> records;
  uint64_t records_end = 0;  // where they stop
};

// The segment files (seg-*.log) of engine directory `dir`, in log order.
std::vector<std::unique_ptr<SegmentFile>> ReadSegmentFiles(const std::string& dir);

// For an engine directory after a clean Close(): every segment file holds records up to its
// last byte (sealed segments are cut to their last record, and Close cuts the active one), and
// sequence numbers never decrease along the log. Returns "" or the problems found.
std::string CheckClosedSegmentFiles(const std::string& dir);

// Appends one line to a list of errors, keeping at most `limit` lines.
void AddError(std::string* errors, const std::string& line, size_t limit = 20);

// A seed derived from two numbers (a test's seed and an iteration), well mixed.
uint64_t MixSeed(uint64_t a, uint64_t b);

// The value of environment variable `name` as a number, or `fallback` when unset.
uint64_t EnvOr(const char* name, uint64_t fallback);

// A new empty directory whose name starts with `prefix`, for a test that needs about
// `scratch_bytes` of space: under $GRANARY_TEST_DIR if set, else in /dev/shm when it has room
// (these tests kill processes or simulate power loss themselves, so the page cache is as good
// as a disk, and fdatasync there costs nothing), else under $TEST_TMPDIR or /tmp.
std::string MakeTempDir(const std::string& prefix, uint64_t scratch_bytes);

}  // namespace granary::engine::crash
