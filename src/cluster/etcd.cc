#include "cluster/etcd.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/crypto.h"

namespace granary::cluster {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using json = nlohmann::json;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// The member `field` of `object`, or null when `object` is not an object or lacks it: what
// etcd answers is read without ever throwing.
const json& Member(const json& object, const char* field) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(field);
  return it == object.end() ? kNull : *it;
}

// etcd's gateway writes 64-bit integers as JSON strings, and leaves out fields that are zero.
int64_t Int(const json& object, const char* field) {
  const json& value = Member(object, field);
  if (value.is_number_integer()) return value.get<int64_t>();
  if (!value.is_string()) return 0;
  const std::string& text = value.get_ref<const std::string&>();
  int64_t out = 0;
  std::from_chars(text.data(), text.data() + text.size(), out);
  return out;
}

std::string Bytes(const json& object, const char* field) {
  auto it = object.is_object() ? object.find(field) : object.end();
  if (!object.is_object() || it == object.end() || !it->is_string()) return {};
  auto decoded = Base64Decode(it->get<std::string>());
  return decoded.ok() ? std::move(*decoded) : std::string();
}

KeyValue ParseKeyValue(const json& kv) {
  KeyValue out;
  out.key = Bytes(kv, "key");
  out.value = Bytes(kv, "value");
  out.create_revision = Int(kv, "create_revision");
  out.mod_revision = Int(kv, "mod_revision");
  out.lease = Int(kv, "lease");
  return out;
}

// The key just past every key that starts with `prefix` (etcd's range_end for a prefix).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

