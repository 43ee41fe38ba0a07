#include "replication/local_blob_store.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <openssl/rand.h>

#include <optional>

#include "common/crypto.h"
#include "common/hash.h"
#include "common/logging.h"
#include "io/file_system.h"

namespace granary::replication {
namespace {

constexpr char kDiskFile[] = "DISK";

class LocalBlobStore final : public BlobStore {
 public:
  explicit LocalBlobStore(std::vector<std::unique_ptr<engine::BlobEngine>> engines)
      : engines_(std::move(engines)) {}
  ~LocalBlobStore() override { Close().IgnoreError(); }

  Status PutMany(std::span<const std::pair<std::string, std::string_view>> blobs) override {
    std::vector<engine::WriteBatch> batches(engines_.size());
    for (const auto& [key, value] : blobs) batches[DiskOf(key)].Put(key, value);
    return WriteBatches(batches);
  }

  void PutAsync(std::string key, std::string value, std::function<void(Status)> done) override {
    engine::WriteBatch batch;
    size_t disk = DiskOf(key);
    batch.PutOwned(key, std::move(value));
    engines_[disk]->WriteAsync(std::move(batch), std::move(done));
  }

  Result<size_t> ReadInto(std::string_view key, uint64_t offset, std::span<char> dst) override {
    return engines_[DiskOf(key)]->ReadInto(key, offset, dst);
  }

  std::vector<Result<std::string>> GetMany(std::span<const std::string> keys) override {
    if (engines_.size() == 1) {
      std::vector<std::string_view> views(keys.begin(), keys.end());
      return engines_[0]->MultiGet(views);
    }
    // Group by disk, read each group together, put the answers back in order.
    std::vector<std::vector<std::string_view>> groups(engines_.size());
    std::vector<std::vector<size_t>> positions(engines_.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      size_t disk = DiskOf(keys[i]);
      groups[disk].push_back(keys[i]);
      positions[disk].push_back(i);
    }
    std::vector<Result<std::string>> out(keys.size(), Status::Internal("not read"));
    for (size_t d = 0; d < engines_.size(); ++d) {
      if (groups[d].empty()) continue;
      std::vector<Result<std::string>> got = engines_[d]->MultiGet(groups[d]);
      for (size_t j = 0; j < got.size(); ++j) out[positions[d][j]] = std::move(got[j]);
    }
    return out;
  }

  Status DeleteMany(std::span<const std::string> keys) override {
    std::vector<engine::WriteBatch> batches(engines_.size());
    for (const std::string& key : keys) batches[DiskOf(key)].Delete(key);
    return WriteBatches(batches);
  }

  bool Exists(std::string_view key) override { return engines_[DiskOf(key)]->Exists(key); }

  Status Scan(const std::function<void(std::string_view key, uint64_t size)>& visit) override {
    for (auto& e : engines_) {
      RETURN_IF_ERROR(e->Scan([&](std::string_view key, const engine::BlobInfo& info) {
        visit(key, info.size);
        return true;
      }));
    }
    return Status::OK();
  }

  BlobStoreStats Stats() override {
    BlobStoreStats s;
    for (auto& e : engines_) {
      engine::EngineStats es = e->Stats();
      s.blobs += es.live_blobs;
      s.live_bytes += es.live_bytes;
      s.disk_bytes += es.disk_bytes;
      s.index_memory_bytes += es.index_memory_bytes;
      s.capacity_bytes += es.capacity_bytes;
      s.corruptions_detected += es.corruptions_detected;
    }
    return s;
  }

  Status Close() override {
    if (closed_.exchange(true)) return Status::OK();
    Status first;
    for (auto& e : engines_) {
      Status st = e->Close();
      if (first.ok() && !st.ok()) first = st;
    }
    return first;
  }

 private:
  size_t DiskOf(std::string_view key) const {
    if (engines_.size() == 1) return 0;
    return HashKey(key).lo % engines_.size();
  }

