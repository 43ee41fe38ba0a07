// The S3 gateway: an HTTP/1.1 server (Boost.Beast) that speaks the S3 REST API over an
// ObjectApi. SigV4 authentication (header and presigned), path-style and virtual-host-style
// addressing, streaming bodies in both directions, and S3's XML documents and error codes.
//
// Threads: `threads` I/O threads each run one io_context and own the connections accepted onto
// it; ObjectApi calls (which block on disk or network) run on a pool of `worker_threads`, and
// the connection resumes on its I/O thread when they finish. An idle connection costs a socket,
// a timer and a few KiB, so thousands of them never stall the others.
//
// `GET /health` answers 200 "ok" without authentication; every other request must be signed
// with a key that `secrets` knows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/credentials.h"
#include "common/status.h"
#include "granary/object_api.h"

namespace granary::s3 {

struct GatewayOptions {
  std::string listen = "127.0.0.1:9000";             // host:port; port 0 picks a free one
  std::vector<std::string> domains = {"localhost"};  // virtual-host style: "<bucket>.<domain>"
  std::string region = "us-east-1";
  int threads = 4;            // I/O threads
  int worker_threads = 32;    // threads for the blocking ObjectApi calls
  size_t max_header_bytes = 16 * 1024;
  int idle_timeout_s = 120;   // idle keep-alive connections are closed after this
  int max_connections = 20000;
};

// Thread-safe.
class Gateway {
 public:
  // Listens on options.listen and starts serving `api` (which must outlive the gateway).
  // kInvalidArgument for a malformed option, kIOError when the address cannot be bound.
  [[nodiscard]] static Result<std::unique_ptr<Gateway>> Start(ObjectApi& api,
                                                              SecretLookup secrets,
                                                              GatewayOptions options);
  ~Gateway();  // Stop()s

  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // The port listened on (the chosen one when options.listen asked for port 0).
  uint16_t port() const;

  // Closes the listener and every connection (requests in flight are cut off; uploads not yet
  // committed are abandoned), waits for the ObjectApi calls in flight, joins every thread.
  // Idempotent.
  void Stop();

  class Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::s3
