// granary.Client: construction, buckets and single-object calls.
#include <pybind11/stl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gateway/cluster_object_api.h"
#include "python/arg_types.h"
#include "python/buffers.h"
#include "python/client_binding.h"
#include "python/types.h"

namespace granary::python {
namespace {

std::string CredentialOrEnv(py::handle value, const char* name, const char* env) {
  if (!value.is_none()) {
    if (!PyUnicode_Check(value.ptr())) {
      throw py::type_error(std::string(name) + " must be a str, not " +
                           Py_TYPE(value.ptr())->tp_name);
    }
    return value.cast<std::string>();
  }
  const char* from_env = std::getenv(env);
  if (from_env == nullptr || *from_env == '\0') {
    throw py::value_error(std::string("no ") + name + ": pass " + name + "= or set " + env);
  }
  return from_env;
}

// Reads all of `reader`'s range into `buf` (exactly reader.length() bytes). No GIL needed.
Status ReadFully(ObjectReader& reader, std::span<char> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    Result<size_t> n = reader.Read(buf.subspan(done));
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::Internal("object ended before its stated length");
    done += *n;
  }
  return Status::OK();
}

GetOptions ToGetOptions(py::handle offset, py::handle length, py::handle if_match,
                        py::handle if_none_match, py::handle if_version) {
  GetOptions options;
  options.offset = ToUnsigned(offset, "offset", INT64_MAX);
  options.length = ToOptionalUnsigned(length, "length", INT64_MAX).value_or(UINT64_MAX);
  options.conditions = ToConditions(if_match, if_none_match, if_version);
  return options;
}

PutOptions ToPutOptions(py::handle content_type, py::handle metadata, py::handle headers,
                        py::handle content_md5) {
  PutOptions options;
  options.content_type = ToOptionalString(content_type, "content_type");
  options.user_metadata = ToStringMap(metadata, "metadata");
  options.headers = ToStringMap(headers, "headers");
  options.content_md5 = ToOptionalString(content_md5, "content_md5");
  return options;
}

py::bytes Get(PyClient& self, const std::string& bucket, const std::string& key, IntArg offset,
              OptionalIntArg length, OptionalStrArg if_match, OptionalStrArg if_none_match,
              OptionalIntArg if_version) {
  std::shared_ptr<ObjectApi> client = self.client();
  GetOptions options = ToGetOptions(offset, length, if_match, if_none_match, if_version);
  std::unique_ptr<ObjectReader> reader =
      Unwrap(WithoutGil([&] { return client->Open(bucket, key, options); }));
  uint64_t size = reader->length();
  if (size > static_cast<uint64_t>(PY_SSIZE_T_MAX)) {
    WithoutGil([&] { reader.reset(); });
    throw py::value_error("object of " + std::to_string(size) + " bytes is too large for bytes");
  }
  // A fresh bytes object is not shared with anyone until returned, so filling it in place with
  // the GIL released is safe and saves a copy.
  PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
  if (raw == nullptr) {
    WithoutGil([&] { reader.reset(); });
    throw py::error_already_set();
  }
  py::bytes out = py::reinterpret_steal<py::bytes>(raw);
  std::span<char> dst(PyBytes_AS_STRING(raw), size);
  Status st = WithoutGil([&] {
    Status s = ReadFully(*reader, dst);
    reader.reset();
    return s;
  });
  Check(st);
  return out;
}

size_t GetInto(PyClient& self, const std::string& bucket, const std::string& key,
               WritableBufferArg buffer, IntArg offset, OptionalIntArg length,
               OptionalStrArg if_match, OptionalStrArg if_none_match, OptionalIntArg if_version) {
  std::shared_ptr<ObjectApi> client = self.client();
  GetOptions options = ToGetOptions(offset, length, if_match, if_none_match, if_version);
  BufferView view(buffer, BufferView::Access::kWrite, "buffer");
  std::span<char> dst = view.writable();
  return Unwrap(WithoutGil([&] { return client->GetInto(bucket, key, dst, options); }));
}

ObjectInfo Put(PyClient& self, const std::string& bucket, const std::string& key, BufferArg data,
               OptionalStrArg content_type, OptionalStrMapArg metadata, OptionalStrMapArg headers,
               OptionalStrArg content_md5, OptionalStrArg if_match, OptionalStrArg if_none_match,
               OptionalIntArg if_version) {
  std::shared_ptr<ObjectApi> client = self.client();
  PutOptions options = ToPutOptions(content_type, metadata, headers, content_md5);
  options.conditions = ToConditions(if_match, if_none_match, if_version);
  BufferView view(data, BufferView::Access::kRead, "data");
  std::string_view bytes = view.bytes();
  return Unwrap(WithoutGil([&] { return client->Put(bucket, key, bytes, std::move(options)); }));
}

void RegisterObjectMethods(py::class_<PyClient>& cls) {
  cls.def("put", &Put, py::arg("bucket"), py::arg("key"), py::arg("data"),
          py::arg("content_type") = py::none(), py::arg("metadata") = py::none(), py::kw_only(),
          py::arg("headers") = py::none(), py::arg("content_md5") = py::none(),
          py::arg("if_match") = py::none(), py::arg("if_none_match") = py::none(),
          py::arg("if_version") = py::none(),
          "Stores `data` (bytes, bytearray, memoryview, numpy array: any C-contiguous buffer, "
          "read in place) as bucket/key and returns its ObjectInfo. if_none_match='*' only "
          "creates; if_match / if_version only replace that object (PreconditionFailedError).");
  cls.def("get", &Get, py::arg("bucket"), py::arg("key"), py::arg("offset") = 0,
          py::arg("length") = py::none(), py::kw_only(), py::arg("if_match") = py::none(),
          py::arg("if_none_match") = py::none(), py::arg("if_version") = py::none(),
          "The object's bytes, or `length` bytes from `offset` (cut at the end). "
          "NotFoundError if there is no such key, InvalidRangeError if offset is past the end.");
  cls.def("get_into", &GetInto, py::arg("bucket"), py::arg("key"), py::arg("buffer"),
          py::arg("offset") = 0, py::arg("length") = py::none(), py::kw_only(),
          py::arg("if_match") = py::none(), py::arg("if_none_match") = py::none(),
          py::arg("if_version") = py::none(),
          "Reads the object (or its range) straight into `buffer` (bytearray, memoryview, numpy "
          "array: writable and C-contiguous) and returns the number of bytes read. "
          "InvalidArgumentError if the buffer is too small.");
  cls.def(
      "head",
      [](PyClient& self, const std::string& bucket, const std::string& key, OptionalStrArg if_match,
         OptionalStrArg if_none_match, OptionalIntArg if_version) {
        std::shared_ptr<ObjectApi> client = self.client();
        GetOptions options;
        options.conditions = ToConditions(if_match, if_none_match, if_version);
        return Unwrap(WithoutGil([&] { return client->Head(bucket, key, options); }));
      },
      py::arg("bucket"), py::arg("key"), py::kw_only(), py::arg("if_match") = py::none(),
      py::arg("if_none_match") = py::none(), py::arg("if_version") = py::none(),
      "The object's ObjectInfo, without its bytes. NotFoundError if there is no such key.");
  cls.def(
      "delete",
      [](PyClient& self, const std::string& bucket, const std::string& key, bool missing_ok) {
        std::shared_ptr<ObjectApi> client = self.client();
        Status st = WithoutGil([&] { return client->Delete(bucket, key); });
        if (st.IsNotFound() && missing_ok) return;
        Check(st);
      },
      py::arg("bucket"), py::arg("key"), py::kw_only(), py::arg("missing_ok") = false,
      "Deletes the object. NotFoundError if there was no such key, unless missing_ok.");
  cls.def(
      "copy",
      [](PyClient& self, const std::string& src_bucket, const std::string& src_key,
         const std::string& dst_bucket, const std::string& dst_key, OptionalStrArg content_type,
         OptionalStrMapArg metadata, OptionalStrMapArg headers, OptionalStrArg source_if_match,
         OptionalIntArg source_if_version) {
        std::shared_ptr<ObjectApi> client = self.client();
        CopyOptions options;
        options.replace_metadata =
            !content_type.is_none() || !metadata.is_none() || !headers.is_none();
        options.put = ToPutOptions(content_type, metadata, headers, py::none());
        options.source_conditions = ToConditions(source_if_match, py::none(), source_if_version);
        return Unwrap(WithoutGil(
            [&] { return client->Copy(src_bucket, src_key, dst_bucket, dst_key, options); }));
      },
      py::arg("src_bucket"), py::arg("src_key"), py::arg("dst_bucket"), py::arg("dst_key"),
      py::kw_only(), py::arg("content_type") = py::none(), py::arg("metadata") = py::none(),
      py::arg("headers") = py::none(), py::arg("source_if_match") = py::none(),
      py::arg("source_if_version") = py::none(),
      "Copies an object on the server and returns the new ObjectInfo. The copy keeps the "
      "source's content type and metadata unless content_type, metadata or headers is given.");
  cls.def(
      "list",
      [](PyClient& self, const std::string& bucket, std::string prefix, std::string delimiter,
         std::string start_after, IntArg max_keys, std::string continuation_token) {
        std::shared_ptr<ObjectApi> client = self.client();
        ListOptions options;
        options.prefix = std::move(prefix);
        options.delimiter = std::move(delimiter);
        options.start_after = std::move(start_after);
        options.continuation_token = std::move(continuation_token);
        options.max_keys = static_cast<uint32_t>(ToUnsigned(max_keys, "max_keys", UINT32_MAX));
        return ToPython(Unwrap(WithoutGil([&] { return client->List(bucket, options); })));
      },
      py::arg("bucket"), py::arg("prefix") = "", py::arg("delimiter") = "",
      py::arg("start_after") = "", py::arg("max_keys") = 1000, py::arg("continuation_token") = "",
      "One page (at most max_keys, at most 1000) of the objects whose keys start with "
      "`prefix`, in key order, as a ListResult. With a delimiter, keys are rolled up into "
      "common_prefixes. list_all() follows the pages for you.");
}

void RegisterBucketMethods(py::class_<PyClient>& cls) {
  cls.def(
      "create_bucket",
      [](PyClient& self, const std::string& bucket, int replicas) {
        std::shared_ptr<ObjectApi> client = self.client();
        Check(WithoutGil([&] { return client->CreateBucket(bucket, BucketOptions{replicas}); }));
      },
      py::arg("bucket"), py::arg("replicas") = 0,
      "Creates a bucket. AlreadyExistsError if it exists. `replicas` (1 to 5): copies a cluster "
      "keeps of its data, fixed for the bucket's life; 0 for the cluster's default.");
  cls.def(
      "delete_bucket",
      [](PyClient& self, const std::string& bucket) {
        std::shared_ptr<ObjectApi> client = self.client();
        Check(WithoutGil([&] { return client->DeleteBucket(bucket); }));
      },
      py::arg("bucket"), "Deletes an empty bucket. BucketNotEmptyError unless it is empty.");
  cls.def(
      "head_bucket",
      [](PyClient& self, const std::string& bucket) {
        std::shared_ptr<ObjectApi> client = self.client();
        return Unwrap(WithoutGil([&] { return client->HeadBucket(bucket); }));
      },
      py::arg("bucket"), "The bucket's BucketInfo. NoSuchBucketError if it does not exist.");
  cls.def(
      "list_buckets",
      [](PyClient& self) {
        std::shared_ptr<ObjectApi> client = self.client();
        return Unwrap(WithoutGil([&] { return client->ListBuckets(); }));
      },
      "Every bucket, as a list of BucketInfo.");
}

}  // namespace

