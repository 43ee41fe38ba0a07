#include "replication/chain_replica.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <set>
#include <thread>

#include "common/logging.h"
#include "proto/chain.pb.h"

namespace granary::replication {
namespace {

using cluster::Chain;
using cluster::ClusterMap;

// The largest blob a chain write carries (the namespace's chunks are far smaller).
constexpr uint64_t kMaxBlobBytes = 256ull << 20;
// How long a listing for a new member waits for older writes to finish.
constexpr auto kDrainWait = std::chrono::seconds(60);

Status BadRequest(rpc::ServerCall& call) {
  return call.Respond(Status::InvalidArgument("request body of chain method " +
                                              std::to_string(call.method()) + " does not parse"));
}

// The chain `id` of `map`, or an error naming it.
Result<const Chain*> FindChain(const ClusterMap& map, uint32_t id) {
  if (id >= map.chains.size()) {
    return Status::InvalidArgument("chain " + std::to_string(id) + " does not exist: the map has " +
                                   std::to_string(map.chains.size()));
  }
  return &map.chains[id];
}

bool Serves(const Chain& chain, const std::string& node) {
  return std::find(chain.members.begin(), chain.members.end(), node) != chain.members.end();
}

void AppendKey(std::string& out, std::string_view key) {
  const uint32_t n = static_cast<uint32_t>(key.size());
  char len[4];
  std::memcpy(len, &n, 4);  // little-endian hosts only (as the frame format)
  out.append(len, 4);
  out.append(key);
}

}  // namespace

ChainReplica::ChainReplica(BlobStore& store, ChainReplicaOptions options,
                           std::function<bool()> writable, std::function<void()> refresh)
    : store_(store),
      options_(std::move(options)),
      writable_(std::move(writable)),
      refresh_(std::move(refresh)),
      peers_(options_.access_key, options_.secret_key, options_.peer_connections) {}

ChainReplica::~ChainReplica() = default;

void ChainReplica::SetMap(std::shared_ptr<const ClusterMap> map) {
  std::lock_guard<std::mutex> lock(mu_);
  if (map_ == nullptr || map->epoch >= map_->epoch) map_ = std::move(map);
}

std::shared_ptr<const ClusterMap> ChainReplica::map() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_;
}

std::shared_ptr<const ClusterMap> ChainReplica::MapFor(uint32_t chain, uint64_t version) {
  auto current = map();
  if (current != nullptr && chain < current->chains.size() &&
      current->chains[chain].version >= version) {
    return current;
  }
  refresh_();
  return map();
}

bool ChainReplica::Handles(uint32_t method) const {
  return method == proto::CHAIN_WRITE || method == proto::CHAIN_READ ||
         method == proto::CHAIN_KEYS;
}

Status ChainReplica::Handle(rpc::ServerCall& call) {
  switch (call.method()) {
    case proto::CHAIN_WRITE:
      return Write(call);
    case proto::CHAIN_READ:
      return Read(call);
    case proto::CHAIN_KEYS:
      return Keys(call);
    default:
      return call.Respond(Status::NotSupported("not a chain method"));
  }
}

Status ChainReplica::BeginWrite(uint32_t chain, uint64_t version, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  // Checked again under the lock SetMap takes: a listing that saw the new version cannot miss
  // a write admitted under the old one.
  if (map_->chains[chain].version != version) {
    return Status(Code::kStaleMap, "chain " + std::to_string(chain) + " changed to version " +
                                       std::to_string(map_->chains[chain].version));
  }
  ++in_flight_[{chain, version}];
  in_flight_keys_.emplace(chain, key);
  return Status::OK();
}

void ChainReplica::EndWrite(uint32_t chain, uint64_t version, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_flight_.find({chain, version});
  if (--it->second == 0) in_flight_.erase(it);
  in_flight_keys_.erase(in_flight_keys_.find({chain, key}));
  writes_done_.notify_all();
}

