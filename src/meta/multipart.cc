// Multipart uploads: an upload record under the bucket, one part record per part (each part's
// data is a run of blobs), and a completion that turns the chosen parts' runs into the object's
// record in one commit, without copying data.
#include <openssl/rand.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdio>

#include "common/names.h"
#include "meta/keys.h"
#include "meta/object_store.h"
#include "meta/records.h"
#include "meta/rocks.h"

namespace granary::meta {
namespace {

Status NoSuchUpload(std::string_view upload_id) {
  return Status(Code::kNoSuchUpload, "NoSuchUpload: multipart upload \"" +
                                         std::string(upload_id) +
                                         "\" does not exist; it may have been completed or aborted");
}

std::string_view Unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

}  // namespace

Result<proto::UploadRecord> ObjectStore::GetUpload(std::string_view bucket, std::string_view key,
                                                   std::string_view upload_id) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), UploadKey(bucket, key, upload_id), &value);
  if (s.IsNotFound()) return NoSuchUpload(upload_id);
  RETURN_IF_ERROR(FromRocks(s, "reading upload"));
  proto::UploadRecord upload;
  if (!upload.ParseFromString(value)) return Status::Corruption("upload record does not parse");
  return upload;
}

Result<std::string> ObjectStore::CreateMultipartUpload(std::string_view bucket,
                                                       std::string_view key, PutOptions options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  // As a commit: DeleteBucket, which takes it exclusively, sees the upload or refuses it.
  ReaderLock bucket_lock(&bucket_mu_);
  RETURN_IF_ERROR(CheckBucket(bucket));
  ASSIGN_OR_RETURN(uint64_t version, NextVersion());
  uint32_t nonce = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&nonce), sizeof(nonce)) != 1) {
    return Status::Internal("no randomness for an upload id");
  }
  // Fixed width, so that ids sort in the order uploads were created.
  char id[33];
  std::snprintf(id, sizeof(id), "%016llx%08x", static_cast<unsigned long long>(version), nonce);
  proto::UploadRecord record;
  record.set_initiated_ns(NowNs());
  record.set_content_type(options.content_type);
  record.mutable_user_metadata()->insert(options.user_metadata.begin(),
                                         options.user_metadata.end());
  record.mutable_headers()->insert(options.headers.begin(), options.headers.end());
  rocksdb::WriteBatch batch;
  batch.Put(UploadKey(bucket, key, id), record.SerializeAsString());
  RETURN_IF_ERROR(WriteSynced(&batch));
  return std::string(id);
}

