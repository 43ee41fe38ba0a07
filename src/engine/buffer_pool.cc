#include "engine/buffer_pool.h"

#include <cstdlib>

namespace granary::engine {
namespace {
constexpr size_t kGranule = 1 << 20;
}  // namespace

AlignedBufferPool::~AlignedBufferPool() {
  for (auto& [cap, p] : idle_) std::free(p);
}

std::shared_ptr<char> AlignedBufferPool::Get(size_t n) {
  size_t cap = (n + kGranule - 1) / kGranule * kGranule;
  char* p = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = idle_.find(cap);
    if (it != idle_.end()) {
      p = it->second;
      idle_.erase(it);
      idle_bytes_ -= cap;
    }
  }
  if (p == nullptr) p = static_cast<char*>(std::aligned_alloc(4096, cap));
  if (p == nullptr) throw std::bad_alloc();
  auto self = shared_from_this();
  return std::shared_ptr<char>(p, [self, cap](char* q) { self->Put(q, cap); });
}

void AlignedBufferPool::Put(char* p, size_t capacity) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (idle_bytes_ + capacity <= max_pooled_) {
      idle_.emplace(capacity, p);
      idle_bytes_ += capacity;
      return;
    }
  }
  std::free(p);
}

}  // namespace granary::engine
