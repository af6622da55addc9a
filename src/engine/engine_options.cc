#include "engine/engine_options.h"

#include "engine/worker_setup.h"

namespace msi {

Status validate_engine_options(const EngineOptions& o) {
  if (o.n_attention_workers < 1) return error(StatusCode::kInvalidArgument, "--attention-workers must be at least 1");
  if (o.n_expert_workers < 0) {
    return error(StatusCode::kInvalidArgument, "--expert-workers must be at least 0 (0: experts on each attention worker)");
  }
  if (!o.expert_devices.empty()) {
    if (o.n_expert_workers != static_cast<int>(o.expert_devices.size())) {
      return error(StatusCode::kInvalidArgument, "{} expert workers for {} --expert-devices", o.n_expert_workers,
                   o.expert_devices.size());
    }
    if (o.transport == "shm") {  // one process per worker: the peer transport over CUDA IPC
      for (const auto* list : {&o.attention_devices, &o.expert_devices}) {
        for (const std::string& d : *list) {
          if (d.rfind("cuda", 0) != 0) {
            return error(StatusCode::kInvalidArgument,
                         "--transport shm with --expert-devices shares device memory between processes (CUDA IPC), "
                         "which needs GPU devices, not '{}'; use --transport inproc (threads) for CPU devices", d);
          }
        }
      }
    }
  } else if (o.n_expert_workers > 0 && o.device.rfind("cuda", 0) == 0) {
    return error(StatusCode::kInvalidArgument,
                 "expert workers on a GPU need device-to-device transport: give their devices with --expert-devices "
                 "(e.g. --attention-devices cuda:0 --expert-devices cuda:1), or use --expert-workers 0 to run the "
                 "experts on each attention worker's GPU");
  }
  if (o.n_micro_batches < 1 || o.n_micro_batches > kMaxMicroBatches) {
    return error(StatusCode::kInvalidArgument, "--micro-batches must be in [1, {}]", kMaxMicroBatches);
  }
  if (o.transport != "inproc" && o.transport != "shm") {
    return error(StatusCode::kInvalidArgument, "unknown --transport '{}' (inproc, shm)", o.transport);
  }
  if (o.kv_block_size < 1) return error(StatusCode::kInvalidArgument, "--kv-block-size must be at least 1");
  if (o.kv_n_blocks < 1) return error(StatusCode::kInvalidArgument, "the KV cache needs at least one block");
  if (o.max_batched_tokens < 1 || o.max_seqs < 1) {
    return error(StatusCode::kInvalidArgument, "--max-num-batched-tokens and --max-num-seqs must be positive");
  }
  if (o.peer_timeout.count() <= 0) return error(StatusCode::kInvalidArgument, "the peer timeout must be positive");
  return Status::ok();
}

Result<int64_t> resolve_max_model_len(const ModelConfig& config, const EngineOptions& options) {
  const int64_t len = options.max_model_len > 0 ? options.max_model_len : config.max_position_embeddings;
  if (len > config.max_position_embeddings) {
    return error(StatusCode::kInvalidArgument, "--max-model-len {} exceeds the model's max_position_embeddings {}",
                 len, config.max_position_embeddings);
  }
  return len;
}

nlohmann::json engine_options_to_json(const EngineOptions& o) {
  return {{"device", o.device}, {"load_format", o.load_format}, {"dummy_seed", o.dummy_seed},
          {"hf_overrides", o.hf_overrides}, {"n_attention_workers", o.n_attention_workers},
          {"n_expert_workers", o.n_expert_workers}, {"n_micro_batches", o.n_micro_batches},
          {"transport", o.transport}, {"max_batched_tokens", o.max_batched_tokens}, {"max_seqs", o.max_seqs},
          {"kv_block_size", o.kv_block_size}, {"kv_n_blocks", o.kv_n_blocks},
          {"max_model_len", o.max_model_len}, {"peer_timeout_ms", o.peer_timeout.count()},
          {"record_timeline", o.record_timeline}, {"enforce_eager", o.enforce_eager},
          {"attention_devices", o.attention_devices}, {"expert_devices", o.expert_devices},
          {"expert_placement", o.expert_placement}};
}

Result<EngineOptions> engine_options_from_json(const nlohmann::json& j) {
  try {
    EngineOptions o;
    o.device = j.at("device");
    o.load_format = j.at("load_format");
    o.dummy_seed = j.at("dummy_seed");
    o.hf_overrides = j.at("hf_overrides");
    o.n_attention_workers = j.at("n_attention_workers");
    o.n_expert_workers = j.at("n_expert_workers");
    o.n_micro_batches = j.at("n_micro_batches");
    o.transport = j.at("transport");
    o.max_batched_tokens = j.at("max_batched_tokens");
    o.max_seqs = j.at("max_seqs");
    o.kv_block_size = j.at("kv_block_size");
    o.kv_n_blocks = j.at("kv_n_blocks");
    o.max_model_len = j.at("max_model_len");
    o.peer_timeout = std::chrono::milliseconds(j.at("peer_timeout_ms").get<int64_t>());
    o.record_timeline = j.at("record_timeline");
    o.enforce_eager = j.at("enforce_eager");
    o.attention_devices = j.at("attention_devices").get<std::vector<std::string>>();
    o.expert_devices = j.at("expert_devices").get<std::vector<std::string>>();
    o.expert_placement = j.value("expert_placement", nlohmann::json());
    return o;
  } catch (const nlohmann::json::exception& e) {
    return error(StatusCode::kInvalidArgument, "bad engine options: {}", e.what());
  }
}

}  // namespace msi
