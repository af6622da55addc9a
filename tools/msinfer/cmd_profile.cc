// msinfer profile: measures the performance model's coefficients on the device at hand
// (bench/hardware_profiler.h) and writes the hardware profile JSON that `msinfer plan --profile`
// loads. Prints the profile (with --json, the profile and every measured point) on stdout.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "bench/hardware_profiler.h"
#include "commands.h"

namespace msi::cli {
namespace {

struct ProfileArgs {
  std::string model;
  std::string load_format = "dummy";
  std::string device = "cuda:0";
  std::string gpu;
  std::string hf_overrides;
  int layers = 0;
  std::string batch_sizes = "32,64,128,256";
  std::string seq_lens = "1024,4096";
  int64_t output_len = 8;
  std::string peer_device;
  std::string out;
  bool json = false;
  bool no_progress = false;
};

Result<std::vector<int64_t>> parse_list(const std::string& flag, const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size() || v < 1) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      return error(StatusCode::kInvalidArgument,
                   "{} takes positive integers separated by commas, got '{}'", flag, text);
    }
  }
  if (out.empty()) return error(StatusCode::kInvalidArgument, "{} is empty", flag);
  return out;
}

int run_profile_command(const ProfileArgs& a) {
  bench::ProfileConfig c;
  c.model_dir = a.model;
  c.engine.device = a.device;
  c.engine.load_format = a.load_format;
  c.engine.n_expert_workers = 0;
  c.gpu = a.gpu;
  c.output_len = a.output_len;
  c.progress = !a.no_progress;
  if (!a.hf_overrides.empty()) {
    c.engine.hf_overrides = nlohmann::json::parse(a.hf_overrides, nullptr, false);
    if (c.engine.hf_overrides.is_discarded() || !c.engine.hf_overrides.is_object()) {
      return fail("--hf-overrides must be a JSON object");
    }
  }
  if (a.layers > 0) {
    if (c.engine.hf_overrides.is_null()) c.engine.hf_overrides = nlohmann::json::object();
    c.engine.hf_overrides["num_hidden_layers"] = a.layers;
  }
  auto batches = parse_list("--batch-sizes", a.batch_sizes);
  if (!batches.is_ok()) return fail(batches.status().message());
  auto seqs = parse_list("--seq-lens", a.seq_lens);
  if (!seqs.is_ok()) return fail(seqs.status().message());
  c.batch_sizes = *batches;
  c.seq_lens = *seqs;
  if (!a.peer_device.empty()) {
    if (a.peer_device.rfind("cuda:", 0) != 0)
      return fail("--peer-device must be a CUDA device (cuda:N)");
    try {
      c.peer_device = std::stoi(a.peer_device.substr(5));
    } catch (const std::exception&) {
      return fail("--peer-device must be a CUDA device (cuda:N), got '" + a.peer_device + "'");
    }
  }
  nlohmann::json points;
  auto profile = bench::run_profile(c, &points);
  if (!profile.is_ok()) return fail(profile.status().message());
  const nlohmann::json j = planner::hardware_profile_to_json(*profile);
  if (!a.out.empty()) {
    std::ofstream f(a.out);
    f << j.dump(2) << "\n";
    if (!f) return fail("cannot write " + a.out);
  }
  if (a.json) {
    std::cout << nlohmann::json{{"profile", j}, {"points", points}}.dump(2) << "\n";
  } else {
    std::cout << j.dump(2) << "\n";
  }
  return std::cout ? 0 : 1;
}

}  // namespace

void add_profile_command(CLI::App& app, RunFn& run) {
  auto a = std::make_shared<ProfileArgs>();
  CLI::App* cmd = app.add_subcommand("profile",
                                     "Measure the performance model's coefficients on this device "
                                     "(a hardware profile for msinfer plan)");
  cmd->add_option("--model", a->model, "Model directory (config.json; dummy weights by default)")
      ->required();
  cmd->add_option("--load-format", a->load_format, "dummy | auto")->capture_default_str();
  cmd->add_option("--device", a->device, "The device to profile")->capture_default_str();
  cmd->add_option("--gpu", a->gpu, "Catalog name of the device (default: from the device's name)");
  cmd->add_option("--hf-overrides", a->hf_overrides, "JSON merged over config.json");
  cmd->add_option("--layers", a->layers,
                  "Profile with this many layers (coefficients are per layer)");
  cmd->add_option("--batch-sizes", a->batch_sizes, "Batch sizes to fit k1, k2, k3, k4 over")
      ->capture_default_str();
  cmd->add_option("--seq-lens", a->seq_lens, "Context lengths for the attention coefficients")
      ->capture_default_str();
  cmd->add_option("--output-len", a->output_len, "Decode steps per point")->capture_default_str();
  cmd->add_option("--peer-device", a->peer_device,
                  "A second GPU: measure the link with bench m2n (cuda:N)");
  cmd->add_option("--out", a->out, "Write the profile JSON here");
  cmd->add_flag("--json", a->json, "Print the profile and every measured point as JSON");
  cmd->add_flag("--no-progress", a->no_progress, "No progress line on stderr");
  cmd->callback([&run, a] { run = [a] { return run_profile_command(*a); }; });
}

}  // namespace msi::cli
