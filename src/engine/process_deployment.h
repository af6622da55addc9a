// A deployment as processes on one host: this process supervises one worker process per
// attention worker and per expert worker (`msinfer worker`), connected by two M2N groups over
// POSIX shared memory.
//
// Supervision: the workers die with the supervisor (PR_SET_PDEATHSIG); when any worker fails —
// an error exit or a signal — the supervisor kills the rest at once, reaps them all, and fails
// naming the worker (and its pid and signal). A worker that loses a peer notices within a few
// milliseconds (M2N checks peers' pids while waiting), so a killed worker ends the run in well
// under a second; nothing is left behind.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/generate_types.h"

namespace msi {

struct ProcessDeploymentOptions {
  std::filesystem::path self_exe = "/proc/self/exe";  // the msinfer binary to run workers with
  std::filesystem::path trace_path;                   // empty: no trace
};

// Runs `requests` on a process deployment of `options` and returns the results in order.
Result<std::vector<GenerateResult>> generate_in_processes(const std::filesystem::path& model_dir,
                                                          const EngineOptions& options,
                                                          const std::vector<GenerateRequest>& requests,
                                                          const ProcessDeploymentOptions& process_options);

// The body of `msinfer worker --job FILE --role attention|expert --index I`: returns the exit code.
int run_worker_process(const std::filesystem::path& job_file, const std::string& role, int index);

}  // namespace msi
