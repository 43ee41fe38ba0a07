// KeyIndex: 256 shards, each an open-addressing table of packed 28-byte slots under its own
// reader-writer lock; and the index checkpoint file (docs/formats/engine.md, "Index checkpoint").
#include "engine/index.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "common/crc32c.h"
#include "common/mutex.h"

namespace granary::engine {
namespace {

// One table slot: exactly the 28 bytes of an entry, 4-byte aligned, without padding. The hash
// is held as four 32-bit words (KeyHash::lo in the first two) so that the struct needs no 8-byte
// alignment. A slot whose size8 is 0 is empty: every record is at least 8 bytes long, whereas any
// 128-bit value, all zeros included, may be a key's hash.
struct Slot {
  uint32_t hash[4];
  uint32_t segment;
  uint32_t offset8;
  uint32_t size8;

  bool empty() const { return size8 == 0; }
  uint64_t lo() const {
    uint64_t v;
    std::memcpy(&v, &hash[0], sizeof v);
    return v;
  }
  uint64_t hi() const {
    uint64_t v;
    std::memcpy(&v, &hash[2], sizeof v);
    return v;
  }
  KeyHash key() const { return KeyHash{lo(), hi()}; }
  bool Matches(const KeyHash& h) const { return lo() == h.lo && hi() == h.hi; }
  Location location() const { return Location{segment, offset8, size8}; }
  void SetLocation(const Location& loc) {
    segment = loc.segment;
    offset8 = loc.offset8;
    size8 = loc.size8;
  }
  static Slot Make(const KeyHash& h, const Location& loc) {
    Slot s;
    std::memcpy(&s.hash[0], &h.lo, sizeof h.lo);
    std::memcpy(&s.hash[2], &h.hi, sizeof h.hi);
    s.SetLocation(loc);
    return s;
  }
};
static_assert(sizeof(Slot) == 28 && alignof(Slot) == 4, "a slot must be exactly 28 bytes");

// The shard of a hash is its top kShardBits bits of `hi`; the home bucket inside the shard comes
// from `lo`, so the two choices are independent.
constexpr int kHashBits = 64;

// An open-addressing table with linear probing in Robin Hood order: along a run of occupied
// slots, entries are sorted by home bucket, so a lookup stops as soon as it meets an entry nearer
// to its home than the probe is to the key's, and a deletion shifts the rest of the run back by
// one slot (no tombstones). The home bucket is `lo` scaled to the capacity by a multiply-shift,
// so the capacity need not be a power of two and the table grows by 1.5x: the load stays between
// 0.6 and 0.9, about 37 bytes per entry on average. A table shrinks when its load drops below
// 1/4. The table never fills up, so every probe ends at an empty slot.
// Not thread-safe: the shard's lock guards it.
class Table {
 public:
  static constexpr size_t kNone = ~size_t{0};
  static constexpr size_t kMinCapacity = 16;

  // The smallest capacity that holds n entries within the maximum load, 9/10.
  static size_t CapacityFor(size_t n) { return std::max(kMinCapacity, (n * 10 + 8) / 9); }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  const Slot& at(size_t i) const { return slots_[i]; }
  Slot& at(size_t i) { return slots_[i]; }

  // The index of h's slot, or kNone.
  size_t FindPos(const KeyHash& h) const {
    if (capacity_ == 0) return kNone;
    size_t i = Home(h.lo);
    for (size_t dist = 0;; ++dist) {
      const Slot& t = slots_[i];
      if (t.empty() || Distance(t, i) < dist) return kNone;
      if (t.Matches(h)) return i;
      i = Next(i);
    }
  }

  // REQUIRES: s is not empty and its key is absent.
  void InsertNew(const Slot& s) {
    if ((size_ + 1) * 10 > capacity_ * 9) {
      Rehash(capacity_ == 0 ? kMinCapacity : capacity_ + capacity_ / 2);
    }
    Place(s);
  }

  // Removes the entry at slot i, shifting the rest of its run back.
  void EraseAt(size_t i) {
    for (;;) {
      size_t j = Next(i);
      const Slot& t = slots_[j];
      if (t.empty() || Distance(t, j) == 0) break;
      slots_[i] = t;
      i = j;
    }
    slots_[i] = Slot{};
    --size_;
    if (capacity_ > kMinCapacity && size_ * 4 < capacity_) {
      size_t target = std::max(kMinCapacity, size_ * 5 / 3);  // back to a load of about 0.6
      if (target < capacity_) Rehash(target);
    }
  }

