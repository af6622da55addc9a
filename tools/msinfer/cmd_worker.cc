// msinfer worker: one worker process of a multi-process deployment (started by the supervisor of
// `--transport shm`; not for direct use).
#include <memory>
#include <string>

#include "commands.h"
#include "engine/process_deployment.h"

namespace msi::cli {
namespace {

struct WorkerArgs {
  std::string job;
  std::string role;
  int index = 0;
  int events_fd = -1;
  int reports_fd = -1;
};

}  // namespace

void add_worker_command(CLI::App& app, RunFn& run) {
  auto a = std::make_shared<WorkerArgs>();
  CLI::App* cmd = app.add_subcommand("worker", "Run one worker of a multi-process deployment (internal)");
  cmd->group("");  // hidden from --help
  cmd->add_option("--job", a->job, "Job file written by the supervisor")->required();
  cmd->add_option("--role", a->role, "attention | expert")->required();
  cmd->add_option("--index", a->index, "Worker index within its role")->required();
  cmd->add_option("--events-fd", a->events_fd, "Pipe of events from the supervisor (attention workers)");
  cmd->add_option("--reports-fd", a->reports_fd, "Pipe of reports to the supervisor (attention workers)");
  cmd->callback([&run, a] {
    run = [a] { return run_worker_process(a->job, a->role, a->index, a->events_fd, a->reports_fd); };
  });
}

}  // namespace msi::cli
