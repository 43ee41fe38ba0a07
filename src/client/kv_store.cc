// granary::KVStore and granary::KvAdmin over the native protocol's KV_* methods. A KVStore on
// the server's host maps the pool's arena (handed over by the server's FdDoor) and reads located
// values from it; a value that changed while it was copied, or any value without the mapping,
// is read over the socket instead.
#include "granary/kv.h"

#include <optional>

#include "client/client_impl.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "kv_shm/arena_view.h"
#include "proto/kv.pb.h"
#include "rpc/fd_door.h"
#include "rpc/object_convert.h"

namespace granary {
namespace {

using client::CheckCount;
using client::kItemOverheadBytes;

KvStats StatsFromProto(const proto::KvStats& s) {
  KvStats out;
  out.dram_hits = s.dram_hits();
  out.disk_hits = s.disk_hits();
  out.misses = s.misses();
  out.prefix_lookups = s.prefix_lookups();
  out.prefix_keys = s.prefix_keys();
  out.prefix_hits = s.prefix_hits();
  out.puts = s.puts();
  out.put_bytes = s.put_bytes();
  out.put_failures = s.put_failures();
  out.dram_blocks = s.dram_blocks();
  out.dram_bytes = s.dram_bytes();
  out.dram_budget_bytes = s.dram_budget_bytes();
  out.dram_evictions = s.dram_evictions();
  out.promotions = s.promotions();
  out.spills = s.spills();
  out.pinned_blocks = s.pinned_blocks();
  out.pinned_bytes = s.pinned_bytes();
  out.disk_blocks = s.disk_blocks();
  out.disk_bytes = s.disk_bytes();
  out.disk_budget_bytes = s.disk_budget_bytes();
  out.disk_evictions = s.disk_evictions();
  out.disk_corruptions = s.disk_corruptions();
  return out;
}

KvPoolConfig ConfigFromProto(const proto::KvPoolConfig& c) {
  KvPoolConfig out;
  out.name = c.name();
  out.dram_budget_bytes = c.dram_budget_bytes();
  out.disk_budget_bytes = c.disk_budget_bytes();
  out.eviction = c.eviction();
  out.pin_limit_bytes = c.pin_limit_bytes();
  out.lease_ms = c.lease_ms();
  return out;
}

// Splits keys into requests whose headers stay within the batch limits.
std::vector<size_t> SplitKeys(std::span<const std::string_view> keys) {
  return client::SplitBatches(
      keys.size(), [&](size_t i) { return keys[i].size() + kItemOverheadBytes; },
      [](size_t) { return uint64_t{0}; });
}

template <typename T>
std::vector<T> Unwrap(std::vector<std::optional<T>>& in) {
  std::vector<T> out;
  out.reserve(in.size());
  for (auto& r : in) out.push_back(std::move(*r));
  return out;
}

}  // namespace

class KVStore::Impl {
 public:
  Impl(std::string address, Credentials credentials, KvStoreOptions options, std::string pool)
      : core_(std::move(address), std::move(credentials), Sequential(options.client)),
        options_(options),
        pool_(std::move(pool)) {}

  // KV_OPEN: checks the pool and, when asked for shared memory and offered it, maps its arena.
  Status Open();
  const std::string& pool() const { return pool_; }
  bool shared_memory() const { return Arena() != nullptr; }

  std::vector<Status> BatchPut(std::span<const KvItem> items);
  // Reads keys[i] for every i; `place(i, size)` says where its bytes go (null: refuse it as too
  // large, which only happens without buffers) and `done(i, status, size)` records the outcome.
  // With `buffers`, the server refuses values larger than their buffer.
  void Read(std::span<const std::string_view> keys, std::span<const std::span<char>> buffers,
            const std::function<char*(size_t, uint64_t)>& place,
            const std::function<void(size_t, Status, uint64_t)>& done);
  // A KV_EXISTS / KV_LONGEST_PREFIX / KV_REMOVE / KV_PIN / KV_UNPIN / KV_STATS call.
  Status KeysCall(proto::ObjectMethod method, std::span<const std::string_view> keys,
                  google::protobuf::MessageLite* response, bool idempotent);

