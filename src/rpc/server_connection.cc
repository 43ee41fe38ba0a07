#include "rpc/server_connection.h"

#include <google/protobuf/message_lite.h>

#include <algorithm>

#include "common/logging.h"

namespace granary::rpc {

ServerConnection::ServerConnection(std::unique_ptr<Socket> socket, const ServerOptions& options,
                                   const Handler& handler, HelloVerifier& verifier)
    : socket_(std::move(socket)), options_(options), handler_(handler), verifier_(verifier) {}

void ServerConnection::Serve() {
  ServeRequests();
  held_.clear();  // what the connection anchored goes as soon as it ends
}

void ServerConnection::ServeRequests() {
  for (;;) {
    bool idle_eof = false;
    Status st = ReadRequest(&idle_eof);
    if (idle_eof) return;
    if (!st.ok()) {
      LogClose(st);
      return;
    }
    if (header_.method() == kHelloMethod) {
      st = HandleHello();
    } else if (access_key_.empty()) {
      st = Respond(
          Status(Code::kUnauthenticated, "the first request on a connection must be a Hello"));
      if (st.ok()) st = Status(Code::kUnauthenticated, "request before Hello");
    } else {
      st = handler_(*this);
      if (st.ok() && !responded_) {
        st = Respond(Status::Internal("method " + std::to_string(method()) +
                                      " finished without responding"));
      }
      if (st.ok() && response_payload_left_ != 0) {
        st = Status::Internal("handler left " + std::to_string(response_payload_left_) +
                              " response payload bytes unsent");
      }
      if (st.ok()) st = DrainPayload();
    }
    if (!st.ok()) {
      LogClose(st);
      return;
    }
  }
}

void ServerConnection::LogClose(const Status& st) {
  // A peer that leaves or stalls is routine; a malformed frame or a broken handler is not.
  if (st.code() == Code::kUnavailable || st.code() == Code::kUnauthenticated) {
    GLOG_DEBUG("rpc: closing connection from {}: {}", peer(), st.ToString());
  } else {
    GLOG_WARN("rpc: closing connection from {}: {}", peer(), st.ToString());
  }
}

Status ServerConnection::ReadRequest(bool* idle_eof) {
  RETURN_IF_ERROR(socket_->ReadFull(prefix_bytes_, kPrefixBytes, NoDeadline(), idle_eof));
  ASSIGN_OR_RETURN(prefix_, DecodePrefix(prefix_bytes_, options_.limits));
  header_bytes_.resize(prefix_.header_length);
  RETURN_IF_ERROR(socket_->ReadFull(header_bytes_.data(), header_bytes_.size(), IoDeadline()));
  header_.Clear();
  RETURN_IF_ERROR(DecodeHeader(prefix_bytes_, prefix_, header_bytes_, &header_));
  if (header_.response()) return Status::Corruption("a client sent a response frame");
  payload_left_ = prefix_.chunked() ? 0 : prefix_.payload_length;
  payload_done_ = !prefix_.chunked();
  responded_ = false;
  response_payload_left_ = 0;
  return Status::OK();
}

Status ServerConnection::HandleHello() {
  if (prefix_.chunked() || prefix_.payload_length != 0) {
    return Status::Corruption("Hello must not carry a payload");
  }
  proto::HelloRequest hello;
  Status st;
  if (!access_key_.empty()) {
    st = Status(Code::kUnauthenticated, "Hello sent twice on one connection");
  } else if (!hello.ParseFromString(header_.body())) {
    st = Status(Code::kUnauthenticated, "Hello does not parse");
  } else {
    st = verifier_.Verify(hello);
  }
  if (!st.ok()) {
    GLOG_WARN("rpc: refused Hello from {}: {}", peer(), st.message());
    RETURN_IF_ERROR(Respond(st));
    return st;
  }
  access_key_ = hello.access_key();
  proto::HelloResponse response;
  response.set_max_header_bytes(options_.limits.max_header_bytes);
  response.set_max_payload_bytes(options_.limits.max_payload_bytes);
  response.set_max_batch_bytes(options_.limits.max_payload_bytes);
  return Respond(response, {});
}

Result<size_t> ServerConnection::ReadPayload(std::span<char> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    if (payload_left_ == 0) {
      if (payload_done_) break;
      char len[4];
      RETURN_IF_ERROR(socket_->ReadFull(len, sizeof(len), IoDeadline()));
      uint32_t n = DecodeChunkLength(len);
      if (n == 0) {
        payload_done_ = true;
        break;
      }
      if (n > kMaxChunkBytes) {
        return Status::Corruption("payload chunk of " + std::to_string(n) +
                                  " bytes exceeds the limit of " + std::to_string(kMaxChunkBytes));
      }
      payload_left_ = n;
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(payload_left_, buf.size() - done));
    RETURN_IF_ERROR(socket_->ReadFull(buf.data() + done, n, IoDeadline()));
    done += n;
    payload_left_ -= n;
  }
  return done;
}

