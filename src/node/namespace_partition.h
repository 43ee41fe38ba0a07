// One namespace partition on a node, and helpers shared by the files of NamespacePartitions
// (namespace_partitions.cc: serving; namespace_fill.cc: filling members). Internal to src/node.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "meta/object_store.h"
#include "meta/replicated_db.h"
#include "node/namespace_partitions.h"

namespace granary::node {

inline constexpr size_t kPageBytes = 4 << 20;         // of a pull or a copy
inline constexpr uint64_t kMaxEntryBytes = 256 << 20;  // one entry sent down the chain

inline Status StaleHead(const std::string& node, const cluster::Chain& chain) {
  return Status(Code::kStaleMap, "node " + node + " does not head namespace partition " +
                                     std::to_string(chain.id) + " (chain version " +
                                     std::to_string(chain.version) + ")");
}

inline int IndexOf(const std::vector<std::string>& members, const std::string& id) {
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i] == id) return static_cast<int>(i);
  }
  return -1;
}

struct NamespacePartitions::Partition {
  uint32_t chain = 0;
  std::mutex mu;  // opening and closing the store
  std::unique_ptr<meta::ReplicatedDb> db;    // set once by Get()
  std::shared_ptr<meta::ObjectStore> store;  // GUARDED_BY(mu): while this node heads it
  uint64_t settled_version = 0;              // GUARDED_BY(mu): of the store's last barrier
  std::string last_head;                     // GUARDED_BY(mu): address of the head last heard
  // Stores not yet destroyed: a retired one closes once the requests in flight let go of it,
  // and keeps the partition (its database) alive until then.
  std::atomic<int> open_stores{0};
  std::atomic<bool> diverged{false};
  std::atomic<bool> filling{false};
};

}  // namespace granary::node
