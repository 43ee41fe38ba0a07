// Manager: the cluster's control loop (`granary manager`). Several may run; the one holding the
// leader key in etcd (created under its lease) acts, the others wait to take over. The leader
// - creates the map once enough nodes have registered (BuildMap),
// - then (after `settle_ms` as a new leader), every `interval_ms`, observes the live nodes (their leased keys), the drain requests
//   and the finished syncs, and writes the map placement.h derives from them.
// Every map write is a transaction that holds only if this manager still owns the leader key
// and the map is the one it read, so a deposed leader can never overwrite its successor's map.
//
// Thread-safe: Start and Stop from one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace granary::manager {

struct ManagerOptions {
  std::string etcd;  // comma-separated endpoints
  std::string id;    // default: host:pid
  int replicas = 3;
  uint32_t chains = 64;  // fixed when the map is created
  int lease_ttl_seconds = 3;
  int interval_ms = 250;
  int max_moves = 8;  // chains syncing at once because of rebalancing
  // After becoming the leader, how long to wait before changing an existing map: nodes whose
  // leases expired during an etcd outage (or a leader change) re-register in that time.
  int settle_ms = 5000;
};

class Manager {
 public:
  static Result<std::unique_ptr<Manager>> Start(ManagerOptions options);
  ~Manager();

  bool leader() const;
  // Steps down (revoking its lease, so a standby takes over at once) and stops.
  void Stop();

  struct Impl;

 private:
  explicit Manager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::manager
