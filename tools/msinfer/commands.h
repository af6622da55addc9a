// The msinfer CLI: one subcommand per file. Each add_*_command registers its flags on `app` and
// sets `run` to the function that executes it; the function returns the process exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace msi::cli {

using RunFn = std::function<int()>;

void add_generate_command(CLI::App& app, RunFn& run);
void add_make_checkpoint_command(CLI::App& app, RunFn& run);
void add_worker_command(CLI::App& app, RunFn& run);
void add_bench_command(CLI::App& app, RunFn& run);
void add_tokenize_command(CLI::App& app, RunFn& run);
void add_serve_command(CLI::App& app, RunFn& run);
void add_profile_command(CLI::App& app, RunFn& run);
void add_plan_command(CLI::App& app, RunFn& run);

// Prints "msinfer: error: <message>" to stderr; returns 1.
int fail(const std::string& message);

}  // namespace msi::cli
