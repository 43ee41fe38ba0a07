// One accepted connection of rpc::Server: reads frames, checks the Hello, hands requests to the
// Handler and writes responses. Runs on its own thread (Serve()); Shutdown() may be called from
// any thread to end it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "rpc/auth.h"
#include "rpc/server.h"
#include "rpc/socket.h"

namespace granary::rpc {

class ServerConnection final : public ServerCall {
 public:
  ServerConnection(std::unique_ptr<Socket> socket, const ServerOptions& options,
                   const Handler& handler, HelloVerifier& verifier);

  // Serves requests until the peer leaves, a frame is bad or the socket is shut down.
  void Serve();
  void Shutdown() { socket_->Shutdown(); }

  // ServerCall.
  uint32_t method() const override { return header_.method(); }
  std::string_view body() const override { return header_.body(); }
  const std::string& peer() const override { return socket_->peer(); }
  const std::string& access_key() const override { return access_key_; }
  bool payload_chunked() const override { return prefix_.chunked(); }
  uint64_t payload_length() const override { return prefix_.payload_length; }
  Result<size_t> ReadPayload(std::span<char> buf) override;
  std::span<char> buffer() override;
  void KeepUntilClosed(std::shared_ptr<void> held) override { held_.push_back(std::move(held)); }
  Status Respond(const Status& status) override;
  Status Respond(const google::protobuf::MessageLite& body,
                 std::span<const std::string_view> payload) override;
  Status BeginResponse(const google::protobuf::MessageLite& body, uint64_t payload_length,
                       std::string_view first) override;
  Status WritePayload(std::string_view data) override;

 private:
  void ServeRequests();
  // Reads one request's prefix and header. `*idle_eof` when the peer left between requests.
  Status ReadRequest(bool* idle_eof);
  // Handles the Hello; an error means the connection must close.
  Status HandleHello();
  void LogClose(const Status& st);
  // Reads and discards what the handler left of the request payload.
  Status DrainPayload();
  Status SendHeader(const Status& status, const google::protobuf::MessageLite* body,
                    uint64_t payload_length, std::span<const std::string_view> payload);
  Deadline IoDeadline() const { return DeadlineAfterMs(options_.io_timeout_ms); }

  std::unique_ptr<Socket> socket_;
  const ServerOptions& options_;
  const Handler& handler_;
  HelloVerifier& verifier_;
  std::string access_key_;  // empty until a Hello succeeds

  // The request being served.
  char prefix_bytes_[kPrefixBytes];
  FramePrefix prefix_;
  proto::FrameHeader header_;
  std::string header_bytes_;
  uint64_t payload_left_ = 0;  // unchunked: bytes unread; chunked: bytes unread of this chunk
  bool payload_done_ = false;  // chunked: the ending chunk was read
  // The response.
  bool responded_ = false;
  uint64_t response_payload_left_ = 0;
  std::string out_;  // encoded prefix and header of the response; capacity reused
  std::vector<char> buffer_;
  std::vector<std::shared_ptr<void>> held_;  // released when the connection ends
};

}  // namespace granary::rpc
