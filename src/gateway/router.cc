#include "gateway/router.h"

#include <string>

namespace granary::gateway {

Result<NodeClient> Router::HeadOf(const cluster::ClusterMap& map, std::string_view bucket,
                                  std::string_view key) {
  const cluster::Chain& partition = map.PartitionOf(bucket, key);
  Result<const cluster::NodeInfo*> head = cluster::LiveHead(map, partition);
  if (!head.ok()) {
    return head.status().WithContext("the partition of bucket \"" + std::string(bucket) + "\"");
  }
  return clients_.Of(map, **head);
}

void Router::Failed(const NodeClient& node, const Status& failure) {
  if (failure.code() == Code::kStaleMap) maps_->Refresh().IgnoreError();
  clients_.Forget(node, failure);
}

}  // namespace granary::gateway
