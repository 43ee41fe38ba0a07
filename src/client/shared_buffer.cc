// Client::AllocateShared and the client's side of shared buffers (rpc/shared_buffers.h has the
// server's): the buffer's anchor connection, its mapping, and Put / GetInto through it.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "client/client_impl.h"
#include "rpc/fd_door.h"
#include "rpc/object_convert.h"

namespace granary {

// The connection that asked for the buffer: the server keeps the buffer while it is open.
struct SharedBuffer::State {
  Client::Impl* owner = nullptr;
  std::unique_ptr<rpc::ClientConnection> anchor;
};

SharedBuffer::SharedBuffer(std::unique_ptr<State> state, char* data, size_t size)
    : state_(std::move(state)), data_(data), size_(size) {}

SharedBuffer::~SharedBuffer() {
  state_->owner->RemoveShared(data_);
  ::munmap(data_, size_);
  state_->anchor.reset();  // the server drops its side
}

Status SharedBuffer::Populate() {
  if (::madvise(data_, size_, MADV_POPULATE_WRITE) == 0) return Status::OK();
  return Status::FromErrno(errno, "populating a shared buffer (Linux 5.14 or later)");
}

void Client::Impl::AddShared(const char* base, size_t size, uint64_t id,
                             rpc::ClientConnection* anchor) {
  MutexLock lock(&shared_mu_);
  shared_[base] = Shared{size, id, anchor};
}

bool Client::Impl::ForgetIfOrphaned(uint64_t id) {
  MutexLock lock(&shared_mu_);
  for (auto it = shared_.begin(); it != shared_.end(); ++it) {
    if (it->second.id != id) continue;
    if (it->second.anchor->Reusable()) return false;
    shared_.erase(it);
    return true;
  }
  return true;  // forgotten already
}

bool Client::Impl::ForgetOrphans(const Status& status, std::span<const uint64_t> ids) {
  if (status.code() != Code::kInvalidArgument && status.code() != Code::kNotSupported) {
    return false;
  }
  bool forgot = false;
  for (uint64_t id : ids) forgot = ForgetIfOrphaned(id) || forgot;
  return forgot;
}

void Client::Impl::RemoveShared(const char* base) {
  MutexLock lock(&shared_mu_);
  shared_.erase(base);
}

std::optional<proto::SharedRange> Client::Impl::SharedRangeOf(const char* p, size_t n) const {
  if (n == 0) return std::nullopt;
  ReaderLock lock(&shared_mu_);
  auto it = shared_.lower_bound(p);  // the buffer mapped at or below p
  if (it == shared_.end()) return std::nullopt;
  // As addresses: p may lie in no buffer at all.
  const uintptr_t offset = reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(it->first);
  if (offset >= it->second.size || n > it->second.size - offset) return std::nullopt;
  proto::SharedRange range;
  range.set_buffer(it->second.id);
  range.set_offset(offset);
  range.set_length(n);
  return range;
}

Result<std::unique_ptr<SharedBuffer>> Client::AllocateShared(uint64_t bytes) {
  rpc::Deadline deadline = impl_->NewDeadline();
  auto state = std::make_unique<SharedBuffer::State>();
  state->owner = impl_.get();
  ASSIGN_OR_RETURN(state->anchor, impl_->pool().ConnectDetached(deadline));
  proto::ShareBufferRequest req;
  req.set_bytes(bytes);
  RETURN_IF_ERROR(state->anchor->Send(proto::SHARE_BUFFER, req, {}, deadline));
  rpc::Response r;
  RETURN_IF_ERROR(state->anchor->ReadResponse(&r, deadline));
  if (!r.status.ok()) return r.status;
  proto::ShareBufferResponse resp;
  RETURN_IF_ERROR(client::ParseResponse(r, &resp));
  uint64_t size = 0;
  Result<int> fd = rpc::FdDoor::Receive(resp.door(), resp.token(), &size);
  if (!fd.ok()) {
    return fd.status().WithContext("a shared buffer needs the server on this host");
  }
  void* base = size == bytes ? ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0)
                             : MAP_FAILED;
  const int err = errno;
  ::close(*fd);
  if (size != bytes) {
    return Status::Internal("the server shared " + std::to_string(size) + " bytes, not " +
                            std::to_string(bytes));
  }
  if (base == MAP_FAILED) return Status::FromErrno(err, "mapping a shared buffer");
  char* data = static_cast<char*>(base);
  impl_->AddShared(data, size, resp.buffer(), state->anchor.get());
  return std::unique_ptr<SharedBuffer>(new SharedBuffer(std::move(state), data, size));
}

Result<ObjectInfo> Client::PutBytes(std::string_view bucket, std::string_view key,
                                    std::string_view data, PutOptions options) {
  if (auto range = impl_->SharedRangeOf(data.data(), data.size())) {
    Result<ObjectInfo> put = client::PutShared(*impl_, bucket, key, *range, options);
    // A server that restarted answers that it has no such buffer (or none at all): nothing was
    // stored.
    const uint64_t id = range->buffer();
    if (put.ok() || !impl_->ForgetOrphans(put.status(), std::span(&id, 1))) return put;
  }
  return ObjectApi::PutBytes(bucket, key, data, std::move(options));
}

Result<size_t> Client::GetBytesInto(std::string_view bucket, std::string_view key,
                                    std::span<char> buf, const GetOptions& options) {
  if (auto range = impl_->SharedRangeOf(buf.data(), buf.size())) {
    Result<size_t> got = client::GetShared(*impl_, bucket, key, buf, *range, options);
    const uint64_t id = range->buffer();
    if (got.ok() || !impl_->ForgetOrphans(got.status(), std::span(&id, 1))) return got;
  }
  return ObjectApi::GetBytesInto(bucket, key, buf, options);
}

namespace client {

Result<ObjectInfo> PutShared(Client::Impl& impl, std::string_view bucket, std::string_view key,
                             const proto::SharedRange& range, PutOptions options) {
  options.expected_size = range.length();
  proto::PutRequest req;
  req.set_bucket(std::string(bucket));
  req.set_key(std::string(key));
  rpc::ToProto(options, req.mutable_options());
  *req.mutable_from() = range;
  proto::PutResponse resp;
  RETURN_IF_ERROR(impl.Call(proto::PUT, req, &resp, /*idempotent=*/false));
  return rpc::FromProto(resp.info());
}

}  // namespace client
}  // namespace granary
