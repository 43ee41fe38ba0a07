// granary._granary.ClusterBlobs: the replicated blob layer of a cluster (ChainBlobStore), for
// programs that store immutable blobs by key without a namespace.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "python/errors.h"
#include "replication/chain_blob_store.h"

namespace granary::python {
namespace {

class PyClusterBlobs {
 public:
  PyClusterBlobs(std::string etcd, std::string access_key, std::string secret_key, int retry_ms) {
    replication::ChainBlobStoreOptions options;
    options.etcd = std::move(etcd);
    options.access_key = std::move(access_key);
    options.secret_key = std::move(secret_key);
    options.retry_ms = retry_ms;
    py::gil_scoped_release release;
    store_ = Unwrap(replication::OpenChainBlobStore(std::move(options)));
  }

  void Put(const std::string& key, py::buffer value) {
    CheckKey(key);
    py::buffer_info info = value.request();
    std::string_view bytes(static_cast<const char*>(info.ptr),
                           static_cast<size_t>(info.size * info.itemsize));
    Status st;
    {
      py::gil_scoped_release release;
      std::pair<std::string, std::string_view> blob{key, bytes};
      st = store_->PutMany(std::span(&blob, 1));
    }
    Check(st);
  }

  py::bytes Get(const std::string& key) {
    CheckKey(key);
    std::vector<Result<std::string>> got;
    {
      py::gil_scoped_release release;
      got = store_->GetMany(std::span<const std::string>(&key, 1));
    }
    return py::bytes(Unwrap(std::move(got[0])));
  }

  void Delete(const std::string& key) {
    CheckKey(key);
    Status st;
    {
      py::gil_scoped_release release;
      st = store_->DeleteMany(std::span<const std::string>(&key, 1));
    }
    Check(st);
  }

  bool Exists(const std::string& key) {
    CheckKey(key);
    py::gil_scoped_release release;
    return store_->Exists(key);
  }

 private:
  static void CheckKey(const std::string& key) {
    if (key.empty() || key.size() > 1024) {
      ThrowStatus(Status::InvalidArgument("a blob key has 1 to 1024 bytes, not " +
                                          std::to_string(key.size())));
    }
  }

  std::unique_ptr<replication::BlobStore> store_;
};

}  // namespace

void RegisterCluster(py::module_& m) {
  py::class_<PyClusterBlobs>(m, "ClusterBlobs",
                             "Immutable blobs by key, replicated on a cluster's chains. Writes "
                             "return once every replica has the blob; a key is written once.")
      .def(py::init<std::string, std::string, std::string, int>(), py::arg("etcd"),
           py::arg("access_key"), py::arg("secret_key"), py::arg("retry_ms") = 30'000,
           "Reads the cluster map from etcd (comma-separated http://HOST:PORT endpoints).")
      .def("put", &PyClusterBlobs::Put, py::arg("key"), py::arg("value"))
      .def("get", &PyClusterBlobs::Get, py::arg("key"),
           "The blob's bytes; NotFoundError if there is none.")
      .def("delete", &PyClusterBlobs::Delete, py::arg("key"))
      .def("exists", &PyClusterBlobs::Exists, py::arg("key"));
}

}  // namespace granary::python
