// granary::Checkpointer (include/granary/checkpoint.h): chunks, manifests and their reclamation.
#include "granary/checkpoint.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>

#include "checkpoint/manifest.h"
#include "checkpoint/save_async.h"
#include "checkpoint/saver_marker.h"
#include "common/crypto.h"
#include "common/hash.h"
#include "common/logging.h"

namespace granary {
namespace {

using checkpoint::DecodeManifest;
using checkpoint::EncodeManifest;
using checkpoint::MarkerBody;
using checkpoint::SaverIsDead;

constexpr char kStepsDir[] = "steps/";
constexpr char kChunksDir[] = "chunks/";
constexpr char kSavingDir[] = "saving/";
constexpr char kManifestName[] = "/manifest";
// A save's marker older than this is of a saver that died: it no longer holds chunks back.
constexpr int64_t kStaleSaveNs = int64_t{3600} * 1'000'000'000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 16 hex digits, most significant first.
std::string Hex64(uint64_t v) {
  char bytes[8];
  for (int i = 7; i >= 0; --i, v >>= 8) bytes[i] = static_cast<char>(v & 0xff);
  return HexEncode(std::string_view(bytes, sizeof(bytes)));
}

std::string ChunkName(const CheckpointChunkRef& c) {
  return Hex64(c.hash_hi) + Hex64(c.hash_lo) + "-" + std::to_string(c.size);
}

CheckpointChunkRef ChunkOf(std::span<const char> bytes) {
  const KeyHash h = HashKey(std::string_view(bytes.data(), bytes.size()));
  return {h.lo, h.hi, bytes.size()};
}

std::string StepName(uint64_t step) {
  std::string digits = std::to_string(step);
  return std::string(20 - digits.size(), '0') + digits;
}

// Runs fn(i) for i in [0, n) on up to `parallel` threads; the first error, after all have
// stopped (once one fails, the others take no new items).
Status ParallelFor(size_t n, int parallel, const std::function<Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto work = [&] {
    for (size_t i = next++; i < n && !failed; i = next++) {
      Status st = fn(i);
      if (!st.ok()) {
        std::lock_guard lock(mu);
        if (first.ok()) first = std::move(st);
        failed = true;
      }
    }
  };
  const size_t threads = std::min<size_t>(n, static_cast<size_t>(std::max(parallel, 1)));
  std::vector<std::thread> pool;
  try {
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads to be had: the ones started, and this one, do all the work.
  }
  work();
  for (std::thread& t : pool) t.join();
  return first;
}

}  // namespace

uint64_t CheckpointManifest::bytes() const {
  uint64_t total = 0;
  for (const SavedTensor& t : tensors) total += t.size;
  return total;
}

class Checkpointer::Impl {
 public:
  Impl(ObjectApi& store, std::string bucket, std::string prefix, CheckpointOptions options)
      : store_(store),
        bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        options_(options) {}
  // The upload of a SaveAsync uses the rest: it ends first.
  ~Impl() { async.Join(); }

  Result<SaveStats> Save(uint64_t step, std::span<const TensorToSave> tensors,
                         std::string_view extra);
  // kInvalidArgument for a name given twice.
  static Status CheckNames(uint64_t step, const std::vector<std::string_view>& names);
  // The refusal of a save of `step`, which exists.
  Status StepExists(uint64_t step) const {
    return Status::AlreadyExists("checkpoint " + std::to_string(step) + " of " + bucket_ + "/" +
                                 prefix_ + " exists: delete it first or save another step");
  }
  // `marker_key`, when given, is set to the key of the save's marker.
  Result<std::vector<SavedTensor>> StoreTensors(uint64_t step,
                                                std::span<const TensorToSave> tensors,
                                                SaveStats* stats, std::string* marker_key = nullptr);
  // The size of the manifest written.
  Result<uint64_t> Commit(uint64_t step, std::vector<SavedTensor> tensors, std::string_view extra);
  Result<std::vector<uint64_t>> List();
  Result<CheckpointManifest> Describe(std::optional<uint64_t> step);
  Status Load(const CheckpointManifest& manifest,
              const std::function<Result<std::span<char>>(size_t, const SavedTensor&)>& dst);
  Status Delete(uint64_t step);
  Status KeepLast(size_t n);

