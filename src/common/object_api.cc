// The conveniences of ObjectApi, written once over its virtual calls, and common/kept_alive.h.
#include "granary/object_api.h"

#include <algorithm>

#include "common/kept_alive.h"

namespace granary {

std::vector<Result<ObjectInfo>> ObjectApi::PutMany(std::string_view bucket,
                                                   std::span<const PutItem> items) {
  std::vector<Result<ObjectInfo>> out;
  out.reserve(items.size());
  for (const PutItem& item : items) out.push_back(Put(bucket, item.key, item.data, item.options));
  return out;
}

std::vector<Result<std::string>> ObjectApi::GetMany(std::string_view bucket,
                                                    std::span<const std::string> keys) {
  std::vector<Result<std::string>> out;
  out.reserve(keys.size());
  for (const std::string& key : keys) out.push_back(Get(bucket, key));
  return out;
}

std::vector<Status> ObjectApi::DeleteMany(std::string_view bucket,
                                          std::span<const std::string> keys) {
  std::vector<Status> out;
  out.reserve(keys.size());
  for (const std::string& key : keys) out.push_back(Delete(bucket, key));
  return out;
}

Result<ObjectInfo> ObjectApi::Put(std::string_view bucket, std::string_view key,
                                  std::string_view data, PutOptions options) {
  return PutBytes(bucket, key, data, std::move(options));
}

Result<size_t> ObjectApi::GetInto(std::string_view bucket, std::string_view key,
                                  std::span<char> buf, const GetOptions& options) {
  return GetBytesInto(bucket, key, buf, options);
}

Result<ObjectInfo> ObjectApi::PutBytes(std::string_view bucket, std::string_view key,
                                       std::string_view data, PutOptions options) {
  options.expected_size = data.size();
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer,
                   BeginPut(bucket, key, std::move(options)));
  RETURN_IF_ERROR(writer->Append(data));
  return writer->Commit();
}

Result<std::string> ObjectApi::Get(std::string_view bucket, std::string_view key,
                                   const GetOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, Open(bucket, key, options));
  std::string out(reader->length(), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(std::span<char>(out.data() + done, out.size() - done)));
    if (n == 0) return Status::Internal("object ended before its stated length");
    done += n;
  }
  return out;
}

Result<size_t> ObjectApi::GetBytesInto(std::string_view bucket, std::string_view key,
                                       std::span<char> buf, const GetOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, Open(bucket, key, options));
  if (reader->length() > buf.size()) {
    return Status::InvalidArgument("buffer of " + std::to_string(buf.size()) +
                                   " bytes is too small for the " +
                                   std::to_string(reader->length()) + " bytes requested");
  }
  size_t done = 0;
  while (done < reader->length()) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(buf.subspan(done, reader->length() - done)));
    if (n == 0) return Status::Internal("object ended before its stated length");
    done += n;
  }
  return done;
}

}  // namespace granary

namespace granary {
namespace {

// The owner is declared first, so it is released after the reader or writer it keeps alive.
class KeptWriter final : public ObjectWriter {
 public:
  KeptWriter(std::unique_ptr<ObjectWriter> writer, std::shared_ptr<const void> owner)
      : owner_(std::move(owner)), writer_(std::move(writer)) {}
  Status Append(std::string_view data) override { return writer_->Append(data); }
  Result<ObjectInfo> Commit() override { return writer_->Commit(); }

 private:
  std::shared_ptr<const void> owner_;
  std::unique_ptr<ObjectWriter> writer_;
};

class KeptReader final : public ObjectReader {
 public:
  KeptReader(std::unique_ptr<ObjectReader> reader, std::shared_ptr<const void> owner)
      : owner_(std::move(owner)), reader_(std::move(reader)) {}
  const ObjectInfo& info() const override { return reader_->info(); }
  uint64_t offset() const override { return reader_->offset(); }
  uint64_t length() const override { return reader_->length(); }
  Result<size_t> Read(std::span<char> buf) override { return reader_->Read(buf); }

 private:
  std::shared_ptr<const void> owner_;
  std::unique_ptr<ObjectReader> reader_;
};

}  // namespace

std::unique_ptr<ObjectWriter> KeepingAlive(std::unique_ptr<ObjectWriter> writer,
                                           std::shared_ptr<const void> owner) {
  return std::make_unique<KeptWriter>(std::move(writer), std::move(owner));
}

std::unique_ptr<ObjectReader> KeepingAlive(std::unique_ptr<ObjectReader> reader,
                                           std::shared_ptr<const void> owner) {
  return std::make_unique<KeptReader>(std::move(reader), std::move(owner));
}

}  // namespace granary
