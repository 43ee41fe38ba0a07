// The native protocol's methods, one function each, over an ObjectApi: they parse the request
// message, call the API and answer. RpcService routes requests here by method number.
// Thread-safe: the functions keep no state; each call belongs to its connection's thread.
#pragma once

#include "granary/object_api.h"
#include "rpc/server.h"

namespace granary::rpc {
class SharedBuffers;
}

namespace granary::node::rpc_handlers {

// Answers one request. An error return closes the connection (the response could not be
// completed); the API's own errors are answered, not returned. `shared` (may be null: then
// SHARE_BUFFER and shared ranges are answered kNotSupported) holds the server's shared buffers.
Status Dispatch(ObjectApi& api, rpc::SharedBuffers* shared, rpc::ServerCall& call);

// Bucket, metadata and listing methods (rpc_handlers_meta.cc).
Status CreateBucket(ObjectApi& api, rpc::ServerCall& call);
Status DeleteBucket(ObjectApi& api, rpc::ServerCall& call);
Status HeadBucket(ObjectApi& api, rpc::ServerCall& call);
Status ListBuckets(ObjectApi& api, rpc::ServerCall& call);
Status Head(ObjectApi& api, rpc::ServerCall& call);
Status Delete(ObjectApi& api, rpc::ServerCall& call);
Status Copy(ObjectApi& api, rpc::ServerCall& call);
Status List(ObjectApi& api, rpc::ServerCall& call);
Status CreateMultipartUpload(ObjectApi& api, rpc::ServerCall& call);
Status CompleteMultipartUpload(ObjectApi& api, rpc::ServerCall& call);
Status AbortMultipartUpload(ObjectApi& api, rpc::ServerCall& call);
Status ListParts(ObjectApi& api, rpc::ServerCall& call);
Status ListMultipartUploads(ObjectApi& api, rpc::ServerCall& call);

// Methods that move object bytes (rpc_handlers_data.cc).
Status Put(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call);
Status UploadPart(ObjectApi& api, rpc::ServerCall& call);
Status Get(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call);
Status ShareBuffer(rpc::SharedBuffers* shared, rpc::ServerCall& call);
Status PutMany(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call);
Status GetMany(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call);
Status DeleteMany(ObjectApi& api, rpc::ServerCall& call);

// Parses the request body into `message`; false (after answering kInvalidArgument) if it does
// not parse, in which case the handler returns `*status`.
bool ParseRequest(rpc::ServerCall& call, google::protobuf::MessageLite* message, Status* status);

// The largest PUT_MANY payload the server reads into memory at once.
inline constexpr uint64_t kMaxBatchPayloadBytes = 256ull << 20;

}  // namespace granary::node::rpc_handlers
