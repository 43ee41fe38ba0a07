// LeaseKeeper: holds an etcd lease for a process (a node or a manager) and keeps it alive on a
// thread of its own. When the lease is lost (expired while etcd was out of reach, or revoked),
// it grants a new one and calls `on_granted` so the owner puts its leased keys again.
//
// Held() is what a process asks before acting on its lease: it turns false once the lease may
// have expired in etcd, judged from when the last successful keep-alive was *sent*, less a
// margin, so a process cut off from etcd stops before etcd (and the manager) consider it gone.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "cluster/etcd.h"

namespace granary::cluster {

class LeaseKeeper {
 public:
  // `on_granted(lease)` runs on the keeper's thread after each new lease; if it fails, the lease
  // is revoked and the keeper tries again.
  LeaseKeeper(EtcdClient& etcd, int ttl_seconds, std::function<Status(int64_t lease)> on_granted);
  ~LeaseKeeper();  // Stop(/*revoke=*/false)

  void Start();
  // Stops keeping the lease alive; with `revoke`, ends it now (its keys vanish at once).
  void Stop(bool revoke);

  bool Held() const;
  int64_t lease() const { return lease_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  void Run();
  // Sleeps for `d` unless stopped; false if stopped.
  bool Wait(Clock::duration d);

  EtcdClient& etcd_;
  const int ttl_seconds_;
  const std::function<Status(int64_t)> on_granted_;

  std::atomic<int64_t> lease_{0};
  std::atomic<int64_t> valid_until_ns_{0};  // steady clock
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace granary::cluster
