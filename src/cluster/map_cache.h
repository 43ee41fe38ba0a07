// MapCache: a process's cached copy of the cluster map, for the processes that route requests by
// it without taking part in the cluster (ChainBlobStore, the S3 gateway). The map is read from
// etcd (keys::kMap) at Open() and again when a caller finds it out of date; a newer copy replaces
// the cached one, an older one never does.
//
// WithRetries() runs one attempt of a request against the cached map until it succeeds, fails
// for good, or `retry_ms` has passed. A request that reached a node which no longer serves it
// (kStaleMap) is retried at once with a fresh map; one that reached no node (kUnavailable) is
// retried with a fresh map after a backoff of 20 ms doubling to 500 ms, since the manager replaces
// a dead member within seconds.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>
#include <utility>

#include "cluster/cluster_map.h"
#include "cluster/etcd.h"
#include "common/mutex.h"

namespace granary::cluster {

// Whether a request that failed with `status` is worth another try with a fresh map: it reached
// the wrong node (kStaleMap) or none (kUnavailable).
inline bool RetryableWithNewMap(const Status& status) {
  return status.code() == Code::kStaleMap || status.code() == Code::kUnavailable;
}

// The status of what a call returned, be it a Status or a Result.
inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

// The node that heads `chain` (its first serving member), or kUnavailable (naming the chain)
// when it has none or the map lists that node as down. Points into `map`.
Result<const NodeInfo*> LiveHead(const ClusterMap& map, const Chain& chain);

class MapCache {
 public:
  // Connects to the comma-separated etcd `endpoints` and reads the map. kInvalidArgument for a
  // malformed endpoint; kUnavailable if etcd cannot be reached or holds no map yet (the message
  // says what to start); kCorruption if the map does not parse.
  static Result<std::unique_ptr<MapCache>> Open(std::string_view endpoints);

  // Reads the map from etcd again; errors as Open().
  Status Refresh();

  // The cached map; never null.
  std::shared_ptr<const ClusterMap> Get() const;

  // Calls `attempt(const ClusterMap&)`, which returns a Status or a Result, with the cached map
  // until it succeeds, returns an error other than kStaleMap / kUnavailable, or `retry_ms` has
  // passed; returns what the last attempt returned.
  template <typename F>
  auto WithRetries(int retry_ms, F&& attempt) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(retry_ms);
    for (int round = 0;; ++round) {
      auto result = attempt(*Get());
      if (result.ok() || !BeforeRetry(StatusOf(result), round, give_up)) return result;
    }
  }

 private:
  explicit MapCache(std::unique_ptr<EtcdClient> etcd) : etcd_(std::move(etcd)) {}

  // After attempt `round` failed with `failed`: false if that is final or time is up; otherwise
  // waits as the failure asks, refreshes the map and returns true.
  bool BeforeRetry(const Status& failed, int round, std::chrono::steady_clock::time_point give_up);

  const std::unique_ptr<EtcdClient> etcd_;
  mutable Mutex mu_;
  std::shared_ptr<const ClusterMap> map_ GUARDED_BY(mu_);
};

}  // namespace granary::cluster
