// Reads: the reader of an object's range, Head, batches of small objects, and Copy.
//
// A reader registers with the store before it reads the object's record, so that the data of the
// version it reads is not reclaimed while it is open, even if the object is overwritten or
// deleted meanwhile (object_store.h).
#include <rocksdb/db.h>

#include <cstring>

#include "common/names.h"
#include "meta/keys.h"
#include "meta/object_store.h"
#include "meta/records.h"
#include "meta/rocks.h"

namespace granary::meta {

class ObjectStore::Reader final : public ObjectReader {
 public:
  Reader(ObjectStore* store, uint64_t reader_seq, ObjectInfo info, proto::ObjectRecord record,
         uint64_t offset, uint64_t length)
      : store_(store),
        reader_seq_(reader_seq),
        info_(std::move(info)),
        record_(std::move(record)),
        offset_(offset),
        length_(length) {}
  ~Reader() override { store_->UnregisterReader(reader_seq_); }

  const ObjectInfo& info() const override { return info_; }
  uint64_t offset() const override { return offset_; }
  uint64_t length() const override { return length_; }

  Result<size_t> Read(std::span<char> buf) override {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length_ - done_));
    size_t got = 0;
    while (got < want) {
      uint64_t pos = offset_ + done_;
      ASSIGN_OR_RETURN(size_t n, ReadAt(pos, buf.subspan(got, want - got)));
      if (n == 0) {
        return Status::Corruption("object \"" + info_.key + "\" ended at byte " +
                                  std::to_string(pos) + " of " + std::to_string(info_.size));
      }
      got += n;
      done_ += n;
    }
    return got;
  }

 private:
  // Reads from the object's byte `pos` into `dst`, within one chunk; returns the count.
  Result<size_t> ReadAt(uint64_t pos, std::span<char> dst) {
    if (record_.runs_size() == 0) {
      const std::string& data = record_.inline_data();
      size_t n = std::min<size_t>(dst.size(), data.size() - pos);
      std::memcpy(dst.data(), data.data() + pos, n);
      return n;
    }
    // Find the run holding `pos` (runs are few: one per multipart part at most).
    while (run_index_ < static_cast<size_t>(record_.runs_size()) &&
           pos >= run_start_ + record_.runs(static_cast<int>(run_index_)).size()) {
      run_start_ += record_.runs(static_cast<int>(run_index_)).size();
      ++run_index_;
    }
    while (run_index_ > 0 && pos < run_start_) {
      --run_index_;
      run_start_ -= record_.runs(static_cast<int>(run_index_)).size();
    }
    if (run_index_ >= static_cast<size_t>(record_.runs_size())) return size_t{0};
    const proto::DataRun& run = record_.runs(static_cast<int>(run_index_));
    uint64_t in_run = pos - run_start_;
    uint64_t chunk_bytes = run.chunk_bytes() == 0 ? run.size() : run.chunk_bytes();
    uint64_t chunk = in_run / chunk_bytes;
    uint64_t in_chunk = in_run % chunk_bytes;
    uint64_t chunk_left = std::min(chunk_bytes, run.size() - chunk * chunk_bytes) - in_chunk;
    size_t n = static_cast<size_t>(std::min<uint64_t>(dst.size(), chunk_left));
    auto got = store_->options_.blobs->ReadInto(
        store_->BlobKeyOf(run, chunk), in_chunk, dst.subspan(0, n));
    if (!got.ok()) {
      if (got.status().IsNotFound()) {
        return Status::Corruption("chunk " + std::to_string(chunk) + " of object \"" +
                                  info_.key + "\" is missing");
      }
      return got.status().WithContext("object \"" + info_.key + "\"");
    }
    return *got;
  }

  ObjectStore* const store_;
  const uint64_t reader_seq_;
  const ObjectInfo info_;
  const proto::ObjectRecord record_;
  const uint64_t offset_;
  const uint64_t length_;
  uint64_t done_ = 0;
  size_t run_index_ = 0;
  uint64_t run_start_ = 0;
};

namespace {

// Resolves the requested range against the object's size.
Status ResolveRange(const GetOptions& o, uint64_t size, uint64_t* offset, uint64_t* length) {
  if (o.suffix_length != 0) {
    *length = std::min(o.suffix_length, size);
    *offset = size - *length;
    return Status::OK();
  }
  if (o.offset == 0 && o.length == UINT64_MAX) {
    *offset = 0;
    *length = size;
    return Status::OK();
  }
  if (o.offset >= size) {
    return Status(Code::kInvalidRange, "the range starts at byte " + std::to_string(o.offset) +
                                           " but the object has " + std::to_string(size) +
                                           " bytes");
  }
  *offset = o.offset;
  *length = std::min(o.length, size - o.offset);
  return Status::OK();
}

}  // namespace

Result<proto::ObjectRecord> ObjectStore::ReadableRecord(std::string_view bucket,
                                                       std::string_view key,
                                                       const Conditions& conditions) {
  ASSIGN_OR_RETURN(std::optional<proto::ObjectRecord> record, GetRecord(bucket, key));
  if (!record) {
    RETURN_IF_ERROR(CheckBucket(bucket));
    return Status::NotFound("object \"" + std::string(key) + "\" does not exist");
  }
  RETURN_IF_ERROR(CheckReadConditions(InfoOf(bucket, key, *record), conditions));
  return std::move(*record);
}

