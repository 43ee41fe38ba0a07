// Client::Impl: what every part of the client shares: options, the connection pool, the worker
// threads for parallel chunks, and the request/response call with retries.
//
//   client.cc         Connect and the calls without object bytes
//   object_writer.cc  BeginPut / UploadPart: one streamed request per object
//   object_reader.cc  Open: the first piece with the response, the rest in parallel ranged GETs
//   batch.cc          PutMany / GetMany / GetManyInto / DeleteMany
//
// Readers and writers refer to the Impl: they must not outlive their Client.
//
// Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rpc/connection_pool.h"
#include "client/workers.h"
#include "common/mutex.h"
#include "granary/client.h"
#include "proto/object.pb.h"
#include "rpc/client_connection.h"

namespace granary {

class Client::Impl {
 public:
  Impl(std::string address, Credentials credentials, ClientOptions options);

  const ClientOptions& options() const { return options_; }
  rpc::ConnectionPool& pool() { return pool_; }
  client::Workers& workers() { return workers_; }
  rpc::Deadline NewDeadline() const { return rpc::DeadlineAfterMs(options_.timeout_ms); }

  // Whether a failed attempt may be made again: a transport failure (kUnavailable) with tries
  // left. Waits a little before returning true, more after each attempt.
  bool ShouldRetry(const Status& status, int attempt) const;

  // A connection for one request, retrying connection failures (nothing was sent yet).
  Result<rpc::Lease> Acquire();

  // Sends `request` (with `payload`, if any) and reads the response into `response` (may be
  // null). A broken connection is retried with a new one when `idempotent` (or when nothing was
  // sent). The response must have no payload. Returns the server's status or the transport's.
  Status Call(proto::ObjectMethod method, const google::protobuf::MessageLite& request,
              google::protobuf::MessageLite* response, bool idempotent);

  // The client's shared buffers (shared_buffer.cc), by where they are mapped in this process.
  // `anchor` is the connection that keeps buffer `id` alive at the server.
  void AddShared(const char* base, size_t size, uint64_t id, rpc::ClientConnection* anchor);
  void RemoveShared(const char* base);
  // The range of a shared buffer that holds [p, p + n), if one does (n > 0).
  std::optional<proto::SharedRange> SharedRangeOf(const char* p, size_t n) const;
  // Whether the server has lost buffer `id` (its anchor closed: the server restarted). If so the
  // buffer is forgotten: from now on it is plain memory, whose bytes go over the socket.
  bool ForgetIfOrphaned(uint64_t id);
  // Whether a call through shared buffers `ids` that failed with `status` failed because the
  // server lost some of them (kInvalidArgument for an unknown buffer, kNotSupported when it now
  // offers none): those are forgotten, and the call, which stored nothing, may go again with
  // their bytes over the socket.
  bool ForgetOrphans(const Status& status, std::span<const uint64_t> ids);

 private:
  struct Shared {
    size_t size;
    uint64_t id;
    rpc::ClientConnection* anchor;
  };
  const ClientOptions options_;
  rpc::ConnectionPool pool_;
  client::Workers workers_;
  mutable Mutex shared_mu_;
  std::map<const char*, Shared, std::greater<>> shared_ GUARDED_BY(shared_mu_);
};

namespace client {

// A batch request's payload beyond which items go in a further request, and the header bytes
// (keys, metadata) likewise; both well inside the server's limits.
inline constexpr uint64_t kBatchPayloadBytes = 64ull << 20;
inline constexpr size_t kBatchHeaderBytes = 256 << 10;
inline constexpr size_t kItemOverheadBytes = 32;

// OK when a batch response answers every item of the request (`got` of `want`); kInternal
// naming `what` otherwise.
Status CheckCount(int got, size_t want, std::string_view what);

// Splits [0, n) into runs whose header and payload estimates stay within the batch limits.
// `header(i)` and `payload(i)` estimate item i. Returns the end of each run.
std::vector<size_t> SplitBatches(size_t n, const std::function<size_t(size_t)>& header,
                                 const std::function<uint64_t(size_t)>& payload);

// One batch request: sends `request` with `payload`, reads the response header and hands the
// connection to `on_response` to read the response payload. Retries transport failures when
// `idempotent`. Returns the transport's or the server's status for the whole request.
Status RoundTrip(Client::Impl& impl, proto::ObjectMethod method,
                 const google::protobuf::MessageLite& request,
                 std::span<const std::string_view> payload, bool idempotent,
                 const std::function<Status(rpc::ClientConnection&, const rpc::Response&,
                                            rpc::Deadline)>& on_response);

// Parses a response body; kInternal naming the method if it does not parse.
Status ParseResponse(const rpc::Response& response, google::protobuf::MessageLite* message);

// ObjectApi's readers and writers over the native protocol (object_reader.cc, object_writer.cc).
Result<std::unique_ptr<ObjectReader>> OpenReader(Client::Impl& impl, std::string_view bucket,
                                                 std::string_view key, const GetOptions& options);
// GetInto / Put through a shared buffer: `range` is where `buf` or the object's bytes lie in it.
Result<size_t> GetShared(Client::Impl& impl, std::string_view bucket, std::string_view key,
                         std::span<char> buf, const proto::SharedRange& range,
                         const GetOptions& options);
Result<ObjectInfo> PutShared(Client::Impl& impl, std::string_view bucket, std::string_view key,
                             const proto::SharedRange& range, PutOptions options);
Result<std::unique_ptr<ObjectWriter>> StartWriter(Client::Impl& impl, proto::ObjectMethod method,
                                                  const google::protobuf::MessageLite& request,
                                                  uint64_t expected_size);

}  // namespace client
}  // namespace granary
