#include "deployment_flags.h"

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
}

Result<EngineOptions> engine_options_from_flags(const DeploymentFlags& f) {
  EngineOptions o;
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
  o.n_expert_workers = f.expert_workers ? *f.expert_workers : (f.device.rfind("cuda", 0) == 0 ? 0 : 1);
  o.n_micro_batches = f.micro_batches;
  o.transport = f.transport;
  o.peer_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.peer_timeout_s * 1000));
  o.max_seqs = f.max_num_seqs;
  o.max_model_len = f.max_model_len;
  o.max_batched_tokens = f.max_num_batched_tokens;
  o.kv_block_size = f.kv_block_size;
  o.enforce_eager = f.enforce_eager;
  return o;
}

}  // namespace msi::cli
