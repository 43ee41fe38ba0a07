// The Python classes granary._granary.KVStore and KvAdmin over granary::KVStore and
// granary::KvAdmin (include/granary/kv.h), with PoolConfig and PoolInfo (KvPoolConfig and
// KvPoolInfo) as result types.
// python/granary/kv.py re-exports them as granary.kv.
//
// Keys are bytes, or str (encoded as UTF-8); values are any C-contiguous buffer. A missing key is
// None (get, get_into, batch_get_into), never an exception.
//
// Threads: as in client_binding.h. Every call that talks to the server releases the GIL for the
// whole exchange, with its Python buffers exported (BufferView) until it returns. Handle::obj_
// (the KVStore or KvAdmin) is guarded by the GIL; each call takes its own reference under the
// GIL, so close() on one thread never frees it under a call running on another.
//
// Fork: the first call in a child process leaves the inherited store (its threads, sockets and
// shared-memory mapping belong to the parent) untouched, never destroyed, and connects anew.
#include "granary/kv.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/types.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "python/arg_types.h"
#include "python/buffers.h"
#include "python/client_binding.h"
#include "python/errors.h"

namespace granary::python {
namespace {

// Every field of KvStats, in the order of include/granary/kv.h.
py::dict StatsToDict(const KvStats& s) {
  py::dict d;
#define GRANARY_KV_STAT(f) d[#f] = s.f
  GRANARY_KV_STAT(dram_hits);
  GRANARY_KV_STAT(disk_hits);
  GRANARY_KV_STAT(misses);
  GRANARY_KV_STAT(prefix_lookups);
  GRANARY_KV_STAT(prefix_keys);
  GRANARY_KV_STAT(prefix_hits);
  GRANARY_KV_STAT(puts);
  GRANARY_KV_STAT(put_bytes);
  GRANARY_KV_STAT(put_failures);
  GRANARY_KV_STAT(dram_blocks);
  GRANARY_KV_STAT(dram_bytes);
  GRANARY_KV_STAT(dram_budget_bytes);
  GRANARY_KV_STAT(dram_evictions);
  GRANARY_KV_STAT(promotions);
  GRANARY_KV_STAT(spills);
  GRANARY_KV_STAT(pinned_blocks);
  GRANARY_KV_STAT(pinned_bytes);
  GRANARY_KV_STAT(disk_blocks);
  GRANARY_KV_STAT(disk_bytes);
  GRANARY_KV_STAT(disk_budget_bytes);
  GRANARY_KV_STAT(disk_evictions);
  GRANARY_KV_STAT(disk_corruptions);
#undef GRANARY_KV_STAT
  return d;
}

std::string Repr(const std::string& s) { return py::repr(py::str(s)); }

ClientOptions ToClientOptions(int max_connections, int64_t timeout_ms, int retries) {
  if (max_connections < 1) throw py::value_error("max_connections must be >= 1");
  if (timeout_ms < 0) throw py::value_error("timeout_ms must be >= 0 (0: no deadline)");
  if (retries < 0) throw py::value_error("retries must be >= 0");
  ClientOptions options;
  options.max_connections = max_connections;
  options.timeout_ms = timeout_ms;
  options.retries = retries;
  return options;
}

// A key: bytes as they are, str as UTF-8. The server checks the length (1..1024 bytes).
std::string ToKey(py::handle key, const std::string& what) {
  if (PyBytes_Check(key.ptr())) return key.cast<std::string>();
  if (PyUnicode_Check(key.ptr())) return key.cast<std::string>();
  throw py::type_error(what + " must be bytes or str, not " + Py_TYPE(key.ptr())->tp_name);
}

// Keys from any iterable; a lone bytes or str (whose items would be taken as keys) is refused.
// The key objects themselves are appended to `given` when it is not null.
std::vector<std::string> ToKeys(py::handle keys, py::list* given = nullptr) {
  if (PyUnicode_Check(keys.ptr()) || PyBytes_Check(keys.ptr())) {
    throw py::type_error("keys must be an iterable of bytes or str (e.g. a list), not a single " +
                         std::string(Py_TYPE(keys.ptr())->tp_name));
  }
  std::vector<std::string> out;
  for (py::handle key : py::iter(keys)) {
    out.push_back(ToKey(key, "key " + std::to_string(out.size())));
    if (given != nullptr) given->append(key);
  }
  return out;
}

std::vector<std::string_view> Views(const std::vector<std::string>& keys) {
  return std::vector<std::string_view>(keys.begin(), keys.end());
}

// Holds a connected KVStore or KvAdmin (T) and its settings; reconnects in a forked child.
template <typename T>
class Handle {
 public:
  virtual ~Handle() { DropInherited(); }

