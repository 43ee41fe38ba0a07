// ChainBlobStore: the BlobStore of a cluster, for the processes that use one without holding
// its data (gateways, clients). Each blob goes to its chain (ClusterMap::ChainOf): writes and
// removals to the chain's head, which answers once every member has it; reads to a serving
// member, trying the next one when a member is unreachable or its copy is damaged.
//
// The map comes from etcd and is cached. A node that answers kStaleMap makes the store read the
// map again and retry at once; an unreachable node or chain is retried with backoff (the manager
// replaces a dead member within seconds) until `retry_ms` has passed.
//
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "cluster/cluster_map.h"
#include "replication/blob_store.h"

namespace granary::replication {

struct ChainBlobStoreOptions {
  std::string etcd;  // comma-separated endpoints
  std::string access_key;
  std::string secret_key;
  int retry_ms = 30'000;  // how long one call keeps retrying
  int connections_per_node = 16;
};

// Reads the map once (kUnavailable if etcd cannot be reached or holds no map yet).
Result<std::unique_ptr<BlobStore>> OpenChainBlobStore(ChainBlobStoreOptions options);

}  // namespace granary::replication
