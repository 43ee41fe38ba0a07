// FaultInjectionFileSystem (fault_fs.h).
//
// How unsynced state is kept so that DropUnsyncedData() can undo it:
//   - File contents: every file touched through this file system is a Node (an inode of the
//     base file system, followed across renames). Each write or truncate first appends an undo
//     record to its node: the size before it and the bytes it is about to overwrite (only those
//     below the size the file had at its last sync: bytes past it are cut off anyway). Sync()
//     clears the log; DropUnsyncedData() applies it backwards through the base file system.
//   - Directory entries: the first time a path is created, removed or renamed over after its
//     directory's last SyncDir(), the node it named then (or none) is remembered. A file that
//     such a record still names is not deleted when removed or renamed over but moved to a
//     hidden trash name in its directory (".granary-fault-trash-<id>", left out of ListDir), so
//     that DropUnsyncedData() can rename it back. SyncDir() forgets the records of its directory
//     and deletes the trash nobody names any more.
// Directories themselves are not tracked: CreateDir() is durable at once.
//
// Counting: writes() counts Write() and WriteDirect() calls, syncs() counts Sync() and SyncDir()
// calls, failed ones included. Truncate(), Rename(), Remove(), creation and CreateDir() are not
// counted, but they fail too while the file system is dead after a torn write.
#include "io/fault_fs.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/mutex.h"

namespace granary::io {

namespace {

constexpr std::string_view kTrashPrefix = ".granary-fault-trash-";

// Collapses repeated slashes and drops a trailing one, so one file has one key.
std::string Normalize(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string DirOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status Injected(const std::string& what) { return Status::IOError("injected fault: " + what); }

}  // namespace

struct FaultInjectionFileSystem::State {
  // One file of the base file system. Every field is guarded by State::mu.
  struct Node {
    struct Undo {
      uint64_t prev_size;  // the file's size before the change
      uint64_t offset;     // where `before` goes back
      std::string before;  // the bytes the change overwrote (below the synced size)
    };

    uint64_t id = 0;
    std::string path;        // where it is now in the base file system (a trash name once removed)
    bool in_trash = false;   // removed or renamed over, kept for DropUnsyncedData()
    bool gone = false;       // really deleted
    std::vector<Undo> undo;  // changes since the last Sync(), oldest first
    uint64_t synced_size = 0;  // the size at the last Sync(); valid while `undo` is non-empty
  };

  explicit State(std::shared_ptr<FileSystem> b) : base(std::move(b)) {}

  const std::shared_ptr<FileSystem> base;
  Mutex mu;
  uint64_t next_id GUARDED_BY(mu) = 1;
  // Tracked files by their current path.
  std::map<std::string, std::shared_ptr<Node>> live GUARDED_BY(mu);
  // Files removed or renamed over that a record below still names, by id.
  std::map<uint64_t, std::shared_ptr<Node>> trash GUARDED_BY(mu);
  // Paths whose entry changed since their directory's last SyncDir(), with the file they named
  // then (null: none).
  std::map<std::string, std::shared_ptr<Node>> synced_entries GUARDED_BY(mu);

  uint64_t writes GUARDED_BY(mu) = 0;
  uint64_t syncs GUARDED_BY(mu) = 0;
  uint64_t fail_write_at GUARDED_BY(mu) = 0;  // 0: none
  uint64_t fail_sync_at GUARDED_BY(mu) = 0;
  uint64_t tear_write_at GUARDED_BY(mu) = 0;
  uint64_t tear_keep GUARDED_BY(mu) = 0;
  bool dead GUARDED_BY(mu) = false;

  Status CheckAlive(const std::string& what) REQUIRES(mu) {
    if (!dead) return Status::OK();
    return Injected(what + " failed: the file system is dead after a torn write (call Revive())");
  }

  // Counts a sync and says whether it must fail.
  Status BeginSync(const std::string& what) REQUIRES(mu) {
    ++syncs;
    RETURN_IF_ERROR(CheckAlive(what));
    if (fail_sync_at == syncs) {
      fail_sync_at = 0;
      return Injected(what + " failed (sync #" + std::to_string(syncs) + ")");
    }
    return Status::OK();
  }

