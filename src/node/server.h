// The single-node server: every role in one process (the embedded default). It opens a blob
// engine on each disk and the namespace in DIR/meta, and serves S3 and the native protocol
// over the same ObjectStore.
//
// Thread-safe: Start and Stop from one thread; the services run on their own threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "meta/object_store.h"
#include "node/credentials.h"

namespace granary::node {

class RpcService;

struct ServerOptions {
  std::string data_dir;
  std::vector<std::string> disks;  // empty: DIR/disk0
  std::string s3_listen = "127.0.0.1:9000";
  std::string native_listen = "127.0.0.1:9100";
  uint64_t inline_max_bytes = 4096;
  uint64_t chunk_bytes = 4ull << 20;
  int s3_threads = 4;
  int s3_worker_threads = 32;
};

class Server {
 public:
  // Opens the data and starts both services; returns once they accept connections.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();

  uint16_t s3_port() const;
  uint16_t native_port() const;
  const RootCredentials& credentials() const { return credentials_; }
  meta::ObjectStore& store() { return *store_; }

  // Stops accepting, finishes or aborts requests in flight, closes the data cleanly.
  Status Stop();

 private:
  struct Services;
  Server() = default;

  RootCredentials credentials_;
  std::unique_ptr<meta::ObjectStore> store_;
  std::unique_ptr<Services> services_;
};

}  // namespace granary::node
