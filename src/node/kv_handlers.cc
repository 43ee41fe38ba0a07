// The native protocol's KV_* methods (proto/kv.proto): each names its pool, which stays open for
// the call (a concurrent delete waits for it).
#include <optional>

#include "node/kv_service.h"
#include "node/rpc_handlers.h"
#include "proto/object.pb.h"
#include "rpc/object_convert.h"

namespace granary::node {
namespace {

using rpc_handlers::ParseRequest;

std::vector<std::string_view> Keys(const google::protobuf::RepeatedPtrField<std::string>& keys) {
  return std::vector<std::string_view>(keys.begin(), keys.end());
}

Status TooLargeResponse() {
  return Status::InvalidArgument("KV_GET response would exceed 5 GiB; read the rest separately");
}

Status RespondStatuses(rpc::ServerCall& call, const std::vector<Status>& statuses) {
  proto::KvStatusResponse resp;
  for (const Status& s : statuses) rpc::ToProto(s, resp.add_items());
  return call.Respond(resp);
}

}  // namespace

bool KvService::Handles(uint32_t method) const {
  return method >= proto::KV_OPEN && method <= proto::KV_POOL_DELETE;
}

Status KvService::Dispatch(rpc::ServerCall& call) {
  Status st;
  switch (call.method()) {
    case proto::KV_POOL_CREATE: {
      proto::KvPoolCreateRequest req;
      if (!ParseRequest(call, &req, &st)) return st;
      return call.Respond(CreatePool(req.config()));
    }
    case proto::KV_POOL_LIST: {
      proto::KvPoolListRequest req;
      if (!ParseRequest(call, &req, &st)) return st;
      proto::KvPoolListResponse resp;
      for (auto& info : ListPools(req.name())) *resp.add_pools() = std::move(info);
      if (!req.name().empty() && resp.pools_size() == 0) {
        return call.Respond(NoSuchPool(req.name()));
      }
      return call.Respond(resp);
    }
    case proto::KV_POOL_DELETE: {
      proto::KvPoolDeleteRequest req;
      if (!ParseRequest(call, &req, &st)) return st;
      return call.Respond(DeletePool(req.name()));
    }
    case proto::KV_OPEN: {
      proto::KvOpenRequest req;
      if (!ParseRequest(call, &req, &st)) return st;
      proto::KvOpenResponse resp;
      Result<std::shared_ptr<kv::Pool>> pool = GetPool(req.pool(), resp.mutable_config());
      if (!pool.ok()) return call.Respond(pool.status());
      if (req.shared_memory() && door_) {
        rpc::FdDoor::Offer offer{*pool, (*pool)->arena_fd(), (*pool)->arena_bytes()};
        Result<std::string> token = door_->Issue(std::move(offer));
        if (token.ok()) {
          resp.set_shm_socket(door_->name());
          resp.set_shm_token(*token);
        }
      }
      return call.Respond(resp);
    }
    case proto::KV_PUT:
      return Put(call);
    case proto::KV_GET:
      return Get(call);
    default:
      break;
  }
  proto::KvKeysRequest req;
  if (!ParseRequest(call, &req, &st)) return st;
  Result<std::shared_ptr<kv::Pool>> opened = GetPool(req.pool());
  if (!opened.ok()) return call.Respond(opened.status());
  kv::Pool& pool = **opened;
  std::vector<std::string_view> keys = Keys(req.keys());
  if (call.method() == proto::KV_EXISTS || call.method() == proto::KV_LONGEST_PREFIX) {
    // Answers about keys that can never be stored would hide the caller's mistake.
    for (size_t i = 0; i < keys.size(); ++i) {
      Status st = kv::CheckKvKey(keys[i]);
      if (!st.ok()) return call.Respond(st.WithContext("key " + std::to_string(i)));
    }
  }
  switch (call.method()) {
    case proto::KV_EXISTS: {
      proto::KvExistsResponse resp;
      for (bool found : pool.BatchExists(keys)) resp.add_found(found);
      return call.Respond(resp);
    }
    case proto::KV_LONGEST_PREFIX: {
      proto::KvLongestPrefixResponse resp;
      resp.set_count(pool.LongestPrefix(keys));
      return call.Respond(resp);
    }
    case proto::KV_REMOVE:
    case proto::KV_PIN:
    case proto::KV_UNPIN: {
      std::vector<Status> statuses;
      statuses.reserve(keys.size());
      for (std::string_view key : keys) {
        if (call.method() == proto::KV_REMOVE) {
          statuses.push_back(pool.Remove(key));
        } else if (call.method() == proto::KV_PIN) {
          statuses.push_back(pool.Pin(key));
        } else {
          statuses.push_back(pool.Unpin(key));
        }
      }
      return RespondStatuses(call, statuses);
    }
    case proto::KV_STATS: {
      proto::KvStatsResponse resp;
      StatsToProto(pool.Stats(), resp.mutable_stats());
      return call.Respond(resp);
    }
    default:
      return call.Respond(Status::NotSupported("KV method " + std::to_string(call.method()) +
                                               " is not supported by this server"));
  }
}

Status KvService::Put(rpc::ServerCall& call) {
  proto::KvPutRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  if (req.keys_size() != req.sizes_size()) {
    return call.Respond(Status::InvalidArgument("KV_PUT needs one size per key"));
  }
  if (call.payload_chunked()) {
    return call.Respond(Status::InvalidArgument("KV_PUT needs a payload of known length"));
  }
  uint64_t total = 0;
  for (uint64_t size : req.sizes()) total += size;
  if (total != call.payload_length()) {
    return call.Respond(Status::InvalidArgument(
        "KV_PUT sizes add up to " + std::to_string(total) + " bytes but the payload has " +
        std::to_string(call.payload_length())));
  }
  if (total > rpc_handlers::kMaxBatchPayloadBytes) {
    return call.Respond(Status::InvalidArgument(
        "KV_PUT payload of " + std::to_string(total) + " bytes exceeds the limit of " +
        std::to_string(rpc_handlers::kMaxBatchPayloadBytes) + "; split the batch"));
  }
  Result<std::shared_ptr<kv::Pool>> pool = GetPool(req.pool());
  if (!pool.ok()) return call.Respond(pool.status());
  // The values go from the socket straight into the pool's memory.
  std::vector<std::string_view> keys = Keys(req.keys());
  std::vector<uint64_t> sizes(req.sizes().begin(), req.sizes().end());
  Status stream;
  auto read = [&](std::span<char> dst) -> Status {
    Result<size_t> got = call.ReadPayload(dst);
    stream = got.status();
    if (stream.ok() && *got != dst.size()) stream = Status::Unavailable("KV_PUT payload ended early");
    return stream;
  };
  std::vector<Status> statuses = (*pool)->BatchPutFrom(keys, sizes, read);
  if (!stream.ok()) return stream;  // the connection cannot go on
  return RespondStatuses(call, statuses);
}

Status KvService::Get(rpc::ServerCall& call) {
  proto::KvGetRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  const bool limited = req.max_sizes_size() != 0;
  if (limited && req.max_sizes_size() != req.keys_size()) {
    return call.Respond(Status::InvalidArgument("KV_GET max_sizes must have one entry per key"));
  }
  Result<std::shared_ptr<kv::Pool>> opened = GetPool(req.pool());
  if (!opened.ok()) return call.Respond(opened.status());
  kv::Pool& pool = **opened;
  std::vector<std::string_view> keys = Keys(req.keys());
  auto too_big = [&](int i, uint64_t size) -> Status {
    if (!limited || size <= req.max_sizes(i)) return Status::OK();
    return Status::InvalidArgument("the value has " + std::to_string(size) +
                                   " bytes; its buffer holds " + std::to_string(req.max_sizes(i)));
  };
  proto::KvGetResponse resp;
  if (req.locate()) {
    if (req.arena_id() != pool.arena_id()) {
      return call.Respond(Status::PreconditionFailed(
          "the client's mapping of KV pool \"" + req.pool() +
          "\" is of an arena the pool no longer has (the pool was created again or the server "
          "restarted): open the pool again"));
    }
    std::vector<std::optional<std::string>> unplaced;
    std::vector<Result<kv::BlockLocation>> found = pool.BatchLocate(keys, &unplaced);
    std::vector<std::string_view> payload;
    uint64_t total = 0;
    for (int i = 0; i < req.keys_size(); ++i) {
      proto::KvGetResponse::Item* item = resp.add_items();
      if (unplaced[i].has_value()) {
        // Read from disk with no room in DRAM: sent as it is rather than read again.
        const uint64_t size = unplaced[i]->size();
        Status s = too_big(i, size);
        if (s.ok() && total + size > kMaxSinglePutBytes) s = TooLargeResponse();
        rpc::ToProto(s, item->mutable_status());
        if (!s.ok()) continue;
        item->set_size(size);
        item->set_in_payload(true);
        total += size;
        if (size > 0) payload.push_back(*unplaced[i]);
        continue;
      }
      Status s = found[i].status();
      if (s.ok()) s = too_big(i, found[i]->size);
      rpc::ToProto(s, item->mutable_status());
      if (!s.ok()) continue;
      item->set_size(found[i]->size);
      for (size_t e = 0; e < found[i]->extents.size(); ++e) {
        proto::KvExtent* extent = item->add_extents();
        extent->set_offset(found[i]->extents[e].offset);
        extent->set_length(found[i]->extents[e].length);
        extent->set_generation(found[i]->generations[e]);
      }
    }
    return call.Respond(resp, payload);
  }
  // Over the socket: the values go out from the pool's memory, gathered, while views keep the
  // blocks in place (or hold the copy read from disk when there was no room in DRAM).
  std::vector<kv::BlockView> views;
  views.reserve(req.keys_size());
  std::vector<std::string_view> payload;
  uint64_t total = 0;
  for (int i = 0; i < req.keys_size(); ++i) {
    proto::KvGetResponse::Item* item = resp.add_items();
    Result<kv::BlockView> view = pool.Acquire(keys[i]);
    Status s = view.status();
    const uint64_t size = s.ok() ? view->size() : 0;
    if (s.ok()) s = too_big(i, size);
    if (s.ok() && total + size > kMaxSinglePutBytes) s = TooLargeResponse();
    rpc::ToProto(s, item->mutable_status());
    if (!s.ok()) continue;
    item->set_size(size);
    total += size;
    views.push_back(std::move(*view));  // first: a view's own copy may move with it
    for (std::span<const char> piece : views.back().pieces()) {
      if (!piece.empty()) payload.emplace_back(piece.data(), piece.size());
    }
  }
  return call.Respond(resp, payload);
}

}  // namespace granary::node
