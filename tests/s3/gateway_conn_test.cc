// The gateway under many connections: thousands of idle keep-alive connections must not stop it
// from serving others, and Stop() closes them all.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "s3/gateway_test_util.h"

namespace granary::s3::testing {
namespace {

TEST_F(GatewayTest, ThousandsOfIdleConnections) {
  MakeBucket("idle");
  ASSERT_EQ(client_->Send("PUT", "/idle/k", "value").status, 200u);
  boost::asio::io_context io;
  std::vector<boost::asio::ip::tcp::socket> idle;
  boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), gateway_->port());
  for (int i = 0; i < 3000; ++i) {
    idle.emplace_back(io);
    boost::system::error_code ec;
    idle.back().connect(ep, ec);
    ASSERT_FALSE(ec) << i << ": " << ec.message();
  }
  // Every idle connection is accepted and parked; the others are served meanwhile.
  for (int i = 0; i < 50; ++i) {
    HttpResult r = client_->Send("GET", "/idle/k");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "value");
  }
  // A request on one of the idle connections still works.
  std::string raw = "GET /health HTTP/1.1\r\nhost: x\r\n\r\n";
  boost::asio::write(idle[1234], boost::asio::buffer(raw));
  char buf[256];
  size_t n = idle[1234].read_some(boost::asio::buffer(buf));
  EXPECT_NE(std::string(buf, n).find("200 OK"), std::string::npos);

  // Stop closes them all: a read on an idle connection ends.
  gateway_->Stop();
  boost::system::error_code ec;
  n = idle[7].read_some(boost::asio::buffer(buf), ec);
  EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace granary::s3::testing
