// Checkpointer::SaveAsync's machinery: host memory the tensors are staged in, kept and reused from
// save to save, and the one upload at a time that stores them off the caller's thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

#include "granary/checkpoint.h"

namespace granary::checkpoint {

// Backs the pages of `buffer` with memory before a read or a copy lands in it: the kernel
// allocates them in one call, instead of one fault per page (MADV_POPULATE_WRITE, Linux 5.14 and
// later; elsewhere the pages fault in as before).
void Prefault(std::span<char> buffer);

// Anonymous pages, populated when mapped, kept while later reservations fit.
class HostMemory {
 public:
  HostMemory() = default;
  ~HostMemory() { Unmap(); }
  HostMemory(const HostMemory&) = delete;
  HostMemory& operator=(const HostMemory&) = delete;

  char* data() const { return data_; }
  // At least `bytes` from data(); the contents are not kept when it grows.
  Status Reserve(size_t bytes);

 private:
  void Unmap();

  char* data_ = nullptr;
  size_t size_ = 0;
};

// Thread-safe.
class AsyncSaver {
 public:
  AsyncSaver() = default;
  ~AsyncSaver() { Join(); }
  AsyncSaver(const AsyncSaver&) = delete;
  AsyncSaver& operator=(const AsyncSaver&) = delete;

  // Stores the staged copies of the tensors; its result is the save's.
  using Upload = std::function<Result<SaveStats>(std::span<const TensorToSave> staged)>;

  // Waits for the previous upload (it reads the staging memory), copies `tensors` into the
  // staging memory (each at a 64-byte boundary) and runs `upload` on the copies on a thread of
  // its own. The state reports the end of the upload.
  Result<std::shared_ptr<CheckpointSave::State>> Start(uint64_t step,
                                                       std::span<const TensorToSave> tensors,
                                                       Upload upload);
  // Returns once the upload in flight, if any, has ended.
  void Join();

 private:
  std::mutex mu_;
  HostMemory staging_;  // GUARDED_BY(mu_)
  std::thread upload_;  // GUARDED_BY(mu_)
};

}  // namespace granary::checkpoint
