// KeyIndex: the engine's in-memory map from key to the place of its live record.
//
// Keys are represented by their 128-bit hash (common/hash.h), so an entry is 28 bytes whatever
// the key's length: 16 bytes of hash and a 12-byte Location. Entries live in open-addressing
// tables split into shards, each guarded by its own reader-writer lock, so lookups from many
// threads proceed in parallel with the single writer.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/hash.h"
#include "common/status.h"
#include "io/file_system.h"

namespace granary::engine {

// Where a record lives. Records start at 8-byte aligned offsets and have sizes that are
// multiples of 8, so both are stored in units of 8 bytes: segments up to 32 GiB.
struct Location {
  uint32_t segment = 0;
  uint32_t offset8 = 0;  // offset / 8
  uint32_t size8 = 0;    // record size / 8 (header, key, value, checksums, padding)

  uint64_t offset() const { return uint64_t{offset8} * 8; }
  uint64_t size() const { return uint64_t{size8} * 8; }
  friend bool operator==(const Location&, const Location&) = default;
};

class KeyIndex {
 public:
  KeyIndex();
  ~KeyIndex();
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  std::optional<Location> Find(const KeyHash& h) const;
  // Inserts or replaces; returns the location it replaced, if any.
  // REQUIRES: loc.size8 > 0 (every record is at least 8 bytes; a zero size marks an empty slot
  // in the tables, so the index aborts rather than store one).
  std::optional<Location> Upsert(const KeyHash& h, Location loc);
  // Removes; returns the location removed, if any.
  std::optional<Location> Erase(const KeyHash& h);
  // Replaces the entry only if it currently equals `expected` (used when compaction moves a
  // record: a newer write of the same key wins). Returns whether it replaced.
  // REQUIRES: desired.size8 > 0.
  bool ReplaceIf(const KeyHash& h, Location expected, Location desired);

  size_t size() const;
  // Bytes of memory held by the tables.
  size_t MemoryBytes() const;
  void Clear();

  // Calls fn for every entry. Each shard is read under its lock, so the whole walk is not one
  // snapshot: entries changed during the walk may be seen in either state. fn must not call
  // back into the index.
  void ForEach(const std::function<void(const KeyHash&, const Location&)>& fn) const;

  // Index checkpoint files (docs/formats/engine.md, "Index checkpoint"). The file records the
  // log position from which replay must start and the next sequence number, then every entry,
  // then a CRC32C over all of it. Save writes atomically (temporary file, sync, rename, sync
  // directory). Load replaces this index's contents; Corruption if the file fails its checksum.
  struct CheckpointInfo {
    uint32_t replay_segment = 0;  // replay the log from (replay_segment, replay_offset)
    uint64_t replay_offset = 0;
    uint64_t next_sequence = 0;
  };
  // `before_commit`, if given, runs after every entry is copied and before the file replaces
  // the old one; the engine uses it to make the records the entries point at durable.
  Status SaveCheckpoint(io::FileSystem& fs, const std::string& path, const CheckpointInfo& info,
                        const std::function<Status()>& before_commit = nullptr) const;
  Result<CheckpointInfo> LoadCheckpoint(io::FileSystem& fs, const std::string& path);

 private:
  struct Shard;
  static constexpr int kShardBits = 8;
  static constexpr int kShards = 1 << kShardBits;
  Shard& ShardFor(const KeyHash& h) const;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace granary::engine
