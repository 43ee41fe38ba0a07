// granary::Client: the native C++ client. It speaks Granary's own protocol (framed protobuf
// headers with raw payloads over TCP, docs/formats/rpc.md) to a server's --listen address and
// offers every ObjectApi operation, plus batches of many small objects in one round trip and
// large objects moved in parallel chunks.
//
//   ASSIGN_OR_RETURN(auto client, granary::Client::Connect("127.0.0.1:9100", {key, secret}));
//   RETURN_IF_ERROR(client->Put("bucket", "a/b", bytes).status());
//   ASSIGN_OR_RETURN(std::string data, client->Get("bucket", "a/b"));
//
// Thread-safe: one Client may be used by any number of threads at once; it keeps a pool of
// connections and sends each request on a free one. Every failure is a Status: the server's code
// and message for refused requests, kUnavailable when the server cannot be reached (after
// ClientOptions::retries reconnect attempts for idempotent requests), kUnauthenticated for wrong
// credentials.
//
// ObjectReaders and ObjectWriters a Client returns use its connections: destroy them before the
// Client. A writer reports a refusal by the server (no such bucket, no such upload) at its first
// Append() or at Commit(), not when it is created.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "granary/object_api.h"
#include "granary/status.h"

namespace granary {

struct Credentials {
  std::string access_key;
  std::string secret_key;
};

struct ClientOptions {
  // Connections kept open to the server; also the most requests in flight at once.
  int max_connections = 16;
  // Objects larger than this move as parallel ranged requests of this size.
  uint64_t chunk_bytes = 4ull << 20;
  // Chunks of one large object in flight at once.
  int parallel_chunks = 8;
  // Per-request deadline; kUnavailable once it passes. 0: none.
  int64_t timeout_ms = 60'000;
  // Reconnect attempts for idempotent requests after a broken connection.
  int retries = 3;
};

// Memory this process shares with the server its Client is connected to, when both run on one
// host (Client::AllocateShared). A Put() of bytes inside a shared buffer and a GetInto() a range
// of one move no object byte over the socket: the server reads them from, or writes them
// straight into, this memory, and the request carries only where. The caller may use the bytes
// like any memory, but must not change a range while a call on it runs. If the server restarts,
// it forgets its buffers: the first call that finds this out goes over the socket instead, and
// so do the buffer's later calls (allocate a new one to share again).
//
// Destroy it before its Client. Destroying it frees the memory on both sides.
class SharedBuffer {
 public:
  ~SharedBuffer();
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;

  // Allocates every page now (the first writes to them then take no page faults). kIOError if
  // the system cannot.
  Status Populate();

  std::span<char> bytes() const { return {data_, size_}; }
  char* data() const { return data_; }
  size_t size() const { return size_; }

  struct State;

 private:
  friend class Client;
  SharedBuffer(std::unique_ptr<State> state, char* data, size_t size);
  std::unique_ptr<State> state_;
  char* data_;
  size_t size_;
};

class Client : public ObjectApi {
 public:
  // Connects to "host:port" and authenticates. kUnavailable if nothing answers there,
  // kUnauthenticated if the server refuses the credentials.
  static Result<std::unique_ptr<Client>> Connect(std::string_view address,
                                                 const Credentials& credentials,
                                                 const ClientOptions& options = {});
  ~Client() override;

  // Many small objects in one round trip (per connection's worth of bytes). One result per item,
  // in order; missing keys are kNotFound results, not a failed call. Items whose bytes lie in a
  // SharedBuffer are taken from it by the server, not sent.
  std::vector<Result<ObjectInfo>> PutMany(std::string_view bucket,
                                          std::span<const PutItem> items) override;
  std::vector<Result<std::string>> GetMany(std::string_view bucket,
                                           std::span<const std::string> keys) override;
  std::vector<Status> DeleteMany(std::string_view bucket,
                                 std::span<const std::string> keys) override;

  // Each buffer receives the whole of its object; one result per key: the object's size, or
  // kNotFound, or kInvalidArgument if its buffer is too small. One round trip. When every buffer
  // lies in a SharedBuffer, the server writes the objects into them: no byte crosses the socket.
  std::vector<Result<size_t>> GetManyInto(std::string_view bucket,
                                          std::span<const std::string> keys,
                                          std::span<const std::span<char>> buffers);

  // A buffer of `bytes` shared with the server (see SharedBuffer). kNotSupported when the server
  // offers none, kUnavailable when it runs on another host (its door cannot be reached),
  // kInvalidArgument or kNoSpace beyond the server's limits (4 GiB a buffer, 16 GiB a key).
  Result<std::unique_ptr<SharedBuffer>> AllocateShared(uint64_t bytes);

  using ObjectApi::CreateBucket;
  Status CreateBucket(std::string_view bucket, const BucketOptions& options) override;
  Status DeleteBucket(std::string_view bucket) override;
  Result<BucketInfo> HeadBucket(std::string_view bucket) override;
  Result<std::vector<BucketInfo>> ListBuckets() override;
  Result<std::unique_ptr<ObjectWriter>> BeginPut(std::string_view bucket, std::string_view key,
                                                 PutOptions options) override;
  Result<std::unique_ptr<ObjectReader>> Open(std::string_view bucket, std::string_view key,
                                             const GetOptions& options) override;
  Result<ObjectInfo> Head(std::string_view bucket, std::string_view key,
                          const GetOptions& options) override;
  Status Delete(std::string_view bucket, std::string_view key) override;
  Result<ObjectInfo> Copy(std::string_view src_bucket, std::string_view src_key,
                          std::string_view dst_bucket, std::string_view dst_key,
                          const CopyOptions& options) override;
  Result<ListResult> List(std::string_view bucket, const ListOptions& options) override;
  Result<std::string> CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                            PutOptions options) override;
  Result<std::unique_ptr<ObjectWriter>> UploadPart(std::string_view bucket, std::string_view key,
                                                   std::string_view upload_id, int part_number,
                                                   std::string content_md5,
                                                   uint64_t expected_size) override;
  Result<ObjectInfo> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                             std::string_view upload_id,
                                             std::span<const CompletedPart> parts,
                                             const Conditions& conditions) override;
  Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                              std::string_view upload_id) override;
  Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key,
                                    std::string_view upload_id, int part_number_marker,
                                    int max_parts) override;
  Result<ListUploadsResult> ListMultipartUploads(std::string_view bucket,
                                                 const ListUploadsOptions& options) override;

  class Impl;

 protected:
  // Through a shared buffer when `data` or `buf` lies inside one, else over the socket.
  Result<ObjectInfo> PutBytes(std::string_view bucket, std::string_view key,
                              std::string_view data, PutOptions options) override;
  Result<size_t> GetBytesInto(std::string_view bucket, std::string_view key, std::span<char> buf,
                              const GetOptions& options) override;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
