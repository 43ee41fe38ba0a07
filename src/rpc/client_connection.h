// ClientConnection: the client's end of one native-protocol connection. Connect() dials and says
// Hello; then requests go one at a time: send a request (header, then its payload in pieces),
// read the response header, read its payload straight into the caller's memory.
//
// Any transport failure (timeout, reset, a malformed response) marks the connection broken:
// its state is unknown and it must be discarded, never reused.
//
// Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "rpc/frame.h"
#include "rpc/socket.h"

namespace google::protobuf {
class MessageLite;
}

namespace granary::rpc {

// A response header as read: the server's status for the request, its body and how many payload
// bytes follow.
struct Response {
  Status status;
  std::string body;
  uint64_t payload_length = 0;
};

class ClientConnection {
 public:
  // Connects to `address` and authenticates with the access key and secret. kUnavailable if the
  // server cannot be reached (or closes), kUnauthenticated if it refuses the credentials.
  static Result<std::unique_ptr<ClientConnection>> Connect(boost::asio::io_context& io,
                                                           std::string_view address,
                                                           std::string_view access_key,
                                                           std::string_view secret_key,
                                                           Deadline deadline);

  // Sends a request whose payload is `payload`'s pieces (gathered into the same system calls).
  Status Send(uint32_t method, const google::protobuf::MessageLite& body,
              std::span<const std::string_view> payload, Deadline deadline);
  // Sends the header of a request whose payload follows through SendPayload(): exactly
  // `payload_length` bytes, or when `chunked`, any number ended by EndChunkedPayload().
  Status SendStart(uint32_t method, const google::protobuf::MessageLite& body,
                   uint64_t payload_length, bool chunked, Deadline deadline);
  Status SendPayload(std::string_view data, Deadline deadline);
  Status EndChunkedPayload(Deadline deadline);

  // Reads the response to the last request. The transport status is returned; the server's
  // status for the request is in `response->status`.
  Status ReadResponse(Response* response, Deadline deadline);
  // Reads exactly `n` payload bytes into `buf`.
  Status ReadPayload(void* buf, size_t n, Deadline deadline);
  // Reads and drops `n` payload bytes.
  Status SkipPayload(uint64_t n, Deadline deadline);

  // True if the server has already answered while the request payload is still being sent
  // (it refused the request early); ReadEarlyResponse() then reads that answer.
  bool EarlyResponse() { return request_open_ && !broken_ && socket_->Readable(); }
  // Reads an early answer. The connection is then closed: the server still expects the rest of
  // the payload, which will never come.
  Status ReadEarlyResponse(Response* response, Deadline deadline);

  bool broken() const { return broken_; }
  // Not broken and between requests: the last response and its payload were read whole.
  bool idle() const { return !broken_ && !request_open_; }
  // Idle, and the socket shows no sign of having been closed. Never blocks.
  bool Reusable();
  const FrameLimits& limits() const { return limits_; }
  const std::string& peer() const { return socket_->peer(); }

 private:
  explicit ClientConnection(std::unique_ptr<Socket> socket) : socket_(std::move(socket)) {}
  Status Fail(Status status);
  Status EncodeRequest(uint32_t method, const google::protobuf::MessageLite& body,
                       uint64_t payload_length, bool chunked);

  std::unique_ptr<Socket> socket_;
  FrameLimits limits_;
  uint64_t next_request_id_ = 1;
  uint64_t sent_request_id_ = 0;
  uint32_t sent_method_ = 0;
  bool chunked_ = false;
  uint64_t payload_left_ = 0;  // of the request being sent (not chunked)
  uint64_t response_payload_left_ = 0;
  bool request_open_ = false;  // a request was sent whose response is not yet read whole
  bool broken_ = false;
  std::string out_;  // encoded prefix and header; capacity reused
  std::string header_bytes_;
  proto::FrameHeader header_;
};

}  // namespace granary::rpc