std::span<char> ServerConnection::buffer() {
  if (buffer_.empty()) buffer_.resize(std::max<size_t>(options_.buffer_bytes, 4096));
  return buffer_;
}

Status ServerConnection::DrainPayload() {
  while (payload_left_ != 0 || !payload_done_) {
    ASSIGN_OR_RETURN(size_t n, ReadPayload(buffer()));
    if (n == 0) break;
  }
  return Status::OK();
}

Status ServerConnection::SendHeader(const Status& status, const google::protobuf::MessageLite* body,
                                    uint64_t payload_length,
                                    std::span<const std::string_view> payload) {
  if (responded_) return Status::Internal("a request was answered twice");
  responded_ = true;
  proto::FrameHeader header;
  header.set_request_id(header_.request_id());
  header.set_method(header_.method());
  header.set_response(true);
  StatusToHeader(status, &header);
  if (body != nullptr && !body->SerializeToString(header.mutable_body())) {
    return Status::Internal("response body did not serialize");
  }
  Status encoded = EncodeFrameStart(header, payload_length, false, options_.limits, &out_);
  if (!encoded.ok()) {
    // A payload was promised: nothing else can be said on this connection.
    if (payload_length != 0) return encoded;
    // Too large to send (e.g. a listing with huge metadata): answer with the reason instead.
    header.clear_body();
    StatusToHeader(encoded.WithContext("response"), &header);
    RETURN_IF_ERROR(EncodeFrameStart(header, 0, false, options_.limits, &out_));
    RETURN_IF_ERROR(socket_->WriteAll(out_, IoDeadline()));
    return Status::OK();
  }
  std::string_view pieces_inline[8];
  std::vector<std::string_view> pieces_heap;
  std::span<std::string_view> pieces;
  if (payload.size() + 1 <= std::size(pieces_inline)) {
    pieces = std::span<std::string_view>(pieces_inline, payload.size() + 1);
  } else {
    pieces_heap.resize(payload.size() + 1);
    pieces = pieces_heap;
  }
  pieces[0] = out_;
  std::copy(payload.begin(), payload.end(), pieces.begin() + 1);
  return socket_->WriteAll(pieces, IoDeadline());
}

Status ServerConnection::Respond(const Status& status) {
  return SendHeader(status, nullptr, 0, {});
}

Status ServerConnection::Respond(const google::protobuf::MessageLite& body,
                                 std::span<const std::string_view> payload) {
  uint64_t total = 0;
  for (std::string_view p : payload) total += p.size();
  return SendHeader(Status::OK(), &body, total, payload);
}

Status ServerConnection::BeginResponse(const google::protobuf::MessageLite& body,
                                       uint64_t payload_length, std::string_view first) {
  if (first.size() > payload_length) {
    return Status::Internal("first response piece exceeds the stated payload length");
  }
  std::string_view piece[1] = {first};
  RETURN_IF_ERROR(SendHeader(Status::OK(), &body, payload_length,
                             std::span<const std::string_view>(piece, first.empty() ? 0 : 1)));
  response_payload_left_ = payload_length - first.size();
  return Status::OK();
}

Status ServerConnection::WritePayload(std::string_view data) {
  if (data.size() > response_payload_left_) {
    return Status::Internal("response payload longer than stated");
  }
  response_payload_left_ -= data.size();
  return socket_->WriteAll(data, IoDeadline());
}

}  // namespace granary::rpc
