#include "rpc/connection_pool.h"

namespace granary::rpc {

void Lease::Reset() {
  if (conn_) pool_->Release(std::move(conn_));
}

ConnectionPool::ConnectionPool(std::string address, std::string access_key,
                               std::string secret_key, int max_connections)
    : address_(std::move(address)),
      access_key_(std::move(access_key)),
      secret_key_(std::move(secret_key)),
      max_connections_(max_connections) {}

ConnectionPool::~ConnectionPool() {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.clear();
}

Result<Lease> ConnectionPool::Acquire(Deadline deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (!idle_.empty()) {
      std::unique_ptr<ClientConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      // Whether the server closed it (restart, idle timeout) takes a system call: not under the
      // lock every request takes.
      lock.unlock();
      if (conn->Reusable()) return Lease(this, std::move(conn));
      conn.reset();
      lock.lock();
      --open_;  // drop it and look again
    }
    if (open_ < max_connections_) break;
    ++waiting_;
    bool timed_out = false;
    if (deadline == NoDeadline()) {
      released_.wait(lock);
    } else {
      timed_out = released_.wait_until(lock, deadline) == std::cv_status::timeout;
    }
    --waiting_;
    // A connection freed just as the deadline passed is still taken.
    if (timed_out && idle_.empty() && open_ >= max_connections_) {
      return Status::Unavailable("timed out waiting for one of the " +
                                 std::to_string(max_connections_) + " connections to " + address_ +
                                 " to be free");
    }
  }
  ++open_;
  lock.unlock();
  Result<std::unique_ptr<ClientConnection>> conn = ClientConnection::Connect(
      io_, address_, access_key_, secret_key_, deadline);
  if (!conn.ok()) {
    lock.lock();
    --open_;
    if (waiting_ != 0) released_.notify_one();
    return conn.status();
  }
  return Lease(this, std::move(*conn));
}

Result<std::unique_ptr<ClientConnection>> ConnectionPool::ConnectDetached(Deadline deadline) {
  return ClientConnection::Connect(io_, address_, access_key_, secret_key_, deadline);
}

void ConnectionPool::Release(std::unique_ptr<ClientConnection> conn) {
  bool reuse = conn->idle();
  if (!reuse) conn.reset();  // closes the socket: the server abandons what was in progress
  std::lock_guard<std::mutex> lock(mu_);
  if (reuse) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  if (waiting_ != 0) released_.notify_one();
}

}  // namespace granary::rpc