PyClient::PyClient(std::string address, Credentials credentials, Connector connect)
    : address_(std::move(address)),
      credentials_(std::move(credentials)),
      connect_(std::move(connect)),
      pid_(getpid()) {
  client_ = Connect();
}

PyClient::PyClient(std::string address, py::object access_key, py::object secret_key,
                   const ClientOptions& options)
    : address_(std::move(address)), credentials_(CredentialsOrEnv(access_key, secret_key)),
      pid_(getpid()) {
  if (options.max_connections < 1) throw py::value_error("max_connections must be >= 1");
  if (options.chunk_bytes < 1) throw py::value_error("chunk_bytes must be >= 1");
  if (options.parallel_chunks < 1) throw py::value_error("parallel_chunks must be >= 1");
  if (options.timeout_ms < 0) throw py::value_error("timeout_ms must be >= 0 (0: no deadline)");
  if (options.retries < 0) throw py::value_error("retries must be >= 0");
  connect_ = [address = address_, credentials = credentials_,
              options]() -> Result<std::shared_ptr<ObjectApi>> {
    ASSIGN_OR_RETURN(std::unique_ptr<Client> client, Client::Connect(address, credentials, options));
    return std::shared_ptr<ObjectApi>(std::move(client));
  };
  client_ = Connect();
}

