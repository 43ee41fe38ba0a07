// The native protocol's methods that move object bytes. PUT and UPLOAD_PART stream the request
// payload into an ObjectWriter piece by piece; GET streams an ObjectReader to the socket; the
// batch methods move many small objects in one request each.
#include <algorithm>
#include <optional>

#include "node/rpc_handlers.h"
#include "proto/object.pb.h"
#include "rpc/object_convert.h"
#include "rpc/shared_buffers.h"

namespace granary::node::rpc_handlers {
namespace {

// Commits `writer` and answers with the object's info, or with the failure.
Status CommitAndRespond(rpc::ServerCall& call, ObjectWriter& writer) {
  Result<ObjectInfo> info = writer.Commit();
  if (!info.ok()) return call.Respond(info.status());
  proto::PutResponse resp;
  rpc::ToProto(*info, resp.mutable_info());
  return call.Respond(resp);
}

// Streams the request payload into `writer` and commits it. An API error is answered after the
// rest of the payload has been read away (by the server); a broken connection is returned.
Status StreamIntoWriter(rpc::ServerCall& call, ObjectWriter& writer) {
  std::span<char> buf = call.buffer();
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, call.ReadPayload(buf));
    if (n == 0) break;
    Status st = writer.Append(std::string_view(buf.data(), n));
    if (!st.ok()) return call.Respond(st);
  }
  return CommitAndRespond(call, writer);
}

// The size a writer should expect: the stated one, else `known`, the length of the bytes when
// it is known (`of` names them). kInvalidArgument if both are known and differ.
Result<uint64_t> ExpectedSize(uint64_t stated, std::optional<uint64_t> known,
                              std::string_view of) {
  if (!known) return stated;
  if (stated != UINT64_MAX && stated != *known) {
    return Status::InvalidArgument("expected_size " + std::to_string(stated) + " differs from " +
                                   std::string(of) + " " + std::to_string(*known) + " bytes");
  }
  return *known;
}

// The length of a request's payload, unless it is chunked.
std::optional<uint64_t> PayloadLength(const rpc::ServerCall& call) {
  if (call.payload_chunked()) return std::nullopt;
  return call.payload_length();
}

// The range `range` of the caller's shared buffers; kNotSupported when this server offers none.
Result<std::span<char>> SharedBytes(const rpc::SharedBuffers* shared, const rpc::ServerCall& call,
                                    const proto::SharedRange& range,
                                    std::shared_ptr<const void>* keep) {
  if (shared == nullptr) {
    return Status::NotSupported("this server offers no shared buffers; send the bytes instead");
  }
  return shared->Find(call.access_key(), range.buffer(), range.offset(), range.length(), keep);
}

// Fills `dst` from `reader`; kInternal if the reader ends first.
Result<size_t> ReadFull(ObjectReader& reader, std::span<char> dst) {
  size_t got = 0;
  while (got < dst.size()) {
    ASSIGN_OR_RETURN(size_t n, reader.Read(dst.subspan(got)));
    if (n == 0) {
      return Status::Internal("object reader ended " + std::to_string(dst.size() - got) +
                              " bytes before its stated length");
    }
    got += n;
  }
  return got;
}

// Appends `data` to `writer` in pieces of the size the socket path uses, and commits it.
Status WriteFromMemory(rpc::ServerCall& call, ObjectWriter& writer, std::span<const char> data) {
  const size_t piece = call.buffer().size();
  for (size_t pos = 0; pos < data.size(); pos += piece) {
    Status st = writer.Append(std::string_view(data.data() + pos,
                                               std::min(piece, data.size() - pos)));
    if (!st.ok()) return call.Respond(st);
  }
  return CommitAndRespond(call, writer);
}

}  // namespace