json OpJson(const TxnOp& op) {
  switch (op.kind) {
    case TxnOp::Kind::kPut: {
      json put = {{"key", Base64Encode(op.key)}, {"value", Base64Encode(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      return {{"request_put", put}};
    }
    case TxnOp::Kind::kDelete:
      return {{"request_delete_range", {{"key", Base64Encode(op.key)}}}};
    case TxnOp::Kind::kGet:
      return {{"request_range", {{"key", Base64Encode(op.key)}}}};
  }
  return {};
}

json CompareJson(const Compare& c) {
  json out = {{"key", Base64Encode(c.key)}, {"result", "EQUAL"}};
  switch (c.target) {
    case Compare::Target::kCreate:
      out["target"] = "CREATE";
      out["create_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kMod:
      out["target"] = "MOD";
      out["mod_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kValue:
      out["target"] = "VALUE";
      out["value"] = Base64Encode(c.value);
      break;
  }
  return out;
}

Result<json> Parse(const std::string& text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::Unavailable("etcd answered something that is not a JSON object: " +
                               text.substr(0, 200));
  }
  return parsed;
}

}  // namespace

EtcdClient::EtcdClient(std::vector<Endpoint> endpoints, int timeout_ms)
    : endpoints_(std::move(endpoints)), timeout_ms_(timeout_ms) {}
EtcdClient::~EtcdClient() = default;

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(const std::vector<std::string>& endpoints,
                                                       int timeout_ms) {
  std::vector<Endpoint> parsed;
  for (std::string_view url : endpoints) {
    std::string_view rest = url;
    if (rest.starts_with("http://")) rest.remove_prefix(7);
    if (rest.ends_with("/")) rest.remove_suffix(1);
    size_t colon = rest.rfind(':');
    if (url.starts_with("https://") || colon == std::string_view::npos || colon == 0 ||
        colon + 1 == rest.size() ||
        rest.substr(colon + 1).find_first_not_of("0123456789") != std::string_view::npos) {
      return Status::InvalidArgument("etcd endpoint \"" + std::string(url) +
                                     "\" is invalid: use http://HOST:PORT");
    }
    parsed.push_back({std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))});
  }
  if (parsed.empty()) {
    return Status::InvalidArgument("no etcd endpoint given: use --etcd http://HOST:PORT[,...]");
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(parsed), timeout_ms));
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(std::string_view endpoints_csv,
                                                       int timeout_ms) {
  std::vector<std::string> endpoints;
  size_t start = 0;
  while (start <= endpoints_csv.size()) {
    size_t comma = endpoints_csv.find(',', start);
    if (comma == std::string_view::npos) comma = endpoints_csv.size();
    if (comma > start) endpoints.emplace_back(endpoints_csv.substr(start, comma - start));
    start = comma + 1;
  }
  return Create(endpoints, timeout_ms);
}

Result<std::string> EtcdClient::Call(const std::string& path, const std::string& body) {
  Status last = Status::Unavailable("no etcd endpoint");
  const size_t first = preferred_.load(std::memory_order_relaxed);
  for (size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
    const size_t index = (first + attempt) % endpoints_.size();
    const Endpoint& endpoint = endpoints_[index];
    asio::io_context io;
    boost::beast::tcp_stream stream(io);
    http::response<http::string_body> response;
    Status status;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          asio::ip::tcp::resolver resolver(io);
          auto [resolve_error, addresses] =
              co_await resolver.async_resolve(endpoint.host, endpoint.port, kNoThrow);
          if (resolve_error) {
            status = Status::Unavailable("cannot resolve " + endpoint.host + ": " +
                                         resolve_error.message());
            co_return;
          }
          stream.expires_after(std::chrono::milliseconds(timeout_ms_));
          auto [connect_error, connected] = co_await stream.async_connect(addresses, kNoThrow);
          if (connect_error) {
            status = Status::Unavailable("cannot connect: " + connect_error.message());
            co_return;
          }
          http::request<http::string_body> request(http::verb::post, path, 11);
          request.set(http::field::host, endpoint.host + ":" + endpoint.port);
          request.set(http::field::content_type, "application/json");
          request.body() = body;
          request.prepare_payload();
          auto [write_error, written] = co_await http::async_write(stream, request, kNoThrow);
          if (write_error) {
            status = Status::Unavailable("cannot send: " + write_error.message());
            co_return;
          }
          boost::beast::flat_buffer buffer;
          auto [read_error, read] = co_await http::async_read(stream, buffer, response, kNoThrow);
          if (read_error) {
            status = Status::Unavailable("no answer: " + read_error.message());
          }
        },
        asio::detached);
    io.run();
    if (!status.ok()) {
      last = Status::Unavailable("etcd at " + endpoint.host + ":" + endpoint.port + ": " +
                                 status.message());
      continue;
    }
    if (response.result() != http::status::ok) {
      auto parsed = Parse(response.body());
      const json& message_field = parsed.ok() ? Member(*parsed, "message") : json();
      const std::string message = message_field.is_string()
                                      ? message_field.get<std::string>()
                                      : response.body().substr(0, 200);
      const int64_t code = parsed.ok() ? Int(*parsed, "code") : 0;
      // gRPC codes: 5 NOT_FOUND, 3 INVALID_ARGUMENT, 14 UNAVAILABLE.
      if (code == 5) return Status::NotFound("etcd: " + message);
      if (code == 14 || response.result_int() >= 500) {
        // This member cannot serve now (no leader, shutting down): try another one.
        last = Status::Unavailable("etcd at " + endpoint.host + ":" + endpoint.port + ": " +
                                   message);
        continue;
      }
      return Status::InvalidArgument("etcd refused " + path + ": " + message);
    }
    preferred_.store(index, std::memory_order_relaxed);
    return std::move(response.body());
  }
  return last;
}

