// `granary admin pool create|list|stats|delete`: manages a server's KV-cache pools over the
// native protocol.
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "granary/kv.h"
#include "node/credentials.h"
#include "tools/commands.h"

namespace granary::tools {
namespace {

struct AdminFlags {
  std::string address = "127.0.0.1:9100";
  std::string data_dir;
  bool json = false;
  KvPoolConfig pool;
};

// The root keys: GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY, else DIR/credentials.json.
Result<Credentials> LoadCredentials(const AdminFlags& flags) {
  const char* access = std::getenv("GRANARY_ACCESS_KEY");
  if (flags.data_dir.empty() && (access == nullptr || *access == '\0')) {
    return Status::InvalidArgument(
        "no credentials: set GRANARY_ACCESS_KEY and GRANARY_SECRET_KEY, or pass --data DIR "
        "(the server's data directory, which holds credentials.json)");
  }
  Result<node::RootCredentials> root = node::ReadRootCredentials(flags.data_dir);
  if (!root.ok()) {
    if (root.status().IsNotFound()) {
      return root.status().WithContext("is --data the server's directory?");
    }
    return root.status();
  }
  return Credentials{root->access_key, root->secret_key};
}

nlohmann::json ToJson(const KvPoolInfo& info) {
  const KvPoolConfig& c = info.config;
  const KvStats& s = info.stats;
  return {{"name", c.name},
          {"dram_budget_bytes", c.dram_budget_bytes},
          {"disk_budget_bytes", c.disk_budget_bytes},
          {"eviction", c.eviction},
          {"pin_limit_bytes", c.pin_limit_bytes},
          {"lease_ms", c.lease_ms},
          {"stats",
           {{"dram_hits", s.dram_hits},       {"disk_hits", s.disk_hits},
            {"misses", s.misses},             {"prefix_lookups", s.prefix_lookups},
            {"prefix_keys", s.prefix_keys},   {"prefix_hits", s.prefix_hits},
            {"puts", s.puts},                 {"put_bytes", s.put_bytes},
            {"put_failures", s.put_failures}, {"dram_blocks", s.dram_blocks},
            {"dram_bytes", s.dram_bytes},     {"dram_budget_bytes", s.dram_budget_bytes},
            {"dram_evictions", s.dram_evictions}, {"promotions", s.promotions},
            {"spills", s.spills},             {"pinned_blocks", s.pinned_blocks},
            {"pinned_bytes", s.pinned_bytes}, {"disk_blocks", s.disk_blocks},
            {"disk_bytes", s.disk_bytes},     {"disk_budget_bytes", s.disk_budget_bytes},
            {"disk_evictions", s.disk_evictions}, {"disk_corruptions", s.disk_corruptions}}}};
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

void PrintTable(const std::vector<KvPoolInfo>& pools) {
  std::printf("%-24s %-7s %12s %12s %12s %12s %9s %9s\n", "pool", "policy", "dram used",
              "dram budget", "disk used", "disk budget", "blocks", "hit rate");
  for (const KvPoolInfo& p : pools) {
    const KvStats& s = p.stats;
    uint64_t reads = s.dram_hits + s.disk_hits + s.misses;
    double hit = reads ? 100.0 * static_cast<double>(s.dram_hits + s.disk_hits) / reads : 0.0;
    std::printf("%-24s %-7s %12s %12s %12s %12s %9llu %8.1f%%\n", p.config.name.c_str(),
                p.config.eviction.c_str(), Mib(s.dram_bytes).c_str(),
                Mib(p.config.dram_budget_bytes).c_str(), Mib(s.disk_bytes).c_str(),
                Mib(p.config.disk_budget_bytes).c_str(),
                static_cast<unsigned long long>(s.dram_blocks + s.disk_blocks), hit);
  }
}

int Fail(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.ToString().c_str());
  return 1;
}

enum class PoolVerb { kCreate, kList, kStats, kDelete };

int RunPool(const AdminFlags& flags, PoolVerb verb) {
  Result<Credentials> creds = LoadCredentials(flags);
  if (!creds.ok()) return Fail(creds.status());
  Result<std::unique_ptr<KvAdmin>> admin = KvAdmin::Connect(flags.address, *creds);
  if (!admin.ok()) return Fail(admin.status().WithContext("connecting to " + flags.address));
  switch (verb) {
    case PoolVerb::kCreate: {
      Status st = (*admin)->CreatePool(flags.pool);
      if (!st.ok()) return Fail(st);
      std::printf("created KV pool %s\n", flags.pool.name.c_str());
      return 0;
    }
    case PoolVerb::kDelete: {
      Status st = (*admin)->DeletePool(flags.pool.name);
      if (!st.ok()) return Fail(st);
      std::printf("deleted KV pool %s\n", flags.pool.name.c_str());
      return 0;
    }
    case PoolVerb::kList:
    case PoolVerb::kStats: {
      std::vector<KvPoolInfo> pools;
      if (verb == PoolVerb::kStats) {
        Result<KvPoolInfo> info = (*admin)->PoolInfo(flags.pool.name);
        if (!info.ok()) return Fail(info.status());
        pools.push_back(*info);
      } else {
        Result<std::vector<KvPoolInfo>> all = (*admin)->ListPools();
        if (!all.ok()) return Fail(all.status());
        pools = std::move(*all);
      }
      if (flags.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& p : pools) out.push_back(ToJson(p));
        std::printf("%s\n", (verb == PoolVerb::kStats ? out[0] : out).dump(2).c_str());
      } else {
        PrintTable(pools);
      }
      return 0;
    }
  }
  return 1;
}

}  // namespace