Status Put(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call) {
  proto::PutRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  PutOptions options = rpc::FromProto(req.options());
  // The bytes: the payload, or a range of the caller's shared buffer (with no payload).
  std::shared_ptr<const void> keep;
  std::optional<std::span<char>> from;
  if (req.has_from()) {
    if (call.payload_chunked() || call.payload_length() != 0) {
      return call.Respond(Status::InvalidArgument("a PUT from a shared buffer has no payload"));
    }
    Result<std::span<char>> data = SharedBytes(shared, call, req.from(), &keep);
    if (!data.ok()) return call.Respond(data.status());
    from = *data;
  }
  Result<uint64_t> expected =
      from ? ExpectedSize(options.expected_size, from->size(), "the shared range's")
           : ExpectedSize(options.expected_size, PayloadLength(call), "the payload's");
  if (!expected.ok()) return call.Respond(expected.status());
  options.expected_size = *expected;
  Result<std::unique_ptr<ObjectWriter>> writer =
      api.BeginPut(req.bucket(), req.key(), std::move(options));
  if (!writer.ok()) return call.Respond(writer.status());
  return from ? WriteFromMemory(call, **writer, *from) : StreamIntoWriter(call, **writer);
}

Status UploadPart(ObjectApi& api, rpc::ServerCall& call) {
  proto::UploadPartRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  Result<uint64_t> expected =
      ExpectedSize(req.expected_size(), PayloadLength(call), "the payload's");
  if (!expected.ok()) return call.Respond(expected.status());
  Result<std::unique_ptr<ObjectWriter>> writer = api.UploadPart(
      req.bucket(), req.key(), req.upload_id(), req.part_number(), req.content_md5(), *expected);
  if (!writer.ok()) return call.Respond(writer.status());
  return StreamIntoWriter(call, **writer);
}

Status Get(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call) {
  proto::GetRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  Result<std::unique_ptr<ObjectReader>> opened =
      api.Open(req.bucket(), req.key(), rpc::FromProto(req.options()));
  if (!opened.ok()) return call.Respond(opened.status());
  ObjectReader& reader = **opened;
  proto::GetResponse resp;
  rpc::ToProto(reader.info(), resp.mutable_info());
  resp.set_offset(reader.offset());
  resp.set_length(reader.length());
  // The payload carries the first max_bytes of the range; the client asks for the rest.
  uint64_t send = reader.length();
  if (req.max_bytes() != 0) send = std::min(send, req.max_bytes());
  send = std::min(send, kMaxSinglePutBytes);

  if (req.has_into()) {
    // Straight from the disks into the caller's shared buffer; the response has no payload.
    std::shared_ptr<const void> keep;
    Result<std::span<char>> into = SharedBytes(shared, call, req.into(), &keep);
    if (!into.ok()) return call.Respond(into.status());
    if (reader.length() > into->size()) {  // refused before anything is written, as GetInto is
      return call.Respond(Status::InvalidArgument(
          "buffer of " + std::to_string(into->size()) + " bytes is too small for the " +
          std::to_string(reader.length()) + " bytes requested"));
    }
    Result<size_t> got = ReadFull(reader, into->first(send));
    if (!got.ok()) return call.Respond(got.status());
    resp.set_shared_bytes(*got);
    return call.Respond(resp);
  }

  // Fill the first piece before answering, so that an early read error is an answer, and so
  // that a small object goes out with its header in one system call.
  std::span<char> buf = call.buffer();
  size_t first_len = static_cast<size_t>(std::min<uint64_t>(send, buf.size()));
  Result<size_t> first = ReadFull(reader, buf.first(first_len));
  if (!first.ok()) return call.Respond(first.status());
  RETURN_IF_ERROR(call.BeginResponse(resp, send, std::string_view(buf.data(), first_len)));
  uint64_t left = send - first_len;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    // A read error now cannot be answered (the header said OK): the connection closes and the
    // client sees a cut-short payload.
    Result<size_t> got = ReadFull(reader, buf.first(want));
    if (!got.ok()) return got.status().WithContext("GET " + req.bucket() + "/" + req.key());
    RETURN_IF_ERROR(call.WritePayload(std::string_view(buf.data(), want)));
    left -= want;
  }
  return Status::OK();
}

