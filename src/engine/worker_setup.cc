#include "engine/worker_setup.h"

#include <algorithm>

#include "model/dummy.h"
#include "roles/m2n_expert_link.h"
#include "roles/peer_message.h"

namespace msi {

Result<WorkerSetup> open_worker_setup(const std::filesystem::path& model_dir, const EngineOptions& options) {
  WorkerSetup s;
  const nlohmann::json* overrides = options.hf_overrides.is_null() ? nullptr : &options.hf_overrides;
  MSI_ASSIGN_OR_RETURN(s.config, load_model_config(model_dir, overrides));
  MSI_ASSIGN_OR_RETURN(s.max_model_len, resolve_max_model_len(s.config, options));
  if (std::none_of(s.config.layer_is_moe.begin(), s.config.layer_is_moe.end(), [](bool b) { return b; })) {
    return error(StatusCode::kInvalidArgument, "the model has no MoE layers");
  }
  // Colocated (N = 0): each attention worker holds the one group of all experts.
  if (!options.expert_placement.is_null() && options.n_expert_workers > 0) {
    Result<ExpertPlacement> given = ExpertPlacement::from_json(options.expert_placement, s.config.n_experts);
    if (!given.is_ok()) return given.status().with_context("--expert-placement");
    if (given->n_workers() != options.n_expert_workers) {
      return error(StatusCode::kInvalidArgument, "--expert-placement places experts on {} workers, the deployment has {}",
                   given->n_workers(), options.n_expert_workers);
    }
    s.placement = std::move(*given);
  } else {
    MSI_ASSIGN_OR_RETURN(s.placement,
                         ExpertPlacement::contiguous(s.config.n_experts, std::max(options.n_expert_workers, 1)));
  }
  if (options.load_format == "dummy") {
    s.source = make_dummy_source(s.config, options.dummy_seed);
  } else if (options.load_format == "auto" || options.load_format == "safetensors") {
    MSI_ASSIGN_OR_RETURN(s.source, open_checkpoint(model_dir));
  } else {
    return error(StatusCode::kInvalidArgument, "unknown --load-format '{}' (auto, safetensors, dummy)",
                 options.load_format);
  }
  return s;
}

Result<std::unique_ptr<AttentionWorker>> make_attention_worker(const ModelConfig& config, const WorkerSetup& setup,
                                                               Backend& backend, const EngineOptions& options) {
  MSI_ASSIGN_OR_RETURN(AttentionWeights weights, load_attention_weights(config, *setup.source, backend));
  AttentionWorkerOptions ao;
  ao.max_batched_tokens = options.max_batched_tokens;
  ao.max_seqs = options.max_seqs;
  ao.kv_block_size = options.kv_block_size;
  ao.kv_n_blocks = options.kv_n_blocks;
  ao.max_model_len = setup.max_model_len;
  ao.max_micro_batches = options.n_micro_batches;
  return AttentionWorker::create(config, backend, std::move(weights), ao);
}

Result<std::unique_ptr<ExpertWorker>> make_expert_worker(const ModelConfig& config, const WorkerSetup& setup,
                                                         Backend& backend, const EngineOptions& options, int index) {
  MSI_ASSIGN_OR_RETURN(ExpertWeights weights,
                       load_expert_weights(config, *setup.source, backend, setup.placement.experts_of(index)));
  // A unit holds at most one micro-batch of every attention worker.
  const int64_t max_rows = options.n_attention_workers * options.max_batched_tokens;
  return std::make_unique<ExpertWorker>(config, backend, std::move(weights), max_rows);
}

Result<std::unique_ptr<ColocatedExpertLink>> make_colocated_link(const ModelConfig& config, const WorkerSetup& setup,
                                                                 Backend& backend, const EngineOptions& options) {
  MSI_CHECK(options.n_expert_workers == 0, "colocated experts need --expert-workers 0");
  MSI_ASSIGN_OR_RETURN(StackedExpertWeights weights,
                       load_stacked_expert_weights(config, *setup.source, backend, setup.placement.experts_of(0)));
  return std::make_unique<ColocatedExpertLink>(config, backend, std::move(weights), options.max_batched_tokens,
                                               options.n_micro_batches);
}

std::string attention_device(const EngineOptions& options, int index) {
  return options.attention_devices.empty()
             ? options.device
             : options.attention_devices[static_cast<size_t>(index) % options.attention_devices.size()];
}

std::string expert_device(const EngineOptions& options, int index) {
  return options.expert_devices.empty() ? options.device : options.expert_devices.at(static_cast<size_t>(index));
}

comm::M2NOptions dispatch_options(const ModelConfig& config, const EngineOptions& options) {
  comm::M2NOptions o;
  o.name = "dispatch";
  o.sender_label = "attention worker";
  o.receiver_label = "expert worker";
  o.n_senders = options.n_attention_workers;
  o.n_receivers = options.n_expert_workers;
  o.n_slots = std::max(options.n_micro_batches, 2);
  o.max_payload_bytes = !options.expert_devices.empty()
                            ? kPeerPayloadBytes  // the peer transport moves tokens device to device
                            : max_dispatch_payload_bytes(options.max_batched_tokens, config.n_experts_per_tok,
                                                         config.hidden_size);
  o.timeout = options.peer_timeout;
  return o;
}

comm::M2NOptions combine_options(const ModelConfig& config, const EngineOptions& options) {
  comm::M2NOptions o;
  o.name = "combine";
  o.sender_label = "expert worker";
  o.receiver_label = "attention worker";
  o.n_senders = options.n_expert_workers;
  o.n_receivers = options.n_attention_workers;
  o.n_slots = std::max(options.n_micro_batches, 2);
  o.max_payload_bytes = !options.expert_devices.empty()
                            ? kPeerPayloadBytes
                            : max_combine_payload_bytes(options.max_batched_tokens, config.hidden_size);
  o.timeout = options.peer_timeout;
  return o;
}

RunnerOptions runner_options(const EngineOptions& options, int64_t max_model_len, uint64_t seed) {
  RunnerOptions r;
  r.n_micro_batches = options.n_micro_batches;
  r.max_batched_tokens = options.max_batched_tokens;
  r.max_seqs = options.max_seqs;
  r.max_model_len = max_model_len;
  r.seed = seed;
  r.use_graphs = !options.enforce_eager;
  return r;
}

std::string attention_label(int index) { return "attention worker " + std::to_string(index); }
std::string expert_label(int index) { return "expert worker " + std::to_string(index); }

Status first_root_error(const std::vector<Status>& attention, const std::vector<Status>& experts) {
  auto is_consequence = [](const Status& s) {
    return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
  };
  for (const auto* group : {&attention, &experts}) {
    for (const Status& s : *group) {
      if (!s.is_ok() && !is_consequence(s)) return s;
    }
  }
  for (const auto* group : {&attention, &experts}) {
    for (const Status& s : *group) {
      if (!s.is_ok()) return s;
    }
  }
  return Status::ok();
}

}  // namespace msi