  // Makes room for n entries without growing.
  void Reserve(size_t n) {
    if (CapacityFor(n) > capacity_) Rehash(CapacityFor(n));
  }

  template <typename Fn>
  void ForEachSlot(Fn&& fn) const {
    for (size_t i = 0; i < capacity_; ++i) {
      if (!slots_[i].empty()) fn(slots_[i]);
    }
  }

  // Copies the raw slot array (empty slots included) to dst[0, capacity()).
  void CopySlots(Slot* dst) const {
    if (capacity_ > 0) std::memcpy(dst, slots_.get(), capacity_ * sizeof(Slot));
  }

 private:
  size_t Home(uint64_t lo) const {
    return static_cast<size_t>((static_cast<unsigned __int128>(lo) * capacity_) >> kHashBits);
  }
  size_t Next(size_t i) const { return i + 1 == capacity_ ? 0 : i + 1; }
  // How far slot i is from the home bucket of its entry.
  size_t Distance(const Slot& s, size_t i) const {
    size_t home = Home(s.lo());
    return i >= home ? i - home : i + capacity_ - home;
  }

  // Robin Hood insertion: an entry takes the slot of any entry nearer to its own home.
  void Place(Slot s) {
    size_t i = Home(s.lo());
    for (size_t dist = 0;; ++dist) {
      Slot& t = slots_[i];
      if (t.empty()) {
        t = s;
        ++size_;
        return;
      }
      size_t d = Distance(t, i);
      if (d < dist) {
        std::swap(s, t);
        dist = d;
      }
      i = Next(i);
    }
  }

  void Rehash(size_t new_capacity) {
    std::unique_ptr<Slot[]> old = std::move(slots_);
    size_t old_capacity = capacity_;
    slots_ = std::make_unique<Slot[]>(new_capacity);  // zeroed: all empty
    capacity_ = new_capacity;
    size_ = 0;
    for (size_t i = 0; i < old_capacity; ++i) {
      if (!old[i].empty()) Place(old[i]);
    }
  }

  std::unique_ptr<Slot[]> slots_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

// An entry with size8 == 0 would read as an empty slot: refuse it loudly rather than corrupt
// the table.
void CheckLocation(const Location& loc, const char* op) {
  if (loc.size8 == 0) {
    std::fprintf(stderr, "KeyIndex::%s: a location with size8 == 0 is not a record; aborting\n",
                 op);
    std::abort();
  }
}

// ---- Checkpoint file -------------------------------------------------------------------------
//
//   offset       size  field (integers little-endian)
//        0          8  magic "GRNINDEX"
//        8          4  format version (1)
//       12          4  replay_segment
//       16          8  replay_offset
//       24          8  next_sequence
//       32          8  entry count n
//       40     28 * n  entries: hash lo (8), hash hi (8), segment (4), offset8 (4), size8 (4)
//   40+28n          4  CRC32C of bytes [0, 40 + 28n)

constexpr char kMagic[8] = {'G', 'R', 'N', 'I', 'N', 'D', 'E', 'X'};
constexpr uint32_t kVersion = 1;
constexpr size_t kFileHeaderSize = 40;
constexpr size_t kEntrySize = 28;
constexpr size_t kTrailerSize = 4;
constexpr size_t kBufferEntries = (1 << 20) / kEntrySize;  // about 1 MiB of entries
constexpr size_t kBufferBytes = kBufferEntries * kEntrySize;

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// a * b modulo the CRC32C polynomial, in the bit-reflected representation (x^0 is bit 31).
uint32_t MultModP(uint32_t a, uint32_t b) {
  constexpr uint32_t kPoly = 0x82F63B78;
  uint32_t m = 1u << 31;
  uint32_t p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return p;
}

// CRC32C of A followed by B, from the CRCs of A and of B and the length of B (the method of
// zlib's crc32_combine). Save needs it because the header, which the CRC covers first, is known
// only after the entries have been streamed out.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  uint32_t power = 1u << 30;   // x^(2^k), starting at x^1
  uint32_t factor = 1u << 31;  // x^(8 len_b), starting at x^0
  for (uint64_t n = len_b * 8; n != 0; n >>= 1) {
    if (n & 1) factor = MultModP(power, factor);
    power = MultModP(power, power);
  }
  return MultModP(factor, crc_a) ^ crc_b;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status Corrupt(const std::string& path, const std::string& what) {
  return Status::Corruption("index checkpoint " + path + " " + what +
                            "; delete it to rebuild the index from the log");
}

// Streams entries to a file through a buffer, then writes the header and the CRC.
class CheckpointWriter {
 public:
  explicit CheckpointWriter(io::File* file)
      : file_(file), buf_(std::make_unique<char[]>(kBufferBytes)) {}

