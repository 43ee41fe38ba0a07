// The Python class granary._granary.Client over granary::Client (include/granary/client.h), or
// over a cluster's namespace (gateway::ClusterObjectApi: every call goes straight to the node
// heading its bucket's partition), made by granary.cluster.connect().
//
// Threads: Python threads may share one Client. Every call that talks to the server releases the
// GIL for the whole exchange; the Python objects it reads from or writes into (data, buffers)
// stay exported (BufferView) until the call returns, so they can neither be freed nor resized
// meanwhile. `client_` is guarded by the GIL: each call takes its own reference under the GIL, so
// close() on one thread never frees the client under a call running on another.
//
// Fork: a client's threads do not survive fork(), and its sockets are shared with the parent. The
// first call in a child process (a DataLoader worker, a multiprocessing pool) therefore leaves the
// inherited client untouched, never destroyed, and connects anew with the same settings.
#pragma once

#include <pybind11/pybind11.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "granary/client.h"
#include "python/errors.h"

namespace granary::python {

namespace py = pybind11;

class PyClient {
 public:
  // Connects (with the GIL released). access_key / secret_key None: taken from the environment
  // (GRANARY_ACCESS_KEY, GRANARY_SECRET_KEY). Raises ValueError for bad options, granary errors
  // (UnavailableError, UnauthenticatedError) when the connection fails.
  PyClient(std::string address, py::object access_key, py::object secret_key,
           const ClientOptions& options);
  // A client of the cluster whose etcd endpoints are `etcd` (comma-separated); each call keeps
  // retrying while the cluster replaces a node, for up to `retry_ms`.
  static std::unique_ptr<PyClient> ForCluster(std::string etcd, py::object access_key,
                                              py::object secret_key, int retry_ms);

  // The client, or ValueError("... is closed"); reconnects first in a forked child. Needs the GIL.
  std::shared_ptr<ObjectApi> client();
  ~PyClient();
  PyClient(const PyClient&) = delete;
  PyClient& operator=(const PyClient&) = delete;

  // Drops this object's reference; calls in flight on other threads finish first.
  void Close();
  bool closed() const { return closed_; }
  const std::string& address() const { return address_; }

 private:
  using Connector = std::function<Result<std::shared_ptr<ObjectApi>>()>;
  PyClient(std::string address, Credentials credentials, Connector connect);
  std::shared_ptr<ObjectApi> Connect();
  // Leaks client_ if it was inherited from a parent process (see above); null afterwards.
  void DropInherited();

  std::string address_;
  Credentials credentials_;
  Connector connect_;
  pid_t pid_;                          // the process that connected client_
  std::shared_ptr<ObjectApi> client_;  // null once closed, or in a child until it reconnects
  bool closed_ = false;
};

// The credentials of a connection: access_key / secret_key as given (str), or for None the
// environment's GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY. TypeError for a non-str, ValueError when
// a key is None and its variable is unset or empty. Needs the GIL.
Credentials CredentialsOrEnv(py::handle access_key, py::handle secret_key);

// Runs `f` with the GIL released and returns what it returns. `f` must not touch Python objects.
template <typename F>
auto WithoutGil(F&& f) {
  py::gil_scoped_release release;
  return f();
}

// The Conditions of the keyword arguments if_match, if_none_match, if_version.
Conditions ToConditions(py::handle if_match, py::handle if_none_match, py::handle if_version);

// Registration of the methods, split by theme over client.cc and client_batch.cc.
void RegisterClient(py::module_& m);
// granary._granary.SharedBuffer and Client.shared_buffer (shared_buffer.cc).
void RegisterSharedBuffer(py::module_& m, py::class_<PyClient>& client);
void RegisterBatchMethods(py::class_<PyClient>& cls);
void RegisterMultipartMethods(py::class_<PyClient>& cls);

}  // namespace granary::python
