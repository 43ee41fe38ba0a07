// granary::Client: Connect, the shared call path, and the calls that move no object bytes.
#include "granary/client.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "client/client_impl.h"
#include "common/names.h"
#include "rpc/object_convert.h"

namespace granary {

using rpc::Lease;

Client::Impl::Impl(std::string address, Credentials credentials, ClientOptions options)
    : options_(options),
      pool_(std::move(address), credentials.access_key, credentials.secret_key,
            options.max_connections),
      workers_(std::max(1, options.parallel_chunks - 1)) {}

bool Client::Impl::ShouldRetry(const Status& status, int attempt) const {
  if (status.code() != Code::kUnavailable || attempt >= options_.retries) return false;
  // 5, 10, 20 ... ms, at most 200: long enough for a restarting server to come back, short
  // enough that a dead one is reported soon.
  auto backoff = std::chrono::milliseconds(std::min(200, 5 << std::min(attempt, 6)));
  std::this_thread::sleep_for(backoff);
  return true;
}

Result<Lease> Client::Impl::Acquire() {
  rpc::Deadline deadline = NewDeadline();
  for (int attempt = 0;; ++attempt) {
    Result<Lease> lease = pool_.Acquire(deadline);
    if (lease.ok() || !ShouldRetry(lease.status(), attempt)) return lease;
    if (std::chrono::steady_clock::now() >= deadline) return lease;
  }
}

Status Client::Impl::Call(proto::ObjectMethod method, const google::protobuf::MessageLite& request,
                          google::protobuf::MessageLite* response, bool idempotent) {
  rpc::Deadline deadline = NewDeadline();
  for (int attempt = 0;; ++attempt) {
    Result<Lease> lease = pool_.Acquire(deadline);
    if (!lease.ok()) {
      if (ShouldRetry(lease.status(), attempt)) continue;
      return lease.status();
    }
    rpc::ClientConnection& conn = *lease->get();
    rpc::Response resp;
    Status st = conn.Send(method, request, {}, deadline);
    if (st.ok()) st = conn.ReadResponse(&resp, deadline);
    if (!st.ok()) {
      // Not a transport failure (e.g. a request over the size limits): nothing to retry.
      if (!conn.broken()) return st;
      if (idempotent && std::chrono::steady_clock::now() < deadline && ShouldRetry(st, attempt)) {
        continue;
      }
      return st;
    }
    if (resp.payload_length != 0) RETURN_IF_ERROR(conn.SkipPayload(resp.payload_length, deadline));
    lease->Reset();
    if (!resp.status.ok()) return resp.status;
    return response ? client::ParseResponse(resp, response) : Status::OK();
  }
}

namespace client {

Status ParseResponse(const rpc::Response& response, google::protobuf::MessageLite* message) {
  if (!message->ParseFromString(response.body)) {
    return Status::Internal("the server's " + message->GetTypeName() + " does not parse");
  }
  return Status::OK();
}

}  // namespace client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(std::string_view address,
                                                const Credentials& credentials,
                                                const ClientOptions& options) {
  if (options.max_connections < 1) {
    return Status::InvalidArgument("ClientOptions::max_connections must be at least 1");
  }
  if (options.parallel_chunks < 1) {
    return Status::InvalidArgument("ClientOptions::parallel_chunks must be at least 1");
  }
  if (options.chunk_bytes < 4096 || options.chunk_bytes > rpc::FrameLimits().max_payload_bytes) {
    return Status::InvalidArgument("ClientOptions::chunk_bytes must be from 4 KiB to 5 GiB");
  }
  if (options.retries < 0 || options.timeout_ms < 0) {
    return Status::InvalidArgument("ClientOptions::retries and timeout_ms must not be negative");
  }
  RETURN_IF_ERROR(rpc::ParseHostPort(address).status());
  auto impl = std::make_unique<Impl>(std::string(address), credentials, options);
  // One connection now: proves the server is there and takes the credentials.
  ASSIGN_OR_RETURN(Lease lease, impl->Acquire());
  lease.Reset();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Status Client::CreateBucket(std::string_view bucket, const BucketOptions& options) {
  RETURN_IF_ERROR(ValidateBucketReplicas(options.replicas));
  proto::BucketRequest req;
  req.set_bucket(std::string(bucket));
  req.set_replicas(static_cast<uint32_t>(options.replicas));
  return impl_->Call(proto::CREATE_BUCKET, req, nullptr, false);
}

Status Client::DeleteBucket(std::string_view bucket) {
  proto::BucketRequest req;
  req.set_bucket(std::string(bucket));
  return impl_->Call(proto::DELETE_BUCKET, req, nullptr, false);
}

Result<BucketInfo> Client::HeadBucket(std::string_view bucket) {
  proto::BucketRequest req;
  req.set_bucket(std::string(bucket));
  proto::BucketInfo resp;
  RETURN_IF_ERROR(impl_->Call(proto::HEAD_BUCKET, req, &resp, true));
  return rpc::FromProto(resp);
}

Result<std::vector<BucketInfo>> Client::ListBuckets() {
  proto::BucketRequest req;  // empty
  proto::ListBucketsResponse resp;
  RETURN_IF_ERROR(impl_->Call(proto::LIST_BUCKETS, req, &resp, true));
  std::vector<BucketInfo> out;
  out.reserve(resp.buckets_size());
  for (const auto& b : resp.buckets()) out.push_back(rpc::FromProto(b));
  return out;
}

Result<std::unique_ptr<ObjectWriter>> Client::BeginPut(std::string_view bucket,
                                                       std::string_view key, PutOptions options) {
  proto::PutRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  rpc::ToProto(options, req.mutable_options());
  return client::StartWriter(*impl_, proto::PUT, req, options.expected_size);
}

Result<std::unique_ptr<ObjectReader>> Client::Open(std::string_view bucket, std::string_view key,
                                                   const GetOptions& options) {
  return client::OpenReader(*impl_, bucket, key, options);
}

Result<ObjectInfo> Client::Head(std::string_view bucket, std::string_view key,
                                const GetOptions& options) {
  proto::ObjectRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  rpc::ToProto(options, req.mutable_options());
  proto::ObjectInfo resp;
  RETURN_IF_ERROR(impl_->Call(proto::HEAD, req, &resp, true));
  return rpc::FromProto(resp);
}

Status Client::Delete(std::string_view bucket, std::string_view key) {
  proto::ObjectRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  return impl_->Call(proto::DELETE, req, nullptr, false);
}

Result<ObjectInfo> Client::Copy(std::string_view src_bucket, std::string_view src_key,
                                std::string_view dst_bucket, std::string_view dst_key,
                                const CopyOptions& options) {
  proto::CopyRequest req;
  req.set_src_bucket(std::string(src_bucket));
  req.set_src_key(std::string(src_key));
  req.set_dst_bucket(std::string(dst_bucket));
  req.set_dst_key(std::string(dst_key));
  if (!options.source_conditions.empty()) {
    rpc::ToProto(options.source_conditions, req.mutable_source_conditions());
  }
  req.set_replace_metadata(options.replace_metadata);
  rpc::ToProto(options.put, req.mutable_put());
  proto::ObjectInfo resp;
  RETURN_IF_ERROR(impl_->Call(proto::COPY, req, &resp, false));
  return rpc::FromProto(resp);
}

Result<ListResult> Client::List(std::string_view bucket, const ListOptions& options) {
  proto::ListRequest req;
  rpc::ToProto(bucket, options, &req);
  proto::ListResponse resp;
  RETURN_IF_ERROR(impl_->Call(proto::LIST, req, &resp, true));
  return rpc::FromProto(resp);
}

Result<std::string> Client::CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                                  PutOptions options) {
  proto::CreateMultipartUploadRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  rpc::ToProto(options, req.mutable_options());
  proto::CreateMultipartUploadResponse resp;
  RETURN_IF_ERROR(impl_->Call(proto::CREATE_MULTIPART_UPLOAD, req, &resp, false));
  return resp.upload_id();
}

