// rpc::Server: accepts native-protocol connections and serves each on its own thread with
// blocking socket calls (handlers block too: they call the object store, which does disk I/O).
// The server owns framing and authentication: the first request of every connection must be a
// valid Hello (rpc/auth.h); everything after it is handed to the Handler one request at a time.
//
// A malformed frame (bad magic, CRC, sizes beyond FrameLimits) closes its connection with a
// logged reason; it never affects other connections.
//
// Thread-safety: Start/port/Stop may be called from any thread. The Handler is called from many
// connection threads at once; each ServerCall belongs to the thread that handles it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/credentials.h"
#include "common/status.h"
#include "rpc/frame.h"

namespace google::protobuf {
class MessageLite;
}

namespace granary::rpc {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // "host:port"; port 0 picks a free port
  int max_connections = 4096;          // further connections are accepted and closed at once
  SecretLookup secrets;                // access key -> secret, for Hello
  Clock* clock = nullptr;              // wall time for Hello's skew check; system clock if null
  FrameLimits limits;
  // Once a request has begun arriving, or a response is being sent, each step must progress
  // within this; a stalled peer is disconnected. An idle connection may wait forever.
  int64_t io_timeout_ms = 120'000;
  // Per-connection buffer that handlers stream payloads through (ServerCall::buffer()).
  size_t buffer_bytes = 1 << 20;
};

// One request being served: its header, its payload to read, and exactly one response.
class ServerCall {
 public:
  virtual ~ServerCall() = default;
  virtual uint32_t method() const = 0;
  virtual std::string_view body() const = 0;  // the request message, serialized
  virtual const std::string& peer() const = 0;
  virtual const std::string& access_key() const = 0;  // who said Hello on this connection

  // The request payload: its length (0 when chunked: unknown until it ends).
  virtual bool payload_chunked() const = 0;
  virtual uint64_t payload_length() const = 0;
  // Reads the next payload bytes into `buf`, filling it unless the payload ends first; returns
  // how many (0 at the end). kUnavailable if the connection fails, kCorruption for bad chunking.
  virtual Result<size_t> ReadPayload(std::span<char> buf) = 0;
  // The connection's reusable buffer of ServerOptions::buffer_bytes.
  virtual std::span<char> buffer() = 0;
  // Keeps `held` until the connection closes (the peer leaves or dies, or the server stops).
  virtual void KeepUntilClosed(std::shared_ptr<void> held) = 0;

  // Responses. Exactly one per request: an error or empty success,
  virtual Status Respond(const Status& status) = 0;
  // a success with a body and an optional payload sent from memory (gathered, not copied),
  virtual Status Respond(const google::protobuf::MessageLite& body,
                         std::span<const std::string_view> payload = {}) = 0;
  // or a success whose `payload_length` bytes follow through WritePayload(); `first` (may be
  // empty) goes out in the same system call as the header.
  virtual Status BeginResponse(const google::protobuf::MessageLite& body, uint64_t payload_length,
                               std::string_view first = {}) = 0;
  virtual Status WritePayload(std::string_view data) = 0;
};

// Serves one request. Returns OK once it has responded (the server answers kInternal for a
// handler that did not, and reads away any payload left unread); an error closes the connection
// (use it when the response could not be completed, e.g. a payload cut short).
using Handler = std::function<Status(ServerCall& call)>;

// Helpers for handlers.
// Parses the request message of `call`; false if it does not parse.
bool ParseBody(const ServerCall& call, google::protobuf::MessageLite* message);
// Reads the whole payload of `call` into `out`: kInvalidArgument (to answer) when it is chunked or
// longer than `max_bytes`, naming `what`; kUnavailable (to return: the connection is broken) when
// it is cut short.
Status ReadWholePayload(ServerCall& call, uint64_t max_bytes, std::string_view what,
                        std::string* out);

class Server {
 public:
  // Binds options.listen and starts accepting. kInvalidArgument for a malformed address,
  // kUnavailable (or kIOError) if it cannot be bound.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options, Handler handler);
  ~Server();  // Stop()s

  uint16_t port() const;
  // Closes the listener and every connection (in-flight handlers see their socket fail) and
  // joins every thread. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::rpc
