#include "node/namespace_partitions.h"

#include "node/namespace_partition.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/logging.h"
#include "meta/object_store.h"
#include "meta/replicated_db.h"
#include "meta/rocks.h"
#include "proto/chain.pb.h"

namespace granary::node {
using cluster::Chain;
using cluster::ClusterMap;

NamespacePartitions::NamespacePartitions(NamespacePartitionsOptions options,
                                         std::function<bool()> writable,
                                         std::function<void()> refresh)
    : options_(std::move(options)),
      writable_(std::move(writable)),
      refresh_(std::move(refresh)),
      peers_(options_.access_key, options_.secret_key, 64) {}

NamespacePartitions::~NamespacePartitions() { Close(); }

std::shared_ptr<const ClusterMap> NamespacePartitions::map() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_;
}

void NamespacePartitions::SetMap(std::shared_ptr<const ClusterMap> map) {
  std::vector<std::shared_ptr<Partition>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (map_ != nullptr && map->epoch <= map_->epoch) return;
    map_ = map;
    for (auto& [chain, p] : partitions_) open.push_back(p);
  }
  for (const std::shared_ptr<Partition>& p : open) {
    if (p->chain >= map->chains.size()) continue;
    const Chain& chain = map->chains[p->chain];
    if (!chain.members.empty() && chain.members.front() == options_.node_id) continue;
    std::lock_guard<std::mutex> lock(p->mu);
    Retire(p.get());
  }
}

void NamespacePartitions::Retire(Partition* p) {
  if (p->store == nullptr) return;
  GLOG_INFO("no longer heading namespace partition {}", p->chain);
  p->store.reset();  // closes once the requests in flight let go of it
  p->db->ForgetAcknowledged();
}

Result<std::shared_ptr<NamespacePartitions::Partition>> NamespacePartitions::Get(
    uint32_t chain) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Status::Unavailable("the node is stopping");
  auto it = partitions_.find(chain);
  if (it != partitions_.end()) return it->second;
  const std::string dir = options_.dir + "/" + std::to_string(chain);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  rocksdb::Options opts = meta::NamespaceDbOptions(options_.block_cache_bytes);
  opts.write_buffer_size = 16 << 20;
  rocksdb::DB* base = nullptr;
  RETURN_IF_ERROR(meta::FromRocks(rocksdb::DB::Open(opts, dir + "/db", &base),
                                  "opening namespace partition " + dir));
  auto p = std::make_shared<Partition>();
  p->chain = chain;
  meta::ReplicatedDbOptions db_options;
  db_options.log_entries = options_.log_entries;
  db_options.admit = [this, chain]() -> Result<uint64_t> {
    if (!writable_()) {
      return Status::Unavailable("node " + options_.node_id + " does not hold its lease");
    }
    auto m = map();
    if (m == nullptr || chain >= m->chains.size()) {
      return Status::Unavailable("this node has no cluster map yet");
    }
    const Chain& c = m->chains[chain];
    if (c.members.empty() || c.members.front() != options_.node_id) {
      return StaleHead(options_.node_id, c);
    }
    return c.version;
  };
  db_options.send = [this, chain](const meta::LogEntry& entry) -> Result<uint64_t> {
    auto m = map();
    if (m == nullptr || chain >= m->chains.size()) {
      return Status::Unavailable("this node has no cluster map yet");
    }
    const Chain& c = m->chains[chain];
    const int at = IndexOf(c.members, options_.node_id);
    if (at < 0) {
      return Status(Code::kStaleMap, "node " + options_.node_id + " no longer serves chain " +
                                         std::to_string(chain));
    }
    if (at + 1 == static_cast<int>(c.members.size())) return entry.seq;  // the tail
    const cluster::NodeInfo* next = m->FindNode(c.members[at + 1]);
    if (next == nullptr) return Status::Unavailable("the next member is not in the map");
    proto::MetaApplyRequest request;
    request.set_chain(chain);
    request.set_version(c.version);
    request.set_seq(entry.seq);
    request.set_term(entry.term);
    request.set_refill(entry.seq == 0);
    request.set_prev_term(entry.prev_term);
    ASSIGN_OR_RETURN(replication::PeerAnswer answer,
                     replication::CallPeer(peers_.Of(next->address), proto::META_APPLY, request,
                                           entry.data,
                                           rpc::DeadlineAfterMs(options_.peer_timeout_ms)));
    RETURN_IF_ERROR(answer.status);
    proto::MetaApplyResponse response;
    if (!response.ParseFromString(answer.body)) {
      return Status::Corruption("unreadable answer to a namespace entry");
    }
    return response.applied();
  };
  p->db = std::make_unique<meta::ReplicatedDb>(base, std::move(db_options));
  partitions_.emplace(chain, p);
  return p;
}