  Status Add(const Slot& s) {
    char* p = buf_.get() + used_;
    PutU64(p, s.lo());
    PutU64(p + 8, s.hi());
    PutU32(p + 16, s.segment);
    PutU32(p + 20, s.offset8);
    PutU32(p + 24, s.size8);
    used_ += kEntrySize;
    ++count_;
    return used_ == kBufferBytes ? Flush() : Status::OK();
  }

  Status Finish(const KeyIndex::CheckpointInfo& info) {
    RETURN_IF_ERROR(Flush());
    char header[kFileHeaderSize];
    std::memcpy(header, kMagic, sizeof kMagic);
    PutU32(header + 8, kVersion);
    PutU32(header + 12, info.replay_segment);
    PutU64(header + 16, info.replay_offset);
    PutU64(header + 24, info.next_sequence);
    PutU64(header + 32, count_);
    uint32_t crc = Crc32cCombine(crc32c::Value(header, sizeof header), entries_crc_,
                                 offset_ - kFileHeaderSize);
    char trailer[kTrailerSize];
    PutU32(trailer, crc);
    RETURN_IF_ERROR(file_->Write(0, header, sizeof header));
    RETURN_IF_ERROR(file_->Write(offset_, trailer, sizeof trailer));
    return file_->Sync();
  }

 private:
  Status Flush() {
    if (used_ == 0) return Status::OK();
    RETURN_IF_ERROR(file_->Write(offset_, buf_.get(), used_));
    entries_crc_ = crc32c::Extend(entries_crc_, buf_.get(), used_);
    offset_ += used_;
    used_ = 0;
    return Status::OK();
  }

  io::File* file_;
  std::unique_ptr<char[]> buf_;
  size_t used_ = 0;
  uint64_t offset_ = kFileHeaderSize;  // where the buffer goes
  uint64_t count_ = 0;
  uint32_t entries_crc_ = 0;  // CRC32C of the entries written so far
};

// Checks a file's header and length, then streams its entries, checking the CRC at the end.
class CheckpointReader {
 public:
  explicit CheckpointReader(std::string path)
      : path_(std::move(path)), buf_(std::make_unique<char[]>(kBufferBytes)) {}

  Status Open(io::FileSystem& fs) {
    ASSIGN_OR_RETURN(bool exists, fs.Exists(path_));
    if (!exists) return Status::NotFound("index checkpoint " + path_ + " does not exist");
    ASSIGN_OR_RETURN(file_, fs.Open(path_, io::OpenOptions{.read_only = true}));
    ASSIGN_OR_RETURN(uint64_t size, file_->Size());
    if (size < kFileHeaderSize + kTrailerSize) {
      return Corrupt(path_, "is truncated: " + std::to_string(size) + " bytes, fewer than " +
                                std::to_string(kFileHeaderSize + kTrailerSize));
    }
    char header[kFileHeaderSize];
    RETURN_IF_ERROR(ReadExactly(0, sizeof header, header));
    if (std::memcmp(header, kMagic, sizeof kMagic) != 0) {
      return Corrupt(path_, "does not start with the magic \"GRNINDEX\"");
    }
    uint32_t version = GetU32(header + 8);
    if (version != kVersion) {
      return Corrupt(path_, "has format version " + std::to_string(version) +
                                "; this build reads version " + std::to_string(kVersion));
    }
    info_.replay_segment = GetU32(header + 12);
    info_.replay_offset = GetU64(header + 16);
    info_.next_sequence = GetU64(header + 24);
    count_ = GetU64(header + 32);
    uint64_t room = (size - kFileHeaderSize - kTrailerSize) / kEntrySize;
    if (count_ > room || kFileHeaderSize + count_ * kEntrySize + kTrailerSize != size) {
      return Corrupt(path_, "is " + std::to_string(size) + " bytes long but its header counts " +
                                std::to_string(count_) + " entries: truncated or damaged");
    }
    crc_ = crc32c::Value(header, sizeof header);
    offset_ = kFileHeaderSize;
    return Status::OK();
  }

  uint64_t count() const { return count_; }
  const KeyIndex::CheckpointInfo& info() const { return info_; }

