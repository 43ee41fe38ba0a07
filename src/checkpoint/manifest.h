// The bytes of a checkpoint's manifest (docs/design/checkpoints.md): "GRCKPT01", the CRC32C of
// the message as a little-endian u32, then the serialized proto::CheckpointManifest.
#pragma once

#include <string>
#include <string_view>

#include "granary/checkpoint.h"
#include "granary/status.h"

namespace granary::checkpoint {

std::string EncodeManifest(const CheckpointManifest& m);
// kCorruption naming `where` (bucket/key) when the bytes are not a sound manifest.
Result<CheckpointManifest> DecodeManifest(std::string_view bytes, const std::string& where);

}  // namespace granary::checkpoint