Status ChainReplica::WaitForWritesBefore(uint32_t chain, uint64_t version) {
  std::unique_lock<std::mutex> lock(mu_);
  const bool drained = writes_done_.wait_for(lock, kDrainWait, [&] {
    auto it = in_flight_.lower_bound({chain, 0});
    return it == in_flight_.end() || it->first.first != chain || it->first.second >= version;
  });
  if (drained) return Status::OK();
  return Status::Unavailable("writes to chain " + std::to_string(chain) +
                             " under older versions are still in progress here");
}

Status ChainReplica::Forward(const std::string& address, const proto::ChainWriteRequest& request,
                             std::string_view value) {
  ASSIGN_OR_RETURN(PeerAnswer answer,
                   CallPeer(peers_.Of(address), proto::CHAIN_WRITE, request, value,
                            rpc::DeadlineAfterMs(options_.peer_timeout_ms)));
  return answer.status;
}

Status ChainReplica::Write(rpc::ServerCall& call) {
  proto::ChainWriteRequest request;
  if (!rpc::ParseBody(call, &request)) return BadRequest(call);
  std::string value;
  Status read = rpc::ReadWholePayload(call, kMaxBlobBytes, "a chain write's blob", &value);
  if (read.code() == Code::kInvalidArgument) return call.Respond(read);
  RETURN_IF_ERROR(read);

  auto map = MapFor(request.chain(), request.version());
  if (map == nullptr) return call.Respond(Status::Unavailable("this node has no cluster map yet"));
  Result<const Chain*> chain = FindChain(*map, request.chain());
  if (!chain.ok()) return call.Respond(chain.status());
  const Chain& c = **chain;
  if (request.version() < c.version) {
    return call.Respond(Status(Code::kStaleMap, "chain " + std::to_string(c.id) +
                                                    " is at version " + std::to_string(c.version) +
                                                    ", the write was routed by version " +
                                                    std::to_string(request.version())));
  }
  if (request.version() > c.version) {
    return call.Respond(Status::Unavailable("node " + options_.node_id +
                                            " has not seen version " +
                                            std::to_string(request.version()) + " of chain " +
                                            std::to_string(c.id) + " yet"));
  }
  const std::vector<std::string> order = c.WriteOrder();
  auto self = std::find(order.begin(), order.end(), options_.node_id);
  if (self == order.end() || (!request.forwarded() && self != order.begin())) {
    return call.Respond(Status(Code::kStaleMap, "node " + options_.node_id + " is not the " +
                                                    (request.forwarded() ? "a member" : "head") +
                                                    " of chain " + std::to_string(c.id)));
  }
  if (!writable_()) {
    return call.Respond(Status::Unavailable("node " + options_.node_id +
                                            " does not hold its lease in etcd: it takes no writes"));
  }
  std::string next;
  if (self + 1 != order.end()) {
    const cluster::NodeInfo* node = map->FindNode(*(self + 1));
    if (node == nullptr) return call.Respond(Status::Internal("chain names an unknown node"));
    next = node->address;
  }

  if (Status begun = BeginWrite(c.id, c.version, request.key()); !begun.ok()) {
    return call.Respond(begun);
  }
  Status local;
  Status forwarded;
  if (request.remove()) {
    const std::string key = request.key();
    local = store_.DeleteMany(std::span<const std::string>(&key, 1));
    if (!next.empty()) {
      request.set_forwarded(true);
      forwarded = Forward(next, request, {});
    }
  } else if (next.empty()) {
    std::pair<std::string, std::string_view> blob{request.key(), value};
    local = store_.PutMany(std::span(&blob, 1));
  } else {
    // This member's write and the rest of the chain's proceed together.
    std::promise<Status> stored;
    store_.PutAsync(request.key(), value, [&stored](Status st) { stored.set_value(st); });
    request.set_forwarded(true);
    forwarded = Forward(next, request, value);
    local = stored.get_future().get();
  }
  EndWrite(c.id, c.version, request.key());
  if (!local.ok()) return call.Respond(local);
  return call.Respond(forwarded);
}

