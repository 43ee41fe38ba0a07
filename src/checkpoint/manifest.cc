// The bytes of a checkpoint's manifest (manifest.h).
#include "checkpoint/manifest.h"

#include "common/crc32c.h"
#include "proto/checkpoint.pb.h"

namespace granary::checkpoint {
namespace {

constexpr char kManifestMagic[] = "GRCKPT01";
constexpr size_t kMagicBytes = 8;

}  // namespace

std::string EncodeManifest(const CheckpointManifest& m) {
  proto::CheckpointManifest p;
  p.set_step(m.step);
  p.set_created_unix_ms(m.created_unix_ms);
  p.set_extra(m.extra);
  for (const SavedTensor& t : m.tensors) {
    proto::CheckpointTensor* pt = p.add_tensors();
    pt->set_name(t.name);
    pt->set_dtype(t.dtype);
    for (int64_t d : t.shape) pt->add_shape(d);
    pt->set_size(t.size);
    for (const CheckpointChunkRef& c : t.chunks) {
      proto::CheckpointChunk* pc = pt->add_chunks();
      pc->set_hash_lo(c.hash_lo);
      pc->set_hash_hi(c.hash_hi);
      pc->set_size(c.size);
    }
  }
  const std::string body = p.SerializeAsString();
  const uint32_t crc = crc32c::Value(body);
  std::string out(kManifestMagic, kMagicBytes);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out + body;
}

Result<CheckpointManifest> DecodeManifest(std::string_view bytes, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption("the checkpoint manifest " + where + " " + why);
  };
  if (bytes.size() < kMagicBytes + 4 || bytes.substr(0, kMagicBytes) != kManifestMagic) {
    return bad("does not start with \"GRCKPT01\"");
  }
  uint32_t crc = 0;
  for (int i = 0; i < 4; ++i) {
    crc |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[kMagicBytes + i])) << (8 * i);
  }
  const std::string_view body = bytes.substr(kMagicBytes + 4);
  if (crc32c::Value(body) != crc) return bad("fails its checksum");
  proto::CheckpointManifest p;
  if (!p.ParseFromArray(body.data(), static_cast<int>(body.size()))) return bad("does not parse");
  CheckpointManifest m;
  m.step = p.step();
  m.created_unix_ms = p.created_unix_ms();
  m.extra = p.extra();
  for (const auto& pt : p.tensors()) {
    SavedTensor t;
    t.name = pt.name();
    t.dtype = pt.dtype();
    t.shape.assign(pt.shape().begin(), pt.shape().end());
    t.size = pt.size();
    uint64_t total = 0;
    for (const auto& pc : pt.chunks()) {
      t.chunks.push_back({pc.hash_lo(), pc.hash_hi(), pc.size()});
      total += pc.size();
    }
    if (total != t.size) return bad("lists chunks of tensor \"" + t.name + "\" that do not add up");
    m.tensors.push_back(std::move(t));
  }
  return m;
}

}  // namespace granary::checkpoint
