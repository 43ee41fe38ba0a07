// KvService: the registry of pools on disk and in memory. The KV_* handlers are in
// kv_handlers.cc.
#include "node/kv_service.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "common/logging.h"
#include "io/file_system.h"

namespace granary::node {
namespace {

// MemAvailable from /proc/meminfo: what the host can give without swapping; none if unknown.
std::optional<uint64_t> AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1) return kib * 1024;
  }
  return std::nullopt;
}

// Closes a pool taken out of the service once the requests in flight let go of it (each holds a
// reference for its call). REQUIRES: the service's own reference is the one passed in.
Status CloseWhenIdle(const std::shared_ptr<kv::Pool>& pool) {
  while (pool.use_count() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return pool->Close();
}

constexpr char kConfigFile[] = "pool.conf";
constexpr char kDiskDir[] = "disk";
// The smallest DRAM budget a pool may have: room for a few blocks and the tier's bookkeeping.
constexpr uint64_t kMinDramBudget = 1ull << 20;

bool NameChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return !first && (c == '.' || c == '_' || c == '-');
}

}  // namespace

Status CheckPoolConfig(const proto::KvPoolConfig& config) {
  const std::string& name = config.name();
  bool ok = !name.empty() && name.size() <= 63;
  for (size_t i = 0; ok && i < name.size(); ++i) ok = NameChar(name[i], i == 0);
  if (!ok) {
    return Status::InvalidArgument("pool name \"" + name +
                                   "\" is invalid: use 1-63 characters of a-z, 0-9, '.', '_' and "
                                   "'-', starting with a letter or digit");
  }
  if (config.dram_budget_bytes() < kMinDramBudget) {
    return Status::InvalidArgument("dram_budget_bytes must be at least " +
                                   std::to_string(kMinDramBudget) + " (1 MiB)");
  }
  if (config.eviction() != "prefix" && config.eviction() != "lru") {
    return Status::InvalidArgument("eviction \"" + config.eviction() +
                                   "\" is unknown: use \"prefix\" or \"lru\"");
  }
  if (config.pin_limit_bytes() > config.dram_budget_bytes()) {
    return Status::InvalidArgument("pin_limit_bytes exceeds dram_budget_bytes");
  }
  if (config.lease_ms() > 3'600'000) {
    return Status::InvalidArgument("lease_ms must be at most an hour (3600000)");
  }
  return Status::OK();
}

KvService::KvService(KvServiceOptions options) : options_(std::move(options)) {}

KvService::~KvService() { Stop().IgnoreError(); }

Result<std::unique_ptr<KvService>> KvService::Start(KvServiceOptions options) {
  if (options.dir.empty()) return Status::InvalidArgument("KvService needs a directory");
  RETURN_IF_ERROR(io::DefaultFileSystem()->CreateDir(options.dir));
  std::unique_ptr<KvService> service(new KvService(std::move(options)));
  if (service->options_.shared_memory) {
    Result<std::unique_ptr<rpc::FdDoor>> door = rpc::FdDoor::Open();
    if (door.ok()) {
      service->door_ = std::move(*door);
    } else {
      GLOG_WARN("KV pools: no shared-memory path for local clients: {}", door.status().ToString());
    }
  }
  RETURN_IF_ERROR(service->OpenExisting());
  return service;
}

Result<std::shared_ptr<kv::Pool>> KvService::OpenPool(const proto::KvPoolConfig& config,
                                                     bool reopened) {
  kv::PoolOptions options;
  options.name = config.name();
  options.dram_budget_bytes = config.dram_budget_bytes();
  if (config.disk_budget_bytes() > 0) {
    options.disk_dir = io::JoinPath(io::JoinPath(options_.dir, config.name()), kDiskDir);
    options.disk_budget_bytes = config.disk_budget_bytes();
  }
  options.eviction = config.eviction() == "lru" ? kv::EvictionPolicyKind::kLru
                                                 : kv::EvictionPolicyKind::kPrefixAware;
  options.pin_limit_bytes = config.pin_limit_bytes();
  options.lease = std::chrono::milliseconds(config.lease_ms());
  // The budget is the node's to give: a pool's memory is committed up front, so that it fills at
  // full speed (a new pool's before its creation is acknowledged, see CreatePool); pools
  // reopened at start commit theirs in the background, so that the node serves at once.
  options.prefault_dram = reopened;
  ASSIGN_OR_RETURN(std::unique_ptr<kv::Pool> pool, kv::Pool::Open(std::move(options)));
  return std::shared_ptr<kv::Pool>(std::move(pool));
}

Status KvService::OpenExisting() {
  auto fs = io::DefaultFileSystem();
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(options_.dir));
  for (const std::string& name : names) {
    const std::string dir = io::JoinPath(options_.dir, name);
    Result<std::string> text = io::ReadFileToString(*fs, io::JoinPath(dir, kConfigFile));
    if (!text.ok()) {
      if (text.status().code() != Code::kNotFound) return text.status().WithContext(dir);
      // A pool whose creation or deletion was cut short: never visible, so reclaimed.
      GLOG_INFO("KV pools: removing the unfinished pool directory {}", dir);
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      continue;
    }
    proto::KvPoolConfig config;
    if (!config.ParseFromString(*text)) {
      return Status::Corruption(io::JoinPath(dir, kConfigFile) + " does not parse");
    }
    ASSIGN_OR_RETURN(std::shared_ptr<kv::Pool> pool, OpenPool(config, /*reopened=*/true));
    MutexLock lock(&mu_);
    pools_[config.name()] = {config, std::move(pool)};
  }
  return Status::OK();
}

