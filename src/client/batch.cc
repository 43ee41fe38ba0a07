// Batches of small objects: PutMany, GetMany, GetManyInto and DeleteMany, each one request per
// batch (split only where a batch would exceed a request's size limits). Object bytes go out
// gathered from the caller's memory and come back straight into the result strings or buffers.
#include <algorithm>
#include <functional>
#include <optional>

#include "client/client_impl.h"
#include "rpc/object_convert.h"

namespace granary {
namespace {

using rpc::Lease;

size_t OptionsBytes(const PutOptions& o) {
  size_t n = o.content_type.size() + o.content_md5.size() + o.conditions.if_match.size() +
             o.conditions.if_none_match.size() + 64;
  for (const auto& [k, v] : o.user_metadata) n += k.size() + v.size() + 8;
  for (const auto& [k, v] : o.headers) n += k.size() + v.size() + 8;
  return n;
}

}  // namespace

namespace client {

Status CheckCount(int got, size_t want, std::string_view what) {
  if (static_cast<size_t>(got) == want) return Status::OK();
  return Status::Internal(std::string(what) + " response has " + std::to_string(got) +
                          " items for " + std::to_string(want) + " requested");
}

std::vector<size_t> SplitBatches(size_t n, const std::function<size_t(size_t)>& header,
                                 const std::function<uint64_t(size_t)>& payload) {
  std::vector<size_t> ends;
  size_t h = 0;
  uint64_t p = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t hi = header(i);
    uint64_t pi = payload(i);
    if (i > 0 && (h + hi > kBatchHeaderBytes || p + pi > kBatchPayloadBytes) &&
        (ends.empty() || ends.back() != i)) {
      ends.push_back(i);
      h = 0;
      p = 0;
    }
    h += hi;
    p += pi;
  }
  if (n > 0) ends.push_back(n);
  return ends;
}

Status RoundTrip(Client::Impl& impl, proto::ObjectMethod method,
                 const google::protobuf::MessageLite& request,
                 std::span<const std::string_view> payload, bool idempotent,
                 const std::function<Status(rpc::ClientConnection&, const rpc::Response&,
                                            rpc::Deadline)>& on_response) {
  rpc::Deadline deadline = impl.NewDeadline();
  for (int attempt = 0;; ++attempt) {
    Result<Lease> lease = impl.pool().Acquire(deadline);
    if (!lease.ok()) {
      if (impl.ShouldRetry(lease.status(), attempt)) continue;
      return lease.status();
    }
    rpc::ClientConnection& conn = *lease->get();
    rpc::Response resp;
    Status st = conn.Send(method, request, payload, deadline);
    if (st.ok()) st = conn.ReadResponse(&resp, deadline);
    if (st.ok() && resp.status.ok()) st = on_response(conn, resp, deadline);
    if (!st.ok()) {
      if (conn.broken() && idempotent && std::chrono::steady_clock::now() < deadline &&
          impl.ShouldRetry(st, attempt)) {
        continue;
      }
      return st;
    }
    if (resp.payload_length != 0 && !resp.status.ok()) {
      RETURN_IF_ERROR(conn.SkipPayload(resp.payload_length, deadline));
    }
    return resp.status;
  }
}

}  // namespace client

using client::CheckCount;
using client::kBatchPayloadBytes;
using client::kItemOverheadBytes;
using client::RoundTrip;
using client::SplitBatches;

