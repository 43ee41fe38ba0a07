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
#include "granary/status.h"

namespace granary::cluster {

// Calls `run(const Chain& partition, std::span<const size_t> items)` once per partition holding
// some of the `n` items (item i's key is `key_of(i)`), and returns each item's result in the
// items' order. `run` returns one T per item it was given, in that order.
template <typename T, typename KeyOf, typename Run>
std::vector<T> ByPartition(const ClusterMap& map, std::string_view bucket, size_t n,
                           KeyOf&& key_of, Run&& run) {
  std::map<uint32_t, std::vector<size_t>> shares;
  for (size_t i = 0; i < n; ++i) shares[map.PartitionOf(bucket, key_of(i)).id].push_back(i);
  std::vector<std::optional<T>> slots(n);
  for (const auto& [chain, items] : shares) {
    std::vector<T> results = run(map.chains[chain], std::span<const size_t>(items));
    for (size_t j = 0; j < items.size(); ++j) {
      if (j < results.size()) {
        slots[items[j]].emplace(std::move(results[j]));
      } else {
        slots[items[j]].emplace(Status::Internal("a batch's answer lacks the result of item " +
                                                 std::to_string(items[j])));
      }
    }
  }
  std::vector<T> out;
  out.reserve(n);
  for (std::optional<T>& slot : slots) out.push_back(std::move(*slot));
  return out;
}

// The items of `all` at `indices`, in that order.
template <typename T>
std::vector<T> Pick(std::span<const T> all, std::span<const size_t> indices) {
  std::vector<T> out;
  out.reserve(indices.size());
  for (size_t i : indices) out.push_back(all[i]);
  return out;
}

}  // namespace granary::cluster
