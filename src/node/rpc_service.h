// RpcService: serves the native protocol (docs/formats/rpc.md) over an ObjectApi. Each request
// maps to one ObjectApi call; object bytes stream between the socket and the ObjectWriter /
// ObjectReader in pieces, never buffered whole. Every Status crosses the wire with its code and
// message intact.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/credentials.h"
#include "common/status.h"
#include "granary/object_api.h"

namespace granary::rpc {
class Server;
class SharedBuffers;
}

namespace granary::node {

class KvService;

struct RpcServiceOptions {
  std::string listen = "127.0.0.1:9100";  // "host:port"; port 0 picks a free one
  int max_connections = 4096;
  // Offer shared buffers (rpc/shared_buffers.h) to clients on this host.
  bool shared_buffers = true;
};

class RpcService {  // Thread-safe.
 public:
  // Starts serving `api` and, when given, the KV pools of `kv` (both must outlive the service)
  // on options.listen; connections authenticate with the keys of `secrets`. kInvalidArgument
  // for a malformed address, kUnavailable if it cannot be bound.
  static Result<std::unique_ptr<RpcService>> Start(ObjectApi& api, SecretLookup secrets,
                                                   RpcServiceOptions options,
                                                   KvService* kv = nullptr);
  ~RpcService();  // stops

  uint16_t port() const;  // the bound port
  // Shared buffers registered now (rpc/shared_buffers.h); 0 when none are offered.
  size_t shared_buffers() const;
  // Closes the listener and all connections and waits for their threads. Idempotent.
  void Stop();

 private:
  RpcService(std::unique_ptr<rpc::SharedBuffers> shared, std::unique_ptr<rpc::Server> server);
  std::unique_ptr<rpc::SharedBuffers> shared_;  // null when not offered; outlives server_
  std::unique_ptr<rpc::Server> server_;
};

}  // namespace granary::node