std::vector<Result<ObjectInfo>> Client::PutMany(std::string_view bucket,
                                                std::span<const PutItem> items) {
  std::vector<std::optional<Result<ObjectInfo>>> out(items.size());
  // Items too large for a batch go as single PUTs.
  std::vector<size_t> batched;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].data.size() > kBatchPayloadBytes) {
      out[i] = Put(bucket, items[i].key, items[i].data, items[i].options);
    } else {
      batched.push_back(i);
    }
  }
  std::vector<size_t> ends = SplitBatches(
      batched.size(),
      [&](size_t j) {
        const PutItem& it = items[batched[j]];
        return it.key.size() + OptionsBytes(it.options) + kItemOverheadBytes;
      },
      [&](size_t j) { return static_cast<uint64_t>(items[batched[j]].data.size()); });
  size_t begin = 0;
  for (size_t end : ends) {
    proto::PutManyResponse resp;
    std::vector<uint64_t> shared_ids;  // the shared buffers the request takes bytes from
    auto send = [&] {
      proto::PutManyRequest req;
      req.set_bucket(std::string(bucket));
      std::vector<std::string_view> payload;
      payload.reserve(end - begin);
      shared_ids.clear();
      for (size_t j = begin; j < end; ++j) {
        const PutItem& it = items[batched[j]];
        proto::PutManyRequest::Item* item = req.add_items();
        item->set_key(it.key);
        item->set_size(it.data.size());
        rpc::ToProto(it.options, item->mutable_options());
        // Bytes in a shared buffer stay there: the server takes them from it.
        std::optional<proto::SharedRange> shared;
        if (!it.data.empty()) shared = impl_->SharedRangeOf(it.data.data(), it.data.size());
        if (shared) {
          shared_ids.push_back(shared->buffer());
          *item->mutable_from() = *shared;
        } else if (!it.data.empty()) {
          payload.push_back(it.data);
        }
      }
      return RoundTrip(*impl_, proto::PUT_MANY, req, payload, false,
                       [&](rpc::ClientConnection&, const rpc::Response& r, rpc::Deadline) {
                         RETURN_IF_ERROR(client::ParseResponse(r, &resp));
                         return CheckCount(resp.items_size(), end - begin, "PUT_MANY");
                       });
    };
    Status st = send();
    // A server that restarted has lost the buffers (nothing was stored): the bytes go again.
    if (!st.ok() && impl_->ForgetOrphans(st, shared_ids)) st = send();
    for (size_t j = begin; j < end; ++j) {
      size_t i = batched[j];
      if (!st.ok()) {
        out[i] = st;
        continue;
      }
      const auto& item = resp.items(static_cast<int>(j - begin));
      Status item_status = rpc::FromProto(item.status());
      if (item_status.ok()) {
        out[i] = rpc::FromProto(item.info());
      } else {
        out[i] = item_status;
      }
    }
    begin = end;
  }
  std::vector<Result<ObjectInfo>> results;
  results.reserve(out.size());
  for (auto& r : out) results.push_back(std::move(*r));
  return results;
}

namespace {

// GET_MANY for keys[begin, end): `place(i, size)` says where key i's `size` bytes go and
// `done(i, status, size)` records key i's outcome. With `buffers`, the server refuses (with
// kInvalidArgument, sending no bytes) objects larger than their buffer. With `into` (one shared
// range per key, where `buffers` lie), the server writes the objects into them itself.
Status GetManyBatch(Client::Impl& impl, std::string_view bucket, std::span<const std::string> keys,
                    size_t begin, size_t end, std::span<const std::span<char>> buffers,
                    std::span<const proto::SharedRange> into,
                    const std::function<char*(size_t, uint64_t)>& place,
                    const std::function<void(size_t, Status, uint64_t)>& done) {
  proto::GetManyRequest req;
  req.set_bucket(std::string(bucket));
  for (size_t i = begin; i < end; ++i) {
    req.add_keys(keys[i]);
    if (!into.empty()) {
      *req.add_into() = into[i];
    } else if (!buffers.empty()) {
      req.add_max_sizes(buffers[i].size());
    }
  }
  return RoundTrip(
      impl, proto::GET_MANY, req, {}, true,
      [&](rpc::ClientConnection& conn, const rpc::Response& r, rpc::Deadline deadline) {
        proto::GetManyResponse resp;
        RETURN_IF_ERROR(client::ParseResponse(r, &resp));
        RETURN_IF_ERROR(CheckCount(resp.items_size(), end - begin, "GET_MANY"));
        uint64_t total = 0;
        for (const auto& item : resp.items()) {
          if (item.status().code() == 0 && into.empty()) total += item.size();
        }
        if (total != r.payload_length) {
          return Status::Internal("GET_MANY items add up to " + std::to_string(total) +
                                  " bytes but the payload has " + std::to_string(r.payload_length));
        }
        for (size_t i = begin; i < end; ++i) {
          const auto& item = resp.items(static_cast<int>(i - begin));
          Status item_status = rpc::FromProto(item.status());
          if (!item_status.ok()) {
            done(i, item_status, 0);
            continue;
          }
          if (!buffers.empty() && item.size() > buffers[i].size()) {
            return Status::Internal("GET_MANY sent an object larger than its buffer");
          }
          if (into.empty()) {
            char* dst = place(i, item.size());
            RETURN_IF_ERROR(conn.ReadPayload(dst, item.size(), deadline));
          }
          done(i, Status::OK(), item.size());
        }
        return Status::OK();
      });
}

std::vector<size_t> SplitKeys(std::span<const std::string> keys) {
  return SplitBatches(
      keys.size(), [&](size_t i) { return keys[i].size() + kItemOverheadBytes; },
      [](size_t) { return uint64_t{0}; });
}

}  // namespace