  // Writes each non-empty batch on its disk, in parallel across disks.
  Status WriteBatches(std::vector<engine::WriteBatch>& batches) {
    size_t used = 0;
    size_t last = 0;
    for (size_t d = 0; d < batches.size(); ++d) {
      if (!batches[d].empty()) ++used, last = d;
    }
    if (used == 0) return Status::OK();
    if (used == 1) return engines_[last]->Write(batches[last]);
    struct Pending {
      std::mutex mu;
      std::condition_variable cv;
      size_t left;
      Status first;
    } pending;
    pending.left = used;
    for (size_t d = 0; d < batches.size(); ++d) {
      if (batches[d].empty()) continue;
      engines_[d]->WriteAsync(std::move(batches[d]), [&pending](Status st) {
        std::lock_guard<std::mutex> lock(pending.mu);
        if (pending.first.ok() && !st.ok()) pending.first = st;
        if (--pending.left == 0) pending.cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(pending.mu);
    pending.cv.wait(lock, [&] { return pending.left == 0; });
    return pending.first;
  }

  std::vector<std::unique_ptr<engine::BlobEngine>> engines_;
  std::atomic<bool> closed_{false};
};

std::string JoinDisks(const std::vector<std::string>& disks) {
  std::string out;
  for (const std::string& d : disks) out += (out.empty() ? "" : ",") + d;
  return out;
}

// The DISK file of each disk (nullopt where there is none), and the store id the first one
// names.
struct DiskLabels {
  std::vector<std::optional<std::string>> found;
  std::string store_id;
};

Result<DiskLabels> ReadDiskLabels(io::FileSystem& fs, const std::vector<std::string>& disks) {
  DiskLabels labels;
  for (const std::string& d : disks) {
    auto text = io::ReadFileToString(fs, io::JoinPath(d, kDiskFile));
    if (text.ok()) {
      labels.found.push_back(*text);
      if (labels.store_id.empty()) labels.store_id = text->substr(0, text->find(' '));
    } else if (text.status().IsNotFound()) {
      labels.found.push_back(std::nullopt);
    } else {
      return text.status();
    }
  }
  return labels;
}

// Each disk carries a DISK file naming the store it belongs to, its place and the number of
// disks: "<store id> <index> <count>\n". Directories may move (a new mount point, a copied data
// directory); what must not change is which disk is which, since blobs are placed by index.
// `expected`, when not empty: the store the disks must be. Returns the id of the store the disks
// are, labelling fresh disks as a new store.
Result<std::string> CheckDisks(io::FileSystem& fs, const std::vector<std::string>& disks,
                               const std::string& expected) {
  ASSIGN_OR_RETURN(DiskLabels labels, ReadDiskLabels(fs, disks));
  auto& [found, store_id] = labels;
  bool fresh = true;
  for (const auto& f : found) fresh = fresh && !f.has_value();
  if (fresh && !expected.empty()) {
    return Status::InvalidArgument(
        "the disks " + JoinDisks(disks) + " hold no data, but this server's data is on the " +
        "disks of store " + expected + ": start it with the same --disks as before");
  }
  if (!fresh && !expected.empty() && store_id != expected) {
    return Status::InvalidArgument("the disks " + JoinDisks(disks) + " are store " + store_id +
                                   ", not this server's store " + expected +
                                   ": start it with the same --disks as before");
  }
  if (fresh) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1) return Status::Internal("no randomness for a store id");
    store_id = HexEncode(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw)));
    for (size_t i = 0; i < disks.size(); ++i) {
      RETURN_IF_ERROR(io::WriteFileAtomic(fs, io::JoinPath(disks[i], kDiskFile),
                                          store_id + " " + std::to_string(i) + " " +
                                              std::to_string(disks.size()) + "\n"));
    }
    return store_id;
  }
  for (size_t i = 0; i < disks.size(); ++i) {
    std::string expected =
        store_id + " " + std::to_string(i) + " " + std::to_string(disks.size()) + "\n";
    if (found[i] != expected) {
      return Status::InvalidArgument(
          "disk " + disks[i] + " is not disk " + std::to_string(i + 1) + " of " +
          std::to_string(disks.size()) + " of this server (its " + kDiskFile + " file says: " +
          (found[i] ? found[i]->substr(0, found[i]->find('\n')) : std::string("nothing")) +
          "): start the server with the same --disks, in the same order");
    }
  }
  return store_id;
}

}  // namespace

Result<std::unique_ptr<BlobStore>> OpenLocalBlobStore(LocalBlobStoreOptions options,
                                                      std::string* store_id) {
  if (options.disks.empty()) return Status::InvalidArgument("no data disks given");
  std::shared_ptr<io::FileSystem> fs = options.engine.fs;
  if (!fs) fs = io::DefaultFileSystem();
  for (const std::string& d : options.disks) RETURN_IF_ERROR(fs->CreateDir(d));
  ASSIGN_OR_RETURN(std::string id, CheckDisks(*fs, options.disks, options.store_id));
  if (store_id != nullptr) *store_id = id;
  std::vector<std::unique_ptr<engine::BlobEngine>> engines;
  for (const std::string& d : options.disks) {
    auto e = engine::BlobEngine::Open(io::JoinPath(d, "blobs"), options.engine);
    if (!e.ok()) return e.status().WithContext("disk " + d);
    engines.push_back(std::move(*e));
  }
  return std::unique_ptr<BlobStore>(new LocalBlobStore(std::move(engines)));
}

Result<std::string> StoreIdOfDisks(const std::vector<std::string>& disks) {
  ASSIGN_OR_RETURN(DiskLabels labels, ReadDiskLabels(*io::DefaultFileSystem(), disks));
  return labels.store_id;
}

}  // namespace granary::replication