  std::mutex mu;  // serializes the calls
  checkpoint::AsyncSaver async;  // SaveAsync's staging memory and upload

 private:
  std::string ManifestKey(uint64_t step) const {
    return prefix_ + kStepsDir + StepName(step) + kManifestName;
  }
  std::string ChunkKey(const CheckpointChunkRef& c) const {
    return prefix_ + kChunksDir + ChunkName(c);
  }
  // A new marker: saving/<step>-<random> for a save of `step`, saving/reclaim-<random> for a
  // reclamation.
  std::string MarkerKey(std::optional<uint64_t> step) const {
    std::random_device random;
    return prefix_ + kSavingDir + (step ? StepName(*step) : std::string("reclaim")) + "-" +
           Hex64((uint64_t{random()} << 32) | random());
  }
  // Every object under prefix_ + dir.
  Result<std::vector<ObjectInfo>> ListAll(const std::string& dir);
  // The names of the chunks the run holds, listed once and then kept up to date.
  Status LoadKnownChunks();
  // Deletes the chunks no checkpoint uses and no save in progress may count on.
  Status Reclaim();
  // Reclaim, once its own marker is written at the server's time `started_ns`.
  Status ReclaimSince(int64_t started_ns);

  ObjectApi& store_;
  const std::string bucket_;
  const std::string prefix_;  // ends with '/', or is empty
  const CheckpointOptions options_;
  bool known_loaded_ = false;
  std::set<std::string> known_chunks_;
  bool reclaimed_ = false;  // by a save of this Checkpointer
};

Result<std::vector<ObjectInfo>> Checkpointer::Impl::ListAll(const std::string& dir) {
  std::vector<ObjectInfo> out;
  ListOptions o;
  o.prefix = prefix_ + dir;
  while (true) {
    ASSIGN_OR_RETURN(ListResult page, store_.List(bucket_, o));
    for (ObjectInfo& info : page.objects) out.push_back(std::move(info));
    if (!page.truncated) return out;
    o.continuation_token = page.next_continuation_token;
  }
}

Status Checkpointer::Impl::LoadKnownChunks() {
  if (known_loaded_) return Status::OK();
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> chunks, ListAll(kChunksDir));
  const size_t skip = prefix_.size() + std::strlen(kChunksDir);
  for (const ObjectInfo& info : chunks) known_chunks_.insert(info.key.substr(skip));
  known_loaded_ = true;
  return Status::OK();
}

Status Checkpointer::Impl::CheckNames(uint64_t step, const std::vector<std::string_view>& names) {
  std::set<std::string_view> seen;
  for (std::string_view name : names) {
    if (!seen.insert(name).second) {
      return Status::InvalidArgument("two tensors of checkpoint " + std::to_string(step) +
                                     " are named \"" + std::string(name) +
                                     "\": names must be unique");
    }
  }
  return Status::OK();
}

