#include "rpc/shared_buffers.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace granary::rpc {
namespace {

// One buffer: the server's mapping of its memfd, unmapped when the last holder lets go.
struct Buffer {
  std::string access_key;
  int fd = -1;
  char* base = nullptr;
  uint64_t bytes = 0;

  ~Buffer() {
    if (base != nullptr) ::munmap(base, bytes);
    if (fd >= 0) ::close(fd);
  }
};

std::string Named(uint64_t id) { return "shared buffer " + std::to_string(id); }

}  // namespace

class SharedBuffers::Registry {
 public:
  Registry(SharedBufferLimits limits, uint64_t first_id) : limits_(limits), next_id_(first_id) {}

  // Reserves `bytes` of the key's allowance and a new id.
  Result<uint64_t> Reserve(const std::string& access_key, uint64_t bytes) {
    MutexLock lock(&mu_);
    if (bytes > limits_.max_bytes - total_bytes_) {
      return Status::NoSpace("the server's shared buffers would hold " +
                             std::to_string(total_bytes_ + bytes) + " bytes, more than the " +
                             std::to_string(limits_.max_bytes) + " it allows; try again later");
    }
    Usage& used = usage_by_key_[access_key];
    if (bytes > limits_.max_bytes_per_key - used.bytes ||
        used.buffers >= limits_.max_buffers_per_key) {
      if (used.buffers == 0) usage_by_key_.erase(access_key);
      return Status::NoSpace(
          "this access key's shared buffers would be " + std::to_string(used.buffers + 1) + " of " +
          std::to_string(used.bytes + bytes) + " bytes, more than the " +
          std::to_string(limits_.max_buffers_per_key) + " of " +
          std::to_string(limits_.max_bytes_per_key) + " allowed; free some first");
    }
    used.bytes += bytes;
    ++used.buffers;
    total_bytes_ += bytes;
    uint64_t id = next_id_++;
    if (id == 0) id = next_id_++;  // 0 names no buffer
    return id;
  }
  void Unreserve(const std::string& access_key, uint64_t bytes) {
    MutexLock lock(&mu_);
    total_bytes_ -= bytes;
    auto it = usage_by_key_.find(access_key);
    if (it == usage_by_key_.end()) return;
    it->second.bytes -= bytes;
    if (--it->second.buffers == 0) usage_by_key_.erase(it);
  }

  void Add(uint64_t id, std::shared_ptr<Buffer> buffer) {
    MutexLock lock(&mu_);
    buffers_[id] = std::move(buffer);
  }
  void Drop(uint64_t id) {
    std::shared_ptr<Buffer> dropped;  // unmapped outside the lock, if nobody else holds it
    {
      MutexLock lock(&mu_);
      auto it = buffers_.find(id);
      if (it == buffers_.end()) return;
      dropped = std::move(it->second);
      buffers_.erase(it);
    }
    Unreserve(dropped->access_key, dropped->bytes);
  }
  std::shared_ptr<Buffer> Get(uint64_t id) const {
    ReaderLock lock(&mu_);
    auto it = buffers_.find(id);
    return it == buffers_.end() ? nullptr : it->second;
  }
  size_t size() const {
    ReaderLock lock(&mu_);
    return buffers_.size();
  }
  const SharedBufferLimits& limits() const { return limits_; }

 private:
  const SharedBufferLimits limits_;
  mutable Mutex mu_;
  struct Usage {
    uint64_t bytes = 0;
    size_t buffers = 0;
  };
  uint64_t next_id_ GUARDED_BY(mu_);
  uint64_t total_bytes_ GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::shared_ptr<Buffer>> buffers_ GUARDED_BY(mu_);
  std::map<std::string, Usage> usage_by_key_ GUARDED_BY(mu_);
};

Result<std::unique_ptr<SharedBuffers>> SharedBuffers::Open(SharedBufferLimits limits) {
  ASSIGN_OR_RETURN(std::unique_ptr<FdDoor> door, FdDoor::Open());
  uint64_t first_id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&first_id), sizeof(first_id)) != 1) {
    return Status::Internal("no randomness for shared buffer ids");
  }
  return std::unique_ptr<SharedBuffers>(
      new SharedBuffers(std::move(door), std::make_shared<Registry>(limits, first_id)));
}

SharedBuffers::SharedBuffers(std::unique_ptr<FdDoor> door, std::shared_ptr<Registry> registry)
    : door_(std::move(door)), registry_(std::move(registry)) {}

SharedBuffers::~SharedBuffers() { door_->Close(); }

Result<SharedBuffers::Created> SharedBuffers::Create(const std::string& access_key,
                                                     uint64_t bytes) {
  const uint64_t max = registry_->limits().max_buffer_bytes;
  if (bytes == 0 || bytes > max) {
    return Status::InvalidArgument("a shared buffer holds 1 to " + std::to_string(max) +
                                   " bytes, not " + std::to_string(bytes));
  }
  ASSIGN_OR_RETURN(uint64_t id, registry_->Reserve(access_key, bytes));
  auto buffer = std::make_shared<Buffer>();
  buffer->access_key = access_key;
  buffer->bytes = bytes;
  Status st = [&]() -> Status {
    buffer->fd = ::memfd_create(("granary-" + Named(id)).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (buffer->fd < 0) return Status::FromErrno(errno, "memfd_create of a shared buffer");
    if (::ftruncate(buffer->fd, static_cast<off_t>(bytes)) != 0) {
      return Status::FromErrno(errno,
                               "sizing a shared buffer of " + std::to_string(bytes) + " bytes");
    }
    // Without the seals a client could shrink the file and fault the server's mapping.
    if (::fcntl(buffer->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
      return Status::FromErrno(errno, "sealing a shared buffer");
    }
    void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, buffer->fd, 0);
    if (base == MAP_FAILED) return Status::FromErrno(errno, "mapping a shared buffer");
    buffer->base = static_cast<char*>(base);
    return Status::OK();
  }();
  if (!st.ok()) {
    registry_->Unreserve(access_key, bytes);
    return st;
  }
  Result<std::string> token = door_->Issue(FdDoor::Offer{buffer, buffer->fd, bytes});
  if (!token.ok()) {
    registry_->Unreserve(access_key, bytes);
    return token.status();
  }
  registry_->Add(id, buffer);
  std::weak_ptr<Registry> registry = registry_;
  std::shared_ptr<void> anchor(nullptr, [registry, id](void*) {
    if (auto r = registry.lock()) r->Drop(id);
  });
  return Created{id, door_->name(), std::move(*token), std::move(anchor)};
}

Result<std::span<char>> SharedBuffers::Find(const std::string& access_key, uint64_t id,
                                            uint64_t offset, uint64_t length,
                                            std::shared_ptr<const void>* keep) const {
  std::shared_ptr<Buffer> buffer = registry_->Get(id);
  // Another key's buffer is answered as an unknown one: ids say nothing across keys.
  if (buffer == nullptr || buffer->access_key != access_key) {
    return Status::InvalidArgument(Named(id) + " does not exist (freed, or its connection closed)");
  }
  if (offset > buffer->bytes || length > buffer->bytes - offset) {
    return Status::InvalidArgument("range of " + std::to_string(length) + " bytes at " +
                                   std::to_string(offset) + " is outside " + Named(id) + " of " +
                                   std::to_string(buffer->bytes) + " bytes");
  }
  std::span<char> bytes(buffer->base + offset, length);
  *keep = std::move(buffer);
  return bytes;
}

size_t SharedBuffers::size() const { return registry_->size(); }

}  // namespace granary::rpc