void AddAdminCommand(CLI::App& app) {
  auto flags = std::make_shared<AdminFlags>();
  CLI::App* admin = app.add_subcommand("admin", "Manage a running Granary server or cluster");
  admin->add_option("--address", flags->address, "the server's native protocol address")
      ->capture_default_str();
  admin->add_option("--data", flags->data_dir,
                    "the server's data directory, for its credentials.json (else "
                    "GRANARY_ACCESS_KEY / GRANARY_SECRET_KEY)");
  admin->require_subcommand(1);
  AddClusterAdminCommands(*admin);
  CLI::App* pool = admin->add_subcommand("pool", "KV-cache pools");
  pool->require_subcommand(1);

  CLI::App* create = pool->add_subcommand("create", "Create a KV-cache pool");
  create->add_option("name", flags->pool.name, "the pool's name")->required();
  create->add_option("--dram", flags->pool.dram_budget_bytes,
                     "DRAM budget on the node (bytes; 512MiB, 4GiB, ... accepted)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  create->add_option("--disk", flags->pool.disk_budget_bytes,
                     "disk-tier budget (0: no disk tier, nothing survives a restart)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  create->add_option("--eviction", flags->pool.eviction, "eviction policy")
      ->check(CLI::IsMember({"prefix", "lru"}))
      ->capture_default_str();
  create->add_option("--pin-limit", flags->pool.pin_limit_bytes, "bytes that may be pinned")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  create->add_option("--lease-ms", flags->pool.lease_ms,
                     "how long a block that was read is kept from eviction")
      ->capture_default_str();
  create->callback([flags] { ExitCode() = RunPool(*flags, PoolVerb::kCreate); });

  CLI::App* list = pool->add_subcommand("list", "List the pools with their usage");
  list->add_flag("--json", flags->json, "print JSON");
  list->callback([flags] { ExitCode() = RunPool(*flags, PoolVerb::kList); });

  CLI::App* stats = pool->add_subcommand("stats", "A pool's settings and counters");
  stats->add_option("name", flags->pool.name, "the pool's name")->required();
  stats->add_flag("--json", flags->json, "print JSON");
  stats->callback([flags] { ExitCode() = RunPool(*flags, PoolVerb::kStats); });

  CLI::App* del = pool->add_subcommand("delete", "Delete a pool and everything in it");
  del->add_option("name", flags->pool.name, "the pool's name")->required();
  del->callback([flags] { ExitCode() = RunPool(*flags, PoolVerb::kDelete); });
}

}  // namespace granary::tools
