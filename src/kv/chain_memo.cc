#include "kv/chain_memo.h"

namespace granary::kv {

void ChainMemo::Remember(std::string_view key, std::string_view predecessor) {
  if (capacity_ == 0 || key == predecessor) return;
  if (auto it = current_.find(key); it != current_.end()) {
    it->second.assign(predecessor);
    return;
  }
  if (current_.size() >= capacity_) {
    old_ = std::move(current_);
    current_ = Map();
  }
  current_.emplace(std::string(key), std::string(predecessor));
}

std::optional<std::string_view> ChainMemo::PredecessorOf(std::string_view key) const {
  if (auto it = current_.find(key); it != current_.end()) return std::string_view(it->second);
  if (auto it = old_.find(key); it != old_.end()) return std::string_view(it->second);
  return std::nullopt;
}

}  // namespace granary::kv
