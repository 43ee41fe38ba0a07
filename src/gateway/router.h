// Router: how the gateway reaches a bucket's keys. The namespace partition holding key K of bucket
// B (ClusterMap::PartitionOf(B, K): B's own for a key without a '/', else the one of its top-level
// directory) is served by the head of its chain; the Router finds that node in the cached map and
// hands out its client (NodeClients). Calls about the bucket itself go to its own partition
// (key ""). A node that no longer heads the partition answers
// kStaleMap, one that cannot serve answers kUnavailable: OnHead() then routes the call again with
// a fresh map (MapCache::WithRetries) until `retry_ms` has passed.
//
// Thread-safe.
#pragma once

#include <memory>
#include <string_view>
#include <utility>

#include "cluster/map_cache.h"
#include "gateway/node_clients.h"

namespace granary::gateway {

class Router {
 public:
  Router(std::unique_ptr<cluster::MapCache> maps, Credentials credentials, ClientOptions options,
         int retry_ms)
      : maps_(std::move(maps)), clients_(std::move(credentials), options), retry_ms_(retry_ms) {}

  cluster::MapCache& maps() { return *maps_; }
  NodeClients& clients() { return clients_; }

  // The client of the head of the partition holding `key` of `bucket` in `map`: kUnavailable when
  // the partition has no live head or it cannot be reached.
  Result<NodeClient> HeadOf(const cluster::ClusterMap& map, std::string_view bucket,
                            std::string_view key = {});

  // Runs `attempt(const ClusterMap&)` (which returns a Status or a Result) with fresh maps on
  // kStaleMap / kUnavailable, for up to `retry_ms`.
  template <typename F>
  auto WithRetries(F&& attempt) {
    return maps_->WithRetries(retry_ms_, std::forward<F>(attempt));
  }

  // Calls `call(const NodeClient&)` on the head of the partition holding `key` of `bucket`,
  // retried as WithRetries. Only for calls that may be sent again: a call that reached the node
  // but whose answer was lost may have taken effect.
  template <typename F>
  auto OnHead(std::string_view bucket, std::string_view key, F&& call) {
    return WithRetries([&](const cluster::ClusterMap& map) {
      using R = decltype(call(std::declval<const NodeClient&>()));
      Result<NodeClient> head = HeadOf(map, bucket, key);
      if (!head.ok()) return R(head.status());
      R result = call(*head);
      if (!result.ok()) clients_.Forget(*head, cluster::StatusOf(result));
      return result;
    });
  }

  // On the head of the bucket's own partition.
  template <typename F>
  auto OnHead(std::string_view bucket, F&& call) {
    return OnHead(bucket, std::string_view(), std::forward<F>(call));
  }

  // A failure met outside OnHead (by a reader or writer): the next call is routed anew, with a
  // fresh map after kStaleMap, a new connection after kUnavailable.
  void Failed(const NodeClient& node, const Status& failure);

 private:
  const std::unique_ptr<cluster::MapCache> maps_;
  NodeClients clients_;
  const int retry_ms_;
};

}  // namespace granary::gateway
