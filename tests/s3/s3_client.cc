// The test client (s3_client.h).
#include "s3/s3_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "s3/auth.h"

namespace granary::s3::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct S3Client::Conn {
  asio::io_context io;
  tcp::socket socket{io};
  boost::beast::flat_buffer buffer;
  bool open = false;
};

std::string HttpResult::Xml(const std::string& tag) const {
  size_t a = body.find("<" + tag + ">");
  if (a == std::string::npos) return "";
  a += tag.size() + 2;
  size_t b = body.find("</" + tag + ">", a);
  return b == std::string::npos ? "" : body.substr(a, b - a);
}

S3Client::S3Client(uint16_t port, std::string host)
    : port_(port), host_(host.empty() ? "127.0.0.1:" + std::to_string(port) : std::move(host)),
      conn_(std::make_unique<Conn>()) {}

S3Client::~S3Client() = default;

HttpResult S3Client::Send(const std::string& method, const std::string& target,
                          const std::string& body,
                          std::vector<std::pair<std::string, std::string>> headers,
                          Payload payload) {
  headers.emplace_back("host", host_);
  SignOptions options;
  options.access_key = kAccessKey;
  options.secret_key = kSecretKey;
  options.now_unix_s = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  options.payload_sha256 = payload == Payload::kSha256 ? Sha256Hex(body) : "UNSIGNED-PAYLOAD";
  std::string wire_body = body;
  if (payload == Payload::kStreaming) {
    options.payload_sha256 = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    headers.emplace_back("x-amz-decoded-content-length", std::to_string(body.size()));
    headers.emplace_back("content-encoding", "aws-chunked");
  }
  Result<SignedRequest> signed_request = SignRequest(method, target, &headers, options);
  if (!signed_request.ok()) return {};
  if (payload == Payload::kStreaming) {
    ChunkSigner signer(*signed_request);
    wire_body.clear();
    for (size_t i = 0; i < body.size(); i += 64 << 10) {
      wire_body += signer.Chunk(std::string_view(body).substr(i, 64 << 10));
    }
    wire_body += signer.Chunk("");
    wire_body += "\r\n";
  }
  headers.emplace_back("authorization", signed_request->authorization);
  return Exchange(method, target, wire_body, headers);
}

HttpResult S3Client::SendUnsigned(const std::string& method, const std::string& target,
                                  const std::string& body,
                                  std::vector<std::pair<std::string, std::string>> headers) {
  headers.emplace_back("host", host_);
  return Exchange(method, target, body, headers);
}

std::string S3Client::Presign(const std::string& method, const std::string& target,
                              int64_t expires_s) {
  SignOptions options;
  options.access_key = kAccessKey;
  options.secret_key = kSecretKey;
  options.now_unix_s = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  Result<std::string> t = PresignTarget(method, target, host_, expires_s, options);
  return t.ok() ? *t : std::string();
}

HttpResult S3Client::Exchange(const std::string& method, const std::string& target,
                              const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string raw = method + " " + target + " HTTP/1.1\r\n";
  bool has_length = false;
  for (const auto& [n, v] : headers) {
    raw += n + ": " + v + "\r\n";
    if (n == "content-length") has_length = true;
  }
  if (!has_length) raw += "content-length: " + std::to_string(body.size()) + "\r\n";
  raw += "\r\n";
  raw += body;
  return Raw(raw);
}

HttpResult S3Client::Raw(const std::string& raw) {
  HttpResult out;
  boost::system::error_code ec;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!conn_->open) {
      conn_ = std::make_unique<Conn>();
      conn_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
      if (ec) return out;
      timeval tv{30, 0};
      setsockopt(conn_->socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      conn_->open = true;
    }
    asio::write(conn_->socket, asio::buffer(raw), ec);
    if (ec) {
      conn_->open = false;
      continue;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 34);
    parser.skip(raw.starts_with("HEAD "));
    http::read(conn_->socket, conn_->buffer, parser, ec);
    if (ec) {
      conn_->open = false;
      return out;
    }
    auto& res = parser.get();
    out.ok = true;
    out.status = res.result_int();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) conn_->open = false;
    return out;
  }
  return out;
}

void S3Client::WriteAndClose(const std::string& raw) {
  conn_ = std::make_unique<Conn>();
  boost::system::error_code ec;
  conn_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  if (ec) return;
  asio::write(conn_->socket, asio::buffer(raw), ec);
  conn_->socket.close(ec);
}

}  // namespace granary::s3::testing
