#include "rpc/fd_door.h"

#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/crypto.h"
#include "common/logging.h"

namespace granary::rpc {
namespace {

constexpr auto kTokenLife = std::chrono::seconds(60);
constexpr int kReadTimeoutMs = 2000;
constexpr size_t kMaxTokens = 4096;

Status Errno(const std::string& what) {
  return Status::Unavailable(what + ": " + std::strerror(errno));
}

// Reads exactly n bytes within kReadTimeoutMs; false otherwise.
bool ReadExactly(int fd, char* p, size_t n) {
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, kReadTimeoutMs) <= 0) return false;
    ssize_t r = read(fd, p, n);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

sockaddr_un AbstractAddress(const std::string& name, socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // sun_path[0] = '\0' puts the name in the abstract namespace; `name` starts with '@'.
  std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  return addr;
}

}  // namespace

Result<std::unique_ptr<FdDoor>> FdDoor::Open() {
  unsigned char raw[12];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return Status::Internal("no randomness for the door");
  const std::string id = HexEncode(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw)));
  std::unique_ptr<FdDoor> door(new FdDoor("@granary-door-" + id));
  door->fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (door->fd_ < 0) return Errno("socket(AF_UNIX)");
  socklen_t len = 0;
  sockaddr_un addr = AbstractAddress(door->name_, &len);
  if (bind(door->fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return Errno("bind " + door->name_);
  }
  if (listen(door->fd_, 64) != 0) return Errno("listen " + door->name_);
  door->thread_ = std::thread([d = door.get()] { d->Serve(); });
  return door;
}

FdDoor::~FdDoor() { Close(); }

void FdDoor::Close() {
  if (fd_ >= 0) {
    shutdown(fd_, SHUT_RDWR);  // wakes accept() with an error
    if (thread_.joinable()) thread_.join();
    close(fd_);
    fd_ = -1;
  }
}

Result<std::string> FdDoor::Issue(Offer offer) {
  unsigned char raw[kTokenBytes];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return Status::Internal("no randomness for a door token");
  std::string token(reinterpret_cast<char*>(raw), sizeof(raw));
  auto now = std::chrono::steady_clock::now();
  MutexLock lock(&mu_);
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = it->second.expires < now ? tokens_.erase(it) : std::next(it);
  }
  if (tokens_.size() >= kMaxTokens) {
    return Status::Unavailable("too many door tokens pending");
  }
  tokens_[token] = Pending{std::move(offer), now + kTokenLife};
  return token;
}

std::optional<FdDoor::Offer> FdDoor::Redeem(const std::string& token,
                                            std::shared_ptr<const void>* keep) {
  MutexLock lock(&mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  Pending p = std::move(it->second);
  tokens_.erase(it);
  if (p.expires < std::chrono::steady_clock::now()) return std::nullopt;
  *keep = p.offer.owner.lock();
  if (!*keep) return std::nullopt;
  return std::move(p.offer);
}

void FdDoor::Serve() {
  for (;;) {
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // closed
    }
    Answer(conn);
    close(conn);
  }
}

void FdDoor::Answer(int conn) {
  std::string token(kTokenBytes, '\0');
  if (!ReadExactly(conn, token.data(), token.size())) return;
  std::shared_ptr<const void> keep;  // the descriptor stays open while this lives
  std::optional<Offer> offer = Redeem(token, &keep);
  char reply[9] = {};
  reply[0] = offer ? 0 : 1;
  uint64_t size = offer ? offer->size : 0;
  for (int i = 0; i < 8; ++i) reply[1 + i] = static_cast<char>(size >> (8 * i));
  iovec iov{reply, sizeof(reply)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (offer) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    int fd = offer->fd;
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(fd));
  }
  if (sendmsg(conn, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(reply))) {
    GLOG_DEBUG("door: reply not sent: {}", std::strerror(errno));
  }
}

Result<int> FdDoor::Receive(const std::string& door, const std::string& token, uint64_t* size) {
  if (door.size() < 2 || door.size() > sizeof(sockaddr_un::sun_path) || door[0] != '@') {
    return Status::InvalidArgument("bad door name \"" + door + "\"");
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket(AF_UNIX)");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  socklen_t len = 0;
  sockaddr_un addr = AbstractAddress(door, &len);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return Errno("connect " + door + " (not on the server's host?)");
  }
  if (write(fd, token.data(), token.size()) != static_cast<ssize_t>(token.size())) {
    return Errno("write to " + door);
  }
  char reply[9];
  iovec iov{reply, sizeof(reply)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  pollfd pfd{fd, POLLIN, 0};
  if (poll(&pfd, 1, kReadTimeoutMs) <= 0) return Status::Unavailable(door + " did not answer");
  ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  int received = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(&received, CMSG_DATA(c), sizeof(received));
    }
  }
  if (n != static_cast<ssize_t>(sizeof(reply)) || reply[0] != 0 || received < 0) {
    if (received >= 0) close(received);
    return Status::Unavailable(door + " refused the token");
  }
  uint64_t s = 0;
  for (int i = 0; i < 8; ++i) s |= static_cast<uint64_t>(static_cast<unsigned char>(reply[1 + i])) << (8 * i);
  *size = s;
  return received;
}

}  // namespace granary::rpc
