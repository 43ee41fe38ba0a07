// rpc::Server with a test handler: the Hello gate, requests and payloads in both directions, and
// connections that send garbage, which are closed without disturbing the others.
#include "rpc/server.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include "proto/rpc.pb.h"
#include "rpc/client_connection.h"

namespace granary::rpc {
namespace {

constexpr uint32_t kEcho = 100;      // answers the body back, payload reversed
constexpr uint32_t kNoAnswer = 101;  // handler forgets to respond

SecretLookup Keys() {
  return [](std::string_view key) -> std::optional<std::string> {
    if (key == "AK") return std::string("sk");
    return std::nullopt;
  };
}

Status Handle(ServerCall& call) {
  if (call.method() == kNoAnswer) return Status::OK();
  if (call.method() != kEcho) return call.Respond(Status::NotSupported("unknown method"));
  std::string payload;
  std::span<char> buf = call.buffer();
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, call.ReadPayload(buf));
    if (n == 0) break;
    payload.append(buf.data(), n);
  }
  std::reverse(payload.begin(), payload.end());
  proto::HelloRequest body;  // any message will do: echo the access key
  body.set_access_key(call.access_key() + ":" + std::string(call.body()));
  std::string_view pieces[2] = {std::string_view(payload).substr(0, payload.size() / 2),
                                std::string_view(payload).substr(payload.size() / 2)};
  return call.Respond(body, pieces);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.secrets = Keys();
    options.max_connections = 4;
    options.buffer_bytes = 4096;  // small, so that payloads take many pieces
    auto server = Server::Start(options, Handle);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
  }

  Result<std::unique_ptr<ClientConnection>> Dial(std::string_view secret = "sk") {
    return ClientConnection::Connect(io_, address_, "AK", secret, DeadlineAfterMs(10'000));
  }

  // Echoes `payload` through the server; returns the reversed payload.
  static Result<std::string> Echo(ClientConnection& conn, std::string_view payload) {
    proto::HelloRequest body;
    std::string_view piece[1] = {payload};
    RETURN_IF_ERROR(conn.Send(kEcho, body, piece, DeadlineAfterMs(10'000)));
    Response r;
    RETURN_IF_ERROR(conn.ReadResponse(&r, DeadlineAfterMs(10'000)));
    RETURN_IF_ERROR(r.status);
    std::string out(r.payload_length, '\0');
    RETURN_IF_ERROR(conn.ReadPayload(out.data(), out.size(), DeadlineAfterMs(10'000)));
    return out;
  }

  boost::asio::io_context io_;
  std::unique_ptr<Server> server_;
  std::string address_;
};

TEST_F(ServerTest, EchoesPayloadsOfManySizes) {
  auto conn = Dial();
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{1} << 20}) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 7 + 1);
    Result<std::string> r = Echo(**conn, data);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::reverse(data.begin(), data.end());
    EXPECT_TRUE(*r == data) << size;
    EXPECT_TRUE((*conn)->idle());
  }
}

TEST_F(ServerTest, ChunkedRequestPayload) {
  auto conn = Dial();
  ASSERT_TRUE(conn.ok());
  proto::HelloRequest body;
  auto d = DeadlineAfterMs(10'000);
  ASSERT_TRUE((*conn)->SendStart(kEcho, body, 0, true, d).ok());
  ASSERT_TRUE((*conn)->SendPayload("abc", d).ok());
  ASSERT_TRUE((*conn)->SendPayload("", d).ok());
  ASSERT_TRUE((*conn)->SendPayload("def", d).ok());
  ASSERT_TRUE((*conn)->EndChunkedPayload(d).ok());
  Response r;
  ASSERT_TRUE((*conn)->ReadResponse(&r, d).ok());
  ASSERT_TRUE(r.status.ok());
  std::string out(r.payload_length, '\0');
  ASSERT_TRUE((*conn)->ReadPayload(out.data(), out.size(), d).ok());
  EXPECT_EQ(out, "fedcba");
}

TEST_F(ServerTest, StatusAndUnknownMethods) {
  auto conn = Dial();
  ASSERT_TRUE(conn.ok());
  proto::HelloRequest body;
  auto d = DeadlineAfterMs(10'000);
  ASSERT_TRUE((*conn)->Send(999, body, {}, d).ok());
  Response r;
  ASSERT_TRUE((*conn)->ReadResponse(&r, d).ok());
  EXPECT_EQ(r.status, Status::NotSupported("unknown method"));
  ASSERT_TRUE((*conn)->Send(kNoAnswer, body, {}, d).ok());
  ASSERT_TRUE((*conn)->ReadResponse(&r, d).ok());
  EXPECT_EQ(r.status.code(), Code::kInternal);
  EXPECT_TRUE(Echo(**conn, "xy").ok());  // the connection still serves
}

TEST_F(ServerTest, WrongSecretIsUnauthenticated) {
  auto conn = Dial("nope");
  EXPECT_EQ(conn.status().code(), Code::kUnauthenticated);
}

// Raw sockets that skip the Hello or send garbage.
class RawConnection {
 public:
  RawConnection(boost::asio::io_context& io, const std::string& address) {
    auto s = Socket::Connect(io, address, DeadlineAfterMs(10'000));
    EXPECT_TRUE(s.ok());
    socket_ = std::move(*s);
  }
  Status Write(std::string_view data) { return socket_->WriteAll(data, DeadlineAfterMs(10'000)); }
  // Reads until the server closes; returns what arrived.
  std::string ReadUntilClosed() {
    std::string out;
    char c;
    while (socket_->ReadFull(&c, 1, DeadlineAfterMs(10'000)).ok()) out += c;
    return out;
  }

 private:
  std::unique_ptr<Socket> socket_;
};

std::string Frame(uint32_t method, std::string_view body) {
  proto::FrameHeader h;
  h.set_request_id(1);
  h.set_method(method);
  h.set_body(std::string(body));
  std::string out;
  EXPECT_TRUE(EncodeFrameStart(h, 0, false, {}, &out).ok());
  return out;
}

TEST_F(ServerTest, RequestBeforeHelloIsRefusedAndClosed) {
  RawConnection raw(io_, address_);
  ASSERT_TRUE(raw.Write(Frame(kEcho, "")).ok());
  std::string reply = raw.ReadUntilClosed();
  Result<DecodedFrame> d = DecodeFrame(reply);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->header.response());
  EXPECT_EQ(d->header.status_code(), static_cast<uint32_t>(Code::kUnauthenticated));
  EXPECT_EQ(d->frame_bytes, reply.size());  // nothing after it: closed
}

TEST_F(ServerTest, GarbageClosesOnlyItsConnection) {
  auto good = Dial();
  ASSERT_TRUE(good.ok());
  std::string valid = Frame(kEcho, "");
  std::vector<std::string> garbage = {
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n", std::string(24, '\0'),
      valid.substr(0, 20) + "XXXX" + valid.substr(24),  // CRC mismatch
  };
  std::string oversized = valid;
  oversized[8] = oversized[9] = oversized[10] = '\x7f';  // header length ~2 GiB
  garbage.push_back(oversized);
  for (const std::string& g : garbage) {
    RawConnection raw(io_, address_);
    ASSERT_TRUE(raw.Write(g).ok());
    EXPECT_EQ(raw.ReadUntilClosed(), "");  // closed without an answer
  }
  EXPECT_TRUE(Echo(**good, "still fine").ok());
}

TEST_F(ServerTest, ConnectionLimit) {
  std::vector<std::unique_ptr<ClientConnection>> conns;
  for (int i = 0; i < 4; ++i) {
    auto c = Dial();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    conns.push_back(std::move(*c));
  }
  EXPECT_EQ(Dial().status().code(), Code::kUnavailable);  // fifth: accepted and closed
  conns.pop_back();
  // The closed connection's thread ends once the server sees the close; a new connection is
  // then admitted. Its Hello proves it.
  Result<std::unique_ptr<ClientConnection>> again = Status::Unavailable("not tried");
  for (int i = 0; i < 1000 && !again.ok(); ++i) again = Dial();
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(ServerTest, StopClosesIdleAndBusyConnections) {
  auto idle = Dial();
  ASSERT_TRUE(idle.ok());
  auto busy = Dial();
  ASSERT_TRUE(busy.ok());
  proto::HelloRequest body;
  // A request whose payload never comes: its handler is blocked reading it.
  ASSERT_TRUE((*busy)->SendStart(kEcho, body, 1000, false, DeadlineAfterMs(1000)).ok());
  server_->Stop();
  Response r;
  EXPECT_EQ((*idle)->ReadResponse(&r, DeadlineAfterMs(10'000)).code(), Code::kUnavailable);
  EXPECT_EQ(Dial().status().code(), Code::kUnavailable);
  server_->Stop();  // idempotent
}

}  // namespace
}  // namespace granary::rpc
