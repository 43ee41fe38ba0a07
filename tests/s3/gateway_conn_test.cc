// The gateway under many connections: thousands of idle keep-alive connections must not stop it
// from serving others, and Stop() closes them all.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

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

// boto3 sends Expect: 100-continue on every PUT, empty ones too, and (botocore 1.29) misreads
// the next answer on a keep-alive connection whose Expect got a final status straight away. The
// gateway sends 100 Continue for an empty body too, and the connection stays usable.
TEST_F(GatewayTest, ExpectContinueWithEmptyBodyKeepsTheConnection) {
  MakeBucket("expect");
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), gateway_->port()});
  boost::beast::flat_buffer buffer;
  auto read = [&] {
    http::response_parser<http::string_body> parser;
    http::read(socket, buffer, parser);
    return parser.release();
  };
  for (int i = 0; i < 3; ++i) {
    std::string key = "/expect/k" + std::to_string(i);
    std::string raw = "PUT " + client_->Presign("PUT", key, 60) + " HTTP/1.1\r\nhost: " +
                      client_->host() + "\r\nexpect: 100-continue\r\ncontent-length: 0\r\n\r\n";
    boost::asio::write(socket, boost::asio::buffer(raw));
    auto cont = read();
    EXPECT_EQ(cont.result_int(), 100u) << i;
    auto put = read();
    EXPECT_EQ(put.result_int(), 200u) << i << put.body();
    EXPECT_TRUE(put.keep_alive());
    raw = "GET " + client_->Presign("GET", key, 60) + " HTTP/1.1\r\nhost: " + client_->host() +
          "\r\n\r\n";
    boost::asio::write(socket, boost::asio::buffer(raw));
    auto get = read();
    EXPECT_EQ(get.result_int(), 200u) << i << get.body();
    EXPECT_EQ(get.body(), "");
  }
}

}  // namespace
}  // namespace granary::s3::testing
