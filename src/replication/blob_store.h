// BlobStore: where the namespace keeps object data. On a single node, the blob engines of the
// node's disks (LocalBlobStore); in a cluster, replicated chains of blob engines on many nodes.
// The namespace (meta/) names every blob itself and never overwrites one: a blob is written
// once, read many times and deleted once nothing refers to it.
//
// Thread-safe: every method may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace granary::replication {

struct BlobStoreStats {
  uint64_t blobs = 0;
  uint64_t live_bytes = 0;
  uint64_t disk_bytes = 0;
  uint64_t index_memory_bytes = 0;
  uint64_t capacity_bytes = 0;
  uint64_t corruptions_detected = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Stores every blob of `blobs` durably; returns once all are durable. Blobs placed on the same
  // disk are written as one atomic batch; across disks there is no atomicity (callers commit
  // metadata only after this returns).
  virtual Status PutMany(std::span<const std::pair<std::string, std::string_view>> blobs) = 0;
  // Stores one blob, taking its bytes; `done` runs once it is durable, on a thread of the store:
  // it must be quick and must not call the store.
  virtual void PutAsync(std::string key, std::string value, std::function<void(Status)> done) = 0;
  // Reads bytes of the blob from `offset` into `dst`; returns the count (short only at the
  // blob's end). kNotFound if absent, kCorruption if the bytes fail their checksum.
  virtual Result<size_t> ReadInto(std::string_view key, uint64_t offset, std::span<char> dst) = 0;
  // Whole blobs, read together where the disks allow.
  virtual std::vector<Result<std::string>> GetMany(std::span<const std::string> keys) = 0;
  // Deletes blobs (absent ones are ignored). Durable before it returns.
  virtual Status DeleteMany(std::span<const std::string> keys) = 0;
  // Whether the blob exists (no data read).
  virtual bool Exists(std::string_view key) = 0;
  // Calls `visit` for every blob, in no particular order, reading the disks' record headers.
  // Blobs written or deleted during the scan may or may not be visited.
  virtual Status Scan(const std::function<void(std::string_view key, uint64_t size)>& visit) = 0;

  virtual BlobStoreStats Stats() = 0;
  // Makes everything durable and closes; later calls fail with kUnavailable.
  virtual Status Close() = 0;
};

}  // namespace granary::replication
