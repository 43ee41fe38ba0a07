// Calls from one process of a cluster to a storage node: pooled, authenticated connections per
// node address (PeerPools) and one request answered in full (CallPeer).
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "rpc/connection_pool.h"

namespace granary::replication {

class PeerPools {
 public:
  PeerPools(std::string access_key, std::string secret_key, int connections_per_peer)
      : access_key_(std::move(access_key)),
        secret_key_(std::move(secret_key)),
        connections_(connections_per_peer) {}

  rpc::ConnectionPool& Of(const std::string& address);

 private:
  const std::string access_key_;
  const std::string secret_key_;
  const int connections_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<rpc::ConnectionPool>> pools_;  // GUARDED_BY(mu_)
};

struct PeerAnswer {
  Status status;     // the node's answer to the request
  std::string body;  // its response message, serialized
  std::string payload;
  size_t payload_size = 0;  // bytes of payload, wherever they were put
};

// Sends `request` (with `payload`) and reads the answer. The payload of the answer goes into
// `into` when given and large enough, else into PeerAnswer::payload. A transport failure (the
// node unreachable, the connection broken) is the returned error; the node's own error is in
// PeerAnswer::status.
Result<PeerAnswer> CallPeer(rpc::ConnectionPool& pool, uint32_t method,
                            const google::protobuf::MessageLite& request, std::string_view payload,
                            rpc::Deadline deadline, std::span<char> into = {});

}  // namespace granary::replication
