#include "crash_oracle.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/format.h"

namespace granary::engine::crash {
namespace {

uint64_t Mix(uint64_t x) {  // the splitmix64 finalizer
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Writes the n bytes of value (key, seed) to dst. Values of 16 bytes or more start with
// (key, kValueMagic, seed); shorter ones are all pseudo-random, so that two short values with
// different seeds rarely coincide.
void FillValue(uint32_t key, uint64_t seed, char* dst, size_t n) {
  char head[16];
  std::memcpy(head, &key, 4);
  std::memcpy(head + 4, &kValueMagic, 4);
  std::memcpy(head + 8, &seed, 8);
  uint64_t state = seed ^ Mix(key + 0x9E3779B97F4A7C15ull);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t word;
    if (n >= 16 && i < 16) {
      std::memcpy(&word, head + i, 8);
    } else {
      state += 0x9E3779B97F4A7C15ull;
      word = Mix(state);
    }
    std::memcpy(dst + i, &word, std::min<size_t>(8, n - i));
  }
}

std::string Hex(std::string_view bytes, size_t limit) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < bytes.size() && i < limit; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", static_cast<unsigned char>(bytes[i]));
    out += buf;
  }
  if (bytes.size() > limit) out += "...";
  return out;
}

}  // namespace

bool ValueSpec::SameContent(const ValueSpec& other) const {
  if (present != other.present) return false;
  if (!present) return true;
  if (size != other.size) return false;
  return size == 0 || seed == other.seed;
}

std::string ValueSpec::DebugString() const {
  if (!present) return "absent";
  return "seed " + std::to_string(seed) + " (" + std::to_string(size) + " B)";
}

std::string KeyName(uint32_t key) {
  char prefix[16];
  std::snprintf(prefix, sizeof(prefix), "k%06u.", key);
  uint64_t h = Mix(key);
  size_t len = key % 97 == 0 ? kMaxKeySize : 8 + h % 64;
  std::string name(prefix);
  while (name.size() < len) {
    h = Mix(h + 1);
    name.push_back(static_cast<char>('a' + h % 26));
  }
  name.resize(len);
  return name;
}

std::string MakeValue(uint32_t key, const ValueSpec& value) {
  assert(value.present);
  std::string out(value.size, '\0');
  FillValue(key, value.seed, out.data(), out.size());
  return out;
}

bool ValueMatches(uint32_t key, const ValueSpec& value, std::string_view bytes) {
  if (!value.present || bytes.size() != value.size) return false;
  thread_local std::string expected;
  expected.resize(value.size);
  FillValue(key, value.seed, expected.data(), expected.size());
  return std::memcmp(expected.data(), bytes.data(), bytes.size()) == 0;
}

std::string DescribeBytes(std::string_view bytes) {
  std::string size = std::to_string(bytes.size()) + " B";
  uint32_t key = 0;
  uint32_t magic = 0;
  uint64_t seed = 0;
  if (bytes.size() >= 16) {
    std::memcpy(&key, bytes.data(), 4);
    std::memcpy(&magic, bytes.data() + 4, 4);
    std::memcpy(&seed, bytes.data() + 8, 8);
  }
  if (magic != kValueMagic) return size + " not written by this test: " + Hex(bytes, 24);
  bool intact =
      ValueMatches(key, ValueSpec::Value(seed, static_cast<uint32_t>(bytes.size())), bytes);
  return size + " of the value of key " + std::to_string(key) + " seed " + std::to_string(seed) +
         (intact ? "" : " (damaged or truncated)");
}

