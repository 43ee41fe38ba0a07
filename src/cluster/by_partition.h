// ByPartition: a batch of one bucket's keys split by the namespace partition holding each key
// (ClusterMap::PartitionOf(bucket, key)), for the gateway that sends each share to its head and
// for the node that runs each share on its store.
//
// Thread-safe: a pure function of its arguments.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/cluster_map.h"
#include "granary/object_api.h"
#include "granary/status.h"

namespace granary::cluster {

// The key of an item of a batch.
inline std::string_view BatchKey(const PutItem& item) { return item.key; }
inline std::string_view BatchKey(const std::string& key) { return key; }

// Calls `run(std::span<const Item> share)` once per partition holding some of `items`, with that
// partition's items in order (`items` itself when one partition holds them all), and returns each
// item's result in the items' order. `run` returns one T per item of its share; an answer that
// lacks some is an error for those.
template <typename T, typename Item, typename Run>
std::vector<T> ByPartition(const ClusterMap& map, std::string_view bucket,
                           std::span<const Item> items, Run&& run) {
  std::map<uint32_t, std::vector<size_t>> shares;
  for (size_t i = 0; i < items.size(); ++i) {
    shares[map.PartitionOf(bucket, BatchKey(items[i])).id].push_back(i);
  }
  std::vector<std::optional<T>> slots(items.size());
  for (const auto& [chain, indices] : shares) {
    std::vector<Item> picked;
    if (shares.size() > 1) {
      picked.reserve(indices.size());
      for (size_t i : indices) picked.push_back(items[i]);
    }
    std::vector<T> results = run(shares.size() > 1 ? std::span<const Item>(picked) : items);
    for (size_t j = 0; j < indices.size(); ++j) {
      if (j < results.size()) {
        slots[indices[j]].emplace(std::move(results[j]));
      } else {
        slots[indices[j]].emplace(Status::Internal("a batch's answer lacks the result of item " +
                                                   std::to_string(indices[j])));
      }
    }
  }
  std::vector<T> out;
  out.reserve(items.size());
  for (std::optional<T>& slot : slots) out.push_back(std::move(*slot));
  return out;
}

}  // namespace granary::cluster