Result<std::vector<SavedTensor>> Checkpointer::Impl::StoreTensors(
    uint64_t step, std::span<const TensorToSave> tensors, SaveStats* stats,
    std::string* marker_key) {
  RETURN_IF_ERROR(LoadKnownChunks());
  // The save's marker keeps reclamation elsewhere from deleting the chunks it uploads, until the
  // commit of `step` removes it (or its saver dies).
  const std::string marker = MarkerKey(step);
  if (marker_key != nullptr) *marker_key = marker;
  RETURN_IF_ERROR(store_.Put(bucket_, marker, MarkerBody()).status());

  // The chunks, in order: tensor index, offset, length.
  struct Piece {
    size_t tensor;
    uint64_t offset;
    uint64_t length;
  };
  std::vector<Piece> pieces;
  const uint64_t chunk = std::max<uint64_t>(options_.chunk_bytes, 1);
  for (size_t i = 0; i < tensors.size(); ++i) {
    for (uint64_t at = 0; at < tensors[i].bytes.size(); at += chunk) {
      pieces.push_back({i, at, std::min<uint64_t>(chunk, tensors[i].bytes.size() - at)});
    }
  }
  std::vector<CheckpointChunkRef> refs(pieces.size());
  std::mutex known_mu;
  std::atomic<uint64_t> written_bytes{0};
  std::atomic<uint64_t> written_chunks{0};
  const Status st = ParallelFor(pieces.size(), options_.parallel, [&](size_t p) -> Status {
    const Piece& piece = pieces[p];
    const std::span<const char> bytes =
        tensors[piece.tensor].bytes.subspan(piece.offset, piece.length);
    refs[p] = ChunkOf(bytes);
    const std::string name = ChunkName(refs[p]);
    {
      std::lock_guard lock(known_mu);
      if (!known_chunks_.insert(name).second) return Status::OK();  // stored, or being stored
    }
    Status put = store_.Put(bucket_, prefix_ + kChunksDir + name,
                            std::string_view(bytes.data(), bytes.size()))
                     .status();
    if (!put.ok()) {
      std::lock_guard lock(known_mu);
      known_chunks_.erase(name);
      return put.WithContext("chunk of tensor \"" + tensors[piece.tensor].name + "\"");
    }
    written_bytes += bytes.size();
    ++written_chunks;
    return Status::OK();
  });
  if (!st.ok()) {
    store_.Delete(bucket_, marker).IgnoreError();  // its chunks are orphans: let them go
    return st;
  }

  std::vector<SavedTensor> saved;
  size_t p = 0;
  for (const TensorToSave& t : tensors) {
    SavedTensor s{t.name, t.dtype, t.shape, t.bytes.size(), {}};
    while (p < pieces.size() && pieces[p].tensor == saved.size()) s.chunks.push_back(refs[p++]);
    saved.push_back(std::move(s));
  }
  if (stats != nullptr) {
    for (const TensorToSave& t : tensors) stats->bytes += t.bytes.size();
    stats->chunks += pieces.size();
    stats->written_bytes += written_bytes;
    stats->written_chunks += written_chunks;
  }
  return saved;
}

Result<uint64_t> Checkpointer::Impl::Commit(uint64_t step, std::vector<SavedTensor> tensors,
                                            std::string_view extra) {
  CheckpointManifest m;
  m.step = step;
  m.created_unix_ms = NowNs() / 1'000'000;
  m.extra = std::string(extra);
  m.tensors = std::move(tensors);
  // The manifest makes the checkpoint: written last, in one put, never over an existing one.
  const std::string bytes = EncodeManifest(m);
  PutOptions once;
  once.conditions.if_none_match = "*";
  Status put = store_.Put(bucket_, ManifestKey(step), bytes, once).status();
  if (put.code() == Code::kPreconditionFailed) return StepExists(step);
  RETURN_IF_ERROR(put);
  // The checkpoint's chunks are referenced now: the markers of its savers can go.
  Result<std::vector<ObjectInfo>> markers = ListAll(kSavingDir + StepName(step) + "-");
  if (markers.ok()) {
    for (const ObjectInfo& marker : *markers) store_.Delete(bucket_, marker.key).IgnoreError();
  }
  return bytes.size();
}

