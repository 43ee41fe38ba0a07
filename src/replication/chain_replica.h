// ChainReplica: one storage node's part in chain replication (docs/design/cluster.md). It serves
// the chain methods (proto/chain.proto) over the node's BlobStore, by the cluster map the node
// currently knows:
//
// - CHAIN_WRITE at the head of a chain (or forwarded by the member before this one): the blob is
//   stored here and, at the same time, sent on to the next member; the answer is OK only once
//   this member and every member after it have it durably. Blobs are immutable (a key is written
//   once), so a retried write is harmless.
// - CHAIN_READ at any serving member; CHAIN_KEYS for members being filled.
// - Writes are refused with kStaleMap when routed by an older chain version than this node
//   knows, and with kUnavailable while the node does not hold its lease (a node cut off from
//   etcd must not acknowledge writes: the manager may already have replaced it).
//
// Sync() fills a chain this node joined as a syncing member: it copies from a serving member
// every blob it lacks, and drops blobs that member no longer has (deleted while this node was
// away), so a returning node moves only what it missed.
//
// Thread-safe: the handler runs on many connection threads at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>

#include "cluster/cluster_map.h"
#include "replication/blob_store.h"
#include "replication/peer_call.h"
#include "rpc/server.h"

namespace granary::proto {
class ChainWriteRequest;
}

namespace granary::replication {

struct ChainReplicaOptions {
  std::string node_id;
  std::string access_key;  // the cluster's credentials, for connections to peers
  std::string secret_key;
  int peer_timeout_ms = 30'000;
  // Per peer. Generous: a forwarding handler holds its own connection while it waits for one to
  // the next member, and chains form cycles of such waits.
  int peer_connections = 512;
  int sync_parallel = 4;      // blobs copied at once while filling a chain
  uint64_t sync_bytes_per_second = 0;  // the most a fill copies per second; 0: no limit
};

class ChainReplica {
 public:
  // `writable` says whether the node holds its lease now; `refresh` fetches the newest map
  // (and calls SetMap) when a request names a chain version newer than this node knows.
  ChainReplica(BlobStore& store, ChainReplicaOptions options, std::function<bool()> writable,
               std::function<void()> refresh);
  ~ChainReplica();

  void SetMap(std::shared_ptr<const cluster::ClusterMap> map);
  std::shared_ptr<const cluster::ClusterMap> map() const;

  // Replaces this node's damaged copy of `key` with a good one from another serving member of
  // its chain. kPreconditionFailed if this node does not serve the key's chain.
  Status RepairBlob(const std::string& key);

  // Damaged blobs replaced by good copies from other members since the start.
  uint64_t repaired() const { return repaired_.load(); }
  // Bytes copied in by syncs since the start.
  uint64_t copied_bytes() const { return copied_bytes_.load(); }

  // Serves a chain method; false if `call` is not one (the caller routes it elsewhere).
  bool Handles(uint32_t method) const;
  Status Handle(rpc::ServerCall& call);

  // Fills `chain` from one of its serving members, as a member syncing since `since`.
  // Returns the number of blobs copied.
  Result<uint64_t> Sync(uint32_t chain, uint64_t since);

 private:
  Status Write(rpc::ServerCall& call);
  Status Read(rpc::ServerCall& call);
  Status Keys(rpc::ServerCall& call);
  // Replaces this node's damaged copy of `key` with a good one from another serving member.
  Status Repair(const cluster::ClusterMap& map, const cluster::Chain& chain, const std::string& key);
  // The bytes a read asks for, from the local store.
  Result<std::string> ReadLocal(const std::string& key, uint64_t offset, uint64_t length);
  // Copies `keys` from `peer` into the local store, sync_parallel at a time; returns how many
  // (keys deleted there meanwhile are skipped).
  Result<uint64_t> CopyFrom(rpc::ConnectionPool& peer, const cluster::Chain& chain,
                            const std::vector<const std::string*>& keys);
  // Sends the write on to `address` and waits for its answer.
  Status Forward(const std::string& address, const proto::ChainWriteRequest& request,
                 std::string_view value);
  // The chain, if this node serves it by its map (refreshed as MapFor does); `*map` keeps the
  // map alive for the caller.
  Result<const cluster::Chain*> ServedChain(uint32_t chain, uint64_t version,
                                            std::shared_ptr<const cluster::ClusterMap>* map);
  // The map, refreshed once if it is older than `version` for `chain`.
  std::shared_ptr<const cluster::ClusterMap> MapFor(uint32_t chain, uint64_t version);

  // Writes in progress per (chain, version), so that a listing for a new member waits for the
  // writes routed by older versions (which the new member may not receive).
  // The keys of writes in progress are kept too: a listing includes them, so that a new member
  // never drops a blob that this member is still storing while it already forwarded it.
  // kStaleMap if the chain's version in the map is no longer `version`.
  Status BeginWrite(uint32_t chain, uint64_t version, const std::string& key);
  void EndWrite(uint32_t chain, uint64_t version, const std::string& key);
  // kUnavailable if they are still running after a minute.
  Status WaitForWritesBefore(uint32_t chain, uint64_t version);

  BlobStore& store_;
  const ChainReplicaOptions options_;
  const std::function<bool()> writable_;
  const std::function<void()> refresh_;
  PeerPools peers_;
  std::atomic<uint64_t> repaired_{0};
  std::atomic<uint64_t> copied_bytes_{0};

  mutable std::mutex mu_;
  std::shared_ptr<const cluster::ClusterMap> map_;  // GUARDED_BY(mu_)
  std::map<std::pair<uint32_t, uint64_t>, int> in_flight_;  // GUARDED_BY(mu_)
  std::multiset<std::pair<uint32_t, std::string>> in_flight_keys_;  // GUARDED_BY(mu_)
  std::condition_variable writes_done_;
};

}  // namespace granary::replication
