// `granary bench kv`: the KV-cache pool.
//
// --trace FILE: trace replay. Each request of the trace (JSON lines with `hash_ids`, prefix-chained
// block ids) is replayed in order against a real kv::Pool with a DRAM tier only: LongestPrefix
// over its blocks, a batched read of the blocks found, a batched put of the rest. The pool holds
// 10, 25 and 50 % of the trace's distinct blocks (count-based: its budget is that many blocks'
// charge, watermarks at 100 %, so it evicts one block at a time). Reported: the prefix hit rate
// (a block hits only while every block before it in its request hit) of LRU, of the
// prefix-aware policy and of the offline optimum by Belady's rule (kv/belady.h), and requests
// per second of the two real policies. Every block read is checked to be the block asked for.
//
// Without --trace: the throughput benchmark (puts and batched gets against Redis and memcpy),
// bench_kv_throughput.cc.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kv/belady.h"
#include "kv/pool.h"
#include "tools/bench_kv_throughput.h"
#include "tools/bench_report.h"
#include "tools/commands.h"

namespace granary::tools {
namespace {

struct KvBenchOptions {
  std::string trace;
  uint64_t block_bytes = 4096;
  std::vector<int> pool_percents = {10, 25, 50};
  bool json = false;
  std::function<int(bool json)> throughput;  // the benchmark without --trace
};

constexpr size_t kKeyBytes = 16;  // like a 128-bit content hash

// The trace's requests in timestamp order (stable: requests of one millisecond keep their order).
Result<kv::BlockTrace> ReadTrace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open the trace " + path);
  std::vector<std::pair<uint64_t, std::vector<uint64_t>>> requests;
  std::string line;
  uint64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("hash_ids") ||
        !j["hash_ids"].is_array()) {
      return Status::InvalidArgument(path + ":" + std::to_string(line_no) +
                                     ": expected a JSON object with a \"hash_ids\" array");
    }
    std::vector<uint64_t> ids;
    for (const auto& id : j["hash_ids"]) {
      if (!id.is_number_unsigned()) {
        return Status::InvalidArgument(path + ":" + std::to_string(line_no) +
                                       ": hash_ids must be non-negative integers");
      }
      ids.push_back(id.get<uint64_t>());
    }
    const uint64_t ts = j.value("timestamp", uint64_t{0});
    requests.emplace_back(ts, std::move(ids));
  }
  std::stable_sort(requests.begin(), requests.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  kv::BlockTrace trace;
  trace.reserve(requests.size());
  for (auto& r : requests) trace.push_back(std::move(r.second));
  return trace;
}

std::string KeyOf(uint64_t id) {
  char buf[kKeyBytes + 1];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return std::string(buf, kKeyBytes);
}

struct Replay {
  kv::PrefixHits hits;
  double seconds = 0;
  kv::PoolStats stats;
};

// Replays `trace` on a pool of `capacity` blocks of `block_bytes`.
Result<Replay> ReplayOnPool(const kv::BlockTrace& trace, uint64_t capacity, uint64_t block_bytes,
                            kv::EvictionPolicyKind policy) {
  kv::PoolOptions o;
  o.name = std::string("replay-") + kv::EvictionPolicyName(policy);
  o.dram_budget_bytes = capacity * kv::DramTier::ChargeOf(kKeyBytes, block_bytes);
  o.high_watermark = 1.0;
  o.low_watermark = 1.0;
  o.eviction = policy;
  // One request at a time: its reads are done before its puts, so leases would only keep the
  // blocks of the last few requests from being evicted, which no policy is measured on here.
  o.lease = std::chrono::nanoseconds(0);
  ASSIGN_OR_RETURN(std::unique_ptr<kv::Pool> pool, kv::Pool::Open(std::move(o)));

  size_t longest = 0;
  for (const auto& r : trace) longest = std::max(longest, r.size());
  std::vector<std::string> values(longest, std::string(block_bytes, '\0'));
  std::vector<char> read_area(longest * block_bytes);
  std::vector<std::span<char>> buffers;
  for (size_t i = 0; i < longest; ++i) {
    buffers.emplace_back(read_area.data() + i * block_bytes, block_bytes);
  }
  std::vector<std::string> keys;
  std::vector<std::string_view> views;
  std::vector<kv::KeyValue> items;

  Replay out;
  const uint64_t start = BenchNowNanos();
  for (const auto& request : trace) {
    keys.clear();
    views.clear();
    for (uint64_t id : request) keys.push_back(KeyOf(id));
    for (const std::string& k : keys) views.push_back(k);
    const size_t hits = pool->LongestPrefix(views);
    out.hits.references += request.size();
    out.hits.prefix_hits += hits;

    auto reads = pool->BatchGetInto(std::span(views).first(hits), std::span(buffers).first(hits));
    for (size_t i = 0; i < hits; ++i) {
      if (!reads[i].ok()) {
        return reads[i].status().WithContext("reading block " + keys[i] +
                                             " found by LongestPrefix");
      }
      uint64_t got = 0;
      std::memcpy(&got, buffers[i].data(), sizeof(got));
      if (*reads[i] != block_bytes || got != request[i]) {
        return Status::Corruption("block " + keys[i] + " read back as another block's bytes");
      }
    }
    items.clear();
    for (size_t i = hits; i < request.size(); ++i) {
      std::memcpy(values[i].data(), &request[i], sizeof(uint64_t));
      items.push_back({views[i], values[i]});
    }
    for (const Status& st : pool->BatchPut(items)) {
      if (!st.ok()) return st.WithContext("put");
    }
  }
  out.seconds = static_cast<double>(BenchNowNanos() - start) / 1e9;
  out.stats = pool->Stats();
  return out;
}