Result<std::unique_ptr<ObjectWriter>> Client::UploadPart(std::string_view bucket,
                                                         std::string_view key,
                                                         std::string_view upload_id,
                                                         int part_number, std::string content_md5,
                                                         uint64_t expected_size) {
  proto::UploadPartRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  req.set_upload_id(std::string(upload_id));
  req.set_part_number(part_number);
  req.set_content_md5(std::move(content_md5));
  req.set_expected_size(expected_size);
  return client::StartWriter(*impl_, proto::UPLOAD_PART, req, expected_size);
}

Result<ObjectInfo> Client::CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                                   std::string_view upload_id,
                                                   std::span<const CompletedPart> parts,
                                                   const Conditions& conditions) {
  proto::CompleteMultipartUploadRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  req.set_upload_id(std::string(upload_id));
  for (const CompletedPart& p : parts) {
    proto::CompletedPart* q = req.add_parts();
    q->set_part_number(p.part_number);
    q->set_etag(p.etag);
  }
  if (!conditions.empty()) rpc::ToProto(conditions, req.mutable_conditions());
  proto::ObjectInfo resp;
  RETURN_IF_ERROR(impl_->Call(proto::COMPLETE_MULTIPART_UPLOAD, req, &resp, false));
  return rpc::FromProto(resp);
}

Status Client::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                    std::string_view upload_id) {
  proto::UploadRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  req.set_upload_id(std::string(upload_id));
  return impl_->Call(proto::ABORT_MULTIPART_UPLOAD, req, nullptr, false);
}

Result<ListPartsResult> Client::ListParts(std::string_view bucket, std::string_view key,
                                          std::string_view upload_id, int part_number_marker,
                                          int max_parts) {
  proto::ListPartsRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  req.set_upload_id(std::string(upload_id));
  req.set_part_number_marker(part_number_marker);
  req.set_max_parts(max_parts);
  proto::ListPartsResponse resp;
  RETURN_IF_ERROR(impl_->Call(proto::LIST_PARTS, req, &resp, true));
  return rpc::FromProto(resp);
}

Result<ListUploadsResult> Client::ListMultipartUploads(std::string_view bucket,
                                                       const ListUploadsOptions& options) {
  proto::ListMultipartUploadsRequest req;
  rpc::ToProto(bucket, options, &req);
  proto::ListMultipartUploadsResponse resp;
  RETURN_IF_ERROR(impl_->Call(proto::LIST_MULTIPART_UPLOADS, req, &resp, true));
  return rpc::FromProto(resp);
}

}  // namespace granary
