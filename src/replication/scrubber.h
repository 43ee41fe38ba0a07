// Scrubber: reads every blob a node holds, at a limited rate, so that damage on disk is found
// before a reader needs the blob; a damaged copy is replaced from another member of its chain
// (ChainReplica::RepairBlob). One pass lists the blobs, then reads each (every read is checked
// against its checksums); passes start at most once per `pass_interval_ms`.
//
// Thread-safe: Start and Stop from one thread; the scrubber runs on its own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "replication/blob_store.h"
#include "replication/chain_replica.h"

namespace granary::replication {

struct ScrubberOptions {
  uint64_t bytes_per_second = 64ull << 20;  // read rate; 0 disables scrubbing
  int pass_interval_ms = 3'600'000;         // the least time from one pass's start to the next
};

struct ScrubberStats {
  uint64_t passes = 0;          // finished
  uint64_t blobs_checked = 0;
  uint64_t damaged_found = 0;
  uint64_t repaired = 0;
};

class Scrubber {
 public:
  Scrubber(BlobStore& store, ChainReplica& replica, ScrubberOptions options)
      : store_(store), replica_(replica), options_(options) {}
  ~Scrubber() { Stop(); }

  void Start();
  void Stop();
  ScrubberStats Stats() const;

 private:
  void Run();
  // One pass over every blob; false if stopped.
  bool Pass();
  // Sleeps `ms` unless stopped; false if stopped.
  bool Sleep(int64_t ms);

  BlobStore& store_;
  ChainReplica& replica_;
  const ScrubberOptions options_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> passes_{0}, checked_{0}, damaged_{0}, repaired_{0};
};

}  // namespace granary::replication
