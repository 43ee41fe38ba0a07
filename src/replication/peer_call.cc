#include "replication/peer_call.h"

namespace granary::replication {

rpc::ConnectionPool& PeerPools::Of(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& pool = pools_[address];
  if (pool == nullptr) {
    pool = std::make_unique<rpc::ConnectionPool>(address, access_key_, secret_key_, connections_);
  }
  return *pool;
}

Result<PeerAnswer> CallPeer(rpc::ConnectionPool& pool, uint32_t method,
                            const google::protobuf::MessageLite& request, std::string_view payload,
                            rpc::Deadline deadline, std::span<char> into) {
  ASSIGN_OR_RETURN(rpc::Lease lease, pool.Acquire(deadline));
  const size_t pieces = payload.empty() ? 0 : 1;
  RETURN_IF_ERROR(
      lease->Send(method, request, std::span<const std::string_view>(&payload, pieces), deadline));
  rpc::Response response;
  RETURN_IF_ERROR(lease->ReadResponse(&response, deadline));
  PeerAnswer answer;
  answer.status = std::move(response.status);
  answer.body = std::move(response.body);
  answer.payload_size = response.payload_length;
  if (response.payload_length > 0) {
    char* dst;
    if (response.payload_length <= into.size()) {
      dst = into.data();
    } else {
      answer.payload.resize(response.payload_length);
      dst = answer.payload.data();
    }
    RETURN_IF_ERROR(lease->ReadPayload(dst, response.payload_length, deadline));
  }
  return answer;
}

}  // namespace granary::replication
