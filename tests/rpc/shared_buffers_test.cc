// rpc::SharedBuffers: buffers are created sealed, handed over the door, found only by their own
// access key and within bounds, limited per key, and dropped with their anchor.
#include "rpc/shared_buffers.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace granary::rpc {
namespace {

std::unique_ptr<SharedBuffers> OpenBuffers(SharedBufferLimits limits = {}) {
  auto opened = SharedBuffers::Open(limits);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? std::move(*opened) : nullptr;
}

TEST(SharedBuffersTest, ClientMapsTheSameBytesAsTheServer) {
  auto buffers = OpenBuffers();
  ASSERT_NE(buffers, nullptr);
  auto created = buffers->Create("alice", 1 << 20);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  uint64_t size = 0;
  auto fd = FdDoor::Receive(created->door, created->token, &size);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  EXPECT_EQ(size, 1u << 20);
  // Sealed: the client can neither shrink nor grow it under the server's mapping.
  int seals = ::fcntl(*fd, F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
  EXPECT_NE(::ftruncate(*fd, 4096), 0);
  void* mapped = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  ::close(*fd);
  ASSERT_NE(mapped, MAP_FAILED);
  std::memcpy(static_cast<char*>(mapped) + 4096, "granary", 7);

  std::shared_ptr<const void> keep;
  auto range = buffers->Find("alice", created->id, 4096, 7, &keep);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_EQ(std::string_view(range->data(), range->size()), "granary");
  std::memcpy(range->data(), "GRANARY", 7);  // the server writes, the client sees it
  EXPECT_EQ(std::memcmp(static_cast<char*>(mapped) + 4096, "GRANARY", 7), 0);
  ::munmap(mapped, size);

  // A token is good once.
  EXPECT_EQ(FdDoor::Receive(created->door, created->token, &size).status().code(),
            Code::kUnavailable);
}

TEST(SharedBuffersTest, FoundOnlyByItsKeyAndWithinItsBounds) {
  auto buffers = OpenBuffers();
  ASSERT_NE(buffers, nullptr);
  auto created = buffers->Create("alice", 8192);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::shared_ptr<const void> keep;
  EXPECT_TRUE(buffers->Find("alice", created->id, 0, 8192, &keep).ok());
  EXPECT_TRUE(buffers->Find("alice", created->id, 8192, 0, &keep).ok());
  for (auto [offset, length] : {std::pair<uint64_t, uint64_t>{0, 8193},
                                {8192, 1},
                                {4096, 4097},
                                {UINT64_MAX, 2},
                                {1, UINT64_MAX}}) {
    auto r = buffers->Find("alice", created->id, offset, length, &keep);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << offset << "+" << length;
  }
  auto other = buffers->Find("mallory", created->id, 0, 1, &keep);
  EXPECT_EQ(other.status().code(), Code::kInvalidArgument);
  EXPECT_NE(other.status().message().find("does not exist"), std::string::npos);
  EXPECT_EQ(buffers->Find("alice", created->id + 1, 0, 1, &keep).status().code(),
            Code::kInvalidArgument);
}

TEST(SharedBuffersTest, DroppedWithItsAnchorAfterItsUsersAreDone) {
  auto buffers = OpenBuffers();
  ASSERT_NE(buffers, nullptr);
  auto created = buffers->Create("alice", 4096);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(buffers->size(), 1u);
  std::shared_ptr<const void> keep;
  auto range = buffers->Find("alice", created->id, 0, 4096, &keep);
  ASSERT_TRUE(range.ok());
  created->anchor.reset();
  EXPECT_EQ(buffers->size(), 0u);
  EXPECT_EQ(buffers->Find("alice", created->id, 0, 1, &keep).status().code(),
            Code::kInvalidArgument);
  // A call that found it before keeps its bytes mapped until it lets go.
  std::memset(range->data(), 7, range->size());
  keep.reset();
}

TEST(SharedBuffersTest, LimitsPerBufferAndPerKey) {
  SharedBufferLimits limits;
  limits.max_buffer_bytes = 1 << 20;
  limits.max_bytes_per_key = 3 << 20;
  auto buffers = OpenBuffers(limits);
  ASSERT_NE(buffers, nullptr);
  EXPECT_EQ(buffers->Create("alice", 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(buffers->Create("alice", (1 << 20) + 1).status().code(), Code::kInvalidArgument);
  std::vector<SharedBuffers::Created> held;
  for (int i = 0; i < 3; ++i) {
    auto c = buffers->Create("alice", 1 << 20);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    held.push_back(std::move(*c));
  }
  EXPECT_EQ(buffers->Create("alice", 1).status().code(), Code::kNoSpace);
  // And a number of buffers: each holds a connection.
  SharedBufferLimits few;
  few.max_buffers_per_key = 2;
  auto counted = OpenBuffers(few);
  ASSERT_NE(counted, nullptr);
  auto one = counted->Create("alice", 1);
  auto two = counted->Create("alice", 1);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_NE(one->id, two->id);
  EXPECT_EQ(counted->Create("alice", 1).status().code(), Code::kNoSpace);
  // And the server's total over every key.
  SharedBufferLimits server;
  server.max_bytes = 2 << 20;
  auto bounded = OpenBuffers(server);
  ASSERT_NE(bounded, nullptr);
  auto first = bounded->Create("alice", 1 << 20);
  auto second = bounded->Create("bob", 1 << 20);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(bounded->Create("carol", 1).status().code(), Code::kNoSpace);
  first->anchor.reset();
  EXPECT_TRUE(bounded->Create("carol", 1 << 20).ok());
  EXPECT_TRUE(buffers->Create("bob", 1 << 20).ok());  // another key has its own allowance
  held.pop_back();                                    // its anchor goes: the allowance comes back
  EXPECT_TRUE(buffers->Create("alice", 1 << 20).ok());
}

}  // namespace
}  // namespace granary::rpc
