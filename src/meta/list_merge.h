// Listings of one bucket merged from several partitions, each holding a disjoint set of its keys
// (a cluster's bucket split by top-level directory, docs/design/cluster.md "Directories"). Every
// part must have been listed with the same options; the merge is then the listing one store
// holding every key would have returned: the first `max` names (keys and common prefixes, a
// prefix reported by several parts counted once) in order, truncated when any part was or more
// names remain, and a continuation that every part understands.
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <span>

#include "granary/object_api.h"

namespace granary::meta {

// At most this many names are returned by one listing, whatever was asked.
inline constexpr uint32_t kMaxListKeys = 1000;

ListResult MergeListings(std::span<ListResult> parts, uint32_t max_keys);
ListUploadsResult MergeUploadListings(std::span<ListUploadsResult> parts, uint32_t max_uploads);

}  // namespace granary::meta
