// NodeClients: the gateway's native-protocol clients, one granary::Client per node address,
// connected on first use and shared by every request to that node. A client is dropped when its
// node leaves the map or a request on it finds the node unreachable; the next request connects
// anew. Requests in flight keep the client they started on (NodeClient holds it by shared_ptr),
// so readers and writers never outlive their Client.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "cluster/cluster_map.h"
#include "common/mutex.h"
#include "granary/client.h"

namespace granary::gateway {

// A node's address and its client, held for as long as a request uses it.
struct NodeClient {
  std::string address;
  std::shared_ptr<Client> client;
};

class NodeClients {
 public:
  NodeClients(Credentials credentials, ClientOptions options)
      : credentials_(std::move(credentials)), options_(options) {}

  // The client of `node` (of `map`), connecting if there is none. First forgets the clients of
  // nodes that `map` (if newer than any seen before) no longer lists. kUnavailable if the node
  // cannot be reached, kUnauthenticated if it refuses the credentials.
  Result<NodeClient> Of(const cluster::ClusterMap& map, const cluster::NodeInfo& node);

  // Forgets `node`'s client after a request on it failed with kUnavailable, unless it was
  // replaced already; calls in flight on it finish. Other failures keep it.
  void Forget(const NodeClient& node, const Status& failure);

  // How many clients are held (for tests).
  size_t size() const;

 private:
  void PruneLocked(const cluster::ClusterMap& map) REQUIRES(mu_);

  const Credentials credentials_;
  const ClientOptions options_;
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Client>> clients_ GUARDED_BY(mu_);
  uint64_t pruned_epoch_ GUARDED_BY(mu_) = 0;
};

}  // namespace granary::gateway