uint32_t RandomValueSize(std::mt19937_64& rng, uint32_t max_size) {
  auto between = [&rng](uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); };
  // Sizes at the edges of the value's checksum blocks and of the direct I/O threshold.
  static constexpr uint64_t kEdges[] = {4095,  4096,   4097,   65535,  65536,
                                        65537, 131072, 262143, 262144, 262145};
  uint64_t p = rng() % 10000;
  uint64_t n;
  if (p < 4000) {
    n = between(0, 255);
  } else if (p < 7700) {
    n = between(256, 8191);
  } else if (p < 9600) {
    n = between(8192, 131071);
  } else if (p < 9700) {
    n = kEdges[rng() % std::size(kEdges)];
  } else if (p < 9980) {
    n = between(131072, 1048575);
  } else {
    n = rng() % 4 == 0 ? max_size : between(1 << 20, std::max<uint64_t>(max_size, 1 << 20));
  }
  return static_cast<uint32_t>(std::min<uint64_t>(n, max_size));
}

void AddError(std::string* errors, const std::string& line, size_t limit) {
  size_t lines = static_cast<size_t>(std::count(errors->begin(), errors->end(), '\n'));
  if (lines < limit) {
    *errors += line + "\n";
  } else if (lines == limit) {
    *errors += "(further errors left out)\n";
  }
}

uint64_t MixSeed(uint64_t a, uint64_t b) { return Mix(Mix(a) ^ (b + 0x632BE59BD9B4E019ull)); }

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

std::string MakeTempDir(const std::string& prefix, uint64_t scratch_bytes) {
  std::string base;
  struct statvfs shm;
  if (const char* v = std::getenv("GRANARY_TEST_DIR"); v != nullptr && *v != '\0') {
    base = v;
  } else if (statvfs("/dev/shm", &shm) == 0 &&
             uint64_t{shm.f_bavail} * shm.f_frsize >= 2 * scratch_bytes) {
    base = "/dev/shm";
  } else if (const char* t = std::getenv("TEST_TMPDIR"); t != nullptr && *t != '\0') {
    base = t;
  } else {
    base = "/tmp";
  }
  std::string tmpl = base + "/" + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::perror(("mkdtemp " + tmpl).c_str());
    std::abort();
  }
  return tmpl;
}

Oracle::Oracle(uint32_t num_keys) : keys_(num_keys) {
  for (uint32_t k = 0; k < num_keys; ++k) key_numbers_.emplace(KeyName(k), k);
}

uint64_t Oracle::Issue(std::vector<KeyOp> ops) {
  uint64_t ticket = next_ticket_++;
  for (const KeyOp& op : ops) keys_[op.key].pending.push_back({ticket, op.value});
  open_.emplace(ticket, std::move(ops));
  return ticket;
}

void Oracle::Ack(uint64_t ticket) {
  auto it = open_.find(ticket);
  assert(it != open_.end());
  std::vector<KeyOp> ops = std::move(it->second);
  open_.erase(it);
  for (const KeyOp& op : ops) {
    KeyState& state = keys_[op.key];
    state.committed = op.value;
    std::erase_if(state.pending, [ticket](const Pending& p) { return p.ticket <= ticket; });
    for (auto& [other, other_ops] : open_) {
      if (other > ticket) break;
      std::erase_if(other_ops, [&op](const KeyOp& o) { return o.key == op.key; });
    }
  }
}

std::string Oracle::Candidates(uint32_t key) const {
  const KeyState& state = keys_[key];
  std::string out = "committed " + state.committed.DebugString();
  for (const Pending& p : state.pending) {
    out += ", or unacknowledged #" + std::to_string(p.ticket) + " " + p.value.DebugString();
  }
  return out;
}