Result<const Chain*> ChainReplica::ServedChain(uint32_t chain_id, uint64_t version,
                                              std::shared_ptr<const ClusterMap>* map) {
  *map = MapFor(chain_id, version);
  if (*map == nullptr) return Status::Unavailable("this node has no cluster map yet");
  ASSIGN_OR_RETURN(const Chain* chain, FindChain(**map, chain_id));
  if (!Serves(*chain, options_.node_id)) {
    return Status(Code::kStaleMap, "node " + options_.node_id + " does not serve chain " +
                                       std::to_string(chain_id));
  }
  return chain;
}

Status ChainReplica::Read(rpc::ServerCall& call) {
  proto::ChainReadRequest request;
  if (!rpc::ParseBody(call, &request)) return BadRequest(call);
  std::shared_ptr<const ClusterMap> map;
  Result<const Chain*> chain = ServedChain(request.chain(), request.version(), &map);
  if (!chain.ok()) return call.Respond(chain.status());
  if (request.length() > kMaxBlobBytes) {
    return call.Respond(Status::InvalidArgument("a chain read is at most " +
                                                std::to_string(kMaxBlobBytes) + " bytes"));
  }
  Result<std::string> read = ReadLocal(request.key(), request.offset(), request.length());
  if (read.status().code() == Code::kCorruption && !request.no_repair()) {
    Status repaired = Repair(*map, **chain, request.key());
    if (!repaired.ok()) {
      GLOG_ERROR("damaged blob in chain {} could not be repaired: {}", request.chain(),
                 repaired.ToString());
    } else {
      read = ReadLocal(request.key(), request.offset(), request.length());
    }
  }
  if (!read.ok()) return call.Respond(read.status());
  const std::string& bytes = *read;
  std::string_view payload = bytes;
  return call.Respond(proto::ChainReadResponse(), std::span<const std::string_view>(&payload, 1));
}

Result<std::string> ChainReplica::ReadLocal(const std::string& key, uint64_t offset,
                                           uint64_t length) {
  if (length == 0) {
    std::vector<Result<std::string>> got = store_.GetMany(std::span<const std::string>(&key, 1));
    if (!got[0].ok()) return got[0].status();
    std::string bytes = std::move(*got[0]);
    bytes.erase(0, std::min<uint64_t>(offset, bytes.size()));
    return bytes;
  }
  std::string bytes(length, '\0');
  ASSIGN_OR_RETURN(size_t n, store_.ReadInto(key, offset, bytes));
  bytes.resize(n);
  return bytes;
}

Status ChainReplica::RepairBlob(const std::string& key) {
  auto map = this->map();
  if (map == nullptr || map->chains.empty()) {
    return Status::Unavailable("this node has no cluster map yet");
  }
  const Chain* chain = map->ChainOf(key);
  if (chain == nullptr) {
    return Status::Unavailable("this node's map has no chains of " +
                               std::to_string(cluster::PlacementOf(key)) + " replicas yet");
  }
  if (!Serves(*chain, options_.node_id)) {
    return Status::PreconditionFailed("node " + options_.node_id + " does not serve chain " +
                                      std::to_string(chain->id));
  }
  return Repair(*map, *chain, key);
}

Status ChainReplica::Repair(const ClusterMap& map, const Chain& chain, const std::string& key) {
  Status last = Status::Unavailable("no other serving member of chain " +
                                    std::to_string(chain.id) + " to repair from");
  for (const std::string& member : chain.members) {
    const cluster::NodeInfo* node = map.FindNode(member);
    if (member == options_.node_id || node == nullptr ||
        node->state == cluster::NodeState::kDown) {
      continue;
    }
    proto::ChainReadRequest read;
    read.set_chain(chain.id);
    read.set_version(chain.version);
    read.set_key(key);
    read.set_no_repair(true);
    Result<PeerAnswer> got = CallPeer(peers_.Of(node->address), proto::CHAIN_READ, read, {},
                                      rpc::DeadlineAfterMs(options_.peer_timeout_ms));
    if (!got.ok() || !got->status.ok()) {
      last = got.ok() ? got->status : got.status();
      continue;
    }
    std::pair<std::string, std::string_view> blob{key, got->payload};
    RETURN_IF_ERROR(store_.PutMany(std::span(&blob, 1)));
    repaired_.fetch_add(1);
    GLOG_WARN("blob of chain {} was damaged here: repaired from node {}", chain.id, member);
    return Status::OK();
  }
  return last;
}

