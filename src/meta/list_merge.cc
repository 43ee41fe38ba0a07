#include "meta/list_merge.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "meta/keys.h"

namespace granary::meta {
namespace {

// One name of a part's listing: an entry (object or upload) or a common prefix.
struct Name {
  std::string_view name;
  bool prefix = false;
  size_t part = 0;
  size_t index = 0;  // into the part's entries or common prefixes
};

// The names of every part in order; names equal across parts keep the parts' order (the
// uploads of one key are in one part, in its order). `entry_name(part, i)` and `entries(part)`
// read a part's entries.
template <typename Part, typename EntryName>
std::vector<Name> Names(std::span<Part> parts, size_t (*entries)(const Part&),
                        EntryName entry_name) {
  std::vector<Name> names;
  for (size_t p = 0; p < parts.size(); ++p) {
    for (size_t i = 0; i < entries(parts[p]); ++i) {
      names.push_back({entry_name(parts[p], i), false, p, i});
    }
    for (size_t i = 0; i < parts[p].common_prefixes.size(); ++i) {
      names.push_back({parts[p].common_prefixes[i], true, p, i});
    }
  }
  std::stable_sort(names.begin(), names.end(),
                   [](const Name& a, const Name& b) { return a.name < b.name; });
  return names;
}

// The first `max` names, a common prefix counted once; `take(name)` adds one to the result.
// Returns whether names remain, and sets `*last` to the last one taken.
template <typename Take>
bool TakeFirst(const std::vector<Name>& names, uint32_t max, Take take, Name* last) {
  uint32_t count = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const Name& n = names[i];
    if (n.prefix && count > 0 && last->prefix && last->name == n.name) continue;
    if (count == max) return true;
    take(n);
    *last = n;
    ++count;
  }
  return false;
}

}  // namespace

ListResult MergeListings(std::span<ListResult> parts, uint32_t max_keys) {
  ListResult out;
  if (parts.empty()) return out;
  const std::vector<Name> names = Names(
      parts, +[](const ListResult& r) { return r.objects.size(); },
      [](const ListResult& r, size_t i) { return std::string_view(r.objects[i].key); });
  Name last;
  bool more = TakeFirst(
      names, std::min(max_keys, kMaxListKeys),
      [&](const Name& n) {
        if (n.prefix) {
          out.common_prefixes.emplace_back(n.name);
        } else {
          out.objects.push_back(parts[n.part].objects[n.index]);
        }
      },
      &last);
  for (const ListResult& part : parts) more = more || part.truncated;
  if (more && !(out.objects.empty() && out.common_prefixes.empty())) {
    out.truncated = true;
    out.next_marker = std::string(last.name);
    out.next_continuation_token = EncodeContinuation({last.prefix, out.next_marker});
  }
  return out;
}

ListUploadsResult MergeUploadListings(std::span<ListUploadsResult> parts, uint32_t max_uploads) {
  ListUploadsResult out;
  if (parts.empty()) return out;
  const std::vector<Name> names = Names(
      parts, +[](const ListUploadsResult& r) { return r.uploads.size(); },
      [](const ListUploadsResult& r, size_t i) { return std::string_view(r.uploads[i].key); });
  Name last;
  bool more = TakeFirst(
      names, std::min(max_uploads, kMaxListKeys),
      [&](const Name& n) {
        if (n.prefix) {
          out.common_prefixes.emplace_back(n.name);
        } else {
          out.uploads.push_back(parts[n.part].uploads[n.index]);
        }
      },
      &last);
  for (const ListUploadsResult& part : parts) more = more || part.truncated;
  if (more && !(out.uploads.empty() && out.common_prefixes.empty())) {
    out.truncated = true;
    out.next_key_marker = std::string(last.name);
    if (!last.prefix) out.next_upload_id_marker = parts[last.part].uploads[last.index].upload_id;
  }
  return out;
}

}  // namespace granary::meta