Status KvService::CreatePool(const proto::KvPoolConfig& given) {
  proto::KvPoolConfig config = given;
  if (config.eviction().empty()) config.set_eviction("prefix");
  RETURN_IF_ERROR(CheckPoolConfig(config));
  // A new pool's memory is committed at once: refuse one the host cannot hold now, rather than
  // let the kernel's out-of-memory killer end the server.
  if (std::optional<uint64_t> available = AvailableMemoryBytes();
      available && config.dram_budget_bytes() > *available) {
    return Status::NoSpace("KV pool \"" + config.name() + "\" asks for " +
                           std::to_string(config.dram_budget_bytes()) +
                           " bytes of DRAM but the host has " + std::to_string(*available) +
                           " available: lower dram_budget_bytes");
  }
  std::shared_ptr<kv::Pool> created;
  {
    // Creations and deletions are rare: one at a time, under the lock, keeps them simple.
    MutexLock lock(&mu_);
    if (stopped_) return Status::Unavailable("the KV service is stopping");
    if (pools_.count(config.name())) {
      return Status::AlreadyExists("KV pool \"" + config.name() + "\" already exists");
    }
    auto fs = io::DefaultFileSystem();
    const std::string dir = io::JoinPath(options_.dir, config.name());
    RETURN_IF_ERROR(fs->CreateDir(dir));
    Result<std::shared_ptr<kv::Pool>> pool = OpenPool(config, /*reopened=*/false);
    Status st = pool.status();
    // The configuration file makes the pool exist: written last, atomically.
    if (st.ok()) {
      st = io::WriteFileAtomic(*fs, io::JoinPath(dir, kConfigFile), config.SerializeAsString());
    }
    if (!st.ok()) {
      if (pool.ok()) (*pool)->Close().IgnoreError();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      return st.WithContext("creating KV pool \"" + config.name() + "\"");
    }
    created = *pool;
    pools_[config.name()] = {config, std::move(*pool)};
  }
  created->CommitDram();  // outside the lock: the other pools serve meanwhile
  return Status::OK();
}

Status KvService::DeletePool(const std::string& name) {
  std::shared_ptr<kv::Pool> pool;
  {
    MutexLock lock(&mu_);
    auto it = pools_.find(name);
    if (it == pools_.end()) return NoSuchPool(name);
    pool = std::move(it->second.second);
    pools_.erase(it);
  }
  auto fs = io::DefaultFileSystem();
  const std::string dir = io::JoinPath(options_.dir, name);
  // Gone for good once its configuration file is: a crash after this reclaims the rest.
  Status st = fs->Remove(io::JoinPath(dir, kConfigFile));
  if (st.ok()) st = fs->SyncDir(dir);
  Status closed = CloseWhenIdle(pool);
  pool.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!st.ok()) return st.WithContext("deleting KV pool \"" + name + "\"");
  return closed;
}

Status NoSuchPool(const std::string& name) {
  return Status(Code::kNoSuchPool, "no KV pool \"" + name + "\"; create it with `granary admin "
                                   "pool create " + name + "`");
}

Result<std::shared_ptr<kv::Pool>> KvService::GetPool(const std::string& name,
                                                    proto::KvPoolConfig* config) {
  MutexLock lock(&mu_);
  auto it = pools_.find(name);
  if (it == pools_.end()) return NoSuchPool(name);
  if (config != nullptr) *config = it->second.first;
  return it->second.second;
}

std::vector<proto::KvPoolInfo> KvService::ListPools(const std::string& name) {
  std::vector<std::pair<proto::KvPoolConfig, std::shared_ptr<kv::Pool>>> pools;
  {
    MutexLock lock(&mu_);
    for (const auto& [n, entry] : pools_) {
      if (name.empty() || n == name) pools.push_back(entry);
    }
  }
  std::vector<proto::KvPoolInfo> out;
  for (const auto& [config, pool] : pools) {
    proto::KvPoolInfo info;
    *info.mutable_config() = config;
    StatsToProto(pool->Stats(), info.mutable_stats());
    out.push_back(std::move(info));
  }
  return out;
}

Status KvService::Stop() {
  std::map<std::string, std::pair<proto::KvPoolConfig, std::shared_ptr<kv::Pool>>> pools;
  {
    MutexLock lock(&mu_);
    if (stopped_) return Status::OK();
    stopped_ = true;
    pools.swap(pools_);
  }
  if (door_) door_->Close();
  Status first;
  for (auto& [name, entry] : pools) {
    Status st = CloseWhenIdle(entry.second);
    if (first.ok() && !st.ok()) first = st.WithContext("closing KV pool \"" + name + "\"");
  }
  return first;
}

void StatsToProto(const kv::PoolStats& s, proto::KvStats* out) {
  out->set_dram_hits(s.dram_hits);
  out->set_disk_hits(s.disk_hits);
  out->set_misses(s.misses);
  out->set_prefix_lookups(s.prefix_lookups);
  out->set_prefix_keys(s.prefix_keys);
  out->set_prefix_hits(s.prefix_hits);
  out->set_puts(s.puts);
  out->set_put_bytes(s.put_bytes);
  out->set_put_failures(s.put_failures);
  out->set_dram_blocks(s.dram_blocks);
  out->set_dram_bytes(s.dram_bytes);
  out->set_dram_budget_bytes(s.dram_budget_bytes);
  out->set_dram_evictions(s.dram_evictions);
  out->set_promotions(s.promotions);
  out->set_spills(s.spills);
  out->set_pinned_blocks(s.pinned_blocks);
  out->set_pinned_bytes(s.pinned_bytes);
  out->set_disk_blocks(s.disk_blocks);
  out->set_disk_bytes(s.disk_bytes);
  out->set_disk_budget_bytes(s.disk_budget_bytes);
  out->set_disk_evictions(s.disk_evictions);
  out->set_disk_corruptions(s.disk_corruptions);
}

}  // namespace granary::node