Status ShareBuffer(rpc::SharedBuffers* shared, rpc::ServerCall& call) {
  proto::ShareBufferRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  if (shared == nullptr) {
    return call.Respond(Status::NotSupported("this server offers no shared buffers"));
  }
  Result<rpc::SharedBuffers::Created> created = shared->Create(call.access_key(), req.bytes());
  if (!created.ok()) return call.Respond(created.status());
  // The buffer lives as long as this connection.
  call.KeepUntilClosed(std::move(created->anchor));
  proto::ShareBufferResponse resp;
  resp.set_buffer(created->id);
  resp.set_door(created->door);
  resp.set_token(created->token);
  return call.Respond(resp);
}

Status PutMany(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call) {
  proto::PutManyRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  if (call.payload_chunked()) {
    return call.Respond(Status::InvalidArgument("PUT_MANY needs a payload of known length"));
  }
  // Items from shared buffers are not in the payload; the limit covers every item's bytes.
  uint64_t in_payload = 0, total = 0;
  for (const auto& item : req.items()) {
    total += item.size();
    if (!item.has_from()) in_payload += item.size();
  }
  if (in_payload != call.payload_length()) {
    return call.Respond(Status::InvalidArgument(
        "PUT_MANY items add up to " + std::to_string(in_payload) + " payload bytes but the " +
        "payload has " + std::to_string(call.payload_length())));
  }
  if (total > kMaxBatchPayloadBytes) {
    return call.Respond(Status::InvalidArgument(
        "PUT_MANY items of " + std::to_string(total) + " bytes exceed the limit of " +
        std::to_string(kMaxBatchPayloadBytes) + "; split the batch"));
  }
  std::string data(in_payload, '\0');
  ASSIGN_OR_RETURN(size_t got, call.ReadPayload(std::span<char>(data)));
  if (got != in_payload) return Status::Unavailable("PUT_MANY payload ended early");
  std::vector<std::shared_ptr<const void>> keep(req.items_size());
  std::vector<PutItem> items;
  items.reserve(req.items_size());
  size_t pos = 0;
  for (int i = 0; i < req.items_size(); ++i) {
    const auto& item = req.items(i);
    PutItem put;
    put.key = item.key();
    if (item.has_from()) {
      if (item.from().length() != item.size()) {
        return call.Respond(Status::InvalidArgument(
            "PUT_MANY item \"" + item.key() + "\" has " + std::to_string(item.size()) +
            " bytes but its shared range " + std::to_string(item.from().length())));
      }
      Result<std::span<char>> bytes = SharedBytes(shared, call, item.from(), &keep[size_t(i)]);
      if (!bytes.ok()) return call.Respond(bytes.status());
      put.data = std::string_view(bytes->data(), bytes->size());
    } else {
      put.data = std::string_view(data).substr(pos, item.size());
      pos += item.size();
    }
    put.options = rpc::FromProto(item.options());
    put.options.expected_size = item.size();
    items.push_back(std::move(put));
  }
  std::vector<Result<ObjectInfo>> results = api.PutMany(req.bucket(), items);
  if (results.size() != items.size()) {
    return call.Respond(Status::Internal("PutMany returned " + std::to_string(results.size()) +
                                         " results for " + std::to_string(items.size()) +
                                         " items"));
  }
  proto::PutManyResponse resp;
  for (const Result<ObjectInfo>& r : results) {
    proto::PutManyResponse::Item* item = resp.add_items();
    rpc::ToProto(r.status(), item->mutable_status());
    if (r.ok()) rpc::ToProto(*r, item->mutable_info());
  }
  return call.Respond(resp);
}