  // REQUIRES: fewer than count() entries read so far.
  Status Next(Slot* s) {
    if (pos_ == filled_) {
      uint64_t left = count_ * kEntrySize + kFileHeaderSize - offset_;
      size_t n = static_cast<size_t>(std::min<uint64_t>(left, kBufferBytes));
      RETURN_IF_ERROR(ReadExactly(offset_, n, buf_.get()));
      crc_ = crc32c::Extend(crc_, buf_.get(), n);
      offset_ += n;
      pos_ = 0;
      filled_ = n;
    }
    const char* p = buf_.get() + pos_;
    *s = Slot::Make(KeyHash{GetU64(p), GetU64(p + 8)},
                    Location{GetU32(p + 16), GetU32(p + 20), GetU32(p + 24)});
    pos_ += kEntrySize;
    return Status::OK();
  }

  // Checks the CRC. REQUIRES: all count() entries read.
  Status Finish() {
    char trailer[kTrailerSize];
    RETURN_IF_ERROR(ReadExactly(offset_, sizeof trailer, trailer));
    uint32_t stored = GetU32(trailer);
    if (stored != crc_) {
      char msg[96];
      std::snprintf(msg, sizeof msg, "failed its checksum (stored CRC32C %08x, computed %08x)",
                    stored, crc_);
      return Corrupt(path_, msg);
    }
    return Status::OK();
  }

 private:
  Status ReadExactly(uint64_t offset, size_t n, char* dst) {
    ASSIGN_OR_RETURN(size_t got, file_->Read(offset, n, dst));
    if (got != n) return Corrupt(path_, "ended early at byte " + std::to_string(offset + got));
    return Status::OK();
  }

  std::string path_;
  std::unique_ptr<io::File> file_;
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0;
  size_t filled_ = 0;
  uint64_t offset_ = 0;  // where the next buffer is read from
  uint64_t count_ = 0;
  uint32_t crc_ = 0;
  KeyIndex::CheckpointInfo info_;
};

}  // namespace

// Aligned to a cache line so that shards used by different threads do not share one.
struct alignas(64) KeyIndex::Shard {
  Mutex mu;
  Table table GUARDED_BY(mu);
  // table.size(), published so that size() reads it without the lock.
  std::atomic<size_t> count{0};
};

KeyIndex::KeyIndex() : shards_(std::make_unique<Shard[]>(kShards)) {}
KeyIndex::~KeyIndex() = default;

KeyIndex::Shard& KeyIndex::ShardFor(const KeyHash& h) const {
  return shards_[h.hi >> (kHashBits - kShardBits)];
}

std::optional<Location> KeyIndex::Find(const KeyHash& h) const {
  Shard& s = ShardFor(h);
  ReaderLock lock(&s.mu);
  size_t i = s.table.FindPos(h);
  if (i == Table::kNone) return std::nullopt;
  return s.table.at(i).location();
}

std::optional<Location> KeyIndex::Upsert(const KeyHash& h, Location loc) {
  CheckLocation(loc, "Upsert");
  Shard& s = ShardFor(h);
  MutexLock lock(&s.mu);
  size_t i = s.table.FindPos(h);
  if (i != Table::kNone) {
    Location old = s.table.at(i).location();
    s.table.at(i).SetLocation(loc);
    return old;
  }
  s.table.InsertNew(Slot::Make(h, loc));
  s.count.store(s.table.size(), std::memory_order_relaxed);
  return std::nullopt;
}

std::optional<Location> KeyIndex::Erase(const KeyHash& h) {
  Shard& s = ShardFor(h);
  MutexLock lock(&s.mu);
  size_t i = s.table.FindPos(h);
  if (i == Table::kNone) return std::nullopt;
  Location old = s.table.at(i).location();
  s.table.EraseAt(i);
  s.count.store(s.table.size(), std::memory_order_relaxed);
  return old;
}

bool KeyIndex::ReplaceIf(const KeyHash& h, Location expected, Location desired) {
  CheckLocation(desired, "ReplaceIf");
  Shard& s = ShardFor(h);
  MutexLock lock(&s.mu);
  size_t i = s.table.FindPos(h);
  if (i == Table::kNone || !(s.table.at(i).location() == expected)) return false;
  s.table.at(i).SetLocation(desired);
  return true;
}

size_t KeyIndex::size() const {
  size_t n = 0;
  for (int i = 0; i < kShards; ++i) n += shards_[i].count.load(std::memory_order_relaxed);
  return n;
}

size_t KeyIndex::MemoryBytes() const {
  size_t bytes = sizeof(*this) + kShards * sizeof(Shard);
  for (int i = 0; i < kShards; ++i) {
    Shard& s = shards_[i];
    ReaderLock lock(&s.mu);
    bytes += s.table.capacity() * sizeof(Slot);
  }
  return bytes;
}

void KeyIndex::Clear() {
  for (int i = 0; i < kShards; ++i) {
    Table old;
    Shard& s = shards_[i];
    {
      MutexLock lock(&s.mu);
      std::swap(old, s.table);
      s.count.store(0, std::memory_order_relaxed);
    }
  }  // each old table is freed outside its lock
}

void KeyIndex::ForEach(const std::function<void(const KeyHash&, const Location&)>& fn) const {
  for (int i = 0; i < kShards; ++i) {
    Shard& s = shards_[i];
    ReaderLock lock(&s.mu);
    s.table.ForEachSlot([&](const Slot& t) { fn(t.key(), t.location()); });
  }
}

Status KeyIndex::SaveCheckpoint(io::FileSystem& fs, const std::string& path,
                                const CheckpointInfo& info,
                                const std::function<Status()>& before_commit) const {
  const std::string tmp = path + ".tmp";
  auto write_tmp = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<io::File> file, fs.Open(tmp, io::OpenOptions{.create = true}));
    RETURN_IF_ERROR(file->Truncate(0));  // a crashed earlier save may have left one
    CheckpointWriter writer(file.get());
    // Each shard's slots are copied under its reader lock (a memcpy: the writer waits for no
    // I/O) and written out after it is released; the copy is at most one shard, 1/256 of the
    // index.
    std::unique_ptr<Slot[]> copy;
    size_t copy_capacity = 0;
    for (int i = 0; i < kShards; ++i) {
      Shard& s = shards_[i];
      size_t n;
      {
        ReaderLock lock(&s.mu);
        n = s.table.capacity();
        if (n > copy_capacity) {
          copy = std::make_unique_for_overwrite<Slot[]>(n);
          copy_capacity = n;
        }
        s.table.CopySlots(copy.get());
      }
      for (size_t j = 0; j < n; ++j) {
        if (!copy[j].empty()) RETURN_IF_ERROR(writer.Add(copy[j]));
      }
    }
    return writer.Finish(info);  // closes the file on return, before the rename
  };
  Status st = write_tmp();
  if (st.ok() && before_commit) st = before_commit();
  if (st.ok()) st = fs.Rename(tmp, path);
  if (st.ok()) st = fs.SyncDir(DirName(path));
  if (!st.ok()) {
    fs.Remove(tmp).IgnoreError();
    return st.WithContext("writing index checkpoint " + path);
  }
  return Status::OK();
}

