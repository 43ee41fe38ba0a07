// RocksDB's status as a Granary Status.
#pragma once

#include <rocksdb/status.h>

#include <string_view>

#include "common/status.h"

namespace granary::meta {

inline Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::OK();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsNoSpace()) return Status::NoSpace(std::move(msg));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  // A replicated namespace's chain could not take the write now (meta/replicated_db.h).
  if (s.IsBusy()) return Status::Unavailable(std::move(msg));
  return Status::IOError(std::move(msg));
}

}  // namespace granary::meta
