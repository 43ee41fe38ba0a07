// ConnectionPool: authenticated connections to one server (a client's, or a node's to its peers), at most `max` open at
// once. A request leases a connection, uses it alone and gives it back; a connection that broke
// or was left in the middle of a request is closed instead of reused.
//
// Thread-safe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rpc/client_connection.h"

namespace granary::rpc {

class ConnectionPool;

// A leased connection; returns it to the pool when destroyed.
class Lease {
 public:
  Lease() = default;
  Lease(ConnectionPool* pool, std::unique_ptr<ClientConnection> conn)
      : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&& other) noexcept = default;
  Lease& operator=(Lease&& other) noexcept {
    Reset();
    pool_ = other.pool_;
    conn_ = std::move(other.conn_);
    return *this;
  }
  ~Lease() { Reset(); }

  ClientConnection* operator->() const { return conn_.get(); }
  ClientConnection* get() const { return conn_.get(); }
  explicit operator bool() const { return conn_ != nullptr; }
  // Gives the connection back now (or closes it if it is not idle).
  void Reset();

 private:
  ConnectionPool* pool_ = nullptr;
  std::unique_ptr<ClientConnection> conn_;
};

class ConnectionPool {
 public:
  ConnectionPool(std::string address, std::string access_key, std::string secret_key,
                 int max_connections);
  ~ConnectionPool();

  // An idle connection that still looks alive, or a new one (connect and Hello) while fewer than
  // the maximum are open; otherwise waits for one to be given back. kUnavailable if the server
  // cannot be reached or the deadline passes; kUnauthenticated if it refuses the credentials.
  Result<Lease> Acquire(Deadline deadline);

  // A new connection of its own, outside the pool and its maximum: the caller owns it and must
  // destroy it before the pool.
  Result<std::unique_ptr<ClientConnection>> ConnectDetached(Deadline deadline);

  const std::string& address() const { return address_; }

 private:
  friend class Lease;
  void Release(std::unique_ptr<ClientConnection> conn);

  const std::string address_;
  const std::string access_key_;
  const std::string secret_key_;
  const int max_connections_;
  boost::asio::io_context io_;  // owns the sockets; never run()

  std::mutex mu_;
  std::condition_variable released_;
  std::vector<std::unique_ptr<ClientConnection>> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;  // idle + leased + being connected; GUARDED_BY(mu_)
  int waiting_ = 0;  // callers waiting for a connection to be given back; GUARDED_BY(mu_)
};

}  // namespace granary::rpc
