// The structs of include/granary/object_api.h to and from their messages in proto/object.proto,
// field for field. Shared by the service (server side) and the client.
// Thread-safe: pure functions.
#pragma once

#include "granary/object_api.h"
#include "proto/object.pb.h"

namespace granary::rpc {

void ToProto(const Conditions& in, proto::Conditions* out);
Conditions FromProto(const proto::Conditions& in);

void ToProto(const PutOptions& in, proto::PutOptions* out);
PutOptions FromProto(const proto::PutOptions& in);

void ToProto(const ObjectInfo& in, proto::ObjectInfo* out);
ObjectInfo FromProto(const proto::ObjectInfo& in);

void ToProto(const BucketInfo& in, proto::BucketInfo* out);
BucketInfo FromProto(const proto::BucketInfo& in);

void ToProto(const GetOptions& in, proto::GetOptions* out);
GetOptions FromProto(const proto::GetOptions& in);

void ToProto(std::string_view bucket, const ListOptions& in, proto::ListRequest* out);
ListOptions FromProto(const proto::ListRequest& in);

void ToProto(const ListResult& in, proto::ListResponse* out);
ListResult FromProto(const proto::ListResponse& in);

void ToProto(const ListPartsResult& in, proto::ListPartsResponse* out);
ListPartsResult FromProto(const proto::ListPartsResponse& in);

void ToProto(std::string_view bucket, const ListUploadsOptions& in,
             proto::ListMultipartUploadsRequest* out);
ListUploadsOptions FromProto(const proto::ListMultipartUploadsRequest& in);

void ToProto(const ListUploadsResult& in, proto::ListMultipartUploadsResponse* out);
ListUploadsResult FromProto(const proto::ListMultipartUploadsResponse& in);

void ToProto(const Status& in, proto::ItemStatus* out);
Status FromProto(const proto::ItemStatus& in);

}  // namespace granary::rpc
