// granary::KVStore: the client of a KV-cache pool on a Granary server, for LLM inference engines
// that store the attention KV of prompt-prefix blocks and share it across inference nodes.
//
//   ASSIGN_OR_RETURN(auto kv, granary::KVStore::Connect("127.0.0.1:9100", "llama", {key, secret}));
//   RETURN_IF_ERROR(kv->Put(block_hash, block_bytes));
//   size_t cached = kv->LongestPrefix(chain_of_block_hashes).value();
//
// Keys are byte strings of 1..1024 bytes; values are immutable blobs. Calls that take a chain of
// keys (BatchPut, BatchGetInto, LongestPrefix) take them in prefix order: the pool's prefix-aware
// eviction learns the chains from that order.
//
// A missing key is a normal result, not a failure: Get and GetInto return kNotFound, which
// callers treat as a miss. Other codes are failures: kUnavailable when the server cannot be
// reached, kNotFound from Connect when the pool does not exist, kInvalidArgument for a bad key or
// a buffer too small (the message gives the size needed).
//
// Same host: when the server runs on the client's host (and ClientOptions allow it), the server
// hands the client its pool's memory, mapped read-only, and gets copy values straight from it
// into the caller's buffers, with no socket copy. Everything else travels over the native
// protocol (docs/formats/rpc.md). Either way the results are the same.
//
// Thread-safe: any number of threads may use one KVStore at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "granary/client.h"
#include "granary/status.h"

namespace granary {

// A pool's settings, given when it is created and fixed for its life.
struct KvPoolConfig {
  std::string name;                     // [a-z0-9][a-z0-9._-]{0,62}
  uint64_t dram_budget_bytes = 1ull << 30;
  uint64_t disk_budget_bytes = 0;       // 0: no disk tier (nothing survives a restart)
  std::string eviction = "prefix";      // "prefix" (prefix-aware) or "lru"
  uint64_t pin_limit_bytes = 0;         // pinned bytes allowed; 0: pinning refused
  uint64_t lease_ms = 5000;             // how long a block that was read is kept from eviction
};

// A pool's counters (see kv::PoolStats in src/kv/pool.h for their exact meaning).
struct KvStats {
  uint64_t dram_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t misses = 0;
  uint64_t prefix_lookups = 0;
  uint64_t prefix_keys = 0;
  uint64_t prefix_hits = 0;
  uint64_t puts = 0;
  uint64_t put_bytes = 0;
  uint64_t put_failures = 0;
  uint64_t dram_blocks = 0;
  uint64_t dram_bytes = 0;
  uint64_t dram_budget_bytes = 0;
  uint64_t dram_evictions = 0;
  uint64_t promotions = 0;
  uint64_t spills = 0;
  uint64_t pinned_blocks = 0;
  uint64_t pinned_bytes = 0;
  uint64_t disk_blocks = 0;
  uint64_t disk_bytes = 0;
  uint64_t disk_budget_bytes = 0;
  uint64_t disk_evictions = 0;
  uint64_t disk_corruptions = 0;
};

struct KvPoolInfo {
  KvPoolConfig config;
  KvStats stats;
};

struct KvItem {
  std::string_view key;
  std::string_view value;
};

struct KvStoreOptions {
  ClientOptions client;
  // Use the same-host shared-memory path when the server offers it.
  bool shared_memory = true;
};

class KVStore {
 public:
  // Connects to the server at "host:port" (its native protocol) and opens `pool`. kNotFound if
  // the pool does not exist, kUnavailable if nothing answers, kUnauthenticated for wrong keys.
  static Result<std::unique_ptr<KVStore>> Connect(std::string_view address, std::string_view pool,
                                                  const Credentials& credentials,
                                                  const KvStoreOptions& options = {});
  ~KVStore();
  KVStore(const KVStore&) = delete;
  KVStore& operator=(const KVStore&) = delete;

  const std::string& pool() const;
  // Whether gets read the pool's memory directly (same host) rather than over the socket.
  bool shared_memory() const;

  // Stores `value` under `key`. Putting a stored key again is OK when the size matches (values
  // are immutable: the stored bytes are kept) and kAlreadyExists when it does not.
  Status Put(std::string_view key, std::string_view value);
  // Puts of a chain of blocks, in as few round trips as the sizes allow; a status per item.
  std::vector<Status> BatchPut(std::span<const KvItem> items);

  // The value of `key`; kNotFound on a miss.
  Result<std::string> Get(std::string_view key);
  // Copies the value into `dst` and returns its size; kNotFound on a miss, kInvalidArgument
  // when `dst` is too small.
  Result<size_t> GetInto(std::string_view key, std::span<char> dst);
  // GetInto of a chain of keys; a result per key. kInvalidArgument for each key when the
  // numbers of keys and buffers differ.
  std::vector<Result<size_t>> BatchGetInto(std::span<const std::string_view> keys,
                                           std::span<const std::span<char>> buffers);

  // Whether a read of the key would hit now. Neither a use nor a lease.
  Result<bool> Exists(std::string_view key);
  Result<std::vector<bool>> BatchExists(std::span<const std::string_view> keys);
  // How many leading keys of the chain are all cached, in one round trip. The blocks found are
  // leased (kept from eviction for the pool's lease) so that the caller can read them.
  Result<size_t> LongestPrefix(std::span<const std::string_view> keys);

  // Removes the key; OK whether or not it was there.
  Status Remove(std::string_view key);
  // Pins a cached block so that it is never evicted (up to the pool's pin limit): kNotFound when
  // it is not cached, kNoSpace past the limit. Unpin is OK whether or not it was pinned.
  Status Pin(std::string_view key);
  Status Unpin(std::string_view key);

  Result<KvStats> Stats();

  class Impl;

 private:
  explicit KVStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Pool administration (`granary admin pool ...`). Thread-safe.
class KvAdmin {
 public:
  static Result<std::unique_ptr<KvAdmin>> Connect(std::string_view address,
                                                  const Credentials& credentials,
                                                  const ClientOptions& options = {});
  ~KvAdmin();

  // kAlreadyExists if a pool of that name exists, kInvalidArgument for a bad name or settings.
  Status CreatePool(const KvPoolConfig& config);
  Result<std::vector<KvPoolInfo>> ListPools();
  Result<KvPoolInfo> PoolInfo(std::string_view name);
  // Drops the pool and everything in it (its disk tier included). kNotFound if there is none.
  Status DeletePool(std::string_view name);

  class Impl;

 private:
  explicit KvAdmin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
