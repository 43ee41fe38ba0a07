// KvService: a server's KV-cache pools and the native protocol's KV_* methods over them.
//
// Pools live under one directory, one subdirectory each: DIR/<name>/pool.conf (the pool's
// KvPoolConfig, written atomically) and DIR/<name>/disk (its disk tier's engine, when it has
// one). Start reopens every pool found; a pool with a disk tier gets its blocks back.
//
// Same-host clients: KV_OPEN may hand out a single-use token for the shared-memory door, a Unix
// socket in the abstract namespace; a client that connects there and presents the token receives
// the pool's arena as a file descriptor (SCM_RIGHTS) and then reads located values itself
// (docs/formats/rpc.md). Tokens are only issued over authenticated connections.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "kv/pool.h"
#include "proto/kv.pb.h"
#include "rpc/fd_door.h"
#include "rpc/server.h"

namespace granary::node {

struct KvServiceOptions {
  std::string dir;
  // Offer the shared-memory door to clients that ask for it.
  bool shared_memory = true;
};

class KvService {
 public:
  static Result<std::unique_ptr<KvService>> Start(KvServiceOptions options);
  ~KvService();  // Stop()s

  // Answers a KV_* request; false when `call` is not a KV method.
  bool Handles(uint32_t method) const;
  Status Dispatch(rpc::ServerCall& call);

  // Pool administration (also reachable through KV_POOL_*).
  Status CreatePool(const proto::KvPoolConfig& config);
  Status DeletePool(const std::string& name);
  std::vector<proto::KvPoolInfo> ListPools(const std::string& name);
  // The open pool of that name, and its settings into `config` when that is not null;
  // kNoSuchPool (naming it) when there is none.
  Result<std::shared_ptr<kv::Pool>> GetPool(const std::string& name,
                                            proto::KvPoolConfig* config = nullptr);

  // Closes the door and every pool. Idempotent.
  Status Stop();

 private:
  explicit KvService(KvServiceOptions options);
  Status OpenExisting();
  Status Put(rpc::ServerCall& call);
  Status Get(rpc::ServerCall& call);
  // `reopened`: a pool found at start (its memory is committed in the background), rather than
  // one being created.
  Result<std::shared_ptr<kv::Pool>> OpenPool(const proto::KvPoolConfig& config, bool reopened);

  const KvServiceOptions options_;
  std::unique_ptr<rpc::FdDoor> door_;  // null when shared memory is off
  Mutex mu_;
  std::map<std::string, std::pair<proto::KvPoolConfig, std::shared_ptr<kv::Pool>>> pools_
      GUARDED_BY(mu_);
  bool stopped_ GUARDED_BY(mu_) = false;
};

void StatsToProto(const kv::PoolStats& stats, proto::KvStats* out);

// kNoSuchPool for the pool `name`, saying how to create it.
Status NoSuchPool(const std::string& name);

// Checks a pool's settings: its name ([a-z0-9][a-z0-9._-]{0,62}), budgets, eviction policy.
Status CheckPoolConfig(const proto::KvPoolConfig& config);

}  // namespace granary::node
