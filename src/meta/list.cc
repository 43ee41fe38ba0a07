// Listings: objects by prefix (with or without a delimiter) and multipart uploads. Each is one
// range scan of the bucket's keys; a common prefix is skipped with one seek past it.
#include <rocksdb/db.h>

#include <optional>

#include "meta/keys.h"
#include "meta/list_merge.h"
#include "meta/object_store.h"
#include "meta/records.h"
#include "meta/rocks.h"

namespace granary::meta {
namespace {

// The smallest key after `name` (keys never contain a 0 byte).
std::string After(std::string_view name) {
  std::string s(name);
  s.push_back('\0');
  return s;
}

// The common prefix `key` rolls up into when listed under `prefix` with `delimiter`: up to and
// including the first delimiter after the prefix; nullopt when none (or no delimiter).
std::optional<std::string> CommonPrefix(std::string_view key, const std::string& prefix,
                                        const std::string& delimiter) {
  if (delimiter.empty()) return std::nullopt;
  size_t at = key.find(delimiter, prefix.size());
  if (at == std::string_view::npos) return std::nullopt;
  return std::string(key.substr(0, at + delimiter.size()));
}

}  // namespace

Result<ListResult> ObjectStore::List(std::string_view bucket, const ListOptions& options) {
  RETURN_IF_ERROR(CheckBucket(bucket));
  ListResult result;
  uint32_t max = std::min(options.max_keys, kMaxListKeys);
  const std::string base = ObjectPrefix(bucket);
  std::string seek = base + options.prefix;
  std::string resume;
  if (!options.continuation_token.empty()) {
    std::optional<ListPosition> pos = DecodeContinuation(options.continuation_token);
    if (!pos) {
      return Status::InvalidArgument("InvalidArgument: the continuation token is not valid; "
                                     "pass back the token of the previous listing unchanged");
    }
    if (pos->after_prefix) {
      std::string next = PrefixSuccessor(pos->name);
      if (next.empty()) return result;
      resume = base + next;
    } else {
      resume = base + After(pos->name);
    }
  } else if (!options.start_after.empty()) {
    // A marker that is a common prefix (V1's NextMarker can be one) resumes after every key
    // under it, so the prefix is not listed again.
    bool is_prefix = !options.delimiter.empty() && options.start_after.ends_with(options.delimiter);
    std::string next = is_prefix ? PrefixSuccessor(options.start_after) : After(options.start_after);
    if (next.empty()) return result;
    resume = base + next;
  }
  if (resume > seek) seek = resume;
  if (max == 0) return result;

  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  ListPosition last;
  uint32_t count = 0;
  it->Seek(seek);
  while (it->Valid()) {
    rocksdb::Slice raw = it->key();
    if (!raw.starts_with(base)) break;
    std::string_view key(raw.data() + base.size(), raw.size() - base.size());
    if (!key.starts_with(options.prefix)) break;
    if (std::optional<std::string> common = CommonPrefix(key, options.prefix, options.delimiter)) {
      if (count == max) {
        result.truncated = true;
        break;
      }
      result.common_prefixes.push_back(*common);
      ++count;
      last = {true, *common};
      std::string next = PrefixSuccessor(*common);
      if (next.empty()) break;
      it->Seek(base + next);
      continue;
    }
    if (count == max) {
      result.truncated = true;
      break;
    }
    proto::ObjectRecord record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("the record of object \"" + std::string(key) +
                                "\" does not parse");
    }
    record.clear_inline_data();
    result.objects.push_back(InfoOf(bucket, key, record));
    ++count;
    last = {false, std::string(key)};
    it->Next();
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing objects"));
  if (result.truncated) {
    result.next_continuation_token = EncodeContinuation(last);
    result.next_marker = last.name;
  }
  return result;
}

Result<ListUploadsResult> ObjectStore::ListMultipartUploads(std::string_view bucket,
                                                            const ListUploadsOptions& options) {
  RETURN_IF_ERROR(CheckBucket(bucket));
  ListUploadsResult result;
  uint32_t max = std::min(options.max_uploads, kMaxListKeys);
  const std::string base = UploadPrefix(bucket);
  std::string seek = base + options.prefix;
  if (!options.key_marker.empty()) {
    // A marker that is a common prefix (NextKeyMarker can be one) resumes after every key under
    // it, so the prefix is not listed again.
    const bool is_prefix = options.upload_id_marker.empty() && !options.delimiter.empty() &&
                           options.key_marker.ends_with(options.delimiter);
    std::string resume = is_prefix ? base + PrefixSuccessor(options.key_marker)
                         : options.upload_id_marker.empty()
                             ? base + PrefixSuccessor(options.key_marker + '\0')
                             : base + options.key_marker + '\0' + After(options.upload_id_marker);
    if (resume > seek) seek = resume;
  }
  if (max == 0) return result;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  uint32_t count = 0;
  UploadInfo last;
  it->Seek(seek);
  while (it->Valid()) {
    rocksdb::Slice raw = it->key();
    if (!raw.starts_with(base)) break;
    std::string_view rest(raw.data() + base.size(), raw.size() - base.size());
    size_t zero = rest.find('\0');
    if (zero == std::string_view::npos) return Status::Corruption("malformed upload key");
    std::string_view key = rest.substr(0, zero);
    std::string_view upload_id = rest.substr(zero + 1);
    if (!key.starts_with(options.prefix)) break;
    if (std::optional<std::string> common = CommonPrefix(key, options.prefix, options.delimiter)) {
      if (count == max) {
        result.truncated = true;
        break;
      }
      result.common_prefixes.push_back(*common);
      ++count;
      last = {*common, "", 0};
      std::string next = PrefixSuccessor(*common);
      if (next.empty()) break;
      it->Seek(base + next);
      continue;
    }
    if (count == max) {
      result.truncated = true;
      break;
    }
    proto::UploadRecord record;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("an upload record does not parse");
    }
    last = {std::string(key), std::string(upload_id), record.initiated_ns()};
    result.uploads.push_back(last);
    ++count;
    it->Next();
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing uploads"));
  if (result.truncated) {
    result.next_key_marker = last.key;
    result.next_upload_id_marker = last.upload_id;
  }
  return result;
}

}  // namespace granary::meta