  // The tracked file at `path`, starting to track it if it exists untracked; null if none.
  Result<std::shared_ptr<Node>> NodeAt(const std::string& path) REQUIRES(mu) {
    auto it = live.find(path);
    if (it != live.end()) return it->second;
    ASSIGN_OR_RETURN(bool exists, base->Exists(path));
    if (!exists) return std::shared_ptr<Node>();
    return NewNode(path);
  }

  std::shared_ptr<Node> NewNode(const std::string& path) REQUIRES(mu) {
    auto node = std::make_shared<Node>();
    node->id = next_id++;
    node->path = path;
    live[path] = node;
    return node;
  }

  // Remembers what `path` named at its directory's last sync, unless already remembered.
  void RecordEntry(const std::string& path, std::shared_ptr<Node> now) REQUIRES(mu) {
    synced_entries.emplace(path, std::move(now));
  }

  bool Needed(const Node* node) REQUIRES(mu) {
    for (const auto& [path, n] : synced_entries) {
      if (n.get() == node) return true;
    }
    return false;
  }

  // Renames `node`'s file to a trash name in its directory. The caller updates `live`.
  Status MoveToTrash(const std::shared_ptr<Node>& node) REQUIRES(mu) {
    std::string to =
        JoinPath(DirOf(node->path), std::string(kTrashPrefix) + std::to_string(node->id));
    RETURN_IF_ERROR(base->Rename(node->path, to));
    node->path = std::move(to);
    node->in_trash = true;
    trash[node->id] = node;
    return Status::OK();
  }

  // Deletes the trash files that no record names any more.
  Status PurgeTrash() REQUIRES(mu) {
    Status first;
    for (auto it = trash.begin(); it != trash.end();) {
      Node* node = it->second.get();
      if (Needed(node)) {
        ++it;
        continue;
      }
      Status st = base->Remove(node->path);
      if (st.ok() || st.IsNotFound()) {
        node->gone = true;
        node->in_trash = false;
        it = trash.erase(it);
      } else {
        if (first.ok()) first = st;
        ++it;
      }
    }
    return first;
  }

  // Before a write or truncate of `file` (the node's open file) that changes bytes from
  // `offset` for `len` bytes, logs what it will overwrite.
  Status RecordUndo(Node& node, File& file, uint64_t offset, uint64_t len) REQUIRES(mu) {
    if (node.gone) return Status::OK();  // nothing will ever read it again
    ASSIGN_OR_RETURN(uint64_t size, file.Size());
    if (node.undo.empty()) node.synced_size = size;
    State::Node::Undo undo{size, offset, {}};
    const uint64_t limit = std::min(size, node.synced_size);
    if (offset < limit) {
      const uint64_t end = len > limit - offset ? limit : offset + len;
      undo.before.resize(end - offset);
      ASSIGN_OR_RETURN(size_t got, file.Read(offset, undo.before.size(), undo.before.data()));
      undo.before.resize(got);
    }
    node.undo.push_back(std::move(undo));
    return Status::OK();
  }

  // Undoes every change logged for `node` since its last sync.
  Status Rollback(Node& node) REQUIRES(mu) {
    if (node.undo.empty() || node.gone) return Status::OK();
    ASSIGN_OR_RETURN(std::unique_ptr<File> file, base->Open(node.path, OpenOptions{}));
    for (auto it = node.undo.rbegin(); it != node.undo.rend(); ++it) {
      if (!it->before.empty()) {
        RETURN_IF_ERROR(file->Write(it->offset, it->before.data(), it->before.size()));
      }
      RETURN_IF_ERROR(file->Truncate(it->prev_size));
    }
    node.undo.clear();
    return Status::OK();
  }
};

// A file opened through the FaultInjectionFileSystem: reads pass through, writes are logged.
class FaultInjectionFile final : public File {
  using State = FaultInjectionFileSystem::State;
  using Node = State::Node;

 public:
  FaultInjectionFile(std::string path, std::shared_ptr<State> state, std::unique_ptr<File> base,
                     std::shared_ptr<Node> node)
      : File(std::move(path)),
        state_(std::move(state)),
        base_(std::move(base)),
        node_(std::move(node)) {}

