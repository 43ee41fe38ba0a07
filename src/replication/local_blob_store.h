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
};

// Opens (creating if needed) an engine in each directory. kInvalidArgument if the directories
// differ from the ones the store was created with.
Result<std::unique_ptr<BlobStore>> OpenLocalBlobStore(LocalBlobStoreOptions options);

}  // namespace granary::replication