Status ChainReplica::Keys(rpc::ServerCall& call) {
  proto::ChainKeysRequest request;
  if (!rpc::ParseBody(call, &request)) return BadRequest(call);
  std::shared_ptr<const ClusterMap> map;
  Result<const Chain*> chain = ServedChain(request.chain(), request.version(), &map);
  if (!chain.ok()) return call.Respond(chain.status());
  if ((*chain)->version != request.version()) {
    return call.Respond((*chain)->version > request.version()
                            ? Status(Code::kStaleMap, "chain " + std::to_string(request.chain()) +
                                                          " is at version " +
                                                          std::to_string((*chain)->version))
                            : Status::Unavailable("node " + options_.node_id +
                                                  " has not seen that version of chain " +
                                                  std::to_string(request.chain()) + " yet"));
  }
  if (!writable_()) {
    // A node without its lease may have been replaced by a map it has not seen.
    return call.Respond(Status::Unavailable("node " + options_.node_id +
                                            " does not hold its lease in etcd"));
  }
  if (Status drained = WaitForWritesBefore(request.chain(), request.version()); !drained.ok()) {
    return call.Respond(drained);
  }
  // Writes still in progress here first, then what is stored: a blob this member forwarded
  // before it finished storing it is listed either way.
  std::set<std::string> listed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = in_flight_keys_.lower_bound({request.chain(), std::string()});
         it != in_flight_keys_.end() && it->first == request.chain(); ++it) {
      listed.insert(it->second);
    }
  }
  Status scanned = store_.Scan([&](std::string_view key, uint64_t) {
    const Chain* chain = map->ChainOf(key);
    if (chain != nullptr && chain->id == request.chain()) listed.emplace(key);
  });
  std::string keys;
  proto::ChainKeysResponse response;
  for (const std::string& key : listed) AppendKey(keys, key);
  response.set_count(listed.size());
  if (!scanned.ok()) return call.Respond(scanned);
  std::string_view payload = keys;
  return call.Respond(response, std::span<const std::string_view>(&payload, 1));
}

Result<uint64_t> ChainReplica::CopyFrom(rpc::ConnectionPool& peer, const Chain& chain,
                                        const std::vector<const std::string*>& keys) {
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> copied{0};
  std::atomic<uint64_t> paced_bytes{0};
  const auto start = std::chrono::steady_clock::now();
  std::mutex mu;
  Status failed;
  auto copy = [&] {
    for (size_t i = next++; i < keys.size(); i = next++) {
      const std::string& key = *keys[i];
      proto::ChainReadRequest read;
      read.set_chain(chain.id);
      read.set_version(chain.version);
      read.set_key(key);
      Result<PeerAnswer> got = CallPeer(peer, proto::CHAIN_READ, read, {},
                                        rpc::DeadlineAfterMs(options_.peer_timeout_ms));
      Status st = got.ok() ? got->status : got.status();
      if (st.code() == Code::kNotFound) continue;  // deleted since the listing
      if (st.ok()) {
        std::pair<std::string, std::string_view> blob{key, got->payload};
        st = store_.PutMany(std::span(&blob, 1));
      }
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failed.ok()) failed = st;
        next = keys.size();
        return;
      }
      copied.fetch_add(1);
      copied_bytes_.fetch_add(got->payload.size());
      // Throttled repair: no faster, on average, than sync_bytes_per_second.
      const double bytes = static_cast<double>(paced_bytes.fetch_add(got->payload.size()) +
                                               got->payload.size());
      if (options_.sync_bytes_per_second > 0) {
        const double due = bytes / static_cast<double>(options_.sync_bytes_per_second);
        const double spent =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (due > spent) std::this_thread::sleep_for(std::chrono::duration<double>(due - spent));
      }
    }
  };
  const int threads = std::max(1, std::min<int>(options_.sync_parallel, keys.size()));
  std::vector<std::thread> helpers;
  for (int t = 1; t < threads; ++t) helpers.emplace_back(copy);
  copy();
  for (std::thread& t : helpers) t.join();
  if (!failed.ok()) return failed;
  return copied.load();
}

