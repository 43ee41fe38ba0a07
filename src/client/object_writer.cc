// The client's ObjectWriter: one PUT (or UPLOAD_PART) request per object whose payload is the
// caller's Append()s, sent as they come. With a known expected_size the payload has that
// length; otherwise it is chunked. Nothing is buffered on either side beyond a socket's worth.
#include "client/client_impl.h"
#include "rpc/object_convert.h"

namespace granary::client {

using rpc::Lease;
namespace {

class Writer final : public ObjectWriter {
 public:
  Writer(Client::Impl& impl, Lease lease, uint64_t expected_size)
      : impl_(impl), lease_(std::move(lease)), expected_size_(expected_size) {}

  // Destroyed without Commit(): the lease closes the connection mid-request, and the server
  // abandons the upload.
  ~Writer() override = default;

  Status Append(std::string_view data) override {
    if (!failed_.ok()) return failed_;
    if (!lease_) return Status::InvalidArgument("Append after Commit");
    if (data.empty()) return Status::OK();
    if (expected_size_ != UINT64_MAX && data.size() > expected_size_ - appended_) {
      return Fail(Status::InvalidArgument(
          "appending " + std::to_string(data.size()) + " bytes would exceed the expected size of " +
          std::to_string(expected_size_) + " (" + std::to_string(appended_) +
          " appended); the upload is abandoned"));
    }
    if (lease_->EarlyResponse()) {
      // The server refused the upload before its end (no such bucket, ...): stop sending.
      rpc::Response resp;
      Status st = lease_->ReadEarlyResponse(&resp, impl_.NewDeadline());
      if (st.ok()) {
        st = resp.status.ok() ? Status::Internal("server answered an upload before its end")
                              : resp.status;
      }
      return Fail(st);
    }
    Status st = lease_->SendPayload(data, impl_.NewDeadline());
    if (!st.ok()) return Fail(st);
    appended_ += data.size();
    return Status::OK();
  }

  Result<ObjectInfo> Commit() override {
    if (!failed_.ok()) return failed_;
    if (!lease_) return Status::InvalidArgument("Commit called twice");
    rpc::Deadline deadline = impl_.NewDeadline();
    if (expected_size_ == UINT64_MAX) {
      Status st = lease_->EndChunkedPayload(deadline);
      if (!st.ok()) return Fail(st);
    } else if (appended_ != expected_size_) {
      return Fail(Status::InvalidArgument("Commit after " + std::to_string(appended_) +
                                          " bytes of the " + std::to_string(expected_size_) +
                                          " expected; nothing was stored"));
    }
    rpc::Response resp;
    Status st = lease_->ReadResponse(&resp, deadline);
    if (!st.ok()) return Fail(st);
    if (resp.payload_length != 0) {
      st = lease_->SkipPayload(resp.payload_length, deadline);
      if (!st.ok()) return Fail(st);
    }
    lease_.Reset();
    if (!resp.status.ok()) return Fail(resp.status);
    proto::PutResponse put;
    st = ParseResponse(resp, &put);
    if (!st.ok()) return Fail(st);
    failed_ = Status::InvalidArgument("the upload was already committed");
    return rpc::FromProto(put.info());
  }

 private:
  Status Fail(Status status) {
    failed_ = status;
    lease_ = Lease();  // a connection mid-request is closed, not reused
    return status;
  }

  Client::Impl& impl_;
  Lease lease_;
  const uint64_t expected_size_;  // UINT64_MAX: unknown, chunked payload
  uint64_t appended_ = 0;
  Status failed_;
};

}  // namespace

Result<std::unique_ptr<ObjectWriter>> StartWriter(Client::Impl& impl, proto::ObjectMethod method,
                                                  const google::protobuf::MessageLite& request,
                                                  uint64_t expected_size) {
  bool chunked = expected_size == UINT64_MAX;
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(Lease lease, impl.Acquire());
    Status st =
        lease->SendStart(method, request, chunked ? 0 : expected_size, chunked, impl.NewDeadline());
    if (st.ok()) {
      return std::unique_ptr<ObjectWriter>(new Writer(impl, std::move(lease), expected_size));
    }
    // The server commits nothing before the payload is complete, so a header that failed to go
    // out may be sent again on a new connection (not so for an empty object: its header is all).
    if (!lease->broken() || expected_size == 0 || !impl.ShouldRetry(st, attempt)) return st;
  }
}

}  // namespace granary::client
