#include "tools/bench_baselines.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/version.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

namespace granary::tools {

namespace {

// ---------------------------------------------------------------------------------------------
// Granary

class GranaryTarget final : public BlobTarget {
 public:
  explicit GranaryTarget(std::unique_ptr<engine::BlobEngine> engine) : engine_(std::move(engine)) {}
  std::string name() const override { return "granary"; }
  Status Put(std::string_view key, std::string_view value) override {
    return engine_->Put(key, value);
  }
  Status Get(std::string_view key, std::string* value) override {
    auto r = engine_->Get(key);
    if (!r.ok()) return r.status();
    *value = std::move(r).value();
    return Status::OK();
  }
  // One atomic write of the batch (one group commit), and one MultiGet.
  Status PutBatch(std::span<const std::string_view> keys,
                  std::span<const std::string_view> values) override {
    engine::WriteBatch batch;
    for (size_t i = 0; i < keys.size(); ++i) batch.Put(keys[i], values[i]);
    return engine_->Write(batch);
  }
  Status ReadBatch(std::span<const std::string_view> keys, size_t length,
                   std::string*) override {
    for (Result<std::string>& got : engine_->MultiGet(keys)) {
      RETURN_IF_ERROR(got.status());
      if (got->size() != length) return Status::Corruption("a get returned the wrong size");
    }
    return Status::OK();
  }
  Status DropCaches() override {
    RETURN_IF_ERROR(engine_->Flush());
    return DropPageCache(dir_);
  }
  Status Close() override { return engine_->Close(); }

  engine::BlobEngine* engine() { return engine_.get(); }
  void set_dir(std::string dir) { dir_ = std::move(dir); }

 private:
  std::unique_ptr<engine::BlobEngine> engine_;
  std::string dir_;
};

// ---------------------------------------------------------------------------------------------
// One file per blob

char HexDigit(unsigned v) { return "0123456789abcdef"[v & 0xf]; }

class FilesTarget final : public BlobTarget {
 public:
  explicit FilesTarget(std::string dir) : dir_(std::move(dir)) {}
  std::string name() const override { return "files"; }

  // dir/<first byte of the key in hex>/<key in hex>: 256 subdirectories.
  std::string PathOf(std::string_view key) const {
    std::string hex;
    hex.reserve(key.size() * 2);
    for (unsigned char c : key) {
      hex += HexDigit(c >> 4);
      hex += HexDigit(c);
    }
    std::string path = dir_;
    path += '/';
    path.append(hex, 0, 2);
    path += '/';
    path += hex;
    return path;
  }

  Status Put(std::string_view key, std::string_view value) override {
    const std::string path = PathOf(key);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno(errno, "creating " + path);
    size_t off = 0;
    while (off < value.size()) {
      const ssize_t n = ::write(fd, value.data() + off, value.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        return Status::FromErrno(err, "writing " + path);
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
      const int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "fsync of " + path);
    }
    if (::close(fd) != 0) return Status::FromErrno(errno, "closing " + path);
    return Status::OK();
  }

  Status Get(std::string_view key, std::string* value) override {
    const std::string path = PathOf(key);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "opening " + path);
    // Read until end of file, growing the buffer as needed; the caller's buffer is reused
    // across calls, so after the first get this is one read() plus the one that sees EOF.
    if (value->size() < 4096) value->resize(4096);
    size_t off = 0;
    for (;;) {
      if (off == value->size()) value->resize(value->size() * 2);
      const ssize_t n = ::read(fd, value->data() + off, value->size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        return Status::FromErrno(err, "reading " + path);
      }
      if (n == 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
    value->resize(off);
    return Status::OK();
  }

  Status DropCaches() override { return DropPageCache(dir_); }
  Status Close() override { return Status::OK(); }

 private:
  std::string dir_;
};

// ---------------------------------------------------------------------------------------------
// RocksDB

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::OK();
  const std::string msg = "rocksdb " + std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNoSpace()) return Status::NoSpace(msg);
  return Status::IOError(msg);
}

class RocksDbTarget final : public BlobTarget {
 public:
  RocksDbTarget(std::unique_ptr<rocksdb::DB> db, std::string dir)
      : db_(std::move(db)), dir_(std::move(dir)) {
    write_options_.sync = true;
  }
  ~RocksDbTarget() override { Close().IgnoreError(); }
  std::string name() const override { return "rocksdb"; }

