#include "node/server.h"

#include "common/logging.h"
#include "io/file_system.h"
#include "node/kv_service.h"
#include "node/rpc_service.h"
#include "replication/local_blob_store.h"
#include "s3/gateway.h"

namespace granary::node {

struct Server::Services {
  std::unique_ptr<KvService> kv;
  std::unique_ptr<RpcService> rpc;
  std::unique_ptr<s3::Gateway> s3;
};

namespace {

// DATA/STORE names the store of the server's disks ("<store id>\n"), so that a start with other
// disks, or none (DATA/disk0, fresh), is refused instead of serving a namespace whose data is
// elsewhere. Written at the first start, before the namespace exists; a data directory from
// before this file adopts the disks it is started with, unless they are fresh and a namespace
// exists.
Result<std::unique_ptr<replication::BlobStore>> OpenDisks(io::FileSystem& fs,
                                                          const std::string& data_dir,
                                                          replication::LocalBlobStoreOptions o) {
  const std::string store_file = io::JoinPath(data_dir, "STORE");
  Result<std::string> recorded = io::ReadFileToString(fs, store_file);
  if (recorded.ok()) {
    o.store_id = recorded->substr(0, recorded->find('\n'));
  } else if (!recorded.status().IsNotFound()) {
    return recorded.status();
  } else {
    ASSIGN_OR_RETURN(std::string on_disks, replication::StoreIdOfDisks(o.disks));
    ASSIGN_OR_RETURN(bool has_namespace, fs.Exists(io::JoinPath(data_dir, "meta")));
    if (on_disks.empty() && has_namespace) {
      return Status::InvalidArgument("the data directory " + data_dir +
                                     " holds a namespace, but the disks it is started with hold "
                                     "no data: start it with the same --disks as before");
    }
  }
  const bool adopt = o.store_id.empty();
  std::string id;
  ASSIGN_OR_RETURN(std::unique_ptr<replication::BlobStore> blobs,
                   replication::OpenLocalBlobStore(std::move(o), &id));
  if (adopt) RETURN_IF_ERROR(io::WriteFileAtomic(fs, store_file, id + "\n"));
  return blobs;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("--data DIR is required");
  auto fs = io::DefaultFileSystem();
  RETURN_IF_ERROR(fs->CreateDir(options.data_dir));
  std::unique_ptr<Server> server(new Server());
  ASSIGN_OR_RETURN(server->credentials_, LoadRootCredentials(options.data_dir));

  replication::LocalBlobStoreOptions blob_options;
  blob_options.disks = options.disks;
  if (blob_options.disks.empty()) blob_options.disks.push_back(io::JoinPath(options.data_dir, "disk0"));
  ASSIGN_OR_RETURN(std::unique_ptr<replication::BlobStore> blobs,
                   OpenDisks(*fs, options.data_dir, std::move(blob_options)));

  meta::ObjectStoreOptions store_options;
  store_options.dir = io::JoinPath(options.data_dir, "meta");
  store_options.blobs = std::move(blobs);
  store_options.inline_max_bytes = options.inline_max_bytes;
  store_options.chunk_bytes = options.chunk_bytes;
  ASSIGN_OR_RETURN(server->store_, meta::ObjectStore::Open(std::move(store_options)));

  SecretLookup secrets = RootSecretLookup(server->credentials_);
  server->services_ = std::make_unique<Services>();
  KvServiceOptions kv_options;
  kv_options.dir = io::JoinPath(options.data_dir, "kv");
  ASSIGN_OR_RETURN(server->services_->kv, KvService::Start(std::move(kv_options)));
  RpcServiceOptions rpc_options;
  rpc_options.listen = options.native_listen;
  auto rpc = RpcService::Start(*server->store_, secrets, rpc_options, server->services_->kv.get());
  if (!rpc.ok()) return rpc.status().WithContext("native protocol on " + options.native_listen);
  server->services_->rpc = std::move(*rpc);
  s3::GatewayOptions s3_options;
  s3_options.listen = options.s3_listen;
  s3_options.threads = options.s3_threads;
  s3_options.worker_threads = options.s3_worker_threads;
  auto gateway = s3::Gateway::Start(*server->store_, secrets, s3_options);
  if (!gateway.ok()) return gateway.status().WithContext("S3 on " + options.s3_listen);
  server->services_->s3 = std::move(*gateway);
  return server;
}

Server::~Server() { Stop().IgnoreError(); }

uint16_t Server::s3_port() const { return services_->s3->port(); }
uint16_t Server::native_port() const { return services_->rpc->port(); }

Status Server::Stop() {
  if (services_) {
    if (services_->s3) services_->s3->Stop();
    if (services_->rpc) services_->rpc->Stop();
    Status kv = services_->kv ? services_->kv->Stop() : Status::OK();
    services_.reset();
    if (!kv.ok()) GLOG_WARN("closing the KV pools: {}", kv.ToString());
  }
  if (store_) {
    Status st = store_->Close();
    store_.reset();
    return st;
  }
  return Status::OK();
}

}  // namespace granary::node
