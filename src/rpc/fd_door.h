// FdDoor: hands file descriptors to processes on the same host, for those that hold a token.
// The server side issues single-use tokens (over an authenticated native-protocol connection)
// and listens on a Unix socket in the abstract namespace ("@granary-door-<random>"); a client
// connects there, writes its token and reads one reply: a status byte (0: granted), a 64-bit
// little-endian size, and when granted the descriptor itself as SCM_RIGHTS. A client on another
// host (or in another network namespace) cannot reach the socket and simply does without.
//
// This is how the KV service shares a pool's arena with local clients (docs/formats/rpc.md).
//
// Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/mutex.h"
#include "common/status.h"

namespace granary::rpc {

class FdDoor {
 public:
  static constexpr size_t kTokenBytes = 32;

  // What a token grants: `fd` and its `size`, valid while `owner` is alive.
  struct Offer {
    std::weak_ptr<const void> owner;
    int fd = -1;
    uint64_t size = 0;
  };

  // Binds a fresh abstract socket and starts answering on a thread of its own.
  static Result<std::unique_ptr<FdDoor>> Open();
  ~FdDoor();  // Close()s

  // "@granary-door-<hex>": where clients connect.
  const std::string& name() const { return name_; }
  // A single-use token for `offer`, valid for a minute.
  Result<std::string> Issue(Offer offer);
  // Stops answering. Idempotent.
  void Close();

  // Client side: redeems `token` at the door called `name`. Returns the descriptor (the caller
  // owns it) and sets `*size`. kUnavailable when the door cannot be reached or refuses.
  static Result<int> Receive(const std::string& name, const std::string& token, uint64_t* size);

 private:
  struct Pending {
    Offer offer;
    std::chrono::steady_clock::time_point expires;
  };
  explicit FdDoor(std::string name) : name_(std::move(name)) {}
  void Serve();
  void Answer(int conn);
  // The offer of a live, unexpired token (which is used up), its owner held in `keep`.
  std::optional<Offer> Redeem(const std::string& token, std::shared_ptr<const void>* keep);

  const std::string name_;
  int fd_ = -1;
  std::thread thread_;
  Mutex mu_;
  std::map<std::string, Pending> tokens_ GUARDED_BY(mu_);
};

}  // namespace granary::rpc
