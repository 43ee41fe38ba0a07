// The put and get phases every store benchmark runs on a BlobTarget (bench s3, client, cluster):
// puts of fresh keys from N threads for a time, then random gets of what was put, then a check
// that a sample reads back exactly.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "tools/bench_baselines.h"
#include "tools/bench_engine.h"
#include "tools/bench_load.h"

namespace granary::tools {

struct Figures {
  bool ok = false;
  double put_mbps = 0, get_mbps = 0;
  nlohmann::json put_json, get_json;
};

// ops, seconds, ops/s, MB/s and p50/p99 latency of a run of operations of `length` bytes; with
// `batch` > 1, each operation of `r` was a call on `batch` objects: ops count objects, latency is
// per call.
nlohmann::json LoadJson(const LoadResult& r, size_t length, size_t batch = 1);

// Opens the store under test in a fresh directory.
using Opener = std::function<Result<std::unique_ptr<BlobTarget>>(const std::string& dir)>;

// Opens a target in a fresh directory of `ctx` named `label`, runs the puts and gets with
// `threads` threads for `seconds` each, verifies a sample, closes it and removes the directory.
// With `batch` > 1, each call puts or reads that many objects (PutBatch, ReadBatch).
Result<Figures> RunTarget(BenchContext& ctx, int threads, double seconds, const std::string& label,
                          const Opener& open, const KeySet& keys, const ValueSet& values,
                          size_t batch = 1);

// A single-node server of this process (bench_objects.cc) with a bucket "bench", through the
// native client with `connections` connections (the baseline of the cluster's object figures),
// over its socket or, when `shared`, through shared buffers. With `batched`, a batch is one
// PutMany or GetManyInto call.
Result<std::unique_ptr<BlobTarget>> OpenNativeTarget(const std::string& dir, int connections,
                                                     bool shared, bool batched = false);

}  // namespace granary::tools
