// Bounded drop-oldest line queue drained by one thread: keeps file/stdout I/O off the event bus's thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "dfm/common/status.h"

namespace dfm::server::detail {

class LineWriter {
 public:
  struct Hooks {
    std::function<Status(const std::string& line)> write;  // runs on the writer thread
    std::function<void(const Status&)> done;               // after each write, ok or not
    std::function<void(uint64_t)> dropped;                 // lines discarded by a full queue
  };
  LineWriter(size_t capacity, Hooks hooks);
  ~LineWriter();  // writes what is queued, then joins

  void push(std::string line);  // never blocks on I/O
  void flush();                 // returns when everything pushed so far has been written (or failed)
  size_t depth() const;

 private:
  void run();

  const size_t capacity_;
  Hooks hooks_;
  mutable std::mutex mu_;
  std::condition_variable cv_work_, cv_idle_;
  std::deque<std::string> queue_;
  bool busy_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace dfm::server::detail
