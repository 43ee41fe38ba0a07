// A real etcd (Debian's /usr/bin/etcd) for the tests that need one: one member on free ports of
// 127.0.0.1 with its data in a temporary directory, stopped by pid when the fixture ends.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "cluster/etcd.h"

namespace granary::cluster {

class EtcdProcess {
 public:
  EtcdProcess() {
    dir_ = std::filesystem::temp_directory_path() /
           ("granary-etcd-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    const int client_port = FreePort();
    const int peer_port = FreePort();
    url_ = "http://127.0.0.1:" + std::to_string(client_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    const std::string log = (dir_ / "etcd.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test that died
      freopen(log.c_str(), "w", stdout);
      freopen(log.c_str(), "a", stderr);
      execl("/usr/bin/etcd", "etcd", "--data-dir", (dir_ / "data").c_str(), "--name", "default",
            "--listen-client-urls", url_.c_str(), "--advertise-client-urls", url_.c_str(),
            "--listen-peer-urls", peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(),
            "--initial-cluster", ("default=" + peer).c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    auto client = EtcdClient::Create(std::vector<std::string>{url_}, 500);
    for (int i = 0; i < 200; ++i) {
      if ((*client)->Get("probe").ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "etcd did not start; see " << log;
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }

 private:
  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::string url_;
  pid_t pid_ = -1;
};

// A test with an etcd of its own and a client of it.
class EtcdTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    auto client = EtcdClient::Create(etcd_.url());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    etcd = std::move(*client);
  }

  EtcdProcess etcd_;
  std::unique_ptr<EtcdClient> etcd;
};

}  // namespace granary::cluster
