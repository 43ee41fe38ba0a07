// Readers and writers that keep alive what they read from or write to: an ObjectApi that hands
// out another one's readers and writers (a router over stores or connections that may be
// replaced while a transfer is in progress) wraps them so that the store outlives them.
//
// Thread-safe as the wrapped reader or writer is.
#pragma once

#include <memory>

#include "granary/object_api.h"

namespace granary {

std::unique_ptr<ObjectWriter> KeepingAlive(std::unique_ptr<ObjectWriter> writer,
                                           std::shared_ptr<const void> owner);
std::unique_ptr<ObjectReader> KeepingAlive(std::unique_ptr<ObjectReader> reader,
                                           std::shared_ptr<const void> owner);

}  // namespace granary
