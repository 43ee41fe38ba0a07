#include "cluster/lease_keeper.h"

#include "common/logging.h"

namespace granary::cluster {
namespace {

// How much sooner than etcd a keeper gives its lease up: covers clock rate differences and the
// time a keep-alive spends in flight.
constexpr auto kMargin = std::chrono::milliseconds(500);

}  // namespace

LeaseKeeper::LeaseKeeper(EtcdClient& etcd, int ttl_seconds,
                         std::function<Status(int64_t lease)> on_granted)
    : etcd_(etcd), ttl_seconds_(ttl_seconds), on_granted_(std::move(on_granted)) {}

LeaseKeeper::~LeaseKeeper() { Stop(/*revoke=*/false); }

void LeaseKeeper::Start() { thread_ = std::thread([this] { Run(); }); }

void LeaseKeeper::Stop(bool revoke) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  valid_until_ns_.store(0);
  const int64_t lease = lease_.exchange(0);
  if (revoke && lease != 0) {
    Status st = etcd_.RevokeLease(lease);
    if (!st.ok()) GLOG_WARN("could not revoke etcd lease {}: {}", lease, st.ToString());
  }
}

bool LeaseKeeper::Held() const {
  return Clock::now().time_since_epoch().count() < valid_until_ns_.load();
}

bool LeaseKeeper::Wait(Clock::duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !wake_.wait_for(lock, d, [this] { return stopping_; });
}

void LeaseKeeper::Run() {
  const auto ttl = std::chrono::seconds(ttl_seconds_);
  const auto interval = std::chrono::milliseconds(ttl_seconds_ * 1000 / 3);
  for (;;) {
    const Clock::time_point sent = Clock::now();
    int64_t lease = lease_.load();
    if (lease == 0) {
      Result<int64_t> granted = etcd_.GrantLease(ttl_seconds_);
      if (granted.ok()) {
        Status st = on_granted_(*granted);
        if (st.ok()) {
          lease_.store(*granted);
          valid_until_ns_.store((sent + ttl - kMargin).time_since_epoch().count());
          GLOG_INFO("holding etcd lease {:x} ({} s)", *granted, ttl_seconds_);
        } else {
          GLOG_WARN("new etcd lease not used: {}", st.ToString());
          (void)etcd_.RevokeLease(*granted);
        }
      } else {
        GLOG_WARN("cannot get an etcd lease: {}", granted.status().ToString());
      }
    } else {
      Result<int64_t> renewed = etcd_.KeepAlive(lease);
      if (renewed.ok()) {
        valid_until_ns_.store((sent + std::chrono::seconds(*renewed) - kMargin)
                                  .time_since_epoch()
                                  .count());
      } else if (renewed.status().code() == Code::kNotFound) {
        GLOG_WARN("etcd lease {:x} was lost; taking a new one", lease);
        valid_until_ns_.store(0);
        lease_.store(0);
        continue;
      } else {
        GLOG_WARN("cannot renew etcd lease {:x}: {}", lease, renewed.status().ToString());
      }
    }
    if (!Wait(lease_.load() == 0 ? std::chrono::milliseconds(500) : interval)) return;
  }
}

}  // namespace granary::cluster
