// LocalBlobStore: the BlobStore of one node, one blob engine per disk directory. Each blob goes to
// the disk chosen by a hash of its key, so the chunks of one large object spread over every disk.
// Each disk records which disk of which store it is (its DISK file): the list may move to other
// paths between starts, but not change, since a blob's disk follows from its key.
//
// Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "replication/blob_store.h"

namespace granary::replication {

struct LocalBlobStoreOptions {
  std::vector<std::string> disks;  // directories, one blob engine each; at least one
  engine::EngineOptions engine;    // options of every engine
  // The store the disks must be (its id, as StoreIdOfDisks returns it), when the caller knows
  // it from an earlier start: other disks, or fresh ones, are then refused. Empty: fresh disks
  // become a new store.
  std::string store_id;
};

// Opens (creating if needed) an engine in each directory. kInvalidArgument if the directories
// differ from the ones the store was created with. `store_id`, when given, receives the id of
// the store opened (new or earlier).
Result<std::unique_ptr<BlobStore>> OpenLocalBlobStore(LocalBlobStoreOptions options,
                                                      std::string* store_id = nullptr);

// The id of the store the disks belong to, from their DISK files; empty when none has one.
Result<std::string> StoreIdOfDisks(const std::vector<std::string>& disks);

}  // namespace granary::replication