std::vector<Result<std::string>> Client::GetMany(std::string_view bucket,
                                                 std::span<const std::string> keys) {
  std::vector<std::optional<Result<std::string>>> out(keys.size());
  std::vector<std::string> data(keys.size());
  size_t begin = 0;
  for (size_t end : SplitKeys(keys)) {
    Status st = GetManyBatch(
        *impl_, bucket, keys, begin, end, {}, {},
        [&](size_t i, uint64_t size) {
          data[i].resize(size);
          return data[i].data();
        },
        [&](size_t i, Status s, uint64_t) {
          if (s.ok()) {
            out[i] = std::move(data[i]);
          } else {
            out[i] = std::move(s);
          }
        });
    if (!st.ok()) {
      for (size_t i = begin; i < end; ++i) out[i] = st;
    }
    begin = end;
  }
  std::vector<Result<std::string>> results;
  results.reserve(out.size());
  for (auto& r : out) results.push_back(std::move(*r));
  return results;
}

std::vector<Result<size_t>> Client::GetManyInto(std::string_view bucket,
                                                std::span<const std::string> keys,
                                                std::span<const std::span<char>> buffers) {
  std::vector<Result<size_t>> results;
  results.reserve(keys.size());
  if (buffers.size() != keys.size()) {
    Status st = Status::InvalidArgument(
        "GetManyInto needs one buffer per key: " + std::to_string(keys.size()) + " keys, " +
        std::to_string(buffers.size()) + " buffers");
    for (size_t i = 0; i < keys.size(); ++i) results.push_back(st);
    return results;
  }
  // When every buffer lies in a shared buffer, the server writes the objects into them.
  std::vector<proto::SharedRange> into;
  for (std::span<char> b : buffers) {
    std::optional<proto::SharedRange> range;
    if (!b.empty()) range = impl_->SharedRangeOf(b.data(), b.size());
    if (!range) {
      into.clear();
      break;
    }
    into.push_back(*range);
  }
  std::vector<std::optional<Result<size_t>>> out(keys.size());
  size_t begin = 0;
  for (size_t end : SplitKeys(keys)) {
    auto send = [&] {
      return GetManyBatch(
          *impl_, bucket, keys, begin, end, buffers, into,
          [&](size_t i, uint64_t) { return buffers[i].data(); },
          [&](size_t i, Status s, uint64_t size) {
            if (s.ok()) {
              out[i] = static_cast<size_t>(size);
            } else {
              out[i] = std::move(s);
            }
          });
    };
    Status st = send();
    if (!st.ok() && !into.empty()) {
      // A server that restarted has lost the buffers: the rest goes over the socket.
      std::vector<uint64_t> ids;
      for (size_t i = begin; i < end; ++i) ids.push_back(into[i].buffer());
      if (impl_->ForgetOrphans(st, ids)) {
        into.clear();
        st = send();
      }
    }
    if (!st.ok()) {
      for (size_t i = begin; i < end; ++i) out[i] = st;
    }
    begin = end;
  }
  for (auto& r : out) results.push_back(std::move(*r));
  return results;
}

std::vector<Status> Client::DeleteMany(std::string_view bucket, std::span<const std::string> keys) {
  std::vector<Status> out(keys.size());
  size_t begin = 0;
  for (size_t end : SplitKeys(keys)) {
    proto::DeleteManyRequest req;
    req.set_bucket(std::string(bucket));
    for (size_t i = begin; i < end; ++i) req.add_keys(keys[i]);
    proto::DeleteManyResponse resp;
    Status st = RoundTrip(*impl_, proto::DELETE_MANY, req, {}, false,
                          [&](rpc::ClientConnection&, const rpc::Response& r, rpc::Deadline) {
                            RETURN_IF_ERROR(client::ParseResponse(r, &resp));
                            return CheckCount(resp.items_size(), end - begin, "DELETE_MANY");
                          });
    for (size_t i = begin; i < end; ++i) {
      out[i] = st.ok() ? rpc::FromProto(resp.items(static_cast<int>(i - begin))) : st;
    }
    begin = end;
  }
  return out;
}

}  // namespace granary