int RunTraceReplay(const KvBenchOptions& o) {
  BenchReport report("kv-trace");
  report.SetMachine(DescribeMachine("."));
  Result<kv::BlockTrace> trace = ReadTrace(o.trace);
  if (!trace.ok()) {
    std::cerr << "granary bench kv: " << trace.status().ToString() << std::endl;
    return 1;
  }
  const uint64_t distinct = kv::DistinctBlocks(*trace);
  const kv::PrefixHits unbounded = kv::SimulateBelady(*trace, distinct);
  report.SetConfig({{"trace", o.trace},
                    {"requests", trace->size()},
                    {"block_references", unbounded.references},
                    {"distinct_blocks", distinct},
                    {"block_bytes", o.block_bytes},
                    {"key_bytes", kKeyBytes},
                    {"pool_percents", o.pool_percents}});
  report.AddNote("an unbounded cache hits " + FormatFigure(100.0 * unbounded.Rate()) +
                 " % of block references (prefix hits)");
  std::cerr << "kv trace: " << trace->size() << " requests, " << unbounded.references
            << " block references, " << distinct << " distinct blocks" << std::endl;

  for (int pct : o.pool_percents) {
    const uint64_t capacity = std::max<uint64_t>(1, distinct * static_cast<uint64_t>(pct) / 100);
    const std::string size =
        std::to_string(pct) + "% (" + FormatFigure(static_cast<double>(capacity)) + " blocks)";
    std::cerr << "kv trace: pool of " << size << std::endl;
    const kv::PrefixHits belady = kv::SimulateBelady(*trace, capacity);
    Result<Replay> lru =
        ReplayOnPool(*trace, capacity, o.block_bytes, kv::EvictionPolicyKind::kLru);
    Result<Replay> prefix =
        ReplayOnPool(*trace, capacity, o.block_bytes, kv::EvictionPolicyKind::kPrefixAware);
    for (const auto* r : {&lru, &prefix}) {
      if (!r->ok()) report.AddError("pool of " + size + ": " + r->status().ToString());
    }
    auto rate = [](const Result<Replay>& r) -> std::optional<double> {
      if (!r.ok()) return std::nullopt;
      return 100.0 * r->hits.Rate();
    };
    auto per_sec = [&](const Result<Replay>& r) -> std::optional<double> {
      if (!r.ok() || r->seconds <= 0) return std::nullopt;
      return static_cast<double>(trace->size()) / r->seconds;
    };
    nlohmann::json details = {{"capacity_blocks", capacity},
                              {"belady_percent", 100.0 * belady.Rate()}};
    if (lru.ok() && prefix.ok()) {
      const double gap = belady.Rate() - lru->hits.Rate();
      if (gap > 0) {
        details["gap_to_belady_closed"] = (prefix->hits.Rate() - lru->hits.Rate()) / gap;
      }
      details["lru_evictions"] = lru->stats.dram_evictions;
      details["prefix_aware_evictions"] = prefix->stats.dram_evictions;
    }
    report.Add(
        {"prefix hit rate, pool " + size, "%", rate(prefix), "lru", rate(lru), true, "", details});
    report.Add({"prefix hit rate, pool " + size,
                "%",
                rate(prefix),
                "belady (offline optimum)",
                100.0 * belady.Rate(),
                true,
                "",
                {}});
    report.Add(
        {"replay, pool " + size, "requests/s", per_sec(prefix), "lru", per_sec(lru), true, "", {}});
  }
  report.AddNote("granary: the prefix-aware policy of a real kv::Pool (DRAM tier, " +
                 std::to_string(o.block_bytes) +
                 "-byte blocks); lru: the same pool with LRU eviction; belady: a simulation that "
                 "evicts the block used furthest in the future (block-level optimum)");
  if (auto load = LoadAverage(); !load.empty()) report.machine()["load_average_end"] = load;
  return report.Finish(o.json);
}

int RunKvBench(const KvBenchOptions& o) {
  if (o.block_bytes < sizeof(uint64_t)) {
    std::cerr << "granary bench kv: --block-bytes must be at least 8 (a block carries its id)"
              << std::endl;
    return 1;
  }
  if (!o.trace.empty()) return RunTraceReplay(o);
  return o.throughput(o.json);
}

}  // namespace

void AddKvBenchCommand(CLI::App& bench) {
  auto o = std::make_shared<KvBenchOptions>();
  CLI::App* cmd = bench.add_subcommand(
      "kv",
      "The KV-cache pool: put and batched get throughput against Redis and memcpy; --trace "
      "FILE replays a KV-cache trace against LRU, the prefix-aware policy and the offline "
      "optimum");
  cmd->add_option("--trace", o->trace,
                  "Trace to replay (JSON lines with prefix-chained \"hash_ids\")");
  cmd->add_option("--block-bytes", o->block_bytes, "Bytes per block in the replay")
      ->capture_default_str();
  cmd->add_option("--pool-percents", o->pool_percents,
                  "Pool sizes to replay, in percent of the trace's distinct blocks")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print a JSON document on stdout (the table goes to stderr)");
  o->throughput = AddKvThroughputBench(*cmd);
  cmd->callback([o] { ExitCode() = RunKvBench(*o); });
}

}  // namespace granary::tools
