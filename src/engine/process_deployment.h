// The body of `msinfer worker`: one worker process of a process deployment
// (start_process_deployment in engine/deployment.h). Attention workers read events from
// `events_fd` and write reports to `reports_fd` (JSON lines); expert workers have neither.
#pragma once

#include <filesystem>
#include <string>

namespace msi {

// Returns the process exit code; errors go to stderr as "msinfer: <role> worker <i>: ...".
int run_worker_process(const std::filesystem::path& job_file, const std::string& role, int index, int events_fd,
                       int reports_fd);

}  // namespace msi
