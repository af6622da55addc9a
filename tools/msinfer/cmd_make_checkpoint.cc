// msinfer make-checkpoint: writes a random HF-layout checkpoint for any supported config.json.
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "model/config.h"
#include "model/dummy.h"

namespace msi::cli {
namespace {

struct MakeCheckpointArgs {
  std::string config;
  std::string out;
  int64_t seed = 0;
  int64_t max_shard_mb = 4096;
};

int run_make_checkpoint(const MakeCheckpointArgs& a) {
  auto json = read_json_file(a.config);
  if (!json.is_ok()) return fail(json.status().message());
  auto cfg = parse_model_config(*json);  // validate before writing anything
  if (!cfg.is_ok()) return fail(cfg.status().message());
  Status s = write_dummy_checkpoint(*json, a.out, static_cast<uint64_t>(a.seed), a.max_shard_mb * 1024 * 1024);
  if (!s.is_ok()) return fail(s.message());
  std::cout << "wrote " << a.out << "\n";
  return 0;
}

}  // namespace

void add_make_checkpoint_command(CLI::App& app, RunFn& run) {
  auto a = std::make_shared<MakeCheckpointArgs>();
  CLI::App* cmd = app.add_subcommand("make-checkpoint", "Write a random HF-layout checkpoint for a config.json");
  cmd->add_option("--config", a->config, "config.json of a supported model")->required();
  cmd->add_option("--out", a->out, "Output model directory")->required();
  cmd->add_option("--seed", a->seed, "Weight seed")->capture_default_str();
  cmd->add_option("--max-shard-mb", a->max_shard_mb, "Largest safetensors shard, MiB")->capture_default_str();
  cmd->callback([&run, a] { run = [a] { return run_make_checkpoint(*a); }; });
}

}  // namespace msi::cli