Result<SaveStats> Checkpointer::Impl::Save(uint64_t step, std::span<const TensorToSave> tensors,
                                          std::string_view extra) {
  std::vector<std::string_view> names;
  for (const TensorToSave& t : tensors) names.push_back(t.name);
  RETURN_IF_ERROR(CheckNames(step, names));
  // Refused before any upload; the commit refuses it again should it appear meanwhile.
  if (store_.Head(bucket_, ManifestKey(step), {}).ok()) return StepExists(step);
  SaveStats stats;
  std::string marker;
  Result<std::vector<SavedTensor>> saved = StoreTensors(step, tensors, &stats, &marker);
  Status st = saved.status();
  if (st.ok()) {
    Result<uint64_t> written = Commit(step, std::move(*saved), extra);
    st = written.status();
    if (st.ok()) {
      stats.manifest_bytes = *written;
    } else {
      store_.Delete(bucket_, marker).IgnoreError();  // its chunks are orphans
    }
  }
  if (!st.ok()) return st.WithContext("saving checkpoint " + std::to_string(step));
  // The first save of a Checkpointer also lets go of the chunks that saves killed earlier left
  // behind (their savers are dead), so that a run which never deletes a checkpoint gets that
  // space back too.
  if (!reclaimed_) {
    reclaimed_ = true;
    Status reclaimed = Reclaim();
    if (!reclaimed.ok()) {
      GLOG_WARN("checkpoint {} saved, but reclaiming what killed saves left failed: {}", step,
                reclaimed.ToString());
    }
  }
  return stats;
}

Result<std::vector<uint64_t>> Checkpointer::Impl::List() {
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, ListAll(kStepsDir));
  std::vector<uint64_t> steps;
  const size_t skip = prefix_.size() + std::strlen(kStepsDir);
  for (const ObjectInfo& info : objects) {
    std::string_view rest = std::string_view(info.key).substr(skip);
    if (rest.size() != 20 + std::strlen(kManifestName) || !rest.ends_with(kManifestName)) continue;
    uint64_t step = 0;
    bool digits = true;
    for (char c : rest.substr(0, 20)) {
      digits = digits && c >= '0' && c <= '9';
      step = step * 10 + static_cast<uint64_t>(c - '0');
    }
    if (digits) steps.push_back(step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

Result<CheckpointManifest> Checkpointer::Impl::Describe(std::optional<uint64_t> step) {
  if (!step) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> steps, List());
    if (steps.empty()) {
      return Status::NotFound("no complete checkpoint of " + bucket_ + "/" + prefix_);
    }
    step = steps.back();
  }
  const std::string key = ManifestKey(*step);
  Result<std::string> bytes = store_.Get(bucket_, key);
  if (!bytes.ok()) {
    if (bytes.status().IsNotFound()) {
      return Status::NotFound("no checkpoint " + std::to_string(*step) + " of " + bucket_ + "/" +
                              prefix_);
    }
    return bytes.status();
  }
  return DecodeManifest(*bytes, bucket_ + "/" + key);
}

Status Checkpointer::Impl::Load(
    const CheckpointManifest& manifest,
    const std::function<Result<std::span<char>>(size_t, const SavedTensor&)>& dst) {
  struct Piece {
    size_t tensor;
    uint64_t offset;
    const CheckpointChunkRef* chunk;
    std::span<char> into;
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < manifest.tensors.size(); ++i) {
    const SavedTensor& t = manifest.tensors[i];
    ASSIGN_OR_RETURN(std::span<char> buffer, dst(i, t));
    if (buffer.size() != t.size) {
      return Status::InvalidArgument("the buffer for tensor \"" + t.name + "\" has " +
                                     std::to_string(buffer.size()) + " bytes; it needs " +
                                     std::to_string(t.size));
    }
    uint64_t at = 0;
    for (const CheckpointChunkRef& c : t.chunks) {
      pieces.push_back({i, at, &c, buffer.subspan(at, c.size)});
      at += c.size;
    }
  }
  return ParallelFor(pieces.size(), options_.parallel, [&](size_t p) -> Status {
    const Piece& piece = pieces[p];
    const std::string key = ChunkKey(*piece.chunk);
    auto corrupt = [&](const std::string& why) {
      return Status::Corruption("chunk " + bucket_ + "/" + key + " (bytes " +
                                std::to_string(piece.offset) + ".. of tensor \"" +
                                manifest.tensors[piece.tensor].name + "\" of checkpoint " +
                                std::to_string(manifest.step) + ") " + why);
    };
    checkpoint::Prefault(piece.into);
    Result<size_t> got = store_.GetInto(bucket_, key, piece.into);
    if (!got.ok()) {
      if (got.status().IsNotFound()) return corrupt("is missing");
      if (got.status().code() == Code::kInvalidArgument) return corrupt("has the wrong size");
      if (got.status().code() == Code::kCorruption) {
        return corrupt("is damaged on the server: " + got.status().message());
      }
      return got.status().WithContext("reading chunk " + bucket_ + "/" + key + " of tensor \"" +
                                      manifest.tensors[piece.tensor].name + "\"");
    }
    if (*got != piece.into.size()) return corrupt("has the wrong size");
    const CheckpointChunkRef actual = ChunkOf(piece.into);
    if (actual.hash_lo != piece.chunk->hash_lo || actual.hash_hi != piece.chunk->hash_hi) {
      return corrupt("does not match its hash: its bytes are damaged");
    }
    return Status::OK();
  });
}