Oracle::Observation Oracle::ReadKey(BlobEngine& engine, uint32_t key, const CheckOptions& options,
                                    std::string* errors, CheckResult* result) {
  const std::string name = KeyName(key);
  const KeyState& state = keys_[key];
  Observation obs;
  Result<std::string> got = engine.Get(name);
  const bool exists = engine.Exists(name);
  Result<BlobInfo> stat = engine.Stat(name);
  const std::string where = "key " + std::to_string(key) + ": ";

  if (!got.ok() && !got.status().IsNotFound()) {
    if (got.status().IsCorruption() && options.may_be_corrupt == key) {
      obs.kind = Observation::kCorrupt;
      ++result->corrupt_reads;
    } else {
      AddError(errors, where + "Get failed: " + got.status().ToString());
    }
    return obs;
  }
  const bool found = got.ok();
  auto consider = [&](uint64_t ticket, const ValueSpec& v) {
    bool match = found ? ValueMatches(key, v, *got) : !v.present;
    if (!match) return;
    if (obs.matched.empty()) obs.value = v;
    obs.matched.push_back(ticket);
  };
  consider(0, state.committed);
  for (const Pending& p : state.pending) consider(p.ticket, p.value);
  if (obs.matched.empty() && options.may_be_corrupt == key) {
    for (const ValueSpec& older : options.may_roll_back_to) consider(0, older);
    result->rolled_back = !obs.matched.empty();
  }
  if (obs.matched.empty()) {
    AddError(errors, where + "Get returned " +
                         (found ? DescribeBytes(*got) : std::string("NotFound")) +
                         "; acceptable: " + Candidates(key));
    return obs;
  }
  obs.kind = Observation::kValue;
  if (exists != found) {
    AddError(errors, where + "Exists says " + (exists ? "yes" : "no") + " but Get " +
                         (found ? "found it" : "returned NotFound"));
  }
  if (found) {
    if (!stat.ok() || stat->size != got->size()) {
      AddError(errors,
               where + "Stat disagrees with Get: " +
                   (stat.ok() ? std::to_string(stat->size) + " B" : stat.status().ToString()));
    } else {
      obs.sequence = stat->sequence;
    }
    ++result->present_keys;
    result->present_bytes += got->size();
  } else if (stat.ok() || !stat.status().IsNotFound()) {
    AddError(errors, where + "Get returned NotFound but Stat " +
                         (stat.ok() ? "found it" : stat.status().ToString()));
  }
  return obs;
}

void Oracle::CheckBatchAtomicity(const std::vector<Observation>& seen, std::string* errors) const {
  for (const auto& [ticket, ops] : open_) {
    if (ops.size() < 2) continue;
    std::string applied;
    std::string not_applied;
    for (const KeyOp& op : ops) {
      const Observation& obs = seen[op.key];
      if (obs.kind != Observation::kValue) continue;
      bool mine = std::count(obs.matched.begin(), obs.matched.end(), ticket) > 0;
      bool only_older = std::all_of(obs.matched.begin(), obs.matched.end(),
                                    [ticket](uint64_t m) { return m < ticket; });
      if (mine && obs.matched.size() == 1) {
        applied += " " + std::to_string(op.key);
      } else if (only_older) {
        not_applied += " " + std::to_string(op.key);
      }
    }
    if (!applied.empty() && !not_applied.empty()) {
      AddError(errors, "unacknowledged batch #" + std::to_string(ticket) +
                           " is half applied: keys" + applied + " hold its values, keys" +
                           not_applied + " do not");
    }
  }
}

void Oracle::CheckScan(BlobEngine& engine, const std::vector<Observation>& seen,
                       const CheckOptions& options, std::string* errors) const {
  std::vector<uint8_t> visited(keys_.size(), 0);
  Status st = engine.Scan([&](std::string_view name, const BlobInfo& info) {
    auto it = key_numbers_.find(name);
    if (it == key_numbers_.end()) {
      AddError(errors, "Scan visited a key never written: " + Hex(name, 32));
      return true;
    }
    uint32_t k = it->second;
    const Observation& obs = seen[k];
    const std::string where = "Scan, key " + std::to_string(k) + ": ";
    if (visited[k]++) AddError(errors, where + "visited twice");
    if (obs.kind == Observation::kCorrupt) return true;
    if (obs.kind == Observation::kValue && !obs.value.present) {
      AddError(errors, where + "visited, but Get returned NotFound");
    } else if (obs.kind == Observation::kValue &&
               (info.size != obs.value.size || info.sequence != obs.sequence)) {
      AddError(errors, where + "size " + std::to_string(info.size) + " sequence " +
                           std::to_string(info.sequence) + ", Stat said size " +
                           std::to_string(obs.value.size) + " sequence " +
                           std::to_string(obs.sequence));
    }
    return true;
  });
  if (!st.ok() && !(st.IsCorruption() && options.may_be_corrupt.has_value())) {
    AddError(errors, "Scan failed: " + st.ToString());
  }
  for (uint32_t k = 0; k < keys_.size(); ++k) {
    const Observation& obs = seen[k];
    if (obs.kind == Observation::kValue && obs.value.present && !visited[k]) {
      AddError(errors, "Scan did not visit key " + std::to_string(k) + ", which Get found");
    }
  }
}

