// SharedBuffers: memory a server shares with the clients on its host, so that object bytes move
// between a client's buffer and the server's disks without crossing a socket.
//
// A client asks for a buffer over an authenticated connection (SHARE_BUFFER). The server creates
// a memfd of that size, seals it against shrinking and growing (a client cannot take pages away
// from under the server's mapping), maps it, and hands the descriptor over its FdDoor. The
// buffer belongs to the access key that asked. It lives as long as the connection that asked:
// when the client closes that connection, or dies, the server drops the buffer, after the calls
// using it at that moment are done. A GET or PUT on any connection of the same key may then name
// a range of the buffer instead of carrying the bytes as payload (docs/formats/rpc.md).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "common/mutex.h"
#include "common/status.h"
#include "rpc/fd_door.h"

namespace granary::rpc {

struct SharedBufferLimits {
  uint64_t max_buffer_bytes = 4ull << 30;    // one buffer
  uint64_t max_bytes_per_key = 16ull << 30;  // all buffers of one access key together
  size_t max_buffers_per_key = 1024;         // each holds a connection (and its thread)
  uint64_t max_bytes = 64ull << 30;          // all buffers of the server together
};

class SharedBuffers {
 public:
  // Opens the door the descriptors go through. kUnavailable if it cannot be bound.
  static Result<std::unique_ptr<SharedBuffers>> Open(SharedBufferLimits limits = {});
  ~SharedBuffers();

  struct Created {
    uint64_t id = 0;
    std::string door;   // where the client redeems `token`
    std::string token;  // single-use, for the buffer's descriptor
    // Registers the buffer while it lives: the caller keeps it as long as the asking connection.
    std::shared_ptr<void> anchor;
  };
  // A new buffer of `bytes` for `access_key`. kInvalidArgument for 0 bytes or more than a
  // buffer may hold, kNoSpace beyond the key's (or the server's) total bytes or buffers, kIOError
  // if the system refuses. Ids start at a random point, so that a client holding the id of a buffer
  // of an earlier run of the server does not name a new buffer by chance.
  Result<Created> Create(const std::string& access_key, uint64_t bytes);

  // Bytes [offset, offset + length) of buffer `id`, which must belong to `access_key`; `*keep`
  // keeps them mapped. kInvalidArgument (naming the buffer) for an unknown buffer, another key's
  // buffer, or a range outside it.
  Result<std::span<char>> Find(const std::string& access_key, uint64_t id, uint64_t offset,
                               uint64_t length, std::shared_ptr<const void>* keep) const;

  // Buffers registered now.
  size_t size() const;

  class Registry;

 private:
  SharedBuffers(std::unique_ptr<FdDoor> door, std::shared_ptr<Registry> registry);

  std::unique_ptr<FdDoor> door_;
  std::shared_ptr<Registry> registry_;  // anchors hold it weakly
};

}  // namespace granary::rpc
