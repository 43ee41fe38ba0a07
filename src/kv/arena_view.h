// The client's view of a KV pool's arena lives in src/kv_shm/ (its own library, granary_kv_shm,
// which does not depend on the engine); this header forwards to it.
#pragma once

#include "kv_shm/arena_view.h"  // IWYU pragma: export