void Oracle::CheckExtraReads(BlobEngine& engine, const std::vector<Observation>& seen,
                             const CheckOptions& options, std::string* errors) const {
  std::mt19937_64 rng(options.seed);
  std::vector<uint32_t> chosen;
  std::vector<std::string> names;
  for (int i = 0; i < 48 && !keys_.empty(); ++i) {
    uint32_t k = static_cast<uint32_t>(rng() % keys_.size());
    if (seen[k].kind == Observation::kError) continue;
    if (std::count(chosen.begin(), chosen.end(), k)) continue;
    chosen.push_back(k);
    names.push_back(KeyName(k));
  }
  std::vector<std::string_view> views(names.begin(), names.end());
  std::vector<Result<std::string>> many = engine.MultiGet(views);
  if (many.size() != chosen.size()) {
    AddError(errors, "MultiGet of " + std::to_string(chosen.size()) + " keys returned " +
                         std::to_string(many.size()) + " results");
    return;
  }
  for (size_t i = 0; i < chosen.size(); ++i) {
    uint32_t k = chosen[i];
    const Observation& obs = seen[k];
    const std::string where = "key " + std::to_string(k) + ": ";
    const Result<std::string>& r = many[i];
    if (obs.kind == Observation::kCorrupt) {
      if (r.ok() || !r.status().IsCorruption()) {
        AddError(errors, where + "MultiGet returned " +
                             (r.ok() ? DescribeBytes(*r) : r.status().ToString()) +
                             ", Get returned corruption");
      }
      continue;
    }
    if (obs.value.present ? !(r.ok() && ValueMatches(k, obs.value, *r))
                          : !(!r.ok() && r.status().IsNotFound())) {
      AddError(errors, where + "MultiGet returned " +
                           (r.ok() ? DescribeBytes(*r) : r.status().ToString()) +
                           ", Get returned " + obs.value.DebugString());
      continue;
    }
    if (!obs.value.present || obs.value.size == 0) continue;
    const std::string full = MakeValue(k, obs.value);
    uint64_t offset = rng() % full.size();
    uint64_t length = 1 + rng() % (full.size() + 1000);
    Result<std::string> range = engine.GetRange(names[i], offset, length);
    if (!range.ok() || *range != full.substr(offset, length)) {
      AddError(errors, where + "GetRange(" + std::to_string(offset) + ", " +
                           std::to_string(length) + ") returned " +
                           (range.ok() ? DescribeBytes(*range) : range.status().ToString()));
    }
    std::string buf(1 + rng() % full.size(), '\0');
    offset = rng() % full.size();
    Result<size_t> copied = engine.ReadInto(names[i], offset, std::span<char>(buf));
    size_t want = std::min(buf.size(), full.size() - offset);
    if (!copied.ok() || *copied != want ||
        std::memcmp(buf.data(), full.data() + offset, want) != 0) {
      AddError(errors, where + "ReadInto at " + std::to_string(offset) + " of " +
                           std::to_string(buf.size()) + " B: " +
                           (copied.ok() ? std::to_string(*copied) + " B, wrong"
                                        : copied.status().ToString()));
    }
    Result<std::string> past = engine.GetRange(names[i], full.size() + 1, 10);
    if (past.ok() || past.status().code() != Code::kInvalidArgument) {
      AddError(errors, where + "GetRange past the end: " +
                           (past.ok() ? DescribeBytes(*past) : past.status().ToString()));
    }
  }
}