  Result<size_t> Read(uint64_t offset, size_t n, char* dst) override {
    return base_->Read(offset, n, dst);
  }
  Status ReadBatch(std::span<ReadOp> ops) override { return base_->ReadBatch(ops); }
  Result<size_t> ReadV(uint64_t offset, std::span<const std::span<char>> pieces) override {
    return base_->ReadV(offset, pieces);
  }

  Status Write(uint64_t offset, const void* data, size_t n) override {
    return DoWrite(offset, data, n, /*direct=*/false);
  }

  Status WriteDirect(uint64_t offset, const void* data, size_t n) override {
    if (offset % kDirectAlignment != 0 || n % kDirectAlignment != 0 ||
        reinterpret_cast<uintptr_t>(data) % kDirectAlignment != 0) {
      return Status::InvalidArgument(
          "direct write to \"" + path() + "\" at offset " + std::to_string(offset) + " of " +
          std::to_string(n) + " bytes is not aligned: offset, length and buffer address must " +
          "be multiples of " + std::to_string(kDirectAlignment));
    }
    return DoWrite(offset, data, n, /*direct=*/true);
  }

  Status Sync() override {
    State& s = *state_;
    MutexLock lock(&s.mu);
    RETURN_IF_ERROR(s.BeginSync("sync of \"" + path() + "\""));
    RETURN_IF_ERROR(base_->Sync());
    node_->undo.clear();
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    State& s = *state_;
    MutexLock lock(&s.mu);
    RETURN_IF_ERROR(s.CheckAlive("truncate of \"" + path() + "\""));
    RETURN_IF_ERROR(
        s.RecordUndo(*node_, *base_, size, std::numeric_limits<uint64_t>::max() - size));
    return base_->Truncate(size);
  }

  Result<uint64_t> Size() override { return base_->Size(); }
  void DropCache(uint64_t offset, uint64_t n) override { base_->DropCache(offset, n); }

 private:
  Status DoWrite(uint64_t offset, const void* data, size_t n, bool direct) {
    State& s = *state_;
    MutexLock lock(&s.mu);
    const uint64_t nth = ++s.writes;
    const std::string what = "write #" + std::to_string(nth) + " (" + std::to_string(n) +
                             " bytes at offset " + std::to_string(offset) + " of \"" + path() +
                             "\")";
    RETURN_IF_ERROR(s.CheckAlive(what));
    if (s.fail_write_at == nth) {
      s.fail_write_at = 0;
      return Injected(what + " failed");
    }
    if (s.tear_write_at == nth) {
      s.tear_write_at = 0;
      s.dead = true;
      const size_t keep = static_cast<size_t>(std::min<uint64_t>(s.tear_keep, n));
      if (keep > 0) {
        RETURN_IF_ERROR(s.RecordUndo(*node_, *base_, offset, keep));
        // Through the page cache: the prefix need not be aligned.
        RETURN_IF_ERROR(base_->Write(offset, data, keep));
      }
      return Injected(what + " was torn after " + std::to_string(keep) + " bytes");
    }
    RETURN_IF_ERROR(s.RecordUndo(*node_, *base_, offset, n));
    return direct ? base_->WriteDirect(offset, data, n) : base_->Write(offset, data, n);
  }

