// ChainMemo: the predecessor of keys that an ordered call listed while they were not in DRAM, so
// that the put or promotion that usually follows links the new block into its chain
// (docs/design/kv-eviction.md). Bounded: two generations of at most `capacity` entries each;
// when the current one fills up it becomes the old one and the old one is dropped, so a
// remembered predecessor lives for between `capacity` and 2 x `capacity` remembered keys.
//
// Thread-safety: none; the Pool calls it under its mutex.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace granary::kv {

class ChainMemo {
 public:
  explicit ChainMemo(size_t capacity) : capacity_(capacity) {}

  // `key` followed `predecessor` in an ordered call.
  void Remember(std::string_view key, std::string_view predecessor);
  // The predecessor remembered for `key`, if any. The view is valid until the next Remember.
  std::optional<std::string_view> PredecessorOf(std::string_view key) const;
  size_t size() const { return current_.size() + old_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  using Map = std::unordered_map<std::string, std::string, Hash, std::equal_to<>>;

  size_t capacity_;
  Map current_;
  Map old_;
};

}  // namespace granary::kv