Status Checkpointer::Impl::Reclaim() {
  // This reclamation's own marker: its time (the server's) is the cutoff for saves that start
  // while it runs, whose markers the listing below may miss.
  const std::string own = MarkerKey(std::nullopt);
  ASSIGN_OR_RETURN(ObjectInfo started, store_.Put(bucket_, own, MarkerBody()));
  Status st = ReclaimSince(started.mtime_ns);
  store_.Delete(bucket_, own).IgnoreError();
  return st;
}

Status Checkpointer::Impl::ReclaimSince(int64_t started_ns) {
  // Markers first, manifests next: a save that commits after the manifests are listed still
  // had its marker when they were.
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> markers, ListAll(kSavingDir));
  int64_t cutoff = started_ns;
  for (const ObjectInfo& marker : markers) {
    if (started_ns - marker.mtime_ns >= kStaleSaveNs) continue;
    Result<std::string> body = store_.Get(bucket_, marker.key);
    if (!body.ok() && body.status().IsNotFound()) continue;  // its save just ended
    if (body.ok() && SaverIsDead(*body)) {
      // Killed on this host: its chunks are orphans, once the requests it had sent have landed.
      store_.Delete(bucket_, marker.key).IgnoreError();
      cutoff = std::min(cutoff, started_ns - options_.dead_saver_grace_ms * 1'000'000);
      continue;
    }
    cutoff = std::min(cutoff, marker.mtime_ns);
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> steps, List());
  std::set<std::string> used;
  for (uint64_t step : steps) {
    ASSIGN_OR_RETURN(CheckpointManifest m, Describe(step));
    for (const SavedTensor& t : m.tensors) {
      for (const CheckpointChunkRef& c : t.chunks) used.insert(ChunkName(c));
    }
  }
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> chunks, ListAll(kChunksDir));
  const size_t skip = prefix_.size() + std::strlen(kChunksDir);
  std::vector<std::string> doomed;
  for (const ObjectInfo& info : chunks) {
    const std::string name = info.key.substr(skip);
    if (!used.count(name) && info.mtime_ns < cutoff) doomed.push_back(info.key);
  }
  for (size_t i = 0; i < doomed.size(); i += 1000) {
    const size_t n = std::min<size_t>(1000, doomed.size() - i);
    // Forgotten before the delete: a chunk some of whose copies went must be uploaded again.
    for (size_t j = i; j < i + n; ++j) known_chunks_.erase(doomed[j].substr(skip));
    for (const Status& st : store_.DeleteMany(bucket_, std::span(doomed).subspan(i, n))) {
      if (!st.ok() && !st.IsNotFound()) return st.WithContext("reclaiming checkpoint chunks");
    }
  }
  return Status::OK();
}

Status Checkpointer::Impl::Delete(uint64_t step) {
  const std::string key = ManifestKey(step);
  Status st = store_.Delete(bucket_, key);
  if (st.IsNotFound()) {
    return Status::NotFound("no checkpoint " + std::to_string(step) + " of " + bucket_ + "/" +
                            prefix_);
  }
  RETURN_IF_ERROR(st);
  return Reclaim();
}