std::unique_ptr<PyClient> PyClient::ForCluster(std::string etcd, py::object access_key,
                                               py::object secret_key, int retry_ms) {
  if (retry_ms < 0) throw py::value_error("retry_ms must be >= 0");
  Credentials credentials = CredentialsOrEnv(access_key, secret_key);
  Connector connect = [etcd, credentials, retry_ms]() -> Result<std::shared_ptr<ObjectApi>> {
    gateway::ClusterObjectApiOptions options;
    options.etcd = etcd;
    options.access_key = credentials.access_key;
    options.secret_key = credentials.secret_key;
    options.retry_ms = retry_ms;
    ASSIGN_OR_RETURN(std::unique_ptr<gateway::ClusterObjectApi> api,
                     gateway::ClusterObjectApi::Open(std::move(options)));
    return std::shared_ptr<ObjectApi>(std::move(api));
  };
  return std::unique_ptr<PyClient>(new PyClient(std::move(etcd), std::move(credentials),
                                                std::move(connect)));
}

std::shared_ptr<ObjectApi> PyClient::Connect() {
  return Unwrap(WithoutGil([&] { return connect_(); }));
}

PyClient::~PyClient() { DropInherited(); }

void PyClient::DropInherited() {
  if (getpid() == pid_) return;
  // Inherited over fork(): its threads are gone and its sockets belong to the parent, so it must
  // neither be used nor destroyed here. Deliberately leaked.
  if (client_ != nullptr) new std::shared_ptr<ObjectApi>(std::move(client_));
  client_ = nullptr;
  pid_ = getpid();
}