 private:
  static ClientOptions Sequential(ClientOptions o) {
    o.parallel_chunks = 1;  // values never move as ranged chunks
    return o;
  }
  std::shared_ptr<const kv::ArenaView> Arena() const {
    MutexLock lock(&arena_mu_);
    return arena_;
  }
  // Maps the pool's arena again after the server said `stale` is not the pool's any more (the
  // pool was created again, or the server restarted); a no-op when another thread already did.
  void Remap(const std::shared_ptr<const kv::ArenaView>& stale);
  std::shared_ptr<const kv::ArenaView> MapArena(const proto::KvOpenResponse& resp);
  // One KV_GET for keys[which]: located reads from `arena` when it is not null, else over the
  // socket. Located items that must be read over the socket after all go to `retry`.
  Status ReadBatch(std::span<const std::string_view> keys, const std::vector<size_t>& which,
                   std::span<const std::span<char>> buffers, const kv::ArenaView* arena,
                   const std::function<char*(size_t, uint64_t)>& place,
                   const std::function<void(size_t, Status, uint64_t)>& done,
                   std::vector<size_t>* retry);

  Client::Impl core_;
  const KvStoreOptions options_;
  const std::string pool_;
  Mutex remap_mu_;  // one Remap at a time
  mutable Mutex arena_mu_;
  std::shared_ptr<const kv::ArenaView> arena_ GUARDED_BY(arena_mu_);
};

Status KVStore::Impl::Open() {
  proto::KvOpenRequest req;
  req.set_pool(pool_);
  req.set_shared_memory(options_.shared_memory);
  proto::KvOpenResponse resp;
  RETURN_IF_ERROR(core_.Call(proto::KV_OPEN, req, &resp, true));
  std::shared_ptr<const kv::ArenaView> mapped = MapArena(resp);
  MutexLock lock(&arena_mu_);
  arena_ = std::move(mapped);
  return Status::OK();
}

std::shared_ptr<const kv::ArenaView> KVStore::Impl::MapArena(const proto::KvOpenResponse& resp) {
  if (!options_.shared_memory || resp.shm_socket().empty()) return nullptr;
  uint64_t size = 0;
  Result<int> fd = rpc::FdDoor::Receive(resp.shm_socket(), resp.shm_token(), &size);
  if (!fd.ok()) {
    GLOG_DEBUG("KV pool {}: no shared memory, reading over the socket: {}", pool_,
               fd.status().ToString());
    return nullptr;
  }
  Result<std::unique_ptr<kv::ArenaView>> view = kv::ArenaView::Map(*fd);
  if (!view.ok()) {
    GLOG_WARN("KV pool {}: the server's arena cannot be mapped, reading over the socket: {}",
              pool_, view.status().ToString());
    return nullptr;
  }
  return std::move(*view);
}

void KVStore::Impl::Remap(const std::shared_ptr<const kv::ArenaView>& stale) {
  MutexLock lock(&remap_mu_);
  if (Arena() != stale) return;
  Status st = Open();
  if (!st.ok()) {
    GLOG_DEBUG("KV pool {}: reopening after its arena changed failed: {}", pool_, st.ToString());
    MutexLock arena_lock(&arena_mu_);
    arena_ = nullptr;
  }
}

std::vector<Status> KVStore::Impl::BatchPut(std::span<const KvItem> items) {
  std::vector<Status> out(items.size());
  std::vector<size_t> ends = client::SplitBatches(
      items.size(), [&](size_t i) { return items[i].key.size() + kItemOverheadBytes; },
      [&](size_t i) { return static_cast<uint64_t>(items[i].value.size()); });
  size_t begin = 0;
  for (size_t end : ends) {
    proto::KvPutRequest req;
    req.set_pool(pool_);
    std::vector<std::string_view> payload;
    payload.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) {
      req.add_keys(std::string(items[i].key));
      req.add_sizes(items[i].value.size());
      if (!items[i].value.empty()) payload.push_back(items[i].value);
    }
    proto::KvStatusResponse resp;
    // Idempotent: values are immutable, and a put of a stored key with its size is a no-op.
    Status st = client::RoundTrip(core_, proto::KV_PUT, req, payload, true,
                                  [&](rpc::ClientConnection&, const rpc::Response& r, rpc::Deadline) {
                                    RETURN_IF_ERROR(client::ParseResponse(r, &resp));
                                    return CheckCount(resp.items_size(), end - begin, "KV_PUT");
                                  });
    for (size_t i = begin; i < end; ++i) {
      out[i] = st.ok() ? rpc::FromProto(resp.items(static_cast<int>(i - begin))) : st;
    }
    begin = end;
  }
  return out;
}