Result<uint64_t> ChainReplica::Sync(uint32_t chain_id, uint64_t since) {
  auto map = this->map();
  if (map == nullptr) return Status::Unavailable("this node has no cluster map yet");
  ASSIGN_OR_RETURN(const Chain* chain, FindChain(*map, chain_id));
  auto self = std::find(chain->syncing.begin(), chain->syncing.end(), options_.node_id);
  if (self == chain->syncing.end() || chain->syncing_since[self - chain->syncing.begin()] != since) {
    return Status::PreconditionFailed("node " + options_.node_id + " is not filling chain " +
                                      std::to_string(chain_id) + " since version " +
                                      std::to_string(since));
  }
  // What this node holds before it asks: blobs forwarded to it from now on are not listed here,
  // so none of them can be mistaken for one deleted while the node was away.
  std::set<std::string> local;
  RETURN_IF_ERROR(store_.Scan([&](std::string_view key, uint64_t) {
    const Chain* chain = map->ChainOf(key);
    if (chain != nullptr && chain->id == chain_id) local.emplace(key);
  }));
  Status last = Status::Unavailable("chain " + std::to_string(chain_id) +
                                    " has no serving member to fill from");
  // The tail first: it has every acknowledged write and serves no client writes.
  for (auto member = chain->members.rbegin(); member != chain->members.rend(); ++member) {
    const cluster::NodeInfo* node = map->FindNode(*member);
    if (node == nullptr || node->state == cluster::NodeState::kDown) continue;
    rpc::ConnectionPool& peer = peers_.Of(node->address);
    // A listing may wait for older writes (60 s) and then reads every record header.
    const rpc::Deadline deadline = rpc::DeadlineAfterMs(std::max(options_.peer_timeout_ms, 600'000));
    proto::ChainKeysRequest request;
    request.set_chain(chain_id);
    request.set_version(chain->version);
    Result<PeerAnswer> listed = CallPeer(peer, proto::CHAIN_KEYS, request, {}, deadline);
    if (!listed.ok() || !listed->status.ok()) {
      last = listed.ok() ? listed->status : listed.status();
      continue;
    }
    const std::string& listing = listed->payload;
    std::set<std::string> source;
    for (size_t pos = 0; pos + 4 <= listing.size();) {
      uint32_t n;
      std::memcpy(&n, listing.data() + pos, 4);
      if (pos + 4 + n > listing.size()) return Status::Corruption("chain key listing is cut short");
      source.emplace(listing.data() + pos + 4, n);
      pos += 4 + n;
    }
    std::vector<const std::string*> missing;
    for (const std::string& key : source) {
      if (local.count(key) == 0 && !store_.Exists(key)) missing.push_back(&key);
    }
    ASSIGN_OR_RETURN(uint64_t copied, CopyFrom(peer, *chain, missing));
    // A write of a newer version of the chain may have reached this node during the sync and
    // be missing from the listing: start over with the newer map rather than drop it.
    refresh_();
    auto now = this->map();
    if (now == nullptr || chain_id >= now->chains.size() ||
        now->chains[chain_id].version != chain->version) {
      return Status::Unavailable("chain " + std::to_string(chain_id) +
                                 " changed during the sync; starting over");
    }
    std::vector<std::string> gone;
    for (const std::string& key : local) {
      if (source.count(key) == 0) gone.push_back(key);
    }
    RETURN_IF_ERROR(store_.DeleteMany(gone));
    return copied;
  }
  return last;
}

}  // namespace granary::replication