Status Checkpointer::Impl::KeepLast(size_t n) {
  ASSIGN_OR_RETURN(std::vector<uint64_t> steps, List());
  if (steps.size() <= n) return Reclaim();
  for (size_t i = 0; i + n < steps.size(); ++i) {
    Status st = store_.Delete(bucket_, ManifestKey(steps[i]));
    if (!st.ok() && !st.IsNotFound()) return st;
  }
  return Reclaim();
}

Checkpointer::Checkpointer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpointer::~Checkpointer() = default;

Result<std::unique_ptr<Checkpointer>> Checkpointer::Open(ObjectApi& store, std::string_view run,
                                                         const CheckpointOptions& options) {
  const size_t slash = run.find('/');
  const std::string bucket(run.substr(0, slash));
  std::string prefix(slash == std::string_view::npos ? "" : run.substr(slash + 1));
  if (bucket.empty()) {
    return Status::InvalidArgument("a checkpoint run is \"bucket/prefix\", not \"" +
                                   std::string(run) + "\"");
  }
  if (!prefix.empty() && !prefix.ends_with('/')) prefix += '/';
  if (prefix.find("//") != std::string::npos || prefix.starts_with('/')) {
    return Status::InvalidArgument("the checkpoint run \"" + std::string(run) +
                                   "\" has an empty path segment");
  }
  RETURN_IF_ERROR(store.HeadBucket(bucket).status());
  return std::unique_ptr<Checkpointer>(
      new Checkpointer(std::make_unique<Impl>(store, bucket, std::move(prefix), options)));
}

Result<SaveStats> Checkpointer::Save(uint64_t step, std::span<const TensorToSave> tensors,
                                     std::string_view extra) {
  std::lock_guard lock(impl_->mu);
  return impl_->Save(step, tensors, extra);
}

Result<CheckpointSave> Checkpointer::SaveAsync(uint64_t step,
                                               std::span<const TensorToSave> tensors,
                                               std::string_view extra) {
  ASSIGN_OR_RETURN(std::shared_ptr<CheckpointSave::State> state,
                   impl_->async.Start(step, tensors,
                                      [impl = impl_.get(), step, extra = std::string(extra)](
                                          std::span<const TensorToSave> staged) {
                                        std::lock_guard lock(impl->mu);
                                        return impl->Save(step, staged, extra);
                                      }));
  return CheckpointSave(std::move(state));
}

Result<std::vector<SavedTensor>> Checkpointer::StoreTensors(
    uint64_t step, std::span<const TensorToSave> tensors, SaveStats* stats) {
  std::lock_guard lock(impl_->mu);
  return impl_->StoreTensors(step, tensors, stats);
}

Result<uint64_t> Checkpointer::Commit(uint64_t step, std::vector<SavedTensor> tensors,
                                      std::string_view extra) {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string_view> names;
  for (const SavedTensor& t : tensors) names.push_back(t.name);
  RETURN_IF_ERROR(impl_->CheckNames(step, names));
  Result<uint64_t> written = impl_->Commit(step, std::move(tensors), extra);
  if (!written.ok()) {
    return written.status().WithContext("committing checkpoint " + std::to_string(step));
  }
  return written;
}

Result<std::vector<uint64_t>> Checkpointer::List() {
  std::lock_guard lock(impl_->mu);
  return impl_->List();
}

Result<CheckpointManifest> Checkpointer::Describe(std::optional<uint64_t> step) {
  std::lock_guard lock(impl_->mu);
  return impl_->Describe(step);
}

Status Checkpointer::Load(
    const CheckpointManifest& manifest,
    const std::function<Result<std::span<char>>(size_t, const SavedTensor&)>& destination) {
  // Loads need no lock: they only read chunks a manifest names.
  return impl_->Load(manifest, destination);
}

Status Checkpointer::Delete(uint64_t step) {
  std::lock_guard lock(impl_->mu);
  return impl_->Delete(step);
}

Status Checkpointer::KeepLast(size_t n) {
  std::lock_guard lock(impl_->mu);
  return impl_->KeepLast(n);
}

}  // namespace granary