Result<KeyIndex::CheckpointInfo> KeyIndex::LoadCheckpoint(io::FileSystem& fs,
                                                          const std::string& path) {
  CheckpointReader reader(path);
  RETURN_IF_ERROR(reader.Open(fs));

  // Build new tables, presized so that hardly any shard grows while loading; the live ones are
  // touched only once the whole file has passed its checksum.
  auto tables = std::make_unique<Table[]>(kShards);
  if (reader.count() > 0) {
    double per_shard = static_cast<double>(reader.count()) / kShards;
    auto expect = static_cast<size_t>(per_shard + 4 * std::sqrt(per_shard) + 16);
    for (int i = 0; i < kShards; ++i) tables[i].Reserve(expect);
  }
  std::string problem;  // reported only if the checksum holds
  for (uint64_t n = 0; n < reader.count(); ++n) {
    Slot slot;
    RETURN_IF_ERROR(reader.Next(&slot));
    Table& t = tables[slot.hi() >> (kHashBits - kShardBits)];
    if (slot.empty() || t.FindPos(slot.key()) != Table::kNone) {
      if (problem.empty()) {
        problem = "has an invalid entry " + std::to_string(n) +
                  (slot.empty() ? " (record size 0)" : " (its key appears twice)");
      }
      continue;
    }
    t.InsertNew(slot);
  }
  RETURN_IF_ERROR(reader.Finish());
  if (!problem.empty()) return Corrupt(path, problem);

  for (int i = 0; i < kShards; ++i) {
    Shard& s = shards_[i];
    MutexLock lock(&s.mu);
    std::swap(s.table, tables[i]);
    s.count.store(s.table.size(), std::memory_order_relaxed);
  }
  return reader.info();  // the old tables are freed with `tables`, outside the locks
}

}  // namespace granary::engine
