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

// Merges `parts` (listings whose entries are in `R::*entries`, each with a `key`) into `out`:
// the first `max` names in order, a common prefix of several parts counted once; names equal
// across parts keep the parts' order (the uploads of one key are all in one part). Returns
// whether names remain (in these parts or beyond a truncated one), with `*last` the last name
// taken; false when none was taken.
template <typename R, typename E>
bool MergeInto(std::span<R> parts, std::vector<E> R::*entries, uint32_t max, R* out,
               Name* last) {
  std::vector<Name> names;
  bool more = false;
  for (size_t p = 0; p < parts.size(); ++p) {
    const std::vector<E>& part_entries = parts[p].*entries;
    for (size_t i = 0; i < part_entries.size(); ++i) {
      names.push_back({part_entries[i].key, false, p, i});
    }
    for (size_t i = 0; i < parts[p].common_prefixes.size(); ++i) {
      names.push_back({parts[p].common_prefixes[i], true, p, i});
    }
    more = more || parts[p].truncated;
  }
  std::stable_sort(names.begin(), names.end(),
                   [](const Name& a, const Name& b) { return a.name < b.name; });
  uint32_t count = 0;
  for (const Name& n : names) {
    if (n.prefix && count > 0 && last->prefix && last->name == n.name) continue;
    if (count == std::min(max, kMaxListKeys)) {
      more = true;
      break;
    }
    if (n.prefix) {
      out->common_prefixes.emplace_back(n.name);
    } else {
      (out->*entries).push_back((parts[n.part].*entries)[n.index]);
    }
    *last = n;
    ++count;
  }
  return more && count > 0;
}

}  // namespace

ListResult MergeListings(std::span<ListResult> parts, uint32_t max_keys) {
  ListResult out;
  Name last;
  if (MergeInto(parts, &ListResult::objects, max_keys, &out, &last)) {
    out.truncated = true;
    out.next_marker = std::string(last.name);
    out.next_continuation_token = EncodeContinuation({last.prefix, out.next_marker});
  }
  return out;
}

ListUploadsResult MergeUploadListings(std::span<ListUploadsResult> parts, uint32_t max_uploads) {
  ListUploadsResult out;
  Name last;
  if (MergeInto(parts, &ListUploadsResult::uploads, max_uploads, &out, &last)) {
    out.truncated = true;
    out.next_key_marker = std::string(last.name);
    if (!last.prefix) out.next_upload_id_marker = parts[last.part].uploads[last.index].upload_id;
  }
  return out;
}

}  // namespace granary::meta