Result<std::unique_ptr<ObjectReader>> ObjectStore::Open(std::string_view bucket,
                                                        std::string_view key,
                                                        const GetOptions& options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  uint64_t seq = RegisterReader();
  struct Unregister {
    ObjectStore* store;
    uint64_t seq;
    bool armed = true;
    ~Unregister() {
      if (armed) store->UnregisterReader(seq);
    }
  } guard{this, seq};
  ASSIGN_OR_RETURN(proto::ObjectRecord record, ReadableRecord(bucket, key, options.conditions));
  ObjectInfo info = InfoOf(bucket, key, record);
  uint64_t offset = 0;
  uint64_t length = 0;
  RETURN_IF_ERROR(ResolveRange(options, info.size, &offset, &length));
  guard.armed = false;
  return std::unique_ptr<ObjectReader>(
      new Reader(this, seq, std::move(info), std::move(record), offset, length));
}

Result<ObjectInfo> ObjectStore::Head(std::string_view bucket, std::string_view key,
                                     const GetOptions& options) {
  RETURN_IF_ERROR(ValidateObjectKey(key));
  ASSIGN_OR_RETURN(proto::ObjectRecord record, ReadableRecord(bucket, key, options.conditions));
  return InfoOf(bucket, key, record);
}

std::vector<Result<std::string>> ObjectStore::GetMany(std::string_view bucket,
                                                      std::span<const std::string> keys) {
  std::vector<Result<std::string>> out(keys.size(), Status::Internal("not read"));
  Status bucket_status = CheckBucket(bucket);
  if (!bucket_status.ok()) {
    for (auto& r : out) r = bucket_status;
    return out;
  }
  uint64_t seq = RegisterReader();
  std::vector<std::string> db_keys;
  db_keys.reserve(keys.size());
  for (const std::string& k : keys) db_keys.push_back(ObjectKey(bucket, k));
  std::vector<rocksdb::Slice> slices(db_keys.begin(), db_keys.end());
  std::vector<std::string> values;
  std::vector<rocksdb::Status> statuses = db_->MultiGet(rocksdb::ReadOptions(), slices, &values);
  // Objects of one blob are read together; larger ones through a reader.
  std::vector<std::string> blob_keys;
  std::vector<size_t> blob_items;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      out[i] = Status::NotFound("object \"" + keys[i] + "\" does not exist");
      continue;
    }
    if (!statuses[i].ok()) {
      out[i] = FromRocks(statuses[i], "reading object record");
      continue;
    }
    proto::ObjectRecord record;
    if (!record.ParseFromString(values[i])) {
      out[i] = Status::Corruption("the record of object \"" + keys[i] + "\" does not parse");
      continue;
    }
    if (record.runs_size() == 0) {
      out[i] = std::move(*record.mutable_inline_data());
    } else if (record.runs_size() == 1 && ChunkCount(record.runs(0)) == 1) {
      blob_keys.push_back(BlobKeyOf(record.runs(0), 0));
      blob_items.push_back(i);
    } else {
      out[i] = Get(bucket, keys[i]);
    }
  }
  std::vector<Result<std::string>> blobs = options_.blobs->GetMany(blob_keys);
  for (size_t j = 0; j < blob_items.size(); ++j) {
    if (!blobs[j].ok() && blobs[j].status().IsNotFound()) {
      // Overwritten between our two reads and already reclaimed? Not while we are registered;
      // a missing blob is damage.
      out[blob_items[j]] = Status::Corruption("the data of object \"" + keys[blob_items[j]] +
                                              "\" is missing");
    } else {
      out[blob_items[j]] = std::move(blobs[j]);
    }
  }
  UnregisterReader(seq);
  return out;
}

Result<ObjectInfo> ObjectStore::Copy(std::string_view src_bucket, std::string_view src_key,
                                     std::string_view dst_bucket, std::string_view dst_key,
                                     const CopyOptions& options) {
  GetOptions get;
  get.conditions = options.source_conditions;
  auto opened = Open(src_bucket, src_key, get);
  if (!opened.ok() && opened.status().code() == Code::kNotModified) {
    // A copy has nothing to answer "not modified" with: S3 fails it as a precondition.
    return Status::PreconditionFailed("the source object " + opened.status().message());
  }
  if (!opened.ok()) return opened.status();
  std::unique_ptr<ObjectReader> reader = std::move(*opened);
  const ObjectInfo& src = reader->info();
  PutOptions put;
  if (options.replace_metadata) {
    put = options.put;
  } else {
    if (src_bucket == dst_bucket && src_key == dst_key) {
      return Status::InvalidArgument(
          "InvalidRequest: this copy request is illegal because it is trying to copy an object to "
          "itself without changing the object's metadata; use the REPLACE directive");
    }
    put.content_type = src.content_type;
    put.user_metadata = src.user_metadata;
    put.headers = src.headers;
    put.conditions = options.put.conditions;
  }
  put.content_md5.clear();
  put.expected_size = src.size;
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer,
                   BeginPut(dst_bucket, dst_key, std::move(put)));
  std::string buf(std::min<uint64_t>(src.size, options_.chunk_bytes), '\0');
  uint64_t left = reader->length();
  while (left > 0) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(buf));
    if (n == 0) return Status::Corruption("source object ended early");
    RETURN_IF_ERROR(writer->Append(std::string_view(buf.data(), n)));
    left -= n;
  }
  return writer->Commit();
}

}  // namespace granary::meta
