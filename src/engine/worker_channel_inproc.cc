#include "engine/worker_channel_inproc.h"

namespace msi {

void QueueInbox::post(WorkerEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(event));
  }
  cv_.notify_one();
}

Status QueueInbox::poll(std::vector<WorkerEvent>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!events_.empty()) {
    out.push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return Status::ok();
}

Status QueueInbox::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  return Status::ok();
}

}  // namespace msi
