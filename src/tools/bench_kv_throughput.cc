// `granary bench kv` without --trace: puts and batched gets of large values (KV-cache blocks) from
// --clients concurrent client threads, against a pool of a Granary server started in this process,
// measured twice: over TCP and over the same-host shared-memory path (KvStoreOptions). Beside
// them, in the same run: Redis (a redis-server child on loopback, persistence off, with the same
// keys and values; SET per put, MGET per batch) and memcpy (the same threads copying the same
// values from one large array into the same buffers: the machine's copy bandwidth).
//
// For each value size, every client puts its share of the working set (distinct 32-byte keys,
// incompressible values; --put-passes times, the median reported), then for each batch size reads random batches of distinct keys into
// preallocated buffers for --seconds; every value read is checked, so a wrong answer fails the
// run (bench_kv_load.h: the workload, the stores and the two measurements). This file: the
// command, the servers, the tables and the report. bench/README.md says how each figure is
// measured.
#include "tools/bench_kv_throughput.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "granary/kv.h"
#include "node/server.h"
#include "tools/bench_engine.h"
#include "tools/bench_kv_load.h"
#include "tools/bench_report.h"
#include "tools/redis_client.h"

namespace granary::tools {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

struct ThroughputOptions {
  std::vector<std::string> sizes = {"256k", "1m", "4m"};
  std::vector<int> batches = {1, 16, 64};
  int clients = 8;
  double seconds = 2.0;
  int put_passes = 3;
  uint64_t working_set_mib = 1024;
  bool no_redis = false;
};

// "256k" -> 262144, "4m" -> 4194304, "1g", or plain bytes. Binary units.
std::optional<uint64_t> ParseSize(const std::string& s) {
  size_t end = 0;
  uint64_t n = 0;
  try {
    n = std::stoull(s, &end);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const std::string unit = s.substr(end);
  if (unit.empty()) return n;
  if (unit == "k" || unit == "K") return n << 10;
  if (unit == "m" || unit == "M") return n << 20;
  if (unit == "g" || unit == "G") return n << 30;
  return std::nullopt;
}

std::string SizeName(uint64_t bytes) {
  if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + "m";
  if (bytes % (1u << 10) == 0) return std::to_string(bytes >> 10) + "k";
  return std::to_string(bytes) + "b";
}

// One column of a size's table: put, then a get per batch size. A failure ends the column.
struct Column {
  std::optional<KvFigure> put;
  std::vector<std::optional<KvFigure>> gets;
};

Status RunColumn(BenchContext& ctx, const std::string& label, Target& target, const Workload& w,
                 const ThroughputOptions& o, Column* out) {
  out->gets.resize(o.batches.size());
  ctx.Progress(label + ": put " + std::to_string(w.count()) + " values, " +
               std::to_string(o.clients) + " clients");
  ASSIGN_OR_RETURN(out->put, MeasureKvPuts(target, w, o.clients, o.put_passes));
  ctx.Progress("  " + FormatFigure(out->put->gib_s) + " GiB/s");
  for (size_t j = 0; j < o.batches.size(); ++j) {
    ASSIGN_OR_RETURN(out->gets[j], MeasureKvGets(target, w, o.clients, o.batches[j], o.seconds));
    ctx.Progress("  get b=" + std::to_string(o.batches[j]) + ": " +
                 FormatFigure(out->gets[j]->gib_s) + " GiB/s");
  }
  return Status::OK();
}

// Granary: a fresh pool (DRAM budget = working set + 25 %, no disk tier) for the column, deleted
// after it. `*shared` is whether the store reads over shared memory, once it is connected.
Status RunGranary(BenchContext& ctx, node::Server& server, const Workload& w,
                  const ThroughputOptions& o, bool shm, Column* out, std::optional<bool>* shared) {
  const std::string address = "127.0.0.1:" + std::to_string(server.native_port());
  const Credentials creds{server.credentials().access_key, server.credentials().secret_key};
  ASSIGN_OR_RETURN(std::unique_ptr<KvAdmin> admin, KvAdmin::Connect(address, creds));
  KvPoolConfig pool;
  pool.name = "bench-" + SizeName(w.size()) + (shm ? "-shm" : "-tcp");
  pool.dram_budget_bytes = w.count() * w.size() / 4 * 5;
  RETURN_IF_ERROR(admin->CreatePool(pool).WithContext("creating pool " + pool.name));
  Status st = [&]() -> Status {
    KvStoreOptions options;
    options.client.max_connections = o.clients;
    options.shared_memory = shm;
    ASSIGN_OR_RETURN(std::unique_ptr<KVStore> store,
                     KVStore::Connect(address, pool.name, creds, options));
    *shared = store->shared_memory();
    const std::string label = SizeName(w.size()) + " granary " + (shm ? "shm" : "tcp");
    ctx.Progress(label + ": the store's shared_memory() is " + (**shared ? "true" : "false"));
    GranaryTarget target(*store);
    RETURN_IF_ERROR(RunColumn(ctx, label, target, w, o, out));
    ASSIGN_OR_RETURN(KvStats stats, store->Stats());
    if (stats.dram_evictions != 0 || stats.misses != 0) {
      return Status::Internal("the pool evicted " + std::to_string(stats.dram_evictions) +
                              " blocks and missed " + std::to_string(stats.misses) +
                              " reads with a budget of 125 % of the working set");
    }
    return Status::OK();
  }();
  Status dropped = admin->DeletePool(pool.name);
  RETURN_IF_ERROR(st);
  return dropped.WithContext("deleting pool " + pool.name);
}

std::string RedisVersion(RedisClient& client) {
  Result<std::string> info = client.Info("server");
  if (!info.ok()) return "?";
  const std::string key = "redis_version:";
  const size_t at = info->find(key);
  if (at == std::string::npos) return "?";
  const size_t end = info->find_first_of("\r\n", at);
  return info->substr(at + key.size(), end - at - key.size());
}

std::optional<double> Ratio(const std::optional<KvFigure>& a, const std::optional<KvFigure>& b) {
  if (!a || !b || b->gib_s <= 0) return std::nullopt;
  return a->gib_s / b->gib_s;
}

// The table of one size for people: a row per operation, a column per store, then the ratios.
void PrintSizeTable(std::ostream& out, const std::string& title, const ThroughputOptions& o,
                    const Column& tcp, const Column& shm, const Column& redis, const Column& copy) {
  std::vector<std::vector<std::string>> cells = {
      {"GiB/s", "granary tcp", "granary shm", "redis", "memcpy", "tcp/redis", "shm/redis"}};
  auto gib = [](const std::optional<KvFigure>& f) { return f ? FormatFigure(f->gib_s) : "-"; };
  auto ratio = [](const std::optional<double>& r) { return r ? FormatFigure(*r) + "x" : "-"; };
  for (size_t j = 0; j <= o.batches.size(); ++j) {
    auto pick = [&](const Column& c) -> const std::optional<KvFigure>& {
      static const std::optional<KvFigure> kNone;
      if (j == 0) return c.put;
      return j - 1 < c.gets.size() ? c.gets[j - 1] : kNone;
    };
    cells.push_back({j == 0 ? "put" : "get b=" + std::to_string(o.batches[j - 1]), gib(pick(tcp)),
                     gib(pick(shm)), gib(pick(redis)), gib(pick(copy)),
                     ratio(Ratio(pick(tcp), pick(redis))), ratio(Ratio(pick(shm), pick(redis)))});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  out << title << "\n";
  for (const auto& row : cells) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string fill(width[c] - row[c].size(), ' ');
      line += c == 0 ? row[c] + fill : "  " + fill + row[c];
    }
    out << line << "\n";
  }
  out << "\n";
}

// The rows of one size for machines (and the report's own table).
void AddSizeRows(BenchReport& report, const std::string& size, const ThroughputOptions& o,
                 const Column& tcp, const Column& shm, const Column& redis, const Column& copy,
                 const std::string& redis_missing) {
  for (size_t j = 0; j <= o.batches.size(); ++j) {
    const std::string op = j == 0 ? "put" : "get b=" + std::to_string(o.batches[j - 1]);
    auto pick = [&](const Column& c) -> std::optional<KvFigure> {
      if (j == 0) return c.put;
      return j - 1 < c.gets.size() ? c.gets[j - 1] : std::nullopt;
    };
    auto value = [](const std::optional<KvFigure>& f) -> std::optional<double> {
      if (!f) return std::nullopt;
      return f->gib_s;
    };
    auto details = [](const std::optional<KvFigure>& f) {
      return f ? f->details : nlohmann::json(nullptr);
    };
    const struct {
      const char* path;
      const Column& granary;
      const char* baseline;
      const Column& base;
    } pairs[] = {
        {"tcp", tcp, "redis", redis}, {"shm", shm, "redis", redis}, {"shm", shm, "memcpy", copy}};
    for (const auto& p : pairs) {
      BenchRow row;
      row.name = size + " " + op + " " + p.path;
      row.unit = "GiB/s";
      row.granary = value(pick(p.granary));
      row.baseline = p.baseline;
      row.baseline_value = value(pick(p.base));
      if (&p.base == &redis && !redis_missing.empty()) row.note = redis_missing;
      row.details = {{std::string("granary_") + p.path, details(pick(p.granary))},
                     {p.baseline, details(pick(p.base))}};
      report.Add(std::move(row));
    }
  }
}

int RunThroughput(const ThroughputOptions& o, bool json) {
  std::vector<uint64_t> sizes;
  for (const std::string& s : o.sizes) {
    const std::optional<uint64_t> n = ParseSize(s);
    if (!n || *n < 16 || *n > (1ull << 30)) {
      std::cerr << "granary bench kv: --sizes: \"" << s
                << "\" is not a size of 16 B..1 GiB (write 256k, 1m, 4m)" << std::endl;
      return 2;
    }
    sizes.push_back(*n);
  }
  if (sizes.empty() || o.batches.empty() || o.clients < 1 || o.seconds <= 0 ||
      o.working_set_mib < 1 || o.put_passes < 1 ||
      std::any_of(o.batches.begin(), o.batches.end(), [](int b) { return b < 1; })) {
    std::cerr << "granary bench kv: --sizes and --batches must not be empty; --clients, "
                 "--batches, --seconds, --put-passes and --working-set-mib must be positive"
              << std::endl;
    return 2;
  }
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  std::signal(SIGPIPE, SIG_IGN);

  BenchReport report("kv");
  std::error_code ec;
  const std::string root = (std::filesystem::temp_directory_path(ec) /
                            ("granary-bench-kv-" + std::to_string(::getpid())))
                               .string();
  std::filesystem::create_directories(root, ec);
  if (ec) {
    std::cerr << "granary bench kv: cannot create " << root << ": " << ec.message() << std::endl;
    return 1;
  }
  EngineBenchOptions engine_options;  // only for the context's directories and progress lines
  BenchContext ctx(engine_options, root, &report);
  report.SetMachine(DescribeMachine(root));
  nlohmann::json config = {{"sizes", o.sizes},
                           {"batches", o.batches},
                           {"clients", o.clients},
                           {"seconds", o.seconds},
                           {"put_passes", o.put_passes},
                           {"working_set_mib", o.working_set_mib},
                           {"key_bytes", kKvBenchKeyBytes}};

  std::unique_ptr<node::Server> server;
  std::unique_ptr<RedisServer> redis_server;
  std::string redis_missing;  // why there is no Redis figure
  std::ostringstream tables;
  Status status = [&]() -> Status {
    ASSIGN_OR_RETURN(std::string server_dir, ctx.FreshDir("server"));
    node::ServerOptions so;
    so.data_dir = server_dir;
    so.s3_listen = "127.0.0.1:0";
    so.native_listen = "127.0.0.1:0";
    ASSIGN_OR_RETURN(server, node::Server::Start(so));

    if (o.no_redis) {
      redis_missing = "not measured (--no-redis)";
    } else if (const std::string exe = RedisServer::FindExecutable(); exe.empty()) {
      redis_missing = "redis-server is not installed (Debian: apt install redis-server)";
    } else {
      ASSIGN_OR_RETURN(std::string redis_dir, ctx.FreshDir("redis"));
      auto started = RedisServer::Start(exe, redis_dir);
      if (started.ok()) {
        redis_server = std::move(*started);
        auto probe = RedisClient::Connect(redis_server->port());
        const std::string version = probe.ok() ? RedisVersion(**probe) : "?";
        config["redis"] = {
            {"executable", exe}, {"version", version}, {"args", redis_server->Args()}};
        report.AddNote("redis: " + exe + " " + version + " started with " + redis_server->Args() +
                       "; every other setting is Redis's default (single-threaded: io-threads "
                       "1). One connection per client thread; SET per put, MGET per batch, "
                       "replies received straight into the same buffers");
      } else {
        redis_missing = "redis-server did not start: " + started.status().ToString();
      }
    }
    if (!redis_missing.empty()) {
      std::cerr << "warning: the Redis baseline is skipped: " << redis_missing << std::endl;
      report.AddNote("redis: " + redis_missing);
    }

    std::vector<bool> shared_seen;
    for (uint64_t size : sizes) {
      const std::string name = SizeName(size);
      size_t count = std::max<size_t>(1, (o.working_set_mib << 20) / size);
      if (count < static_cast<size_t>(max_batch)) {
        count = static_cast<size_t>(max_batch);
        report.AddNote(name + ": the working set is raised to " + std::to_string(count) +
                       " values, the largest batch");
      }
      ctx.Progress(name + ": generating " + std::to_string(count) + " values (" +
                   FormatFigure(static_cast<double>(count * size) / kGiB) + " GiB)");
      Workload w(size, count, o.clients, max_batch);
      Column tcp, shm, redis, copy;
      for (bool use_shm : {false, true}) {
        const std::string what = name + " granary " + (use_shm ? "shm" : "tcp");
        std::optional<bool> shared;
        Status st = RunGranary(ctx, *server, w, o, use_shm, use_shm ? &shm : &tcp, &shared);
        if (!st.ok()) {
          std::cerr << "error: " << what << ": " << st.ToString() << std::endl;
          report.AddError(what + ": " + st.ToString());
        }
        if (shared && *shared != use_shm) {
          const std::string msg =
              what + ": the store opened with shared_memory = " + (use_shm ? "true" : "false") +
              " reports shared_memory() " + (*shared ? "true" : "false") + ": its gets went " +
              (*shared ? "through shared memory" : "over TCP");
          std::cerr << "error: " << msg << std::endl;
          report.AddError(msg);
        }
        if (use_shm) shared_seen.push_back(shared.value_or(false));
      }
      if (redis_server) {
        Status st = [&]() -> Status {
          ASSIGN_OR_RETURN(std::unique_ptr<RedisTarget> target,
                           RedisTarget::Connect(redis_server->port(), o.clients));
          RETURN_IF_ERROR(target->client(0).FlushAll());
          RETURN_IF_ERROR(RunColumn(ctx, name + " redis", *target, w, o, &redis));
          return target->client(0).FlushAll();
        }();
        if (!st.ok()) ctx.BaselineFailed(name + " redis", st);
      }
      MemcpyTarget memcpy_target(w);
      if (Status st = RunColumn(ctx, name + " memcpy", memcpy_target, w, o, &copy); !st.ok()) {
        ctx.BaselineFailed(name + " memcpy", st);
      }
      PrintSizeTable(tables,
                     name + " values: " + std::to_string(count) + " keys (" +
                         FormatFigure(static_cast<double>(count * size) / kGiB) + " GiB), " +
                         std::to_string(o.clients) + " clients",
                     o, tcp, shm, redis, copy);
      AddSizeRows(report, name, o, tcp, shm, redis, copy, redis_missing);
    }
    config["shared_memory"] = shared_seen;
    return Status::OK();
  }();
  if (!status.ok()) {
    std::cerr << "error: " << status.ToString() << std::endl;
    report.AddError(status.ToString());
  }
  if (redis_server) redis_server->Stop();
  if (server) {
    if (Status st = server->Stop(); !st.ok())
      report.AddNote("stopping the server: " + st.ToString());
    server.reset();
  }
  ctx.RemoveDir(root);

  report.SetConfig(config);
  report.AddNote(
      "granary: a server in this process on 127.0.0.1, a pool per column (DRAM budget = working "
      "set + 25 %, no disk tier), one KVStore shared by the client threads (max_connections = "
      "clients); Put per put, BatchGetInto per batch into preallocated buffers. tcp: "
      "shared_memory = false; shm: shared_memory = true (gets copy from the server's mapped "
      "arena; puts go over the socket in both columns)");
  report.AddNote(
      "memcpy: the client threads copy the same values from one array (the working set) into "
      "the same buffers; its put row copies one value per operation");
  report.AddNote(
      "GiB/s = values moved x value size / wall time; puts store the whole working set, "
      "--put-passes times (everything removed between passes, untimed; the median pass is "
      "reported), gets read random batches of distinct keys for --seconds; every value read is checked");
  if (auto load = LoadAverage(); !load.empty()) report.machine()["load_average_end"] = load;
  (json ? std::cerr : std::cout) << "\n" << tables.str();
  return report.Finish(json);
}

}  // namespace

std::function<int(bool json)> AddKvThroughputBench(CLI::App& cmd) {
  auto o = std::make_shared<ThroughputOptions>();
  cmd.add_option("--sizes", o->sizes, "Value sizes (256k, 1m, 4m: binary units)")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--batches", o->batches, "Keys per batched get")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--clients", o->clients, "Concurrent client threads")->capture_default_str();
  cmd.add_option("--seconds", o->seconds, "Seconds per get measurement")->capture_default_str();
  cmd.add_option("--put-passes", o->put_passes,
                 "Times the working set is put (removed between passes); the median is reported")
      ->capture_default_str();
  cmd.add_option("--working-set-mib", o->working_set_mib, "MiB of values per size")
      ->capture_default_str();
  cmd.add_flag("--no-redis", o->no_redis, "Skip the Redis baseline");
  return [o](bool json) { return RunThroughput(*o, json); };
}

}  // namespace granary::tools