namespace {

// GET_MANY into shared buffers: each object is read from the disks straight into its range.
Status GetManyShared(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call,
                     const proto::GetManyRequest& req) {
  proto::GetManyResponse resp;
  for (int i = 0; i < req.keys_size(); ++i) {
    const std::string& key = req.keys(i);
    std::shared_ptr<const void> keep;
    Result<std::span<char>> into = SharedBytes(shared, call, req.into(i), &keep);
    if (!into.ok()) return call.Respond(into.status());
    Result<size_t> got = [&]() -> Result<size_t> {
      ASSIGN_OR_RETURN(std::unique_ptr<ObjectReader> reader, api.Open(req.bucket(), key, {}));
      if (reader->length() > into->size()) {
        return Status::InvalidArgument("object \"" + key + "\" has " +
                                       std::to_string(reader->length()) +
                                       " bytes; its buffer holds " + std::to_string(into->size()));
      }
      return ReadFull(*reader, into->first(reader->length()));
    }();
    proto::GetManyResponse::Item* item = resp.add_items();
    rpc::ToProto(got.status(), item->mutable_status());
    if (got.ok()) item->set_size(*got);
  }
  return call.Respond(resp);
}

}  // namespace

Status GetMany(ObjectApi& api, const rpc::SharedBuffers* shared, rpc::ServerCall& call) {
  proto::GetManyRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  if (req.max_sizes_size() != 0 && req.max_sizes_size() != req.keys_size()) {
    return call.Respond(Status::InvalidArgument("GET_MANY max_sizes must have one entry per key"));
  }
  if (req.into_size() != 0) {
    if (req.into_size() != req.keys_size()) {
      return call.Respond(Status::InvalidArgument("GET_MANY into must have one range per key"));
    }
    return GetManyShared(api, shared, call, req);
  }
  std::vector<std::string> keys(req.keys().begin(), req.keys().end());
  std::vector<Result<std::string>> results = api.GetMany(req.bucket(), keys);
  if (results.size() != keys.size()) {
    return call.Respond(Status::Internal("GetMany returned " + std::to_string(results.size()) +
                                         " results for " + std::to_string(keys.size()) + " keys"));
  }
  proto::GetManyResponse resp;
  std::vector<std::string_view> payload;
  payload.reserve(results.size());
  uint64_t total = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    proto::GetManyResponse::Item* item = resp.add_items();
    Status item_status = results[i].status();
    if (item_status.ok()) {
      uint64_t size = results[i]->size();
      bool limited = req.max_sizes_size() != 0;
      uint64_t limit = limited ? req.max_sizes(static_cast<int>(i)) : 0;
      if (limited && size > limit) {
        item_status =
            Status::InvalidArgument("object \"" + keys[i] + "\" has " + std::to_string(size) +
                                    " bytes; its buffer holds " + std::to_string(limit));
      } else if (total + size > kMaxSinglePutBytes) {
        item_status = Status::InvalidArgument("GET_MANY response would exceed 5 GiB; read \"" +
                                              keys[i] + "\" on its own");
      }
    }
    rpc::ToProto(item_status, item->mutable_status());
    if (item_status.ok()) {
      item->set_size(results[i]->size());
      total += results[i]->size();
      if (!results[i]->empty()) payload.push_back(*results[i]);
    }
  }
  return call.Respond(resp, payload);
}

Status DeleteMany(ObjectApi& api, rpc::ServerCall& call) {
  proto::DeleteManyRequest req;
  Status st;
  if (!ParseRequest(call, &req, &st)) return st;
  std::vector<std::string> keys(req.keys().begin(), req.keys().end());
  std::vector<Status> results = api.DeleteMany(req.bucket(), keys);
  if (results.size() != keys.size()) {
    return call.Respond(Status::Internal("DeleteMany returned " + std::to_string(results.size()) +
                                         " results for " + std::to_string(keys.size()) + " keys"));
  }
  proto::DeleteManyResponse resp;
  for (const Status& s : results) rpc::ToProto(s, resp.add_items());
  return call.Respond(resp);
}

}  // namespace granary::node::rpc_handlers
