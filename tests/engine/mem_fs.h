// MemFileSystem: an io::FileSystem held in memory, for engine tests that need no disk.
//
// Files are byte strings keyed by path; directories are implicit (CreateDir records a name so
// that ListDir and Exists see it, but files may be created anywhere). Writes, syncs and renames
// take effect at once and Sync/SyncDir only count calls: use io::FaultInjectionFileSystem to model
// lost unsynced data. Tests can read and replace a file's bytes directly (Contents, SetContents)
// and make the n-th next write fail (FailNthWrite).
//
// Thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "io/file_system.h"

namespace granary::test {

class MemFileSystem final : public io::FileSystem {
 public:
  Result<std::unique_ptr<io::File>> Open(const std::string& path,
                                         io::OpenOptions options) override {
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(path);
    if (it == state_->files.end()) {
      if (!options.create) return Status::NotFound("file " + path + " does not exist");
      it = state_->files.emplace(path, std::make_shared<std::string>()).first;
    } else if (options.create && options.exclusive) {
      return Status::AlreadyExists("file " + path + " already exists");
    }
    return std::unique_ptr<io::File>(new MemFile(path, state_, it->second, options.read_only));
  }

  Status CreateDir(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    state_->dirs.insert(path);
    return Status::OK();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    std::lock_guard lock(state_->mu);
    std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
    std::set<std::string> names;
    auto add = [&](const std::string& p) {
      if (p.size() <= prefix.size() || p.compare(0, prefix.size(), prefix) != 0) return;
      std::string rest = p.substr(prefix.size());
      names.insert(rest.substr(0, rest.find('/')));
    };
    for (const auto& [p, data] : state_->files) add(p);
    for (const auto& d : state_->dirs) add(d);
    return std::vector<std::string>(names.begin(), names.end());
  }

  Status Remove(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    if (state_->files.erase(path) == 0 && state_->dirs.erase(path) == 0) {
      return Status::NotFound("file " + path + " does not exist");
    }
    return Status::OK();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(from);
    if (it == state_->files.end()) return Status::NotFound("file " + from + " does not exist");
    auto data = it->second;
    state_->files.erase(it);
    state_->files[to] = std::move(data);
    ++state_->renames;
    return Status::OK();
  }

  Status SyncDir(const std::string& /*dir*/) override {
    std::lock_guard lock(state_->mu);
    ++state_->dir_syncs;
    return Status::OK();
  }

  Result<bool> Exists(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    return state_->files.count(path) > 0 || state_->dirs.count(path) > 0;
  }

  Result<uint64_t> FreeSpace(const std::string& /*path*/) override { return uint64_t{1} << 40; }

  // ---- Test helpers ----

  // A copy of the file's bytes, or nullopt if it does not exist.
  std::optional<std::string> Contents(const std::string& path) const {
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(path);
    if (it == state_->files.end()) return std::nullopt;
    return *it->second;
  }
  // Creates or replaces the file's bytes.
  void SetContents(const std::string& path, std::string data) {
    std::lock_guard lock(state_->mu);
    state_->files[path] = std::make_shared<std::string>(std::move(data));
  }
  // The n-th write from now (1 = the next one) fails with IOError and writes nothing.
  void FailNthWrite(uint64_t n) {
    std::lock_guard lock(state_->mu);
    state_->fail_write_in = n;
  }
  uint64_t syncs() const { return Get(&State::syncs); }
  uint64_t dir_syncs() const { return Get(&State::dir_syncs); }
  uint64_t renames() const { return Get(&State::renames); }

 private:
  struct State {
    std::mutex mu;
    // Open files keep their data alive and keep writing to it after a Remove or a Rename, as
    // POSIX files do.
    std::map<std::string, std::shared_ptr<std::string>> files;
    std::set<std::string> dirs;
    uint64_t fail_write_in = 0;  // 0: no failure armed
    uint64_t syncs = 0;
    uint64_t dir_syncs = 0;
    uint64_t renames = 0;
  };

  uint64_t Get(uint64_t State::*field) const {
    std::lock_guard lock(state_->mu);
    return (*state_).*field;
  }

  class MemFile final : public io::File {
   public:
    MemFile(std::string path, std::shared_ptr<State> state, std::shared_ptr<std::string> data,
            bool read_only)
        : io::File(std::move(path)),
          state_(std::move(state)),
          data_(std::move(data)),
          read_only_(read_only) {}

    Result<size_t> Read(uint64_t offset, size_t n, char* dst) override {
      std::lock_guard lock(state_->mu);
      if (offset >= data_->size()) return size_t{0};
      size_t got = std::min<uint64_t>(n, data_->size() - offset);
      std::memcpy(dst, data_->data() + offset, got);
      return got;
    }

    Status ReadBatch(std::span<io::ReadOp> ops) override {
      for (io::ReadOp& op : ops) {
        Result<size_t> r = Read(op.offset, op.n, op.dst);
        op.status = r.status();
        op.bytes_read = r.ok() ? *r : 0;
      }
      return Status::OK();
    }

    Status Write(uint64_t offset, const void* data, size_t n) override {
      std::lock_guard lock(state_->mu);
      if (read_only_) return Status::InvalidArgument("file " + path() + " is open read-only");
      if (state_->fail_write_in > 0 && --state_->fail_write_in == 0) {
        return Status::IOError("injected write failure on " + path());
      }
      if (data_->size() < offset + n) data_->resize(offset + n);
      std::memcpy(data_->data() + offset, data, n);
      return Status::OK();
    }

    Status WriteDirect(uint64_t offset, const void* data, size_t n) override {
      return Write(offset, data, n);
    }

    Status Sync() override {
      std::lock_guard lock(state_->mu);
      ++state_->syncs;
      return Status::OK();
    }

    Status Truncate(uint64_t size) override {
      std::lock_guard lock(state_->mu);
      if (read_only_) return Status::InvalidArgument("file " + path() + " is open read-only");
      data_->resize(size);
      return Status::OK();
    }

    Result<uint64_t> Size() override {
      std::lock_guard lock(state_->mu);
      return uint64_t{data_->size()};
    }

   private:
    std::shared_ptr<State> state_;
    std::shared_ptr<std::string> data_;
    bool read_only_;
  };

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace granary::test