Result<std::shared_ptr<meta::ObjectStore>> NamespacePartitions::StoreFor(std::string_view bucket) {
  auto m = map();
  if (m == nullptr || m->chains.empty()) {
    return Status::Unavailable("this node has no cluster map yet");
  }
  return StoreOf(m->PartitionOf(bucket));
}

Result<std::shared_ptr<meta::ObjectStore>> NamespacePartitions::StoreOf(const Chain& chain) {
  if (chain.members.empty() || chain.members.front() != options_.node_id) {
    return StaleHead(options_.node_id, chain);
  }
  if (!writable_()) {
    return Status::Unavailable("node " + options_.node_id + " does not hold its lease");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Partition> p, Get(chain.id));
  std::shared_ptr<replication::BlobStore> blobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (blobs_ == nullptr) {
      ASSIGN_OR_RETURN(blobs_, options_.open_blobs());
    }
    blobs = blobs_;
  }
  std::lock_guard<std::mutex> lock(p->mu);
  if (p->store != nullptr && p->db->poisoned()) {
    // A write's entry may not have reached every member: its outcome is settled by a barrier,
    // and its intent by the next store's recovery.
    Retire(p.get());
  }
  if (p->store != nullptr) {
    if (p->settled_version != chain.version) {
      // The chain changed under this head: every member, a new one too, gets every entry.
      RETURN_IF_ERROR(p->db->Barrier());
      p->settled_version = chain.version;
    }
    return p->store;
  }
  if (p->diverged || p->filling) {
    return Status::Unavailable("namespace partition " + std::to_string(chain.id) +
                               " is being filled on this node");
  }
  if (p->open_stores.load() > 0) {
    return Status::Unavailable("namespace partition " + std::to_string(chain.id) +
                               " is still closing from this node's last turn as its head");
  }
  // A new head: the one before stops serving, and every member gets what this one has before
  // anything is read.
  if (!p->last_head.empty()) StepDown(p->last_head, chain);
  RETURN_IF_ERROR(p->db->Barrier());
  meta::ObjectStoreOptions store_options;
  store_options.dir = options_.dir + "/" + std::to_string(chain.id);
  store_options.db = p->db.get();
  store_options.blobs = std::move(blobs);
  store_options.close_blobs = false;
  store_options.blob_prefix = [partition = chain.id](uint32_t replicas) {
    return cluster::PartitionBlobPrefix(partition, replicas);
  };
  store_options.block_cache_bytes = options_.block_cache_bytes;
  ASSIGN_OR_RETURN(std::unique_ptr<meta::ObjectStore> store,
                   meta::ObjectStore::Open(std::move(store_options)));
  p->open_stores.fetch_add(1);
  p->store = std::shared_ptr<meta::ObjectStore>(store.release(), [p](meta::ObjectStore* s) {
    delete s;
    p->open_stores.fetch_sub(1);
  });
  p->settled_version = chain.version;
  p->last_head.clear();
  GLOG_INFO("heading namespace partition {} (chain version {})", chain.id, chain.version);
  return p->store;
}