Status KVStore::Impl::ReadBatch(std::span<const std::string_view> keys,
                                const std::vector<size_t>& which,
                                std::span<const std::span<char>> buffers,
                                const kv::ArenaView* arena,
                                const std::function<char*(size_t, uint64_t)>& place,
                                const std::function<void(size_t, Status, uint64_t)>& done,
                                std::vector<size_t>* retry) {
  const bool locate = arena != nullptr;
  proto::KvGetRequest req;
  req.set_pool(pool_);
  req.set_locate(locate);
  if (locate) req.set_arena_id(arena->arena_id());
  for (size_t i : which) {
    req.add_keys(std::string(keys[i]));
    if (!buffers.empty()) req.add_max_sizes(buffers[i].size());
  }
  return client::RoundTrip(
      core_, proto::KV_GET, req, {}, true,
      [&](rpc::ClientConnection& conn, const rpc::Response& r, rpc::Deadline deadline) {
        retry->clear();  // from an attempt that failed part way
        proto::KvGetResponse resp;
        RETURN_IF_ERROR(client::ParseResponse(r, &resp));
        RETURN_IF_ERROR(CheckCount(resp.items_size(), which.size(), "KV_GET"));
        uint64_t total = 0;
        for (const auto& item : resp.items()) {
          if (item.status().code() == 0 && (!locate || item.in_payload())) total += item.size();
        }
        if (total != r.payload_length) {
          return Status::Internal("KV_GET items add up to " + std::to_string(total) +
                                  " bytes but the payload has " + std::to_string(r.payload_length));
        }
        for (size_t j = 0; j < which.size(); ++j) {
          const size_t i = which[j];
          const auto& item = resp.items(static_cast<int>(j));
          Status item_status = rpc::FromProto(item.status());

          if (!item_status.ok()) {
            done(i, item_status, 0);
            continue;
          }
          if (!buffers.empty() && item.size() > buffers[i].size()) {
            return Status::Internal("KV_GET sent a value larger than its buffer");
          }
          char* dst = place(i, item.size());
          if (!locate || item.in_payload()) {
            RETURN_IF_ERROR(conn.ReadPayload(dst, item.size(), deadline));
            done(i, Status::OK(), item.size());
            continue;
          }
          kv::BlockLocation location;
          location.size = item.size();
          for (const auto& e : item.extents()) {
            location.extents.push_back({e.offset(), e.length()});
            location.generations.push_back(e.generation());
          }
          Result<size_t> copied =
              arena->CopyOut(location, std::span<char>(dst, static_cast<size_t>(item.size())));
          if (copied.ok()) {
            done(i, Status::OK(), *copied);
          } else {
            retry->push_back(i);  // changed under the copy, or not in DRAM: over the socket
          }
        }
        return Status::OK();
      });
}

void KVStore::Impl::Read(std::span<const std::string_view> keys,
                         std::span<const std::span<char>> buffers,
                         const std::function<char*(size_t, uint64_t)>& place,
                         const std::function<void(size_t, Status, uint64_t)>& done) {
  size_t begin = 0;
  for (size_t end : SplitKeys(keys)) {
    std::vector<size_t> which;
    for (size_t i = begin; i < end; ++i) which.push_back(i);
    std::vector<size_t> retry;
    Status st;
    // Located first, while this store has the pool's arena mapped; once more after mapping it
    // again when the server says the mapping is of an arena the pool no longer has.
    for (int attempt = 0; attempt < 2 && st.ok() && !which.empty(); ++attempt) {
      std::shared_ptr<const kv::ArenaView> arena = Arena();
      if (!arena) break;
      st = ReadBatch(keys, which, buffers, arena.get(), place, done, &retry);
      if (st.code() == Code::kPreconditionFailed) {
        Remap(arena);
        st = Status::OK();
        continue;
      }
      // The located items that could not be copied (brought into DRAM, or changed under the
      // copy) are read over the socket.
      if (st.ok()) which.swap(retry);
      break;
    }
    if (st.ok() && !which.empty()) st = ReadBatch(keys, which, buffers, nullptr, place, done, &retry);
    if (!st.ok()) {
      for (size_t i : which) done(i, st, 0);
    }
    begin = end;
  }
}