  // The connected object, or ValueError("... is closed"). Needs the GIL.
  std::shared_ptr<T> get() {
    if (closed_) throw py::value_error("I/O on a closed granary.kv." + kind_);
    DropInherited();
    if (obj_ != nullptr) return obj_;
    // In a forked child: connect (a failure is retried on the next call). Another thread may
    // close() meanwhile, as the GIL is released while connecting.
    std::shared_ptr<T> fresh = Connect();
    if (closed_) throw py::value_error("I/O on a closed granary.kv." + kind_);
    if (obj_ == nullptr) obj_ = std::move(fresh);
    return obj_;
  }

  // Drops this object's reference; calls in flight on other threads finish first.
  void Close() {
    closed_ = true;
    DropInherited();
    std::shared_ptr<T> obj = std::move(obj_);
    obj_ = nullptr;
    WithoutGil([&] { obj.reset(); });
  }
  bool closed() const { return closed_; }
  const std::string& address() const { return address_; }

 protected:
  Handle(std::string kind, std::string address, py::handle access_key, py::handle secret_key)
      : kind_(std::move(kind)),
        address_(std::move(address)),
        credentials_(CredentialsOrEnv(access_key, secret_key)),
        pid_(getpid()) {}
  // Connects with the GIL released; raises on failure.
  virtual std::shared_ptr<T> Connect() = 0;
  // For the subclass's constructor, once its settings are set.
  void ConnectNow() { obj_ = Connect(); }

  const std::string kind_;
  const std::string address_;
  const Credentials credentials_;

 private:
  void DropInherited() {
    if (getpid() == pid_) return;
    // Inherited over fork(): deliberately leaked (see the top of this file).
    if (obj_ != nullptr) new std::shared_ptr<T>(std::move(obj_));
    obj_ = nullptr;
    pid_ = getpid();
  }

  pid_t pid_;
  std::shared_ptr<T> obj_;
  bool closed_ = false;
};

class PyKvStore : public Handle<KVStore> {
 public:
  PyKvStore(std::string address, std::string pool, py::handle access_key, py::handle secret_key,
            KvStoreOptions options)
      : Handle("KVStore", std::move(address), access_key, secret_key),
        pool_(std::move(pool)),
        options_(std::move(options)) {
    ConnectNow();
  }
  const std::string& pool() const { return pool_; }

 private:
  std::shared_ptr<KVStore> Connect() override {
    return Unwrap(
        WithoutGil([&] { return KVStore::Connect(address_, pool_, credentials_, options_); }));
  }
  const std::string pool_;
  const KvStoreOptions options_;
};

class PyKvAdmin : public Handle<KvAdmin> {
 public:
  PyKvAdmin(std::string address, py::handle access_key, py::handle secret_key,
            ClientOptions options)
      : Handle("KvAdmin", std::move(address), access_key, secret_key),
        options_(std::move(options)) {
    ConnectNow();
  }

