// Worker channels over pipes between processes: one JSON object per line. The worker reads
// events from one pipe and writes reports to another; the frontend does the reverse with
// LineWriter / LineReader. A closed pipe is an Unavailable error (the other side is gone).
#pragma once

#include <string>

#include "engine/worker_channel.h"

namespace msi {

// Writes whole lines to a blocking fd (EINTR-safe). Not thread-safe.
class LineWriter {
 public:
  explicit LineWriter(int fd) : fd_(fd) {}
  Status write_line(const std::string& line);

 private:
  int fd_;
};

// Reads lines from an fd. read_line blocks up to `timeout` (DeadlineExceeded), EOF → Unavailable.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // Non-blocking: appends complete lines available now; Unavailable at EOF.
  Status read_available(std::vector<std::string>& lines);
  // Waits until the fd is readable (or timeout); OK either way unless the fd failed.
  Status wait_readable(std::chrono::milliseconds timeout);

 private:
  int fd_;
  std::string buffer_;
};

class PipeInbox final : public WorkerInbox {
 public:
  explicit PipeInbox(int fd) : reader_(fd) {}
  Status poll(std::vector<WorkerEvent>& out) override;
  Status wait(std::chrono::milliseconds timeout) override { return reader_.wait_readable(timeout); }

 private:
  LineReader reader_;
  std::vector<std::string> lines_;
};

class PipeOutbox final : public WorkerOutbox {
 public:
  explicit PipeOutbox(int fd) : writer_(fd) {}
  Status emit(const WorkerReport& report) override { return writer_.write_line(report_to_json(report).dump()); }

 private:
  LineWriter writer_;
};

}  // namespace msi
