#include "checkpoint/save_async.h"

#include <sys/mman.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <system_error>

namespace granary {

struct CheckpointSave::State {
  explicit State(uint64_t step) : step(step) {}

  void Finish(Result<SaveStats> r) {
    std::lock_guard lock(mu);
    result = std::move(r);
    done = true;
    cv.notify_all();
  }

  const uint64_t step;
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool done = false;  // GUARDED_BY(mu)
  Result<SaveStats> result = Status::Unavailable("the save has not ended");  // GUARDED_BY(mu)
};

uint64_t CheckpointSave::step() const { return state_->step; }

bool CheckpointSave::Done() const {
  std::lock_guard lock(state_->mu);
  return state_->done;
}

Result<SaveStats> CheckpointSave::Wait() const {
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [&] { return state_->done; });
  return state_->result;
}

namespace checkpoint {

void Prefault(std::span<char> buffer) {
  constexpr uintptr_t kPage = 4096;
  const auto at = reinterpret_cast<uintptr_t>(buffer.data());
  const uintptr_t begin = (at + kPage - 1) & ~(kPage - 1);
  const uintptr_t end = (at + buffer.size()) & ~(kPage - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

Status HostMemory::Reserve(size_t bytes) {
  if (bytes <= size_) return Status::OK();
  Unmap();
  void* at = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (at == MAP_FAILED) {
    return Status::FromErrno(errno, "mapping " + std::to_string(bytes >> 20) +
                                        " MiB of host memory for a checkpoint");
  }
  data_ = static_cast<char*>(at);
  size_ = bytes;
  Prefault(std::span<char>(data_, size_));
  return Status::OK();
}

void HostMemory::Unmap() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

Result<std::shared_ptr<CheckpointSave::State>> AsyncSaver::Start(
    uint64_t step, std::span<const TensorToSave> tensors, Upload upload) {
  std::lock_guard lock(mu_);
  if (upload_.joinable()) upload_.join();  // it reads the staging memory
  constexpr size_t kAlign = 64;
  size_t total = 0;
  for (const TensorToSave& t : tensors) total += (t.bytes.size() + kAlign - 1) & ~(kAlign - 1);
  RETURN_IF_ERROR(staging_.Reserve(std::max<size_t>(total, 1)));
  std::vector<TensorToSave> staged;
  staged.reserve(tensors.size());
  size_t at = 0;
  for (const TensorToSave& t : tensors) {
    char* to = staging_.data() + at;
    if (!t.bytes.empty()) std::memcpy(to, t.bytes.data(), t.bytes.size());
    staged.push_back({t.name, t.dtype, t.shape, std::span<const char>(to, t.bytes.size())});
    at += (t.bytes.size() + kAlign - 1) & ~(kAlign - 1);
  }
  auto state = std::make_shared<CheckpointSave::State>(step);
  try {
    upload_ = std::thread([state, staged = std::move(staged), upload = std::move(upload)] {
      state->Finish(upload(staged));
    });
  } catch (const std::system_error& e) {
    return Status::Unavailable(std::string("starting the upload of a checkpoint: ") + e.what());
  }
  return state;
}

void AsyncSaver::Join() {
  std::lock_guard lock(mu_);
  if (upload_.joinable()) upload_.join();
}

}  // namespace checkpoint
}  // namespace granary