 private:
  std::shared_ptr<KvAdmin> Connect() override {
    return Unwrap(WithoutGil([&] { return KvAdmin::Connect(address_, credentials_, options_); }));
  }
  const ClientOptions options_;
};

// The per-item outcomes of a batch call over `keys`: `fill(i, outcome)` sets item i's status or
// value from `results`.
template <typename Results, typename Fill>
std::vector<ItemOutcome> Outcomes(const std::vector<std::string>& keys, Results& results,
                                  Fill fill) {
  if (results.size() != keys.size()) {
    ThrowStatus(Status::Internal("the KV client returned " + std::to_string(results.size()) +
                                 " results for " + std::to_string(keys.size()) + " keys"));
  }
  std::vector<ItemOutcome> outcomes(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    outcomes[i].key = keys[i];
    fill(i, outcomes[i]);
  }
  return outcomes;
}

// BatchResults (errors.h), with the keys of the raised error's `.failures` as the caller gave
// them (bytes or str) rather than decoded to str: binary keys such as hashes stay usable.
py::list KvBatchResults(const char* call, std::vector<ItemOutcome>& outcomes,
                        const py::list& given_keys, bool return_exceptions) {
  try {
    return BatchResults(call, outcomes, return_exceptions);
  } catch (py::error_already_set& e) {
    const py::object& error = e.value();
    if (error && py::hasattr(error, "results")) {
      py::list results = error.attr("results");
      py::list failures;
      for (size_t i = 0; i < outcomes.size(); ++i) {
        if (!outcomes[i].status.ok()) failures.append(py::make_tuple(given_keys[i], results[i]));
      }
      error.attr("failures") = failures;
    }
    throw;
  }
}

py::object BatchPut(PyKvStore& self, KvItemsArg items, bool return_exceptions) {
  std::shared_ptr<KVStore> store = self.get();
  if (PyUnicode_Check(items.ptr()) || PyBytes_Check(items.ptr())) {
    throw py::type_error("items must be a dict {key: value} or an iterable of (key, value) pairs");
  }
  py::object pairs =
      PyDict_Check(items.ptr()) ? items.attr("items")() : py::reinterpret_borrow<py::object>(items);
  std::vector<std::string> keys;
  py::list given_keys;
  std::vector<BufferView> views;
  for (py::handle pair : py::iter(pairs)) {
    std::string item = "item " + std::to_string(keys.size());
    if (!PyTuple_Check(pair.ptr()) && !PyList_Check(pair.ptr())) {
      throw py::type_error("items must be (key, value) pairs; " + item + " is a " +
                           Py_TYPE(pair.ptr())->tp_name);
    }
    py::sequence seq = py::reinterpret_borrow<py::sequence>(pair);
    if (seq.size() != 2) {
      throw py::value_error("items must be (key, value) pairs; " + item + " has " +
                            std::to_string(seq.size()) + " elements");
    }
    py::object key = seq[0];
    keys.push_back(ToKey(key, "the key of " + item));
    given_keys.append(key);
    views.emplace_back(seq[1], BufferView::Access::kRead, "the value of " + item);
  }
  if (keys.empty()) return return_exceptions ? py::object(py::list()) : py::object(py::none());
  std::vector<KvItem> batch(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) batch[i] = KvItem{keys[i], views[i].bytes()};
  std::vector<Status> results = WithoutGil([&] { return store->BatchPut(batch); });
  std::vector<ItemOutcome> outcomes = Outcomes(keys, results, [&](size_t i, ItemOutcome& out) {
    out.status = results[i];
    out.value = py::none();
  });
  py::list list = KvBatchResults("batch_put", outcomes, given_keys, return_exceptions);
  return return_exceptions ? py::object(list) : py::object(py::none());
}

py::list BatchGetInto(PyKvStore& self, KvKeysArg keys_obj, WritableBuffersArg buffers_obj,
                      bool return_exceptions) {
  std::shared_ptr<KVStore> store = self.get();
  py::list given_keys;
  std::vector<std::string> keys = ToKeys(keys_obj, &given_keys);
  std::vector<BufferView> views;
  std::vector<std::span<char>> spans;
  for (py::handle buffer : py::iter(buffers_obj)) {
    views.emplace_back(buffer, BufferView::Access::kWrite,
                       "buffer " + std::to_string(views.size()));
    spans.push_back(views.back().writable());
  }
  if (views.size() != keys.size()) {
    throw py::value_error("batch_get_into needs one buffer per key: got " +
                          std::to_string(keys.size()) + " keys and " +
                          std::to_string(views.size()) + " buffers");
  }
  if (keys.empty()) return py::list();
  std::vector<std::string_view> key_views = Views(keys);
  std::vector<Result<size_t>> results =
      WithoutGil([&] { return store->BatchGetInto(key_views, spans); });
  std::vector<ItemOutcome> outcomes = Outcomes(keys, results, [&](size_t i, ItemOutcome& out) {
    if (results[i].ok()) {
      out.value = py::int_(*results[i]);
    } else if (results[i].status().IsNotFound()) {
      out.value = py::none();
    } else {
      out.status = results[i].status();
    }
  });
  return KvBatchResults("batch_get_into", outcomes, given_keys, return_exceptions);
}

py::object Get(PyKvStore& self, KvKeyArg key_obj) {
  std::shared_ptr<KVStore> store = self.get();
  std::string key = ToKey(key_obj, "key");
  Result<std::string> value = WithoutGil([&] { return store->Get(key); });
  if (!value.ok() && value.status().IsNotFound()) return py::none();
  py::bytes out(Unwrap(std::move(value)));
  return out;
}

py::object GetInto(PyKvStore& self, KvKeyArg key_obj, WritableBufferArg buffer) {
  std::shared_ptr<KVStore> store = self.get();
  std::string key = ToKey(key_obj, "key");
  BufferView view(buffer, BufferView::Access::kWrite, "buffer");
  std::span<char> dst = view.writable();
  Result<size_t> n = WithoutGil([&] { return store->GetInto(key, dst); });
  if (!n.ok() && n.status().IsNotFound()) return py::none();
  return py::int_(Unwrap(std::move(n)));
}

void RegisterStoreMethods(py::class_<PyKvStore>& cls) {
  cls.def(
      "put",
      [](PyKvStore& self, KvKeyArg key_obj, BufferArg value) {
        std::shared_ptr<KVStore> store = self.get();
        std::string key = ToKey(key_obj, "key");
        BufferView view(value, BufferView::Access::kRead, "value");
        std::string_view bytes = view.bytes();
        Check(WithoutGil([&] { return store->Put(key, bytes); }));
      },
      py::arg("key"), py::arg("value"),
      "Stores `value` (bytes, bytearray, memoryview, numpy array: any C-contiguous buffer, read "
      "in place) under `key`. Values are immutable: putting a stored key again is a no-op when "
      "the size matches and AlreadyExistsError when it does not (remove it first).");
  cls.def("batch_put", &BatchPut, py::arg("items"), py::kw_only(),
          py::arg("return_exceptions") = false,
          "Puts a chain of blocks, in prefix order, in as few round trips as the sizes allow. "
          "items: a dict {key: value} or an iterable of (key, value) pairs. Returns None. Items "
          "are independent: if some fail, the others are stored, and the call raises the error "
          "of the first failed item with .results and .failures attached (see granary.errors); "
          "with return_exceptions=True it returns the list of outcomes instead (None, or the "
          "error instance of a failed item).");
  cls.def("get", &Get, py::arg("key"), "The value of `key` as bytes, or None on a miss.");
  cls.def("get_into", &GetInto, py::arg("key"), py::arg("buffer"),
          "Copies the value of `key` into `buffer` (bytearray, memoryview, numpy array: writable "
          "and C-contiguous) and returns its size, or None on a miss. InvalidArgumentError when "
          "the buffer is too small (the message gives the size needed).");
  cls.def("batch_get_into", &BatchGetInto, py::arg("keys"), py::arg("buffers"), py::kw_only(),
          py::arg("return_exceptions") = false,
          "get_into of a chain of keys (in prefix order), one buffer per key, in one round trip. "
          "Returns the sizes, with None for a miss. A buffer too small is an InvalidArgumentError "
          "item failure, reported as in batch_put.");
  cls.def(
      "exists",
      [](PyKvStore& self, KvKeyArg key_obj) {
        std::shared_ptr<KVStore> store = self.get();
        std::string key = ToKey(key_obj, "key");
        return Unwrap(WithoutGil([&] { return store->Exists(key); }));
      },
      py::arg("key"), "Whether a read of `key` would hit now. Neither a use nor a lease.");
  cls.def(
      "batch_exists",
      [](PyKvStore& self, KvKeysArg keys_obj) {
        std::shared_ptr<KVStore> store = self.get();
        std::vector<std::string> keys = ToKeys(keys_obj);
        std::vector<std::string_view> views = Views(keys);
        std::vector<bool> found = Unwrap(WithoutGil([&] { return store->BatchExists(views); }));
        py::list out;
        for (bool f : found) out.append(py::bool_(f));
        return out;
      },
      py::arg("keys"), "exists() of each key, as a list of bool, in one round trip.");
  cls.def(
      "longest_prefix",
      [](PyKvStore& self, KvKeysArg keys_obj) {
        std::shared_ptr<KVStore> store = self.get();
        std::vector<std::string> keys = ToKeys(keys_obj);
        std::vector<std::string_view> views = Views(keys);
        return Unwrap(WithoutGil([&] { return store->LongestPrefix(views); }));
      },
      py::arg("keys"),
      "How many leading keys of the chain `keys` (in prefix order) are all cached, in one round "
      "trip. The blocks found are leased (kept from eviction for the pool's lease_ms) so that "
      "the caller can read them.");
  auto key_call = [](Status (KVStore::*call)(std::string_view)) {
    return [call](PyKvStore& self, KvKeyArg key_obj) {
      std::shared_ptr<KVStore> store = self.get();
      std::string key = ToKey(key_obj, "key");
      Check(WithoutGil([&] { return ((*store).*call)(key); }));
    };
  };
  cls.def("remove", key_call(&KVStore::Remove), py::arg("key"),
          "Removes `key`; no error whether or not it was there.");
  cls.def("pin", key_call(&KVStore::Pin), py::arg("key"),
          "Keeps a cached block from eviction until unpin(). NotFoundError when it is not "
          "cached, NoSpaceError past the pool's pin_limit_bytes.");
  cls.def("unpin", key_call(&KVStore::Unpin), py::arg("key"),
          "Lets a pinned block be evicted again; no error whether or not it was pinned.");
  cls.def(
      "stats",
      [](PyKvStore& self) {
        std::shared_ptr<KVStore> store = self.get();
        return StatsToDict(Unwrap(WithoutGil([&] { return store->Stats(); })));
      },
      "The pool's counters, as a dict of int (see KvStats in include/granary/kv.h).");
}

void RegisterStore(py::module_& m) {
  py::class_<PyKvStore> cls(m, "KVStore", R"doc(
A client of one KV-cache pool on a granary server's native port (--listen).

    kv = granary.kv.KVStore("127.0.0.1:9100", "llama", access_key, secret_key)
    kv.put(block_hash, block_bytes)
    cached = kv.longest_prefix(chain_of_block_hashes)

Keys are bytes or str (UTF-8) of 1..1024 bytes; values any bytes-like object. A miss is None,
never an exception. Calls that take a chain of keys take them in prefix order.

access_key / secret_key default to $GRANARY_ACCESS_KEY / $GRANARY_SECRET_KEY. shared_memory: when
the server runs on this host, read values straight from the pool's memory (the `shared_memory`
property says whether the server offered it). timeout_ms (per request; 0: none),
max_connections, retries as for granary.Client.

Thread-safe: share one KVStore between threads; every call releases the GIL while it waits. Use
it as a context manager, or call close(). NotFoundError if the pool does not exist.)doc");
  cls.def(py::init([](std::string address, std::string pool, OptionalStrArg access_key,
                      OptionalStrArg secret_key, bool shared_memory, int64_t timeout_ms,
                      int max_connections, int retries) {
            KvStoreOptions options;
            options.client = ToClientOptions(max_connections, timeout_ms, retries);
            options.shared_memory = shared_memory;
            return std::make_unique<PyKvStore>(std::move(address), std::move(pool), access_key,
                                               secret_key, options);
          }),
          py::arg("address"), py::arg("pool"), py::arg("access_key") = py::none(),
          py::arg("secret_key") = py::none(), py::kw_only(), py::arg("shared_memory") = true,
          py::arg("timeout_ms") = 60000, py::arg("max_connections") = 16, py::arg("retries") = 3);
  cls.def_property_readonly("address", &PyKvStore::address, "The server's 'host:port'.");
  cls.def_property_readonly("pool", &PyKvStore::pool, "The pool's name.");
  cls.def_property_readonly(
      "shared_memory", [](PyKvStore& self) { return self.get()->shared_memory(); },
      "Whether reads copy values straight from the pool's memory (same host) rather than over "
      "the socket.");
  cls.def_property_readonly("closed", &PyKvStore::closed);
  cls.def("close", &PyKvStore::Close,
          "Closes the connections. Calls in flight on other threads finish first; later calls "
          "raise ValueError. Closing twice is harmless.");
  cls.def("__enter__", [](py::object self) { return self; });
  cls.def("__exit__", [](PyKvStore& self, py::args) { self.Close(); });
  cls.def("__repr__", [](PyKvStore& self) {
    return "<granary.kv.KVStore " + Repr(self.address()) + " pool=" + Repr(self.pool()) +
           (self.closed() ? " closed>" : ">");
  });
  RegisterStoreMethods(cls);
}

void RegisterPoolTypes(py::module_& m) {
  py::class_<KvPoolConfig>(m, "PoolConfig", "A KV-cache pool's settings, fixed when it is created.")
      .def(py::init([](std::string name, uint64_t dram_budget_bytes, uint64_t disk_budget_bytes,
                       std::string eviction, uint64_t pin_limit_bytes, uint64_t lease_ms) {
             return KvPoolConfig{std::move(name),     dram_budget_bytes, disk_budget_bytes,
                                 std::move(eviction), pin_limit_bytes,   lease_ms};
           }),
           py::arg("name"), py::kw_only(), py::arg("dram_budget_bytes") = 1ull << 30,
           py::arg("disk_budget_bytes") = 0, py::arg("eviction") = "prefix",
           py::arg("pin_limit_bytes") = 0, py::arg("lease_ms") = 5000)
      .def_readwrite("name", &KvPoolConfig::name)
      .def_readwrite("dram_budget_bytes", &KvPoolConfig::dram_budget_bytes)
      .def_readwrite("disk_budget_bytes", &KvPoolConfig::disk_budget_bytes,
                     "0: no disk tier (nothing survives a restart).")
      .def_readwrite("eviction", &KvPoolConfig::eviction, "'prefix' (prefix-aware) or 'lru'.")
      .def_readwrite("pin_limit_bytes", &KvPoolConfig::pin_limit_bytes,
                     "Pinned bytes allowed; 0: pinning refused.")
      .def_readwrite("lease_ms", &KvPoolConfig::lease_ms,
                     "How long a block that was read is kept from eviction.")
      .def("__eq__",
           [](const KvPoolConfig& a, const KvPoolConfig& b) {
             return a.name == b.name && a.dram_budget_bytes == b.dram_budget_bytes &&
                    a.disk_budget_bytes == b.disk_budget_bytes && a.eviction == b.eviction &&
                    a.pin_limit_bytes == b.pin_limit_bytes && a.lease_ms == b.lease_ms;
           })
      .def("__repr__", [](const KvPoolConfig& c) {
        return "PoolConfig(" + Repr(c.name) +
               ", dram_budget_bytes=" + std::to_string(c.dram_budget_bytes) +
               ", disk_budget_bytes=" + std::to_string(c.disk_budget_bytes) +
               ", eviction=" + Repr(c.eviction) +
               ", pin_limit_bytes=" + std::to_string(c.pin_limit_bytes) +
               ", lease_ms=" + std::to_string(c.lease_ms) + ")";
      });

  py::class_<KvPoolInfo> info(m, "PoolInfo",
                              "A pool's settings (as attributes, and as .config) and its "
                              "counters (.stats, a dict).");
  info.def_readonly("config", &KvPoolInfo::config);
  info.def_property_readonly("stats", [](const KvPoolInfo& i) { return StatsToDict(i.stats); });
#define GRANARY_KV_CONFIG_FIELD(f) \
  info.def_property_readonly(#f, [](const KvPoolInfo& i) { return i.config.f; });
  GRANARY_KV_CONFIG_FIELD(name)
  GRANARY_KV_CONFIG_FIELD(dram_budget_bytes)
  GRANARY_KV_CONFIG_FIELD(disk_budget_bytes)
  GRANARY_KV_CONFIG_FIELD(eviction)
  GRANARY_KV_CONFIG_FIELD(pin_limit_bytes)
  GRANARY_KV_CONFIG_FIELD(lease_ms)
#undef GRANARY_KV_CONFIG_FIELD
  info.def("__repr__", [](const KvPoolInfo& i) {
    return "PoolInfo(" + Repr(i.config.name) +
           ", dram_blocks=" + std::to_string(i.stats.dram_blocks) +
           ", disk_blocks=" + std::to_string(i.stats.disk_blocks) + ")";
  });
}

void RegisterAdmin(py::module_& m) {
  py::class_<PyKvAdmin> cls(m, "KvAdmin", R"doc(
Administration of the KV-cache pools of a granary server (`granary admin pool ...`).

    with granary.kv.KvAdmin("127.0.0.1:9100", access_key, secret_key) as admin:
        admin.create_pool("llama", dram_budget_bytes=8 << 30)

Thread-safe. granary.kv.create_pool() and the other functions open one for a single call.)doc");
  cls.def(py::init([](std::string address, OptionalStrArg access_key, OptionalStrArg secret_key,
                      int64_t timeout_ms, int retries) {
            return std::make_unique<PyKvAdmin>(std::move(address), access_key, secret_key,
                                               ToClientOptions(4, timeout_ms, retries));
          }),
          py::arg("address"), py::arg("access_key") = py::none(),
          py::arg("secret_key") = py::none(), py::kw_only(), py::arg("timeout_ms") = 60000,
          py::arg("retries") = 3);
  cls.def(
      "create_pool",
      [](PyKvAdmin& self, std::string name, IntArg dram_budget_bytes, IntArg disk_budget_bytes,
         std::string eviction, IntArg pin_limit_bytes, IntArg lease_ms) {
        std::shared_ptr<KvAdmin> admin = self.get();
        KvPoolConfig config;
        config.name = std::move(name);
        config.dram_budget_bytes = ToUnsigned(dram_budget_bytes, "dram_budget_bytes");
        config.disk_budget_bytes = ToUnsigned(disk_budget_bytes, "disk_budget_bytes");
        config.eviction = std::move(eviction);
        config.pin_limit_bytes = ToUnsigned(pin_limit_bytes, "pin_limit_bytes");
        config.lease_ms = ToUnsigned(lease_ms, "lease_ms");
        Check(WithoutGil([&] { return admin->CreatePool(config); }));
      },
      py::arg("name"), py::kw_only(), py::arg("dram_budget_bytes") = 1ull << 30,
      py::arg("disk_budget_bytes") = 0, py::arg("eviction") = "prefix",
      py::arg("pin_limit_bytes") = 0, py::arg("lease_ms") = 5000,
      "Creates a pool. AlreadyExistsError if one of that name exists, InvalidArgumentError for "
      "a bad name ([a-z0-9][a-z0-9._-]{0,62}) or settings. disk_budget_bytes=0: no disk tier "
      "(nothing survives a restart); eviction: 'prefix' or 'lru'; pin_limit_bytes=0: pinning "
      "refused; lease_ms: how long a block that was read is kept from eviction.");
  cls.def(
      "list_pools",
      [](PyKvAdmin& self) {
        std::shared_ptr<KvAdmin> admin = self.get();
        return py::cast(Unwrap(WithoutGil([&] { return admin->ListPools(); })));
      },
      "Every pool, as a list of PoolInfo.");
  cls.def(
      "pool_info",
      [](PyKvAdmin& self, const std::string& name) {
        std::shared_ptr<KvAdmin> admin = self.get();
        return Unwrap(WithoutGil([&] { return admin->PoolInfo(name); }));
      },
      py::arg("name"), "The pool's PoolInfo. NotFoundError if there is none.");
  cls.def(
      "delete_pool",
      [](PyKvAdmin& self, const std::string& name) {
        std::shared_ptr<KvAdmin> admin = self.get();
        Check(WithoutGil([&] { return admin->DeletePool(name); }));
      },
      py::arg("name"),
      "Drops the pool and everything in it, its disk tier included. NotFoundError if there is "
      "none.");
  cls.def_property_readonly("address", &PyKvAdmin::address, "The server's 'host:port'.");
  cls.def_property_readonly("closed", &PyKvAdmin::closed);
  cls.def("close", &PyKvAdmin::Close, "Closes the connection. Closing twice is harmless.");
  cls.def("__enter__", [](py::object self) { return self; });
  cls.def("__exit__", [](PyKvAdmin& self, py::args) { self.Close(); });
  cls.def("__repr__", [](PyKvAdmin& self) {
    return "<granary.kv.KvAdmin " + Repr(self.address()) + (self.closed() ? " closed>" : ">");
  });
}

}  // namespace

void RegisterKv(py::module_& m) {
  RegisterPoolTypes(m);
  RegisterStore(m);
  RegisterAdmin(m);
}

}  // namespace granary::python
