// rpc::Socket's reads: small reads served from what one receive brought in, large ones straight
// into the caller's memory, in order and without loss across the two; and bytes received but not
// yet read count as pending for Readable() and LooksAlive().
#include "rpc/socket.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <thread>

#include "rpc/socket_impl.h"

namespace granary::rpc {
namespace {

using boost::asio::ip::tcp;

// Two connected Sockets over loopback.
struct Pair {
  std::unique_ptr<Socket> a;
  std::unique_ptr<Socket> b;
};

Pair Connected(boost::asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const std::string address = "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  Pair p;
  std::thread dial([&] {
    auto s = Socket::Connect(io, address, DeadlineAfterMs(10'000));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) p.a = std::move(*s);
  });
  tcp::socket accepted(io);
  acceptor.accept(accepted);
  dial.join();
  auto wrapped = Socket::Impl::Wrap(std::move(accepted));
  EXPECT_TRUE(wrapped.ok());
  if (wrapped.ok()) p.b = std::move(*wrapped);
  return p;
}

std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 % 251);
  return s;
}

std::string Read(Socket& s, size_t n) {
  std::string out(n, '\0');
  Status st = s.ReadFull(out.data(), n, DeadlineAfterMs(10'000));
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST(SocketTest, SmallAndLargeReadsOfOneStreamKeepItsOrder) {
  boost::asio::io_context io;
  Pair p = Connected(io);
  ASSERT_TRUE(p.a && p.b);
  // One write: a short head, a payload larger than the read buffer, a short tail, and a payload
  // that ends exactly where a later write begins.
  const std::string head = Pattern(10, 'h');
  const std::string big = Pattern(100'000, 'b');
  const std::string tail = Pattern(3, 't');
  std::thread writer([&] {
    std::string_view pieces[3] = {head, big, tail};
    EXPECT_TRUE(p.a->WriteAll(pieces, DeadlineAfterMs(10'000)).ok());
  });
  EXPECT_EQ(Read(*p.b, 4), head.substr(0, 4));
  EXPECT_EQ(Read(*p.b, 6), head.substr(4));
  EXPECT_TRUE(Read(*p.b, big.size()) == big);
  EXPECT_EQ(Read(*p.b, 3), tail);
  writer.join();
  // A read that must wait for the peer's next write.
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(p.a->WriteAll("late bytes", DeadlineAfterMs(10'000)).ok());
  });
  EXPECT_EQ(Read(*p.b, 4), "late");
  later.join();
  // Six bytes are received but unread: pending, and the connection not reusable as idle.
  EXPECT_TRUE(p.b->Readable());
  EXPECT_FALSE(p.b->LooksAlive());
  EXPECT_EQ(Read(*p.b, 6), " bytes");
  EXPECT_FALSE(p.b->Readable());
  EXPECT_TRUE(p.b->LooksAlive());
}

TEST(SocketTest, ThePeerClosingIsSeenAfterWhatItSent) {
  boost::asio::io_context io;
  Pair p = Connected(io);
  ASSERT_TRUE(p.a && p.b);
  ASSERT_TRUE(p.a->WriteAll("last words", DeadlineAfterMs(10'000)).ok());
  p.a.reset();
  EXPECT_EQ(Read(*p.b, 5), "last ");
  EXPECT_EQ(Read(*p.b, 5), "words");
  char c;
  bool clean_eof = false;
  Status st = p.b->ReadFull(&c, 1, DeadlineAfterMs(10'000), &clean_eof);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_TRUE(clean_eof);
  // A deadline bounds a read that nothing answers.
  Pair q = Connected(io);
  ASSERT_TRUE(q.a && q.b);
  st = q.b->ReadFull(&c, 1, DeadlineAfterMs(100));
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
}

// Bytes that have arrived are read even when the deadline has already passed.
TEST(SocketTest, APassedDeadlineStillReadsWhatHasArrived) {
  boost::asio::io_context io;
  Pair p = Connected(io);
  ASSERT_TRUE(p.a && p.b);
  ASSERT_TRUE(p.a->WriteAll("x", DeadlineAfterMs(10'000)).ok());
  EXPECT_EQ(Read(*p.b, 1), "x");  // the socket is drained: the next read looks before it reads
  ASSERT_TRUE(p.a->WriteAll("y", DeadlineAfterMs(10'000)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  char c = 0;
  Status st = p.b->ReadFull(&c, 1, std::chrono::steady_clock::now());
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c, 'y');
  st = p.b->ReadFull(&c, 1, std::chrono::steady_clock::now());
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("timed out"), std::string::npos) << st.ToString();
}

// Shutdown() ends reads at once, a blocked one included, and bytes already received are not
// handed out after it.
TEST(SocketTest, ShutdownEndsReadsEvenWithBytesBuffered) {
  boost::asio::io_context io;
  Pair p = Connected(io);
  ASSERT_TRUE(p.a && p.b);
  ASSERT_TRUE(p.a->WriteAll("abcdef", DeadlineAfterMs(10'000)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(Read(*p.b, 2), "ab");  // "cdef" stays in the buffer
  p.b->Shutdown();
  char c;
  Status st = p.b->ReadFull(&c, 1, DeadlineAfterMs(10'000));
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("shut down"), std::string::npos) << st.ToString();

  Pair q = Connected(io);
  ASSERT_TRUE(q.a && q.b);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    q.b->Shutdown();
  });
  st = q.b->ReadFull(&c, 1, DeadlineAfterMs(10'000));
  stopper.join();
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("shut down"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace granary::rpc