  Status Put(std::string_view key, std::string_view value) override {
    return FromRocks(db_->Put(write_options_, rocksdb::Slice(key.data(), key.size()),
                              rocksdb::Slice(value.data(), value.size())),
                     "put");
  }
  Status Get(std::string_view key, std::string* value) override {
    return FromRocks(db_->Get(read_options_, rocksdb::Slice(key.data(), key.size()), value), "get");
  }
  Status DropCaches() override {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    RETURN_IF_ERROR(FromRocks(db_->Flush(fo), "flush"));
    return DropPageCache(dir_);
  }
  Status Close() override {
    if (!db_) return Status::OK();
    Status s = FromRocks(db_->Close(), "close");
    db_.reset();
    return s;
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
  rocksdb::WriteOptions write_options_;
  rocksdb::ReadOptions read_options_;
};

}  // namespace

Result<std::unique_ptr<engine::BlobEngine>> OpenSettledEngine(const std::string& dir) {
  const engine::EngineOptions options;
  auto engine = engine::BlobEngine::Open(dir, options);
  if (!engine.ok()) return engine.status().WithContext("opening the engine in " + dir);
  // The fill shows as the segment files' size; give up waiting after 30 s (a slow disk).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (options.preallocate_bytes > 0 && std::chrono::steady_clock::now() < deadline) {
    uint64_t bytes = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      std::error_code fec;
      if (entry.is_regular_file(fec)) bytes += entry.file_size(fec);
    }
    if (ec || bytes >= options.preallocate_bytes) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  RETURN_IF_ERROR((*engine)->Flush().WithContext("flushing the engine in " + dir));
  return engine;
}

Result<std::unique_ptr<BlobTarget>> OpenGranaryTarget(const std::string& dir) {
  auto engine = OpenSettledEngine(dir);
  if (!engine.ok()) return engine.status();
  auto target = std::make_unique<GranaryTarget>(std::move(engine).value());
  target->set_dir(dir);
  return std::unique_ptr<BlobTarget>(std::move(target));
}

engine::BlobEngine* GranaryEngineOf(BlobTarget& target) {
  auto* g = dynamic_cast<GranaryTarget*>(&target);
  return g ? g->engine() : nullptr;
}

Result<std::unique_ptr<BlobTarget>> OpenFilesTarget(const std::string& dir) {
  for (unsigned i = 0; i < 256; ++i) {
    const std::string sub = dir + "/" + HexDigit(i >> 4) + HexDigit(i);
    if (::mkdir(sub.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "creating " + sub);
    }
  }
  return std::unique_ptr<BlobTarget>(std::make_unique<FilesTarget>(dir));
}

Result<std::unique_ptr<BlobTarget>> OpenRocksDbTarget(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compression = rocksdb::kNoCompression;
  // What a RocksDB deployment serving point reads would set: Bloom filters, so that a get
  // opens one table file rather than every L0 file, and a block cache larger than the 8 MiB
  // default. Without them the baseline would be a straw man.
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(256u << 20);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, &raw), "open " + dir));
  return std::unique_ptr<BlobTarget>(
      std::make_unique<RocksDbTarget>(std::unique_ptr<rocksdb::DB>(raw), dir));
}

Status DropPageCache(const std::string& dir) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // removed meanwhile (compaction, a RocksDB flush)
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  if (ec) return Status::IOError("listing " + dir + ": " + ec.message());
  return Status::OK();
}

Status RemoveTree(const std::string& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> entries;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("listing " + dir + ": " + ec.message());
  }
  constexpr size_t kThreads = 16;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::string first_error;  // guarded by mu
  auto work = [&] {
    for (size_t i = next++; i < entries.size(); i = next++) {
      std::error_code rec;
      std::filesystem::remove_all(entries[i], rec);
      if (rec) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.empty()) first_error = entries[i].string() + ": " + rec.message();
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < std::min(kThreads, entries.size() / 8 + 1); ++t) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  std::filesystem::remove_all(dir, ec);
  if (!first_error.empty()) return Status::IOError("removing " + first_error);
  if (ec) return Status::IOError("removing " + dir + ": " + ec.message());
  return Status::OK();
}

std::string RocksDbVersion() {
  return std::to_string(ROCKSDB_MAJOR) + "." + std::to_string(ROCKSDB_MINOR) + "." +
         std::to_string(ROCKSDB_PATCH);
}

}  // namespace granary::tools