Status KVStore::Impl::KeysCall(proto::ObjectMethod method, std::span<const std::string_view> keys,
                               google::protobuf::MessageLite* response, bool idempotent) {
  proto::KvKeysRequest req;
  req.set_pool(pool_);
  for (std::string_view k : keys) req.add_keys(std::string(k));
  return core_.Call(method, req, response, idempotent);
}

KVStore::KVStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KVStore::~KVStore() = default;

Result<std::unique_ptr<KVStore>> KVStore::Connect(std::string_view address, std::string_view pool,
                                                  const Credentials& credentials,
                                                  const KvStoreOptions& options) {
  auto impl = std::make_unique<Impl>(std::string(address), credentials, options, std::string(pool));
  RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<KVStore>(new KVStore(std::move(impl)));
}

const std::string& KVStore::pool() const { return impl_->pool(); }
bool KVStore::shared_memory() const { return impl_->shared_memory(); }

Status KVStore::Put(std::string_view key, std::string_view value) {
  KvItem item{key, value};
  return impl_->BatchPut(std::span<const KvItem>(&item, 1))[0];
}

std::vector<Status> KVStore::BatchPut(std::span<const KvItem> items) {
  return impl_->BatchPut(items);
}

Result<std::string> KVStore::Get(std::string_view key) {
  std::optional<Result<std::string>> out;
  std::string value;
  impl_->Read(
      std::span<const std::string_view>(&key, 1), {},
      [&](size_t, uint64_t size) {
        value.resize(size);
        return value.data();
      },
      [&](size_t, Status s, uint64_t size) {
        if (s.ok()) {
          value.resize(size);
          out = std::move(value);
        } else {
          out = std::move(s);
        }
      });
  return std::move(*out);
}

Result<size_t> KVStore::GetInto(std::string_view key, std::span<char> dst) {
  std::span<char> buffers[1] = {dst};
  return std::move(BatchGetInto(std::span<const std::string_view>(&key, 1), buffers)[0]);
}

std::vector<Result<size_t>> KVStore::BatchGetInto(std::span<const std::string_view> keys,
                                                  std::span<const std::span<char>> buffers) {
  if (buffers.size() != keys.size()) {
    Status st = Status::InvalidArgument(
        "BatchGetInto needs one buffer per key: " + std::to_string(keys.size()) + " keys, " +
        std::to_string(buffers.size()) + " buffers");
    return std::vector<Result<size_t>>(keys.size(), st);
  }
  std::vector<std::optional<Result<size_t>>> out(keys.size());
  impl_->Read(
      keys, buffers, [&](size_t i, uint64_t) { return buffers[i].data(); },
      [&](size_t i, Status s, uint64_t size) {
        if (s.ok()) {
          out[i] = static_cast<size_t>(size);
        } else {
          out[i] = std::move(s);
        }
      });
  return Unwrap(out);
}

Result<bool> KVStore::Exists(std::string_view key) {
  ASSIGN_OR_RETURN(std::vector<bool> found, BatchExists(std::span<const std::string_view>(&key, 1)));
  return bool{found[0]};
}

Result<std::vector<bool>> KVStore::BatchExists(std::span<const std::string_view> keys) {
  std::vector<bool> out;
  out.reserve(keys.size());
  size_t begin = 0;
  for (size_t end : SplitKeys(keys)) {
    proto::KvExistsResponse resp;
    RETURN_IF_ERROR(impl_->KeysCall(proto::KV_EXISTS, keys.subspan(begin, end - begin), &resp, true));
    RETURN_IF_ERROR(CheckCount(resp.found_size(), end - begin, "KV_EXISTS"));
    out.insert(out.end(), resp.found().begin(), resp.found().end());
    begin = end;
  }
  return out;
}

