#include "rpc/object_convert.h"

#include "rpc/frame.h"

namespace granary::rpc {
namespace {

void CopyMap(const std::map<std::string, std::string>& in,
             google::protobuf::Map<std::string, std::string>* out) {
  out->clear();
  for (const auto& [k, v] : in) (*out)[k] = v;
}

std::map<std::string, std::string> CopyMap(
    const google::protobuf::Map<std::string, std::string>& in) {
  return std::map<std::string, std::string>(in.begin(), in.end());
}

}  // namespace

void ToProto(const Conditions& in, proto::Conditions* out) {
  out->set_if_match(in.if_match);
  out->set_if_none_match(in.if_none_match);
  out->set_if_modified_since_ns(in.if_modified_since_ns);
  out->set_if_unmodified_since_ns(in.if_unmodified_since_ns);
  out->set_if_version(in.if_version);
}

Conditions FromProto(const proto::Conditions& in) {
  Conditions out;
  out.if_match = in.if_match();
  out.if_none_match = in.if_none_match();
  out.if_modified_since_ns = in.if_modified_since_ns();
  out.if_unmodified_since_ns = in.if_unmodified_since_ns();
  out.if_version = in.if_version();
  return out;
}

void ToProto(const PutOptions& in, proto::PutOptions* out) {
  out->set_content_type(in.content_type);
  CopyMap(in.user_metadata, out->mutable_user_metadata());
  CopyMap(in.headers, out->mutable_headers());
  out->set_content_md5(in.content_md5);
  out->set_expected_size(in.expected_size);
  if (!in.conditions.empty()) ToProto(in.conditions, out->mutable_conditions());
}

PutOptions FromProto(const proto::PutOptions& in) {
  PutOptions out;
  out.content_type = in.content_type();
  out.user_metadata = CopyMap(in.user_metadata());
  out.headers = CopyMap(in.headers());
  out.content_md5 = in.content_md5();
  out.expected_size = in.expected_size();
  out.conditions = FromProto(in.conditions());
  return out;
}

void ToProto(const ObjectInfo& in, proto::ObjectInfo* out) {
  out->set_bucket(in.bucket);
  out->set_key(in.key);
  out->set_size(in.size);
  out->set_etag(in.etag);
  out->set_content_type(in.content_type);
  out->set_mtime_ns(in.mtime_ns);
  out->set_version(in.version);
  out->set_parts(in.parts);
  CopyMap(in.user_metadata, out->mutable_user_metadata());
  CopyMap(in.headers, out->mutable_headers());
}

ObjectInfo FromProto(const proto::ObjectInfo& in) {
  ObjectInfo out;
  out.bucket = in.bucket();
  out.key = in.key();
  out.size = in.size();
  out.etag = in.etag();
  out.content_type = in.content_type();
  out.mtime_ns = in.mtime_ns();
  out.version = in.version();
  out.parts = in.parts();
  out.user_metadata = CopyMap(in.user_metadata());
  out.headers = CopyMap(in.headers());
  return out;
}

void ToProto(const BucketInfo& in, proto::BucketInfo* out) {
  out->set_name(in.name);
  out->set_created_ns(in.created_ns);
  out->set_replicas(static_cast<uint32_t>(in.replicas));
}

BucketInfo FromProto(const proto::BucketInfo& in) {
  return BucketInfo{in.name(), in.created_ns(), static_cast<int>(in.replicas())};
}

void ToProto(const GetOptions& in, proto::GetOptions* out) {
  out->set_offset(in.offset);
  out->set_length(in.length);
  out->set_suffix_length(in.suffix_length);
  if (!in.conditions.empty()) ToProto(in.conditions, out->mutable_conditions());
}

GetOptions FromProto(const proto::GetOptions& in) {
  GetOptions out;
  out.offset = in.offset();
  out.length = in.length();
  out.suffix_length = in.suffix_length();
  out.conditions = FromProto(in.conditions());
  return out;
}

void ToProto(std::string_view bucket, const ListOptions& in, proto::ListRequest* out) {
  out->set_bucket(std::string(bucket));
  out->set_prefix(in.prefix);
  out->set_delimiter(in.delimiter);
  out->set_start_after(in.start_after);
  out->set_continuation_token(in.continuation_token);
  out->set_max_keys(in.max_keys);
}

ListOptions FromProto(const proto::ListRequest& in) {
  ListOptions out;
  out.prefix = in.prefix();
  out.delimiter = in.delimiter();
  out.start_after = in.start_after();
  out.continuation_token = in.continuation_token();
  out.max_keys = in.max_keys();
  return out;
}

void ToProto(const ListResult& in, proto::ListResponse* out) {
  for (const ObjectInfo& o : in.objects) ToProto(o, out->add_objects());
  for (const std::string& p : in.common_prefixes) out->add_common_prefixes(p);
  out->set_truncated(in.truncated);
  out->set_next_continuation_token(in.next_continuation_token);
  out->set_next_marker(in.next_marker);
}

ListResult FromProto(const proto::ListResponse& in) {
  ListResult out;
  out.objects.reserve(in.objects_size());
  for (const auto& o : in.objects()) out.objects.push_back(FromProto(o));
  out.common_prefixes.assign(in.common_prefixes().begin(), in.common_prefixes().end());
  out.truncated = in.truncated();
  out.next_continuation_token = in.next_continuation_token();
  out.next_marker = in.next_marker();
  return out;
}

void ToProto(const ListPartsResult& in, proto::ListPartsResponse* out) {
  for (const PartInfo& p : in.parts) {
    proto::PartInfo* q = out->add_parts();
    q->set_part_number(p.part_number);
    q->set_size(p.size);
    q->set_etag(p.etag);
    q->set_mtime_ns(p.mtime_ns);
  }
  out->set_truncated(in.truncated);
  out->set_next_part_number_marker(in.next_part_number_marker);
}

ListPartsResult FromProto(const proto::ListPartsResponse& in) {
  ListPartsResult out;
  for (const auto& q : in.parts()) {
    out.parts.push_back(PartInfo{q.part_number(), q.size(), q.etag(), q.mtime_ns()});
  }
  out.truncated = in.truncated();
  out.next_part_number_marker = in.next_part_number_marker();
  return out;
}

void ToProto(std::string_view bucket, const ListUploadsOptions& in,
             proto::ListMultipartUploadsRequest* out) {
  out->set_bucket(std::string(bucket));
  out->set_prefix(in.prefix);
  out->set_delimiter(in.delimiter);
  out->set_key_marker(in.key_marker);
  out->set_upload_id_marker(in.upload_id_marker);
  out->set_max_uploads(in.max_uploads);
}

ListUploadsOptions FromProto(const proto::ListMultipartUploadsRequest& in) {
  ListUploadsOptions out;
  out.prefix = in.prefix();
  out.delimiter = in.delimiter();
  out.key_marker = in.key_marker();
  out.upload_id_marker = in.upload_id_marker();
  out.max_uploads = in.max_uploads();
  return out;
}

void ToProto(const ListUploadsResult& in, proto::ListMultipartUploadsResponse* out) {
  for (const UploadInfo& u : in.uploads) {
    proto::UploadInfo* q = out->add_uploads();
    q->set_key(u.key);
    q->set_upload_id(u.upload_id);
    q->set_initiated_ns(u.initiated_ns);
  }
  for (const std::string& p : in.common_prefixes) out->add_common_prefixes(p);
  out->set_truncated(in.truncated);
  out->set_next_key_marker(in.next_key_marker);
  out->set_next_upload_id_marker(in.next_upload_id_marker);
}

ListUploadsResult FromProto(const proto::ListMultipartUploadsResponse& in) {
  ListUploadsResult out;
  for (const auto& q : in.uploads()) {
    out.uploads.push_back(UploadInfo{q.key(), q.upload_id(), q.initiated_ns()});
  }
  out.common_prefixes.assign(in.common_prefixes().begin(), in.common_prefixes().end());
  out.truncated = in.truncated();
  out.next_key_marker = in.next_key_marker();
  out.next_upload_id_marker = in.next_upload_id_marker();
  return out;
}

void ToProto(const Status& in, proto::ItemStatus* out) {
  out->set_code(static_cast<uint32_t>(in.code()));
  if (!in.ok()) out->set_message(in.message());
}

Status FromProto(const proto::ItemStatus& in) { return StatusFromWire(in.code(), in.message()); }

}  // namespace granary::rpc