Oracle::CheckResult Oracle::CheckAndCollapse(BlobEngine& engine, const CheckOptions& options) {
  CheckResult result;
  std::vector<Observation> seen(keys_.size());
  for (uint32_t k = 0; k < keys_.size(); ++k) {
    seen[k] = ReadKey(engine, k, options, &result.errors, &result);
  }
  CheckBatchAtomicity(seen, &result.errors);
  CheckScan(engine, seen, options, &result.errors);
  CheckExtraReads(engine, seen, options, &result.errors);

  for (uint32_t k = 0; k < keys_.size(); ++k) {
    if (seen[k].kind != Observation::kValue) continue;
    keys_[k].committed = seen[k].value;
    keys_[k].pending.clear();
  }
  open_.clear();
  return result;
}

std::vector<std::unique_ptr<SegmentFile>> ReadSegmentFiles(const std::string& dir) {
  std::vector<std::unique_ptr<SegmentFile>> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("seg-") || !name.ends_with(".log")) continue;
    auto seg = std::make_unique<SegmentFile>();
    seg->path = entry.path().string();
    std::ifstream in(seg->path, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    seg->data = std::move(bytes).str();
    const std::string& d = seg->data;
    auto load = [&d](uint64_t at, auto v) {
      std::memcpy(&v, d.data() + at, sizeof(v));
      return v;
    };
    uint64_t pos = 0;
    while (pos + kHeaderSize <= d.size() && load(pos, uint32_t{0}) == kRecordMagic) {
      SegmentFile::Record r;
      r.offset = pos;
      r.size = uint64_t{load(pos + 12, uint32_t{0})} * 8;
      r.type = load(pos + 5, uint8_t{0});
      const uint64_t key_len = load(pos + 8, uint16_t{0});
      const uint64_t value_len = load(pos + 16, uint64_t{0});
      r.sequence = load(pos + 24, uint64_t{0});
      r.group = load(pos + 32, uint64_t{0});
      r.value_offset = load(pos + 40, uint32_t{0});
      if (r.size == 0 || r.size > d.size() - pos || kHeaderSize + key_len > r.size ||
          r.value_offset > r.size || value_len > r.size - r.value_offset) {
        break;
      }
      r.key = std::string_view(d).substr(pos + kHeaderSize, key_len);
      r.value = std::string_view(d).substr(pos + r.value_offset, value_len);
      seg->records.push_back(r);
      pos += r.size;
    }
    seg->records_end = pos;
    out.push_back(std::move(seg));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->path < b->path; });
  return out;
}

std::string CheckClosedSegmentFiles(const std::string& dir) {
  std::string errors;
  uint64_t last_sequence = 0;
  std::string last_where;
  for (const auto& seg : ReadSegmentFiles(dir)) {
    if (seg->records_end != seg->data.size()) {
      const std::string_view rest = std::string_view(seg->data).substr(seg->records_end);
      const bool zeros = rest.find_first_not_of('\0') == std::string_view::npos;
      AddError(&errors, seg->path + ": records end at " + std::to_string(seg->records_end) +
                            " but the file has " + std::to_string(seg->data.size()) + " bytes (" +
                            (zeros ? "zeros" : "not all zeros") + " after them)");
    }
    for (const SegmentFile::Record& r : seg->records) {
      const std::string where = seg->path + ":" + std::to_string(r.offset);
      if (r.sequence < last_sequence) {
        AddError(&errors, "sequence " + std::to_string(r.sequence) + " at " + where +
                              " is below sequence " + std::to_string(last_sequence) + " at " +
                              last_where);
      }
      last_sequence = r.sequence;
      last_where = where;
    }
  }
  return errors;
}

}  // namespace granary::engine::crash
