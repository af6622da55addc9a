#include "deployment_flags.h"

#include <algorithm>
#include <fstream>

#include "planner/deployment_plan.h"

namespace msi::cli {

void add_deployment_flags(CLI::App* cmd, DeploymentFlags& f) {
  cmd->add_option("--load-format", f.load_format, "auto | dummy")->capture_default_str();
  cmd->add_option("--device", f.device, "cpu")->capture_default_str();
  cmd->add_option("--hf-overrides", f.hf_overrides, "JSON merged over config.json");
  cmd->add_option("--attention-workers", f.attention_workers, "Attention workers (M, data parallel)")
      ->capture_default_str();
  cmd->add_option("--expert-workers", f.expert_workers,
                  "Expert workers (N, expert parallel); 0: the experts run on each attention worker's device. "
                  "Default: 1 on the CPU, 0 on a GPU");
  cmd->add_option("--micro-batches", f.micro_batches, "Micro-batches per step (m, ping-pong pipeline)")
      ->capture_default_str();
  cmd->add_option("--transport", f.transport, "inproc (threads) | shm (one process per worker)")
      ->capture_default_str();
  cmd->add_option("--peer-timeout", f.peer_timeout_s, "Seconds a worker waits for a busy peer")->capture_default_str();
  cmd->add_option("--max-num-seqs", f.max_num_seqs, "Sequences per step and attention worker")->capture_default_str();
  cmd->add_option("--max-model-len", f.max_model_len, "0: the model's max_position_embeddings")
      ->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", f.max_num_batched_tokens, "Tokens per step and attention worker")
      ->capture_default_str();
  cmd->add_option("--kv-block-size", f.kv_block_size, "Tokens per KV block")->capture_default_str();
  cmd->add_flag("--enforce-eager", f.enforce_eager, "Never replay decode steps as CUDA graphs (op by op)");
  cmd->add_option("--attention-devices", f.attention_devices,
                  "Devices of the attention workers, comma-separated (worker a on device a mod count)");
  cmd->add_option("--expert-devices", f.expert_devices,
                  "Devices of the expert workers, comma-separated, one worker each: disaggregated, tokens "
                  "move device to device (threads; --transport shm: one process per worker, CUDA IPC)");
  cmd->add_option("--plan", f.plan,
                  "Deployment plan JSON from `msinfer plan --out`: its worker counts, micro-batches and "
                  "sequences per worker replace the flags'");
  cmd->add_option("--expert-placement", f.expert_placement,
                  "JSON file of the experts each expert worker holds, replicas allowed (msinfer plan --expert-load "
                  "writes one). Default: contiguous ranges");
}

std::vector<std::string> split_device_list(const std::string& list) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= list.size()) {
    const size_t end = std::min(list.find(',', begin), list.size());
    out.push_back(list.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

namespace {

// The plan onto the options: counts, m, sequences per worker, and (unless given) devices.
Status apply_plan(const planner::DeploymentPlan& plan, const std::string& device_kind, EngineOptions& o) {
  if (plan.tp_a > 1 || plan.tp_e > 1) {
    return error(StatusCode::kUnimplemented,
                 "the plan needs tensor parallelism (tp_a {}, tp_e {}); msinfer's workers run on one GPU each so "
                 "far: plan with GPUs that fit the model unsplit",
                 plan.tp_a, plan.tp_e);
  }
  const bool given = !o.attention_devices.empty() || !o.expert_devices.empty();
  auto device = [&](int64_t i) { return device_kind == "cpu" ? std::string("cpu") : fmt::format("cuda:{}", i); };
  o.max_seqs = plan.max_num_seqs;
  if (plan.kind == planner::PlanKind::kDisaggregated) {
    o.n_attention_workers = static_cast<int>(plan.n_attention_workers);
    o.n_expert_workers = static_cast<int>(plan.n_expert_workers);
    o.n_micro_batches = static_cast<int>(plan.n_micro_batches);
    if (!given) {
      for (int64_t a = 0; a < plan.n_attention_workers; ++a) o.attention_devices.push_back(device(a));
      for (int64_t x = 0; x < plan.n_expert_workers; ++x) {
        o.expert_devices.push_back(device(plan.n_attention_workers + x));
      }
    }
  } else {  // colocated: every GPU runs an attention worker and an expert shard
    const int64_t gpus = plan.n_attention_workers;
    o.n_attention_workers = static_cast<int>(gpus);
    o.n_micro_batches = 1;
    if (gpus == 1 || device_kind == "cpu") {
      o.n_expert_workers = 0;  // each attention worker holds every expert on its own device
    } else if (!given) {
      for (int64_t g = 0; g < gpus; ++g) o.attention_devices.push_back(device(g));
      for (int64_t x = 0; x < plan.n_expert_workers; ++x) o.expert_devices.push_back(device(x % gpus));
      o.n_expert_workers = static_cast<int>(plan.n_expert_workers);
    }
  }
  if (!o.expert_devices.empty()) o.n_expert_workers = static_cast<int>(o.expert_devices.size());
  if (!o.attention_devices.empty()) o.device = o.attention_devices.front();
  return Status::ok();
}

}  // namespace

Result<EngineOptions> engine_options_from_flags(const DeploymentFlags& f) {
  EngineOptions o;
  if (!f.attention_devices.empty()) o.attention_devices = split_device_list(f.attention_devices);
  if (!f.expert_devices.empty()) o.expert_devices = split_device_list(f.expert_devices);
  for (const auto* list : {&o.attention_devices, &o.expert_devices}) {
    for (const std::string& d : *list) {
      if (d.empty()) return error(StatusCode::kInvalidArgument, "an empty device in --attention-devices/--expert-devices");
    }
  }
  o.load_format = f.load_format;
  o.device = f.device;
  if (!f.hf_overrides.empty()) {
    o.hf_overrides = nlohmann::json::parse(f.hf_overrides, nullptr, false);
    if (o.hf_overrides.is_discarded() || !o.hf_overrides.is_object()) {
      return error(StatusCode::kInvalidArgument, "--hf-overrides must be a JSON object");
    }
  }
  if (f.kv_block_size < 1) return error(StatusCode::kInvalidArgument, "--kv-block-size must be at least 1");
  o.n_attention_workers = f.attention_workers;
  // The first attention device stands for the deployment's device (defaults, the CUDA checks).
  const std::string device = o.attention_devices.empty() ? f.device : o.attention_devices.front();
  o.device = device;
  if (!o.expert_devices.empty()) {
    if (f.expert_workers && *f.expert_workers != static_cast<int>(o.expert_devices.size())) {
      return error(StatusCode::kInvalidArgument, "--expert-workers {} disagrees with {} --expert-devices",
                   *f.expert_workers, o.expert_devices.size());
    }
    o.n_expert_workers = static_cast<int>(o.expert_devices.size());
  } else {
    o.n_expert_workers = f.expert_workers ? *f.expert_workers : (device.rfind("cuda", 0) == 0 ? 0 : 1);
  }
  o.n_micro_batches = f.micro_batches;
  o.transport = f.transport;
  o.peer_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.peer_timeout_s * 1000));
  o.max_seqs = f.max_num_seqs;
  o.max_model_len = f.max_model_len;
  o.max_batched_tokens = f.max_num_batched_tokens;
  o.kv_block_size = f.kv_block_size;
  o.enforce_eager = f.enforce_eager;
  if (!f.plan.empty()) {
    auto plan = planner::load_deployment_plan(f.plan);
    if (!plan.is_ok()) return plan.status().with_context("--plan");
    MSI_RETURN_IF_ERROR(apply_plan(*plan, device.rfind("cuda", 0) == 0 ? "cuda" : "cpu", o));
  }
  if (!f.expert_placement.empty()) {
    std::ifstream in(f.expert_placement);
    if (!in) return error(StatusCode::kInvalidArgument, "cannot read --expert-placement {}", f.expert_placement);
    o.expert_placement = nlohmann::json::parse(in, nullptr, false);
    if (o.expert_placement.is_discarded()) {
      return error(StatusCode::kInvalidArgument, "--expert-placement {} is not valid JSON", f.expert_placement);
    }
    // A `msinfer plan --expert-load` report carries the placement under "placement".
    if (o.expert_placement.is_object() && o.expert_placement.contains("placement")) {
      o.expert_placement = o.expert_placement["placement"];
    }
  }
  return o;
}

}  // namespace msi::cli