std::shared_ptr<ObjectApi> PyClient::client() {
  if (closed_) throw py::value_error("I/O on a closed granary.Client");
  DropInherited();
  if (client_ != nullptr) return client_;
  // In a forked child: connect (a failure is retried on the next call). Another thread may
  // close() meanwhile, as the GIL is released while connecting.
  std::shared_ptr<ObjectApi> fresh = Connect();
  if (closed_) throw py::value_error("I/O on a closed granary.Client");
  if (client_ == nullptr) client_ = std::move(fresh);
  return client_;
}

void PyClient::Close() {
  closed_ = true;
  DropInherited();
  std::shared_ptr<ObjectApi> client = std::move(client_);
  client_ = nullptr;
  // The last reference closes the connections; do that without holding up other threads.
  WithoutGil([&] { client.reset(); });
}

Credentials CredentialsOrEnv(py::handle access_key, py::handle secret_key) {
  Credentials credentials;
  credentials.access_key = CredentialOrEnv(access_key, "access_key", "GRANARY_ACCESS_KEY");
  credentials.secret_key = CredentialOrEnv(secret_key, "secret_key", "GRANARY_SECRET_KEY");
  return credentials;
}

Conditions ToConditions(py::handle if_match, py::handle if_none_match, py::handle if_version) {
  Conditions c;
  c.if_match = ToOptionalString(if_match, "if_match");
  c.if_none_match = ToOptionalString(if_none_match, "if_none_match");
  c.if_version = ToOptionalUnsigned(if_version, "if_version").value_or(0);
  return c;
}

