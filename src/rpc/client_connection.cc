#include "rpc/client_connection.h"

#include <google/protobuf/message_lite.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "rpc/auth.h"

namespace granary::rpc {

Result<std::unique_ptr<ClientConnection>> ClientConnection::Connect(boost::asio::io_context& io,
                                                                    std::string_view address,
                                                                    std::string_view access_key,
                                                                    std::string_view secret_key,
                                                                    Deadline deadline) {
  ASSIGN_OR_RETURN(std::unique_ptr<Socket> socket, Socket::Connect(io, address, deadline));
  std::unique_ptr<ClientConnection> conn(new ClientConnection(std::move(socket)));
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  ASSIGN_OR_RETURN(proto::HelloRequest hello, MakeHello(access_key, secret_key, now));
  RETURN_IF_ERROR(conn->Send(kHelloMethod, hello, {}, deadline));
  Response response;
  RETURN_IF_ERROR(conn->ReadResponse(&response, deadline));
  if (!response.status.ok()) return response.status;
  proto::HelloResponse hello_response;
  if (!hello_response.ParseFromString(response.body)) {
    return Status::Unavailable("server at " + std::string(address) + " sent a bad Hello response");
  }
  // The server's limits bound what this client sends; never raise above what this build accepts.
  if (hello_response.max_header_bytes() != 0) {
    conn->limits_.max_header_bytes = static_cast<uint32_t>(
        std::min<uint64_t>(hello_response.max_header_bytes(), conn->limits_.max_header_bytes));
  }
  if (hello_response.max_payload_bytes() != 0) {
    conn->limits_.max_payload_bytes =
        std::min(hello_response.max_payload_bytes(), conn->limits_.max_payload_bytes);
  }
  return conn;
}

Status ClientConnection::Fail(Status status) {
  broken_ = true;
  socket_->Shutdown();
  return status;
}

bool ClientConnection::Reusable() { return idle() && socket_->LooksAlive(); }

Status ClientConnection::EncodeRequest(uint32_t method, const google::protobuf::MessageLite& body,
                                       uint64_t payload_length, bool chunked) {
  if (broken_) return Status::Unavailable("connection to " + peer() + " is broken");
  if (request_open_) return Status::Internal("a request was sent before the last one finished");
  header_.Clear();
  sent_request_id_ = next_request_id_++;
  sent_method_ = method;
  header_.set_request_id(sent_request_id_);
  header_.set_method(method);
  if (!body.SerializeToString(header_.mutable_body())) {
    return Status::Internal("request body did not serialize");
  }
  // Too large a header or payload is the caller's problem; the connection stays usable.
  return EncodeFrameStart(header_, payload_length, chunked, limits_, &out_);
}

Status ClientConnection::Send(uint32_t method, const google::protobuf::MessageLite& body,
                              std::span<const std::string_view> payload, Deadline deadline) {
  uint64_t total = 0;
  for (std::string_view p : payload) total += p.size();
  RETURN_IF_ERROR(EncodeRequest(method, body, total, false));
  chunked_ = false;
  payload_left_ = 0;
  std::string_view inline_pieces[8];
  std::vector<std::string_view> heap_pieces;
  std::span<std::string_view> pieces;
  if (payload.size() + 1 <= std::size(inline_pieces)) {
    pieces = std::span<std::string_view>(inline_pieces, payload.size() + 1);
  } else {
    heap_pieces.resize(payload.size() + 1);
    pieces = heap_pieces;
  }
  pieces[0] = out_;
  std::copy(payload.begin(), payload.end(), pieces.begin() + 1);
  request_open_ = true;
  Status st = socket_->WriteAll(pieces, deadline);
  return st.ok() ? st : Fail(st);
}

Status ClientConnection::SendStart(uint32_t method, const google::protobuf::MessageLite& body,
                                   uint64_t payload_length, bool chunked, Deadline deadline) {
  RETURN_IF_ERROR(EncodeRequest(method, body, payload_length, chunked));
  chunked_ = chunked;
  payload_left_ = chunked ? 0 : payload_length;
  request_open_ = true;
  Status st = socket_->WriteAll(out_, deadline);
  return st.ok() ? st : Fail(st);
}

Status ClientConnection::SendPayload(std::string_view data, Deadline deadline) {
  if (broken_) return Status::Unavailable("connection to " + peer() + " is broken");
  if (!chunked_) {
    if (data.size() > payload_left_) {
      return Fail(Status::InvalidArgument(
          "appended more bytes than the " + std::to_string(payload_left_) +
          " still expected (PutOptions::expected_size); the upload is abandoned"));
    }
    payload_left_ -= data.size();
    Status st = socket_->WriteAll(data, deadline);
    return st.ok() ? st : Fail(st);
  }
  while (!data.empty()) {
    size_t n = std::min<size_t>(data.size(), kMaxChunkBytes);
    char len[4];
    EncodeChunkLength(static_cast<uint32_t>(n), len);
    std::string_view pieces[2] = {std::string_view(len, 4), data.substr(0, n)};
    Status st = socket_->WriteAll(pieces, deadline);
    if (!st.ok()) return Fail(st);
    data.remove_prefix(n);
  }
  return Status::OK();
}

Status ClientConnection::EndChunkedPayload(Deadline deadline) {
  if (!chunked_) {
    return Fail(Status::Internal("EndChunkedPayload on a request that is not chunked"));
  }
  char len[4];
  EncodeChunkLength(0, len);
  chunked_ = false;
  Status st = socket_->WriteAll(std::string_view(len, 4), deadline);
  return st.ok() ? st : Fail(st);
}

Status ClientConnection::ReadResponse(Response* response, Deadline deadline) {
  if (broken_) return Status::Unavailable("connection to " + peer() + " is broken");
  if (chunked_ || payload_left_ != 0) {
    return Fail(Status::Internal("response awaited before the request payload was complete"));
  }
  char prefix_bytes[kPrefixBytes];
  Status st = socket_->ReadFull(prefix_bytes, kPrefixBytes, deadline);
  if (!st.ok()) return Fail(st);
  // Responses are bounded by what this build accepts, not by what it may send.
  FrameLimits read_limits;
  Result<FramePrefix> prefix = DecodePrefix(prefix_bytes, read_limits);
  if (!prefix.ok()) {
    return Fail(
        Status::Unavailable("bad response from " + peer() + ": " + prefix.status().ToString()));
  }
  if (prefix->chunked()) {
    return Fail(Status::Unavailable("bad response from " + peer() + ": chunked payload"));
  }
  header_bytes_.resize(prefix->header_length);
  st = socket_->ReadFull(header_bytes_.data(), header_bytes_.size(), deadline);
  if (!st.ok()) return Fail(st);
  header_.Clear();
  st = DecodeHeader(prefix_bytes, *prefix, header_bytes_, &header_);
  if (!st.ok())
    return Fail(Status::Unavailable("bad response from " + peer() + ": " + st.ToString()));
  if (!header_.response() || header_.request_id() != sent_request_id_ ||
      header_.method() != sent_method_) {
    return Fail(Status::Unavailable("response from " + peer() +
                                    " does not answer the request sent (request id " +
                                    std::to_string(header_.request_id()) + ", expected " +
                                    std::to_string(sent_request_id_) + ")"));
  }
  response->status = StatusFromWire(header_.status_code(), header_.status_message());
  response->body.swap(*header_.mutable_body());
  response->payload_length = prefix->payload_length;
  response_payload_left_ = prefix->payload_length;
  request_open_ = response_payload_left_ != 0;
  return Status::OK();
}

Status ClientConnection::ReadEarlyResponse(Response* response, Deadline deadline) {
  chunked_ = false;
  payload_left_ = 0;
  Status st = ReadResponse(response, deadline);
  if (!st.ok()) return st;
  Fail(Status::OK()).IgnoreError();
  return Status::OK();
}

Status ClientConnection::ReadPayload(void* buf, size_t n, Deadline deadline) {
  if (n > response_payload_left_) {
    return Fail(Status::Internal("reading " + std::to_string(n) + " payload bytes where " +
                                 std::to_string(response_payload_left_) + " remain"));
  }
  Status st = socket_->ReadFull(buf, n, deadline);
  if (!st.ok()) return Fail(st);
  response_payload_left_ -= n;
  if (response_payload_left_ == 0) request_open_ = false;
  return Status::OK();
}

Status ClientConnection::SkipPayload(uint64_t n, Deadline deadline) {
  char scratch[64 * 1024];
  while (n > 0) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(n, sizeof(scratch)));
    RETURN_IF_ERROR(ReadPayload(scratch, step, deadline));
    n -= step;
  }
  return Status::OK();
}

}  // namespace granary::rpc