Status NamespacePartitions::AwaitSet(int replicas) {
  auto m = map();
  if (m != nullptr && m->SetOf(replicas)) return Status::OK();
  const auto up = m == nullptr ? 0
                               : std::count_if(m->nodes.begin(), m->nodes.end(), [](const auto& n) {
                                   return n.state == cluster::NodeState::kUp;
                                 });
  if (up < replicas) {
    return Status::InvalidArgument("a bucket of " + std::to_string(replicas) + " replicas needs " +
                                   std::to_string(replicas) + " nodes up; the cluster has " +
                                   std::to_string(up));
  }
  if (!options_.want_set) return Status::NotSupported("this node cannot ask for new chains");
  RETURN_IF_ERROR(options_.want_set(replicas));
  const auto give_up = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(options_.set_wait_ms);
  while (std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    refresh_();
    m = map();
    if (m != nullptr && m->SetOf(replicas)) return Status::OK();
  }
  return Status::Unavailable("the manager has not placed chains of " + std::to_string(replicas) +
                             " replicas yet (is a manager running?): retry");
}

void NamespacePartitions::StepDown(const std::string& address, const Chain& chain) {
  proto::MetaApplyRequest request;
  request.set_chain(chain.id);
  request.set_version(chain.version);
  request.set_step_down(true);
  // Unreachable, it is dead or cut off: then its lease runs out and it stops by itself.
  (void)replication::CallPeer(peers_.Of(address), proto::META_APPLY, request, {},
                              rpc::DeadlineAfterMs(2'000));
}

void NamespacePartitions::Settle() {
  auto m = map();
  if (m == nullptr) return;
  std::vector<std::shared_ptr<Partition>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [chain, p] : partitions_) open.push_back(p);
  }
  std::vector<uint32_t> changed;
  for (const std::shared_ptr<Partition>& p : open) {
    if (p->chain >= m->chains.size()) continue;
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->store != nullptr &&
        (p->settled_version != m->chains[p->chain].version || p->db->poisoned())) {
      changed.push_back(p->chain);
    }
  }
  open.clear();
  for (uint32_t chain : changed) {
    Result<std::shared_ptr<meta::ObjectStore>> store = StoreOf(m->chains[chain]);
    if (!store.ok() && store.status().code() != Code::kStaleMap) {
      GLOG_WARN("namespace partition {}: bringing its new members up to date failed, will "
                "retry: {}", chain, store.status().ToString());
    }
  }
}

bool NamespacePartitions::Handles(uint32_t method) const {
  return method == proto::META_APPLY || method == proto::META_PULL ||
         method == proto::META_COPY || method == proto::META_BUCKET;
}

Status NamespacePartitions::Handle(rpc::ServerCall& call) {
  switch (call.method()) {
    case proto::META_APPLY:
      return ApplyCall(call);
    case proto::META_PULL:
      return PullCall(call);
    case proto::META_COPY:
      return CopyCall(call);
    case proto::META_BUCKET:
      return BucketCall(call);
    default:
      return call.Respond(Status::NotSupported("not a namespace method"));
  }
}

