// In-process worker channels: a mutex/condvar event queue per attention worker, and an outbox
// that hands reports to a callback (called on the worker's thread).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

#include "engine/worker_channel.h"

namespace msi {

class QueueInbox final : public WorkerInbox {
 public:
  void post(WorkerEvent event);
  Status poll(std::vector<WorkerEvent>& out) override;
  Status wait(std::chrono::milliseconds timeout) override;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WorkerEvent> events_;
};

using ReportCallback = std::function<void(int worker, const WorkerReport& report)>;

class CallbackOutbox final : public WorkerOutbox {
 public:
  CallbackOutbox(int worker, ReportCallback callback) : worker_(worker), callback_(std::move(callback)) {}
  Status emit(const WorkerReport& report) override {
    callback_(worker_, report);
    return Status::ok();
  }

 private:
  int worker_;
  ReportCallback callback_;
};

}  // namespace msi