void RegisterClient(py::module_& m) {
  py::class_<PyClient> cls(m, "Client", R"doc(
A connection pool to one granary server's native port (--listen), or to a cluster.

    client = granary.Client("127.0.0.1:9100", access_key, secret_key)
    client = granary.Client(etcd="http://10.0.0.1:2379", access_key=..., secret_key=...)

A cluster's client reads the cluster map from etcd (comma-separated endpoints) and sends each
call to the node heading its bucket's namespace partition, re-reading the map and retrying for
up to retry_ms while the cluster replaces a node; the keys are the cluster's root credentials.

access_key / secret_key default to $GRANARY_ACCESS_KEY / $GRANARY_SECRET_KEY. Options:
max_connections (connections kept open, the most requests in flight), chunk_bytes and
parallel_chunks (large objects move as parallel ranged requests of chunk_bytes), timeout_ms (per
request; 0: none), retries (reconnect attempts for idempotent requests).

Thread-safe: share one Client between threads; every call releases the GIL while it waits. Use it
as a context manager, or call close(), to close its connections. Errors raise granary.Error
subclasses carrying the server's code and message.)doc");
  cls.def(py::init([](std::string address, OptionalStrArg access_key, OptionalStrArg secret_key,
                      int max_connections, IntArg chunk_bytes, int parallel_chunks,
                      int64_t timeout_ms, int retries) {
            ClientOptions options;
            options.max_connections = max_connections;
            options.chunk_bytes = ToUnsigned(chunk_bytes, "chunk_bytes");
            options.parallel_chunks = parallel_chunks;
            options.timeout_ms = timeout_ms;
            options.retries = retries;
            return std::make_unique<PyClient>(std::move(address), std::move(access_key),
                                              std::move(secret_key), options);
          }),
          py::arg("address"), py::arg("access_key") = py::none(),
          py::arg("secret_key") = py::none(), py::kw_only(), py::arg("max_connections") = 16,
          py::arg("chunk_bytes") = 4 << 20, py::arg("parallel_chunks") = 8,
          py::arg("timeout_ms") = 60000, py::arg("retries") = 3);
  cls.def(py::init([](std::string etcd, OptionalStrArg access_key, OptionalStrArg secret_key,
                      int retry_ms) {
            return PyClient::ForCluster(std::move(etcd), std::move(access_key),
                                        std::move(secret_key), retry_ms);
          }),
          py::kw_only(), py::arg("etcd"), py::arg("access_key") = py::none(),
          py::arg("secret_key") = py::none(), py::arg("retry_ms") = 30000);
  cls.def_property_readonly("address", &PyClient::address,
                            "The server's 'host:port', or a cluster's etcd endpoints.");
  cls.def_property_readonly("closed", &PyClient::closed);
  cls.def("close", &PyClient::Close,
          "Closes the connections. Calls in flight on other threads finish first; later calls "
          "raise ValueError. Closing twice is harmless.");
  cls.def("__enter__", [](py::object self) { return self; });
  cls.def("__exit__", [](PyClient& self, py::args) { self.Close(); });
  cls.def("__repr__", [](PyClient& self) {
    return "<granary.Client " + std::string(py::repr(py::str(self.address()))) +
           (self.closed() ? " closed>" : ">");
  });
  RegisterBucketMethods(cls);
  RegisterObjectMethods(cls);
  RegisterBatchMethods(cls);
  RegisterMultipartMethods(cls);
  RegisterSharedBuffer(m, cls);
}

}  // namespace granary::python
