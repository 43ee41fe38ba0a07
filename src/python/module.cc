// The compiled part of the Python package `granary` (python/granary/__init__.py re-exports it).
#include <pybind11/pybind11.h>

#include "python/client_binding.h"
#include "python/errors.h"
#include "python/types.h"

namespace granary::python {
// The KV-cache classes of granary.kv (kv.cc).
void RegisterKv(py::module_& m);
// granary._granary.Checkpointer (checkpoint.cc).
void RegisterCheckpoint(py::module_& m);
// granary._granary.ClusterBlobs (cluster.cc).
void RegisterCluster(py::module_& m);
}  // namespace granary::python

PYBIND11_MODULE(_granary, m) {
  m.doc() = "Granary's native client (C++), wrapped for Python. Import `granary` instead.";
  granary::python::LoadErrorClasses(m);
  granary::python::RegisterTypes(m);
  granary::python::RegisterClient(m);
  granary::python::RegisterKv(m);
  granary::python::RegisterCheckpoint(m);
  granary::python::RegisterCluster(m);
}
