// Workers: a small fixed set of threads that run the client's background tasks (the chunks of
// large reads). Started on first use; the destructor drops tasks not yet started and joins.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace granary::client {

class Workers {
 public:
  explicit Workers(int threads) : threads_wanted_(threads < 1 ? 1 : threads) {}
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Runs `task` on some worker thread, later. A task must not wait for another task.
  void Submit(std::function<void()> task);

 private:
  void Loop();

  const int threads_wanted_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;         // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
};

}  // namespace granary::client
