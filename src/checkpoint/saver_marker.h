// The body of a save's marker (checkpoint.h: saves in progress mark themselves under saving/):
// which process saves, so that a reclamation can tell a saver that died from one still at work.
#pragma once

#include <string>
#include <string_view>

namespace granary::checkpoint {

// "<boot id> <pid namespace> <pid> <start ticks>" of this process.
std::string MarkerBody();

// Whether the saver of a marker with this body is known to be dead: it ran on this host since its
// last boot, in this pid namespace, and its process is gone (or its pid now names another
// process). A body of another form, or a process this one cannot see into, counts as alive.
bool SaverIsDead(std::string_view body);

}  // namespace granary::checkpoint
