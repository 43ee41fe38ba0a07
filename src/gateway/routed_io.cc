#include "gateway/routed_io.h"

namespace granary::gateway {
namespace {

class HeldReader final : public ObjectReader {
 public:
  HeldReader(Router& router, NodeClient node, std::unique_ptr<ObjectReader> reader)
      : router_(router), node_(std::move(node)), reader_(std::move(reader)) {}

  const ObjectInfo& info() const override { return reader_->info(); }
  uint64_t offset() const override { return reader_->offset(); }
  uint64_t length() const override { return reader_->length(); }

  Result<size_t> Read(std::span<char> buf) override {
    Result<size_t> n = reader_->Read(buf);
    if (!n.ok()) router_.Failed(node_, n.status());
    return n;
  }

 private:
  Router& router_;
  const NodeClient node_;  // before reader_: destroyed after it
  const std::unique_ptr<ObjectReader> reader_;
};

class Writer final : public ObjectWriter {
 public:
  Writer(Router& router, std::string bucket, std::string key, WriterOpener open)
      : router_(router),
        bucket_(std::move(bucket)),
        key_(std::move(key)),
        open_(std::move(open)) {}

  Status Append(std::string_view data) override {
    if (!failed_.ok()) return failed_;
    if (data.empty()) return Status::OK();
    if (writer_ == nullptr) return Start(data);
    Status st = writer_->Append(data);
    if (!st.ok()) router_.Failed(node_, st);
    return st;
  }

  Result<ObjectInfo> Commit() override {
    if (!failed_.ok()) return failed_;
    if (writer_ == nullptr) RETURN_IF_ERROR(Start({}));
    Result<ObjectInfo> info = writer_->Commit();
    if (!info.ok()) router_.Failed(node_, info.status());
    return info;
  }

 private:
  // Opens the upload at the partition's head and appends its first bytes there, as one step
  // that may be sent again elsewhere.
  Status Start(std::string_view first) {
    failed_ = router_.OnHead(bucket_, key_, [&](const NodeClient& head) -> Status {
      ASSIGN_OR_RETURN(std::unique_ptr<ObjectWriter> writer, open_(*head.client));
      if (!first.empty()) RETURN_IF_ERROR(writer->Append(first));
      node_ = head;
      writer_ = std::move(writer);
      return Status::OK();
    });
    return failed_;
  }

  Router& router_;
  const std::string bucket_;
  const std::string key_;
  const WriterOpener open_;
  Status failed_;    // why the upload could not be opened
  NodeClient node_;  // before writer_: destroyed after it
  std::unique_ptr<ObjectWriter> writer_;
};

}  // namespace

std::unique_ptr<ObjectReader> RoutedReader(Router& router, NodeClient node,
                                           std::unique_ptr<ObjectReader> reader) {
  return std::make_unique<HeldReader>(router, std::move(node), std::move(reader));
}

std::unique_ptr<ObjectWriter> RoutedWriter(Router& router, std::string bucket, std::string key,
                                           WriterOpener open) {
  return std::make_unique<Writer>(router, std::move(bucket), std::move(key), std::move(open));
}

}  // namespace granary::gateway