Result<size_t> KVStore::LongestPrefix(std::span<const std::string_view> keys) {
  size_t total = 0;
  size_t begin = 0;
  // A chain too long for one request is asked in parts, each only if the previous was whole.
  for (size_t end : SplitKeys(keys)) {
    proto::KvLongestPrefixResponse resp;
    RETURN_IF_ERROR(
        impl_->KeysCall(proto::KV_LONGEST_PREFIX, keys.subspan(begin, end - begin), &resp, true));
    total += resp.count();
    if (resp.count() < end - begin) break;
    begin = end;
  }
  return total;
}

namespace {

Status OneKeyCall(KVStore::Impl& impl, proto::ObjectMethod method, std::string_view key,
                  bool idempotent) {
  proto::KvStatusResponse resp;
  RETURN_IF_ERROR(impl.KeysCall(method, std::span<const std::string_view>(&key, 1), &resp,
                                idempotent));
  RETURN_IF_ERROR(CheckCount(resp.items_size(), 1, "KV status"));
  return rpc::FromProto(resp.items(0));
}

}  // namespace

Status KVStore::Remove(std::string_view key) { return OneKeyCall(*impl_, proto::KV_REMOVE, key, true); }
Status KVStore::Pin(std::string_view key) { return OneKeyCall(*impl_, proto::KV_PIN, key, true); }
Status KVStore::Unpin(std::string_view key) { return OneKeyCall(*impl_, proto::KV_UNPIN, key, true); }

Result<KvStats> KVStore::Stats() {
  proto::KvStatsResponse resp;
  RETURN_IF_ERROR(impl_->KeysCall(proto::KV_STATS, {}, &resp, true));
  return StatsFromProto(resp.stats());
}

// ---- KvAdmin ----

class KvAdmin::Impl {
 public:
  Impl(std::string address, Credentials credentials, const ClientOptions& options)
      : core(std::move(address), std::move(credentials), options) {}
  Client::Impl core;
};

KvAdmin::KvAdmin(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvAdmin::~KvAdmin() = default;

Result<std::unique_ptr<KvAdmin>> KvAdmin::Connect(std::string_view address,
                                                  const Credentials& credentials,
                                                  const ClientOptions& options) {
  ClientOptions o = options;
  o.parallel_chunks = 1;
  auto impl = std::make_unique<Impl>(std::string(address), credentials, o);
  // Connect now, so that a wrong address or key is reported here.
  RETURN_IF_ERROR(impl->core.Acquire().status());
  return std::unique_ptr<KvAdmin>(new KvAdmin(std::move(impl)));
}

Status KvAdmin::CreatePool(const KvPoolConfig& config) {
  proto::KvPoolCreateRequest req;
  proto::KvPoolConfig* c = req.mutable_config();
  c->set_name(config.name);
  c->set_dram_budget_bytes(config.dram_budget_bytes);
  c->set_disk_budget_bytes(config.disk_budget_bytes);
  c->set_eviction(config.eviction);
  c->set_pin_limit_bytes(config.pin_limit_bytes);
  c->set_lease_ms(config.lease_ms);
  return impl_->core.Call(proto::KV_POOL_CREATE, req, nullptr, false);
}

Result<std::vector<KvPoolInfo>> KvAdmin::ListPools() {
  proto::KvPoolListRequest req;
  proto::KvPoolListResponse resp;
  RETURN_IF_ERROR(impl_->core.Call(proto::KV_POOL_LIST, req, &resp, true));
  std::vector<KvPoolInfo> out;
  for (const auto& p : resp.pools()) {
    out.push_back({ConfigFromProto(p.config()), StatsFromProto(p.stats())});
  }
  return out;
}

Result<KvPoolInfo> KvAdmin::PoolInfo(std::string_view name) {
  proto::KvPoolListRequest req;
  req.set_name(std::string(name));
  proto::KvPoolListResponse resp;
  RETURN_IF_ERROR(impl_->core.Call(proto::KV_POOL_LIST, req, &resp, true));
  if (resp.pools_size() != 1) {
    return Status(Code::kNoSuchPool, "no KV pool \"" + std::string(name) + "\"");
  }
  return KvPoolInfo{ConfigFromProto(resp.pools(0).config()), StatsFromProto(resp.pools(0).stats())};
}

Status KvAdmin::DeletePool(std::string_view name) {
  proto::KvPoolDeleteRequest req;
  req.set_name(std::string(name));
  return impl_->core.Call(proto::KV_POOL_DELETE, req, nullptr, false);
}

}  // namespace granary
