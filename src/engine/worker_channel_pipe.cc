#include "engine/worker_channel_pipe.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace msi {

Status LineWriter::write_line(const std::string& line) {
  std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error(StatusCode::kUnavailable, "pipe write failed: {}", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status LineReader::read_available(std::vector<std::string>& lines) {
  char buf[65536];
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error(StatusCode::kUnavailable, "pipe read failed: {}", std::strerror(errno));
    if (n == 0) return error(StatusCode::kUnavailable, "the other end of the pipe closed");
    buffer_.append(buf, static_cast<size_t>(n));
  }
  size_t start = 0, nl;
  while ((nl = buffer_.find('\n', start)) != std::string::npos) {
    lines.push_back(buffer_.substr(start, nl - start));
    start = nl + 1;
  }
  buffer_.erase(0, start);
  return Status::ok();
}

Status LineReader::wait_readable(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r < 0 && errno != EINTR) return error(StatusCode::kUnavailable, "pipe poll failed: {}", std::strerror(errno));
  return Status::ok();
}

Status PipeInbox::poll(std::vector<WorkerEvent>& out) {
  lines_.clear();
  Status st = reader_.read_available(lines_);
  for (const std::string& line : lines_) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return error(StatusCode::kInternal, "bad event line from the frontend");
    MSI_ASSIGN_OR_RETURN(WorkerEvent e, event_from_json(j));
    out.push_back(std::move(e));
  }
  if (!st.is_ok()) return st.with_context("the frontend is gone");
  return Status::ok();
}

}  // namespace msi
