// Who saves (saver_marker.h).
#include "checkpoint/saver_marker.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

namespace granary::checkpoint {
namespace {

// This host's boot, this process's pid namespace, and the start time of process `pid` in clock
// ticks since that boot: together with the pid they name a process uniquely, so a save's marker
// says whether its saver still lives. Empty / nullopt where /proc does not tell.
std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::string PidNamespace() {
  char link[128];
  const ssize_t n = ::readlink("/proc/self/ns/pid", link, sizeof(link) - 1);
  return n > 0 ? std::string(link, static_cast<size_t>(n)) : "";
}

std::optional<uint64_t> ProcessStartTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {  // field 22: starttime
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return std::nullopt;
}

}  // namespace

std::string MarkerBody() {
  const pid_t pid = getpid();
  return BootId() + " " + PidNamespace() + " " + std::to_string(pid) + " " +
         std::to_string(ProcessStartTicks(pid).value_or(0));
}

bool SaverIsDead(std::string_view body) {
  std::istringstream in{std::string(body)};
  std::string boot, pid_ns;
  pid_t pid = 0;
  uint64_t ticks = 0;
  if (!(in >> boot >> pid_ns >> pid >> ticks) || boot.empty() || boot != BootId() ||
      pid_ns.empty() || pid_ns != PidNamespace() || pid <= 0) {
    return false;
  }
  struct stat st;
  if (::stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0) return errno == ENOENT;
  const std::optional<uint64_t> now = ProcessStartTicks(pid);
  return now && *now != ticks;
}

}  // namespace granary::checkpoint
