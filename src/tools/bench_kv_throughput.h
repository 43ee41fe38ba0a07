// `granary bench kv` without --trace: the KV-cache service's throughput (puts and batched gets of
// large values from concurrent clients) over TCP and over the same-host shared-memory path,
// beside Redis and memcpy measured in the same run (bench_kv_throughput.cc).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace granary::tools {

// Adds the throughput benchmark's flags to `cmd` (`granary bench kv`) and returns what runs it:
// given the command's --json, it runs the benchmark and returns the exit code.
std::function<int(bool json)> AddKvThroughputBench(CLI::App& cmd);

}  // namespace granary::tools
