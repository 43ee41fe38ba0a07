#include "node/rpc_service.h"

#include "node/kv_service.h"
#include "node/rpc_handlers.h"
#include "proto/object.pb.h"
#include "common/logging.h"
#include "rpc/server.h"
#include "rpc/shared_buffers.h"

namespace granary::node {

namespace rpc_handlers {

bool ParseRequest(rpc::ServerCall& call, google::protobuf::MessageLite* message, Status* status) {
  if (message->ParseFromArray(call.body().data(), static_cast<int>(call.body().size()))) {
    return true;
  }
  *status = call.Respond(Status::InvalidArgument(
      "request body of method " + std::to_string(call.method()) + " (" +
      proto::ObjectMethod_Name(static_cast<proto::ObjectMethod>(call.method())) +
      ") does not parse"));
  return false;
}

Status Dispatch(ObjectApi& api, rpc::SharedBuffers* shared, rpc::ServerCall& call) {
  switch (call.method()) {
    case proto::CREATE_BUCKET:
      return CreateBucket(api, call);
    case proto::DELETE_BUCKET:
      return DeleteBucket(api, call);
    case proto::HEAD_BUCKET:
      return HeadBucket(api, call);
    case proto::LIST_BUCKETS:
      return ListBuckets(api, call);
    case proto::PUT:
      return Put(api, shared, call);
    case proto::GET:
      return Get(api, shared, call);
    case proto::HEAD:
      return Head(api, call);
    case proto::DELETE:
      return Delete(api, call);
    case proto::COPY:
      return Copy(api, call);
    case proto::LIST:
      return List(api, call);
    case proto::PUT_MANY:
      return PutMany(api, shared, call);
    case proto::GET_MANY:
      return GetMany(api, shared, call);
    case proto::DELETE_MANY:
      return DeleteMany(api, call);
    case proto::CREATE_MULTIPART_UPLOAD:
      return CreateMultipartUpload(api, call);
    case proto::UPLOAD_PART:
      return UploadPart(api, call);
    case proto::COMPLETE_MULTIPART_UPLOAD:
      return CompleteMultipartUpload(api, call);
    case proto::ABORT_MULTIPART_UPLOAD:
      return AbortMultipartUpload(api, call);
    case proto::LIST_PARTS:
      return ListParts(api, call);
    case proto::LIST_MULTIPART_UPLOADS:
      return ListMultipartUploads(api, call);
    case proto::SHARE_BUFFER:
      return ShareBuffer(shared, call);
    default:
      return call.Respond(Status::NotSupported("method " + std::to_string(call.method()) +
                                               " is not supported by this server"));
  }
}

}  // namespace rpc_handlers

RpcService::RpcService(std::unique_ptr<rpc::SharedBuffers> shared,
                       std::unique_ptr<rpc::Server> server)
    : shared_(std::move(shared)), server_(std::move(server)) {}
RpcService::~RpcService() { Stop(); }

Result<std::unique_ptr<RpcService>> RpcService::Start(ObjectApi& api, SecretLookup secrets,
                                                      RpcServiceOptions options,
                                                      KvService* kv) {
  rpc::ServerOptions server_options;
  server_options.listen = std::move(options.listen);
  server_options.max_connections = options.max_connections;
  server_options.secrets = std::move(secrets);
  std::unique_ptr<rpc::SharedBuffers> shared;
  if (options.shared_buffers) {
    Result<std::unique_ptr<rpc::SharedBuffers>> opened = rpc::SharedBuffers::Open();
    if (opened.ok()) {
      shared = std::move(*opened);
    } else {
      GLOG_WARN("rpc: no shared buffers for clients on this host: {}",
                opened.status().ToString());
    }
  }
  ObjectApi* target = &api;
  rpc::SharedBuffers* buffers = shared.get();
  ASSIGN_OR_RETURN(std::unique_ptr<rpc::Server> server,
                   rpc::Server::Start(std::move(server_options),
                                      [target, kv, buffers](rpc::ServerCall& call) {
                                        if (kv != nullptr && kv->Handles(call.method())) {
                                          return kv->Dispatch(call);
                                        }
                                        return rpc_handlers::Dispatch(*target, buffers, call);
                                      }));
  return std::unique_ptr<RpcService>(new RpcService(std::move(shared), std::move(server)));
}

uint16_t RpcService::port() const { return server_->port(); }
size_t RpcService::shared_buffers() const { return shared_ ? shared_->size() : 0; }
void RpcService::Stop() { server_->Stop(); }

}  // namespace granary::node