Result<ObjectInfo> ObjectStore::CompleteMultipartUpload(std::string_view bucket,
                                                        std::string_view key,
                                                        std::string_view upload_id,
                                                        std::span<const CompletedPart> parts,
                                                        const Conditions& conditions) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  RETURN_IF_ERROR(CheckBucket(bucket));
  if (parts.empty()) {
    return Status::InvalidArgument("MalformedXML: a multipart upload is completed with at least "
                                   "one part");
  }
  GarbageScope garbage_scope(this);
  std::lock_guard<std::mutex> upload_lock(UploadLock(upload_id));
  ASSIGN_OR_RETURN(proto::UploadRecord upload, GetUpload(bucket, key, upload_id));

  // Every part uploaded, by number.
  std::map<int, proto::PartRecord> uploaded;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = PartPrefix(upload_id);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    proto::PartRecord part;
    if (!part.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("part record does not parse");
    }
    uploaded[static_cast<int>(
        GetBigEndian32(std::string_view(it->key().data() + prefix.size(), 4)))] = part;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading parts"));
  it.reset();

  proto::ObjectRecord record;
  Md5 md5s;
  uint64_t size = 0;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].part_number <= parts[i - 1].part_number) {
      return Status(Code::kInvalidPart, "InvalidPartOrder: the list of parts was not in "
                                        "ascending order; parts must be ordered by part number");
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    const CompletedPart& p = parts[i];
    auto found = uploaded.find(p.part_number);
    if (found == uploaded.end() || EtagOf(found->second.md5(), 0) != Unquote(p.etag)) {
      return Status(Code::kInvalidPart,
                    "InvalidPart: part " + std::to_string(p.part_number) +
                        " was not uploaded or its ETag does not match: list the parts and "
                        "complete with the ETags they report");
    }
    const proto::PartRecord& part = found->second;
    if (i + 1 < parts.size() && part.size() < kMinPartBytes) {
      return Status(Code::kEntityTooSmall,
                    "EntityTooSmall: part " + std::to_string(p.part_number) + " has " +
                        std::to_string(part.size()) +
                        " bytes; every part but the last must have at least 5 MiB");
    }
    md5s.Update(part.md5());
    size += part.size();
    *record.add_runs() = part.run();
  }
  if (size > kMaxObjectBytes) {
    return Status::InvalidArgument("EntityTooLarge: an object is limited to 5 TiB");
  }
  record.set_size(size);
  record.set_md5(md5s.Finish());
  record.set_parts(static_cast<uint32_t>(parts.size()));
  record.set_content_type(upload.content_type());
  record.set_mtime_ns(NowNs());
  ASSIGN_OR_RETURN(uint64_t version, NextVersion());
  record.set_version(version);
  *record.mutable_user_metadata() = upload.user_metadata();
  *record.mutable_headers() = upload.headers();

  // In the same commit: the upload and its part records go, and parts left out are garbage.
  rocksdb::WriteBatch batch;
  batch.Delete(UploadKey(bucket, key, upload_id));
  std::vector<proto::DataRun> unused;
  for (const auto& [number, part] : uploaded) {
    batch.Delete(PartKey(upload_id, static_cast<uint32_t>(number)));
    bool used = false;
    for (const CompletedPart& p : parts) used = used || p.part_number == number;
    if (!used) unused.push_back(part.run());
  }
  if (!unused.empty()) AddGarbage(&batch, unused);
  return CommitObject(bucket, key, std::move(record), conditions, {}, &batch);
}

Status ObjectStore::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                         std::string_view upload_id) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  RETURN_IF_ERROR(CheckBucket(bucket));
  GarbageScope garbage_scope(this);
  std::lock_guard<std::mutex> upload_lock(UploadLock(upload_id));
  RETURN_IF_ERROR(GetUpload(bucket, key, upload_id).status());
  rocksdb::WriteBatch batch;
  batch.Delete(UploadKey(bucket, key, upload_id));
  std::vector<proto::DataRun> runs;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = PartPrefix(upload_id);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    proto::PartRecord part;
    if (part.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      runs.push_back(part.run());
    }
    batch.Delete(it->key());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading parts"));
  if (!runs.empty()) AddGarbage(&batch, runs);
  return WriteSynced(&batch);
}

Result<ListPartsResult> ObjectStore::ListParts(std::string_view bucket, std::string_view key,
                                               std::string_view upload_id,
                                               int part_number_marker, int max_parts) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  RETURN_IF_ERROR(CheckBucket(bucket));
  RETURN_IF_ERROR(GetUpload(bucket, key, upload_id).status());
  if (max_parts <= 0 || max_parts > 1000) max_parts = 1000;
  ListPartsResult result;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = PartPrefix(upload_id);
  uint32_t start = part_number_marker < 0 ? 1 : static_cast<uint32_t>(part_number_marker) + 1;
  for (it->Seek(PartKey(upload_id, start)); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    if (static_cast<int>(result.parts.size()) == max_parts) {
      result.truncated = true;
      break;
    }
    proto::PartRecord part;
    if (!part.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::Corruption("part record does not parse");
    }
    int number = static_cast<int>(
        GetBigEndian32(std::string_view(it->key().data() + prefix.size(), 4)));
    result.parts.push_back({number, part.size(), EtagOf(part.md5(), 0), part.mtime_ns()});
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing parts"));
  if (result.truncated) result.next_part_number_marker = result.parts.back().part_number;
  return result;
}

}  // namespace granary::meta