Status NamespacePartitions::ApplyCall(rpc::ServerCall& call) {
  proto::MetaApplyRequest request;
  meta::LogEntry entry;
  if (!rpc::ParseBody(call, &request)) {
    return call.Respond(Status::InvalidArgument("unreadable namespace entry"));
  }
  Status read = rpc::ReadWholePayload(call, kMaxEntryBytes, "a namespace entry", &entry.data);
  if (read.code() == Code::kInvalidArgument) return call.Respond(read);
  RETURN_IF_ERROR(read);
  entry.seq = request.seq();
  entry.term = request.term();
  entry.prev_term = request.prev_term();
  auto m = map();
  if (m != nullptr && request.chain() < m->chains.size() &&
      m->chains[request.chain()].version < request.version()) {
    refresh_();
    m = map();
  }
  if (m == nullptr || request.chain() >= m->chains.size()) {
    return call.Respond(Status::Unavailable("this node has no map with chain " +
                                            std::to_string(request.chain())));
  }
  const Chain& chain = m->chains[request.chain()];
  if (request.step_down()) {
    if (chain.members.empty() || chain.members.front() != options_.node_id) {
      Result<std::shared_ptr<Partition>> p = Get(chain.id);
      if (p.ok()) {
        std::lock_guard<std::mutex> lock((*p)->mu);
        Retire(p->get());
      }
    }
    return call.Respond(Status::OK());
  }
  if (request.version() != chain.version) {
    return call.Respond(Status(Code::kStaleMap, "chain " + std::to_string(chain.id) +
                                                    " is at version " +
                                                    std::to_string(chain.version) +
                                                    ", the entry was sent at version " +
                                                    std::to_string(request.version())));
  }
  if (IndexOf(chain.members, options_.node_id) <= 0) {
    return call.Respond(Status(Code::kStaleMap, "node " + options_.node_id +
                                                    " is not a member after the head of chain " +
                                                    std::to_string(chain.id)));
  }
  if (!writable_()) {
    return call.Respond(
        Status::Unavailable("node " + options_.node_id + " does not hold its lease"));
  }
  Result<std::shared_ptr<Partition>> p = Get(chain.id);
  if (!p.ok()) return call.Respond(p.status());
  {
    std::lock_guard<std::mutex> lock((*p)->mu);
    Retire(p->get());  // someone else heads it now
    const cluster::NodeInfo* head = m->FindNode(chain.members.front());
    if (head != nullptr) (*p)->last_head = head->address;
  }
  if (request.refill()) {
    GLOG_WARN("namespace partition {} is behind its predecessor's log: refilling it", chain.id);
    (*p)->diverged = true;
    return call.Respond(Status::Unavailable("namespace partition " + std::to_string(chain.id) +
                                            " is being refilled on node " + options_.node_id));
  }
  if ((*p)->filling || (*p)->diverged) {
    return call.Respond(Status::Unavailable("namespace partition " + std::to_string(chain.id) +
                                            " is being refilled on node " + options_.node_id));
  }
  Result<uint64_t> applied = (*p)->db->Apply(entry);
  if (!applied.ok()) {
    if (applied.status().code() == Code::kPreconditionFailed) {
      GLOG_WARN("namespace partition {} diverged from its head: refilling it ({})", chain.id,
                applied.status().ToString());
      (*p)->diverged = true;
      return call.Respond(Status::Unavailable(applied.status().message()));
    }
    return call.Respond(applied.status());
  }
  proto::MetaApplyResponse response;
  response.set_applied(*applied);
  return call.Respond(response);
}

Status NamespacePartitions::Drop(uint32_t chain) {
  std::shared_ptr<Partition> p;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = partitions_.find(chain);
    if (it != partitions_.end()) {
      // Not while a store, a fill or a request uses it (Stores hold the partition).
      if (it->second->filling || it->second->open_stores.load() > 0 ||
          it->second.use_count() > 1) {
        return Status::Unavailable("namespace partition " + std::to_string(chain) +
                                   " is in use");
      }
      p = std::move(it->second);
      partitions_.erase(it);
    }
  }
  p.reset();
  const std::string dir = options_.dir + "/" + std::to_string(chain);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return Status::IOError("cannot remove " + dir + ": " + ec.message());
  return Status::OK();
}

void NamespacePartitions::Close() {
  std::map<uint32_t, std::shared_ptr<Partition>> partitions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    partitions.swap(partitions_);
  }
  for (auto& [chain, p] : partitions) {
    std::lock_guard<std::mutex> lock(p->mu);
    p->store.reset();
  }
  partitions.clear();
  std::lock_guard<std::mutex> lock(mu_);
  blobs_.reset();
}

}  // namespace granary::node
