// EtcdClient: the calls Granary makes to etcd (v3 API), spoken over etcd's HTTP/JSON gateway
// (`POST /v3/kv/range`, `/v3/kv/txn`, `/v3/lease/grant`, ...). Keys and values are byte strings;
// the client base64-encodes them as the gateway requires.
//
// Every call is one short HTTP request with a deadline. When a request cannot reach an endpoint
// (refused, reset, timed out), the next endpoint of the list is tried; the one that answered
// last is tried first next time. A call that reaches no endpoint returns kUnavailable; an answer
// etcd refuses (a bad request, a lease it does not know) returns its error.
//
// Thread-safe: calls may come from many threads at once; each opens its own connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::cluster {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // the store revision that created the key
  int64_t mod_revision = 0;     // the store revision of its last change
  int64_t lease = 0;            // the lease it is attached to, 0 if none
};

// One comparison of a transaction: the key's create or mod revision equals `revision` (0 for
// "does not exist" when target is kCreate), or its value equals `value`.
struct Compare {
  enum class Target { kCreate, kMod, kValue };
  std::string key;
  Target target = Target::kCreate;
  int64_t revision = 0;
  std::string value;
};

// One operation of a transaction branch.
struct TxnOp {
  enum class Kind { kPut, kDelete, kGet };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;  // kPut
  int64_t lease = 0;  // kPut
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // the store's revision after the transaction
  // For each kGet of the branch that ran, in order: the key's value if it exists.
  std::vector<std::optional<KeyValue>> gets;
};

class EtcdClient {
 public:
  // `endpoints` are "http://host:port" (or "host:port"); at least one. kInvalidArgument if one is
  // malformed. Nothing is contacted until the first call.
  static Result<std::unique_ptr<EtcdClient>> Create(const std::vector<std::string>& endpoints,
                                                    int timeout_ms = 2000);
  // A comma-separated list of endpoints, as a command line gives them.
  static Result<std::unique_ptr<EtcdClient>> Create(std::string_view endpoints_csv,
                                                    int timeout_ms = 2000);
  ~EtcdClient();

  // The key's current value, or nullopt if it does not exist.
  [[nodiscard]] Result<std::optional<KeyValue>> Get(const std::string& key);
  // Every key that starts with `prefix`, in key order; `*revision` (when given) is the store's
  // revision the listing reflects.
  [[nodiscard]] Result<std::vector<KeyValue>> GetPrefix(const std::string& prefix,
                                                        int64_t* revision = nullptr);
  // Returns the store's revision after the write.
  [[nodiscard]] Result<int64_t> Put(const std::string& key, const std::string& value,
                                    int64_t lease = 0);
  [[nodiscard]] Status Delete(const std::string& key);
  [[nodiscard]] Result<TxnResult> Txn(const std::vector<Compare>& compares,
                                      const std::vector<TxnOp>& success,
                                      const std::vector<TxnOp>& failure = {});

  // A new lease of `ttl_seconds`; keys attached to it vanish when it expires.
  [[nodiscard]] Result<int64_t> GrantLease(int64_t ttl_seconds);
  // Renews the lease; returns its TTL in seconds. kNotFound once it has expired (or was revoked).
  [[nodiscard]] Result<int64_t> KeepAlive(int64_t lease);
  // Ends the lease now, deleting its keys. A lease already gone is not an error.
  [[nodiscard]] Status RevokeLease(int64_t lease);

 private:
  struct Endpoint {
    std::string host;
    std::string port;
  };
  EtcdClient(std::vector<Endpoint> endpoints, int timeout_ms);
  // POSTs `body` to `path` and returns the parsed JSON answer's text.
  [[nodiscard]] Result<std::string> Call(const std::string& path, const std::string& body);

  const std::vector<Endpoint> endpoints_;
  const int timeout_ms_;
  std::atomic<size_t> preferred_{0};
};

}  // namespace granary::cluster
