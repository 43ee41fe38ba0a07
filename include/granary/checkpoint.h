// granary::Checkpointer: training checkpoints in a bucket, stored as content-addressed chunks and
// a manifest written last (docs/design/checkpoints.md).
//
// A run is "bucket/prefix". Under the prefix: chunks/<XXH3-128>-<size>, one object per distinct
// chunk of tensor bytes, and steps/<step>/manifest, one per complete checkpoint. A save uploads
// the chunks the run does not have yet, in parallel, then the manifest; a checkpoint is visible
// only once every byte of it is durable, and a save that fails or is killed leaves the previous
// checkpoints intact and no partial one listed. Chunks identical to ones of earlier checkpoints
// of the run are not written again. Deleting a checkpoint removes its manifest, then the chunks
// no remaining checkpoint uses. A load checks every chunk against its hash.
//
// One Checkpointer (of one process) saves and deletes a run's checkpoints at a time (any number
// may load): each Checkpointer remembers which chunks the run holds, and a delete through another
// one could remove a chunk a save counts on. Saves in progress elsewhere are otherwise safe from
// reclamation: each marks itself under saving/ until its commit, and a reclamation spares the
// chunks written since the oldest live marker or since it began. A marker no longer counts once
// its saver is known dead (a process of this host and pid namespace that is gone, for
// dead_saver_grace_ms) or after an hour, so the chunks of a killed save are reclaimed: by the
// next Delete or KeepLast, or after the first save of the next Checkpointer.
//
// Thread-safe: calls on one Checkpointer are serialized.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "granary/object_api.h"
#include "granary/status.h"

namespace granary {

struct CheckpointOptions {
  uint64_t chunk_bytes = 16ull << 20;  // a tensor's bytes are cut into chunks of this size
  int parallel = 8;                    // chunks uploaded or read at once
  // The requests a killed saver had sent may still land on the server after it died (its
  // manifest too): a reclamation spares the chunks younger than this even when their saver is
  // known dead, and a later one takes them.
  int64_t dead_saver_grace_ms = 60'000;
};

// A tensor to save: its bytes, contiguous, and what the caller needs to rebuild it.
struct TensorToSave {
  std::string name;  // unique within the checkpoint
  std::string dtype;
  std::vector<int64_t> shape;
  std::span<const char> bytes;
};

struct CheckpointChunkRef {
  uint64_t hash_lo = 0;
  uint64_t hash_hi = 0;
  uint64_t size = 0;
};

struct SavedTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t size = 0;
  std::vector<CheckpointChunkRef> chunks;
};

// A complete checkpoint, as its manifest describes it.
struct CheckpointManifest {
  uint64_t step = 0;
  int64_t created_unix_ms = 0;
  std::vector<SavedTensor> tensors;
  std::string extra;
  uint64_t bytes() const;
};

struct SaveStats {
  uint64_t bytes = 0;           // of the tensors
  uint64_t chunks = 0;
  uint64_t written_bytes = 0;   // of the chunks uploaded (the rest the run had already)
  uint64_t written_chunks = 0;
  uint64_t manifest_bytes = 0;  // of the manifest, written last (Save only)
};

// A save that Checkpointer::SaveAsync started. Copyable; every copy waits for the same save.
class CheckpointSave {
 public:
  uint64_t step() const;
  // Whether the save has ended: durable and listed, or failed.
  bool Done() const;
  // Waits for the end of the save: its figures once the checkpoint is durable and listed, or why
  // it failed (as Save reports it).
  Result<SaveStats> Wait() const;

  struct State;

 private:
  friend class Checkpointer;
  explicit CheckpointSave(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

class Checkpointer {
 public:
  // `run`: "bucket/prefix" (the prefix may hold slashes; the bucket must exist). kInvalidArgument
  // for a malformed run, kNoSuchBucket when the bucket does not exist. `store` must outlive it.
  static Result<std::unique_ptr<Checkpointer>> Open(ObjectApi& store, std::string_view run,
                                                    const CheckpointOptions& options = {});
  ~Checkpointer();

  // Saves checkpoint `step` and returns once it is durable and listed. `extra`: bytes of the
  // caller's, returned by Describe. kAlreadyExists when `step` exists; kInvalidArgument for
  // duplicate tensor names. On failure nothing of it is listed.
  Result<SaveStats> Save(uint64_t step, std::span<const TensorToSave> tensors,
                         std::string_view extra = {});
  // Save, without waiting for the upload: copies the tensors' bytes into host memory that the
  // Checkpointer keeps for its saves (mapped by the first, reused by the next ones while they
  // fit), starts uploading them in the background and returns. The caller may change or free its
  // tensors as soon as it returns, so training stalls only for that copy. The next SaveAsync,
  // and any other call but Load, first waits for the upload; the Checkpointer's destructor too.
  // Errors of the save itself (kAlreadyExists, ...) come from the returned save's Wait().
  Result<CheckpointSave> SaveAsync(uint64_t step, std::span<const TensorToSave> tensors,
                                   std::string_view extra = {});
  // Save in two halves, for a checkpoint whose tensors several processes store (PyTorch's
  // distributed checkpoint: every rank stores its shards, one commits). StoreTensors uploads the
  // chunks of `tensors` that the run does not hold yet and returns the tensors as a manifest lists
  // them; `stats`, when given, is added to. Its marker (see above) stays until the commit of
  // `step`. Commit writes the manifest of checkpoint `step` over tensors that StoreTensors
  // returned (in any process) and so makes it visible, then removes the step's markers; it is
  // refused (kAlreadyExists, kInvalidArgument) as Save is. Nothing is listed until Commit
  // succeeds; a checkpoint never committed leaves its markers to expire with their savers.
  Result<std::vector<SavedTensor>> StoreTensors(uint64_t step,
                                                std::span<const TensorToSave> tensors,
                                                SaveStats* stats = nullptr);
  // Returns the size of the manifest written.
  Result<uint64_t> Commit(uint64_t step, std::vector<SavedTensor> tensors,
                          std::string_view extra = {});
  // The steps of the complete checkpoints, ascending.
  Result<std::vector<uint64_t>> List();
  // The manifest of checkpoint `step`, or of the latest when none is given. kNotFound when there
  // is none; kCorruption when the manifest fails its checksum or does not parse.
  Result<CheckpointManifest> Describe(std::optional<uint64_t> step = std::nullopt);
  // Reads every tensor of `manifest` into the buffer `destination(i, tensor)` returns (of exactly
  // the tensor's size), chunks in parallel, each checked against its hash: kCorruption naming
  // the tensor, the chunk and the step for a chunk that is missing or whose bytes differ.
  Status Load(const CheckpointManifest& manifest,
              const std::function<Result<std::span<char>>(size_t index, const SavedTensor&)>&
                  destination);
  // Removes checkpoint `step` (kNotFound when there is none), then every chunk no remaining
  // checkpoint uses and no save in progress may count on.
  Status Delete(uint64_t step);
  // Deletes all but the `n` latest checkpoints.
  Status KeepLast(size_t n);

  class Impl;

 private:
  explicit Checkpointer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
