// Persistent pool: workers are created once (grown on demand) and park between parallel regions,
// so a conv call costs a notify, not thread creation. The caller works too and never waits for
// a worker that has not started yet (on a busy machine that could take a scheduler tick): once
// the caller has drained the chunks it closes the region, and late workers skip it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common/internal.h"

namespace facegate::detail {
namespace {

class ThreadPool {
 public:
  void run(int n, int threads, const std::function<void(int, int)>& fn) {
    std::lock_guard<std::mutex> region(region_mu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (static_cast<int>(workers_.size()) < threads - 1) {
        const int index = static_cast<int>(workers_.size());
        workers_.emplace_back([this, index] { worker(index); });
      }
      fn_ = &fn;
      n_ = n;
      chunk_ = std::max(1, n / (threads * 8));
      next_.store(0);
      helpers_ = threads - 1;
      open_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mu_);
    open_ = false;
    done_.wait(lock, [this] { return running_ == 0; });
    fn_ = nullptr;
  }

 private:
  void work() {
    for (int b = next_.fetch_add(chunk_); b < n_; b = next_.fetch_add(chunk_)) (*fn_)(b, std::min(n_, b + chunk_));
  }

  void worker(int index) {
    uint64_t seen = 0;
    for (;;) {
      // Layers of a network come back to back: spin briefly before sleeping to skip the wake-up.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until)
        std::this_thread::yield();
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        if (index >= helpers_ || !open_) continue;
        ++running_;
      }
      work();
      std::lock_guard<std::mutex> lock(mu_);
      if (--running_ == 0 && !open_) done_.notify_one();
    }
  }

  std::mutex region_mu_, mu_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* fn_ = nullptr;
  int n_ = 0, chunk_ = 1, helpers_ = 0, running_ = 0;
  bool open_ = false;
  std::atomic<int> next_{0};
  std::atomic<uint64_t> generation_{0};
};

}  // namespace

void parallel_for(int n, int threads, const std::function<void(int, int)>& fn) {
  if (n <= 0) return;
  threads = std::min(threads, n);
  if (threads <= 1) {
    fn(0, n);
    return;
  }
  // Never destroyed: workers stay parked until the process exits (no join at static teardown).
  static ThreadPool* pool = new ThreadPool;
  pool->run(n, threads, fn);
}

}  // namespace facegate::detail
