// A small synchronous S3 client for the gateway's tests: SigV4-signed requests (through the
// auth part's SignRequest / PresignTarget) over one keep-alive connection, plus raw HTTP.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace granary::s3::testing {

inline constexpr char kAccessKey[] = "AKIDGRANARYTEST";
inline constexpr char kSecretKey[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

struct HttpResult {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool ok = false;  // a response arrived
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  // The text of the first <tag>...</tag> in the body.
  std::string Xml(const std::string& tag) const;
};

enum class Payload { kSha256, kUnsigned, kStreaming };

class S3Client {
 public:
  explicit S3Client(uint16_t port, std::string host = "");
  ~S3Client();

  // Sends a signed request. `headers` are added (lower-case names) and signed.
  HttpResult Send(const std::string& method, const std::string& target,
                  const std::string& body = "",
                  std::vector<std::pair<std::string, std::string>> headers = {},
                  Payload payload = Payload::kSha256);
  // A request without any signature.
  HttpResult SendUnsigned(const std::string& method, const std::string& target,
                          const std::string& body = "",
                          std::vector<std::pair<std::string, std::string>> headers = {});
  // A presigned URL for `target`, for GET etc. without an Authorization header.
  std::string Presign(const std::string& method, const std::string& target, int64_t expires_s);
  // Writes `raw` bytes and reads one response (or none: ok=false).
  HttpResult Raw(const std::string& raw);
  // Writes `raw` and closes the write side without reading.
  void WriteAndClose(const std::string& raw);

  std::string host() const { return host_; }

 private:
  HttpResult Exchange(const std::string& method, const std::string& target,
                      const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers);
  struct Conn;
  uint16_t port_;
  std::string host_;
  std::unique_ptr<Conn> conn_;
};

}  // namespace granary::s3::testing
