// The native protocol's methods that carry no object bytes: buckets, HEAD, DELETE, COPY,
// listings and the multipart bookkeeping.
#include "node/rpc_handlers.h"

#include "common/names.h"
#include "proto/object.pb.h"
#include "rpc/object_convert.h"

namespace granary::node::rpc_handlers {
namespace {

// Answers `result`: its error, or its value converted to message M.
template <typename M, typename T>
Status Answer(rpc::ServerCall& call, const Result<T>& result) {
  if (!result.ok()) return call.Respond(result.status());
  M message;
  rpc::ToProto(*result, &message);
  return call.Respond(message);
}

Status AnswerEmpty(rpc::ServerCall& call, const Status& status) {
  if (!status.ok()) return call.Respond(status);
  return call.Respond(proto::BucketRequest());  // an empty message: OK
}

}  // namespace

Status CreateBucket(ObjectApi& api, rpc::ServerCall& call) {
  proto::BucketRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  Status valid = ValidateBucketReplicas(req.replicas());
  if (!valid.ok()) return AnswerEmpty(call, valid);
  BucketOptions options;
  options.replicas = static_cast<int>(req.replicas());
  return AnswerEmpty(call, api.CreateBucket(req.bucket(), options));
}

Status DeleteBucket(ObjectApi& api, rpc::ServerCall& call) {
  proto::BucketRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return AnswerEmpty(call, api.DeleteBucket(req.bucket()));
}

Status HeadBucket(ObjectApi& api, rpc::ServerCall& call) {
  proto::BucketRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return Answer<proto::BucketInfo>(call, api.HeadBucket(req.bucket()));
}

Status ListBuckets(ObjectApi& api, rpc::ServerCall& call) {
  Result<std::vector<BucketInfo>> buckets = api.ListBuckets();
  if (!buckets.ok()) return call.Respond(buckets.status());
  proto::ListBucketsResponse resp;
  for (const BucketInfo& b : *buckets) rpc::ToProto(b, resp.add_buckets());
  return call.Respond(resp);
}

Status Head(ObjectApi& api, rpc::ServerCall& call) {
  proto::ObjectRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return Answer<proto::ObjectInfo>(
      call, api.Head(req.bucket(), req.key(), rpc::FromProto(req.options())));
}

Status Delete(ObjectApi& api, rpc::ServerCall& call) {
  proto::ObjectRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return AnswerEmpty(call, api.Delete(req.bucket(), req.key()));
}

Status Copy(ObjectApi& api, rpc::ServerCall& call) {
  proto::CopyRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  CopyOptions options;
  options.source_conditions = rpc::FromProto(req.source_conditions());
  options.replace_metadata = req.replace_metadata();
  options.put = rpc::FromProto(req.put());
  return Answer<proto::ObjectInfo>(
      call, api.Copy(req.src_bucket(), req.src_key(), req.dst_bucket(), req.dst_key(), options));
}

Status List(ObjectApi& api, rpc::ServerCall& call) {
  proto::ListRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return Answer<proto::ListResponse>(call, api.List(req.bucket(), rpc::FromProto(req)));
}

Status CreateMultipartUpload(ObjectApi& api, rpc::ServerCall& call) {
  proto::CreateMultipartUploadRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  Result<std::string> id =
      api.CreateMultipartUpload(req.bucket(), req.key(), rpc::FromProto(req.options()));
  if (!id.ok()) return call.Respond(id.status());
  proto::CreateMultipartUploadResponse resp;
  resp.set_upload_id(*id);
  return call.Respond(resp);
}

Status CompleteMultipartUpload(ObjectApi& api, rpc::ServerCall& call) {
  proto::CompleteMultipartUploadRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  std::vector<CompletedPart> parts;
  parts.reserve(req.parts_size());
  for (const auto& p : req.parts()) parts.push_back(CompletedPart{p.part_number(), p.etag()});
  return Answer<proto::ObjectInfo>(
      call, api.CompleteMultipartUpload(req.bucket(), req.key(), req.upload_id(), parts,
                                        rpc::FromProto(req.conditions())));
}

Status AbortMultipartUpload(ObjectApi& api, rpc::ServerCall& call) {
  proto::UploadRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return AnswerEmpty(call, api.AbortMultipartUpload(req.bucket(), req.key(), req.upload_id()));
}

Status ListParts(ObjectApi& api, rpc::ServerCall& call) {
  proto::ListPartsRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return Answer<proto::ListPartsResponse>(
      call, api.ListParts(req.bucket(), req.key(), req.upload_id(), req.part_number_marker(),
                          req.max_parts()));
}

Status ListMultipartUploads(ObjectApi& api, rpc::ServerCall& call) {
  proto::ListMultipartUploadsRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  return Answer<proto::ListMultipartUploadsResponse>(
      call, api.ListMultipartUploads(req.bucket(), rpc::FromProto(req)));
}

}  // namespace granary::node::rpc_handlers