Result<std::optional<KeyValue>> EtcdClient::Get(const std::string& key) {
  ASSIGN_OR_RETURN(std::string text,
                           Call("/v3/kv/range", json{{"key", Base64Encode(key)}}.dump()));
  ASSIGN_OR_RETURN(json answer, Parse(text));
  const json& kvs = Member(answer, "kvs");
  if (!kvs.is_array() || kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(ParseKeyValue(kvs.front()));
}

Result<std::vector<KeyValue>> EtcdClient::GetPrefix(const std::string& prefix,
                                                    int64_t* revision) {
  json request = {{"key", Base64Encode(prefix)}, {"range_end", Base64Encode(PrefixEnd(prefix))}};
  ASSIGN_OR_RETURN(std::string text, Call("/v3/kv/range", request.dump()));
  ASSIGN_OR_RETURN(json answer, Parse(text));
  if (revision != nullptr) *revision = Int(Member(answer, "header"), "revision");
  std::vector<KeyValue> out;
  const json& kvs = Member(answer, "kvs");
  if (kvs.is_array()) {
    for (const json& kv : kvs) out.push_back(ParseKeyValue(kv));
  }
  return out;
}

Result<int64_t> EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  json request = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) request["lease"] = std::to_string(lease);
  ASSIGN_OR_RETURN(std::string text, Call("/v3/kv/put", request.dump()));
  ASSIGN_OR_RETURN(json answer, Parse(text));
  return Int(Member(answer, "header"), "revision");
}

Status EtcdClient::Delete(const std::string& key) {
  return Call("/v3/kv/deleterange", json{{"key", Base64Encode(key)}}.dump()).status();
}

Result<TxnResult> EtcdClient::Txn(const std::vector<Compare>& compares,
                                  const std::vector<TxnOp>& success,
                                  const std::vector<TxnOp>& failure) {
  json request = {{"compare", json::array()}, {"success", json::array()},
                  {"failure", json::array()}};
  for (const Compare& c : compares) request["compare"].push_back(CompareJson(c));
  for (const TxnOp& op : success) request["success"].push_back(OpJson(op));
  for (const TxnOp& op : failure) request["failure"].push_back(OpJson(op));
  ASSIGN_OR_RETURN(std::string text, Call("/v3/kv/txn", request.dump()));
  ASSIGN_OR_RETURN(json answer, Parse(text));
  TxnResult result;
  const json& succeeded = Member(answer, "succeeded");
  result.succeeded = succeeded.is_boolean() && succeeded.get<bool>();
  result.revision = Int(Member(answer, "header"), "revision");
  const std::vector<TxnOp>& ran = result.succeeded ? success : failure;
  const json& responses = Member(answer, "responses");
  for (size_t i = 0; i < ran.size(); ++i) {
    if (ran[i].kind != TxnOp::Kind::kGet) continue;
    const json& response = responses.is_array() && i < responses.size() ? responses[i] : json();
    const json& kvs = Member(Member(response, "response_range"), "kvs");
    result.gets.push_back(!kvs.is_array() || kvs.empty()
                              ? std::optional<KeyValue>()
                              : std::optional<KeyValue>(ParseKeyValue(kvs.front())));
  }
  return result;
}

Result<int64_t> EtcdClient::GrantLease(int64_t ttl_seconds) {
  ASSIGN_OR_RETURN(std::string text,
                           Call("/v3/lease/grant", json{{"TTL", ttl_seconds}}.dump()));
  ASSIGN_OR_RETURN(json answer, Parse(text));
  const int64_t id = Int(answer, "ID");
  if (id == 0) return Status::Unavailable("etcd granted no lease: " + text.substr(0, 200));
  return id;
}

Result<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  ASSIGN_OR_RETURN(
      std::string text,
      Call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}.dump()));
  ASSIGN_OR_RETURN(json answer, Parse(text));
  const int64_t ttl = Int(Member(answer, "result"), "TTL");
  if (ttl <= 0) return Status::NotFound("etcd lease " + std::to_string(lease) + " has expired");
  return ttl;
}

Status EtcdClient::RevokeLease(int64_t lease) {
  Status status =
      Call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}.dump()).status();
  return status.code() == Code::kNotFound ? Status::OK() : status;
}

}  // namespace granary::cluster
