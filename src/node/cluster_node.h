// ClusterNode: a storage node of a cluster (`granary node`). It opens a blob engine on each of
// its disks, serves the chain methods (replication/chain_replica.h) on its address, registers
// itself in etcd under a lease, follows the cluster map the manager writes, and fills the chains
// the map adds it to as a syncing member, reporting each finished sync.
//
// Thread-safe: Start and Stop from one thread; the node runs on threads of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "node/credentials.h"

namespace granary::replication {
class BlobStore;
}

namespace granary::node {

struct ClusterNodeStats {
  uint64_t chains_filled = 0;  // syncs finished and reported
  uint64_t blobs_copied = 0;   // blobs copied in by those syncs
  uint64_t blobs_repaired = 0;  // damaged copies replaced from another member
  uint64_t blobs_reclaimed = 0;  // blobs of chains this node left, deleted
  uint64_t scrub_passes = 0;     // full passes of the background scrub
  uint64_t scrub_damaged = 0;    // damaged copies the scrub found
  bool lease_held = false;
};

struct ClusterNodeOptions {
  std::string etcd;                // comma-separated endpoints
  std::vector<std::string> disks;  // data directories; the first holds the node's id
  std::string listen = "127.0.0.1:9200";
  std::string advertise;  // the address others dial; default: `listen`
  std::string host;       // default: the machine's hostname
  std::string rack = "default";
  std::string zone = "default";
  int lease_ttl_seconds = 3;
  int poll_ms = 250;  // how often the map is read from etcd
  // How long after leaving a chain the node deletes its blobs of that chain.
  int gc_delay_ms = 30'000;
  // Background scrub: read rate (0: off) and the least time between the starts of two passes.
  uint64_t scrub_bytes_per_second = 64ull << 20;
  // The most bytes per second this node copies in while filling chains; 0: no limit.
  uint64_t repair_bytes_per_second = 0;
  // Entries of each namespace partition's log a member keeps, for members that fall behind
  // (one further behind copies the whole partition).
  uint64_t namespace_log_entries = 20'000;
  int scrub_interval_ms = 3'600'000;
};

class ClusterNode {
 public:
  // Opens the disks and starts serving; registration and sync then proceed in the background.
  static Result<std::unique_ptr<ClusterNode>> Start(ClusterNodeOptions options,
                                                    RootCredentials credentials);
  ~ClusterNode();

  const std::string& id() const;
  uint16_t port() const;
  ClusterNodeStats Stats() const;
  // The node's own blobs (for inspection; writes belong to the chains).
  replication::BlobStore& store();
  // Leaves the cluster (revokes the lease, so the manager sees it gone at once), stops serving
  // and closes the disks.
  Status Stop();

  struct Impl;

 private:
  explicit ClusterNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::node
