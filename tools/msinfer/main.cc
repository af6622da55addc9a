// msinfer: the one command-line tool (generate, make-checkpoint; serve, bench, plan, profile and
// tokenize come with their issues).
#include <csignal>
#include <cstdio>

#include "commands.h"
#include "core/logging.h"

namespace msi::cli {

int fail(const std::string& message) {
  std::fprintf(stderr, "msinfer: error: %s\n", message.c_str());
  return 1;
}

}  // namespace msi::cli

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer that went away is an error return, not a crash
  msi::init_logging();
  CLI::App app{"msinfer: Mixture-of-Experts serving with disaggregated expert parallelism"};
  app.require_subcommand(1);
  msi::cli::RunFn run;
  msi::cli::add_generate_command(app, run);
  msi::cli::add_make_checkpoint_command(app, run);
  msi::cli::add_serve_command(app, run);
  msi::cli::add_tokenize_command(app, run);
  msi::cli::add_worker_command(app, run);
  msi::cli::add_bench_command(app, run);
  msi::cli::add_profile_command(app, run);
  msi::cli::add_plan_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return run ? run() : 2;
}