  const std::shared_ptr<State> state_;
  const std::unique_ptr<File> base_;
  const std::shared_ptr<Node> node_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem(std::shared_ptr<FileSystem> base)
    : state_(std::make_shared<State>(base)), base_(std::move(base)) {}

FaultInjectionFileSystem::~FaultInjectionFileSystem() {
  // The machine "keeps running": removals not yet synced happen for real.
  MutexLock lock(&state_->mu);
  state_->synced_entries.clear();
  state_->PurgeTrash().IgnoreError();
}

Result<std::unique_ptr<File>> FaultInjectionFileSystem::Open(const std::string& path,
                                                             OpenOptions options) {
  const std::string p = Normalize(path);
  State& s = *state_;
  MutexLock lock(&s.mu);
  ASSIGN_OR_RETURN(bool exists, base_->Exists(p));
  std::shared_ptr<State::Node> node;
  std::unique_ptr<File> file;
  if (!exists && options.create) {
    RETURN_IF_ERROR(s.CheckAlive("creation of \"" + p + "\""));
    ASSIGN_OR_RETURN(file, base_->Open(p, options));
    s.RecordEntry(p, nullptr);
    node = s.NewNode(p);
  } else {
    ASSIGN_OR_RETURN(file, base_->Open(p, options));  // NotFound, AlreadyExists, ...
    ASSIGN_OR_RETURN(node, s.NodeAt(p));
    if (node == nullptr) return Status::Internal("\"" + p + "\" vanished while being opened");
  }
  return std::unique_ptr<File>(
      std::make_unique<FaultInjectionFile>(p, state_, std::move(file), std::move(node)));
}

Status FaultInjectionFileSystem::CreateDir(const std::string& path) {
  MutexLock lock(&state_->mu);
  RETURN_IF_ERROR(state_->CheckAlive("creation of directory \"" + path + "\""));
  return base_->CreateDir(path);
}

Result<std::vector<std::string>> FaultInjectionFileSystem::ListDir(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, base_->ListDir(dir));
  std::erase_if(names, [](const std::string& n) { return n.starts_with(kTrashPrefix); });
  return names;
}

Status FaultInjectionFileSystem::Remove(const std::string& path) {
  const std::string p = Normalize(path);
  State& s = *state_;
  MutexLock lock(&s.mu);
  RETURN_IF_ERROR(s.CheckAlive("removal of \"" + p + "\""));
  ASSIGN_OR_RETURN(std::shared_ptr<State::Node> node, s.NodeAt(p));
  if (node == nullptr) return base_->Remove(p);  // its NotFound
  s.RecordEntry(p, node);
  if (s.Needed(node.get())) {
    RETURN_IF_ERROR(s.MoveToTrash(node));
  } else {
    RETURN_IF_ERROR(base_->Remove(p));
    node->gone = true;
  }
  s.live.erase(p);
  return Status::OK();
}

Status FaultInjectionFileSystem::Rename(const std::string& from, const std::string& to) {
  const std::string f = Normalize(from);
  const std::string t = Normalize(to);
  State& s = *state_;
  MutexLock lock(&s.mu);
  RETURN_IF_ERROR(s.CheckAlive("rename of \"" + f + "\" to \"" + t + "\""));
  if (f == t) return base_->Rename(f, t);
  ASSIGN_OR_RETURN(std::shared_ptr<State::Node> src, s.NodeAt(f));
  if (src == nullptr) return base_->Rename(f, t);  // its NotFound
  ASSIGN_OR_RETURN(std::shared_ptr<State::Node> dst, s.NodeAt(t));
  s.RecordEntry(f, src);
  s.RecordEntry(t, dst);
  const std::string dst_path = dst ? dst->path : std::string();
  if (dst != nullptr && s.Needed(dst.get())) RETURN_IF_ERROR(s.MoveToTrash(dst));
  if (Status st = base_->Rename(f, t); !st.ok()) {
    if (dst != nullptr && dst->in_trash && base_->Rename(dst->path, dst_path).ok()) {
      s.trash.erase(dst->id);
      dst->in_trash = false;
      dst->path = dst_path;
    }
    return st;
  }
  if (dst != nullptr && !dst->in_trash) dst->gone = true;  // replaced for good
  s.live.erase(f);
  src->path = t;
  s.live[t] = src;
  // A renamed directory takes the files under it along.
  const std::string prefix = f + "/";
  for (auto it = s.live.begin(); it != s.live.end();) {
    if (!it->first.starts_with(prefix)) {
      ++it;
      continue;
    }
    std::shared_ptr<State::Node> node = it->second;
    it = s.live.erase(it);
    node->path = t + "/" + node->path.substr(prefix.size());
    s.live[node->path] = node;
  }
  for (auto& [id, node] : s.trash) {
    if (node->path.starts_with(prefix)) node->path = t + "/" + node->path.substr(prefix.size());
  }
  return Status::OK();
}

Status FaultInjectionFileSystem::SyncDir(const std::string& dir) {
  const std::string d = Normalize(dir);
  State& s = *state_;
  MutexLock lock(&s.mu);
  RETURN_IF_ERROR(s.BeginSync("sync of directory \"" + d + "\""));
  RETURN_IF_ERROR(base_->SyncDir(d));
  std::erase_if(s.synced_entries, [&](const auto& entry) { return DirOf(entry.first) == d; });
  return s.PurgeTrash();
}

Result<bool> FaultInjectionFileSystem::Exists(const std::string& path) {
  return base_->Exists(path);
}

Result<uint64_t> FaultInjectionFileSystem::FreeSpace(const std::string& path) {
  return base_->FreeSpace(path);
}

Status FaultInjectionFileSystem::DropUnsyncedData() {
  State& s = *state_;
  MutexLock lock(&s.mu);
  Status first;
  auto note = [&first](const Status& st) {
    if (first.ok() && !st.ok()) first = st;
  };
  // 1. Whatever now occupies a changed entry moves aside.
  for (const auto& [path, synced] : s.synced_entries) {
    auto it = s.live.find(path);
    if (it == s.live.end() || it->second == synced) continue;
    Status st = s.MoveToTrash(it->second);
    note(st);
    if (st.ok()) s.live.erase(it);
  }
  // 2. Each changed entry gets back the file it named at its directory's last sync. A file that
  // was renamed into a directory synced since then stays where it is now.
  for (const auto& [path, synced] : s.synced_entries) {
    if (synced == nullptr || !synced->in_trash || s.live.contains(path)) continue;
    Status st = base_->Rename(synced->path, path);
    note(st);
    if (!st.ok()) continue;
    s.trash.erase(synced->id);
    synced->in_trash = false;
    synced->path = path;
    s.live[path] = synced;
  }
  // 3. What no entry names any more is deleted; contents return to their last sync.
  s.synced_entries.clear();
  note(s.PurgeTrash());
  for (auto& [path, node] : s.live) note(s.Rollback(*node));
  return first.WithContext("dropping unsynced data");
}

void FaultInjectionFileSystem::FailNthWrite(uint64_t n) {
  MutexLock lock(&state_->mu);
  state_->fail_write_at = n == 0 ? 0 : state_->writes + n;
}

void FaultInjectionFileSystem::FailNthSync(uint64_t n) {
  MutexLock lock(&state_->mu);
  state_->fail_sync_at = n == 0 ? 0 : state_->syncs + n;
}

void FaultInjectionFileSystem::TearNthWrite(uint64_t n, uint64_t keep_bytes) {
  MutexLock lock(&state_->mu);
  state_->tear_write_at = n == 0 ? 0 : state_->writes + n;
  state_->tear_keep = keep_bytes;
}

void FaultInjectionFileSystem::Revive() {
  MutexLock lock(&state_->mu);
  state_->dead = false;
}

Status FaultInjectionFileSystem::FlipBit(const std::string& path, uint64_t offset, int bit) {
  if (bit < 0 || bit > 7) {
    return Status::InvalidArgument("bit " + std::to_string(bit) + " is out of range: use 0..7");
  }
  const std::string p = Normalize(path);
  State& s = *state_;
  MutexLock lock(&s.mu);
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_->Open(p, OpenOptions{}));
  char byte = 0;
  ASSIGN_OR_RETURN(size_t got, file->Read(offset, 1, &byte));
  if (got != 1) {
    return Status::InvalidArgument("cannot flip a bit at offset " + std::to_string(offset) +
                                   " of \"" + p + "\": it is past the end of the file");
  }
  const char mask = static_cast<char>(1u << bit);
  byte = static_cast<char>(byte ^ mask);
  RETURN_IF_ERROR(file->Write(offset, &byte, 1));
  RETURN_IF_ERROR(file->Sync());
  // Durable means it survives DropUnsyncedData() too: corrupt the saved bytes as well.
  if (auto it = s.live.find(p); it != s.live.end()) {
    for (State::Node::Undo& undo : it->second->undo) {
      if (offset >= undo.offset && offset - undo.offset < undo.before.size()) {
        undo.before[offset - undo.offset] ^= mask;
      }
    }
  }
  return Status::OK();
}

uint64_t FaultInjectionFileSystem::writes() const {
  MutexLock lock(&state_->mu);
  return state_->writes;
}

uint64_t FaultInjectionFileSystem::syncs() const {
  MutexLock lock(&state_->mu);
  return state_->syncs;
}

}  // namespace granary::io
