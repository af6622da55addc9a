#include "planner/perf_model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace msi::planner {

double expert_ms(const ExpertCoeffs& c, double b_e) {
  if (c.curve.empty()) return c.k3_ms * b_e + c.k4_ms;
  const auto& v = c.curve;
  if (b_e <= v.front().tokens) return v.front().ms;
  if (b_e >= v.back().tokens) return v.back().ms + c.k3_ms * (b_e - v.back().tokens);
  for (size_t i = 1; i < v.size(); ++i) {
    if (b_e <= v[i].tokens) {
      const double t = (b_e - v[i - 1].tokens) / (v[i].tokens - v[i - 1].tokens);
      return v[i - 1].ms + t * (v[i].ms - v[i - 1].ms);
    }
  }
  return v.back().ms;
}
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

double per_tp(double params, int tp) { return params / static_cast<double>(tp); }

// Throughput fields and n_gpus/cost from the batch and step time.
void fill_throughput(Prediction& p, double global_batch, int n_gpus, double cost) {
  p.global_batch = global_batch;
  p.n_gpus = n_gpus;
  p.cost = cost;
  p.tokens_per_s = p.tbt_ms > 0 ? global_batch / (p.tbt_ms / 1000.0) : 0;
  p.tokens_per_s_per_gpu = n_gpus > 0 ? p.tokens_per_s / n_gpus : 0;
  p.tokens_per_s_per_cost = cost > 0 ? p.tokens_per_s / cost : 0;
}

std::string memory_violation(const char* side, double need, double usable) {
  return fmt::format("{} GPU needs {:.1f} GiB > {:.1f} GiB usable", side, need, usable);
}

}  // namespace

double ModelShape::non_expert_bytes(int tp_a) const {
  const double split =
      per_tp(n_layers * (attn_params_per_layer + mlp_params_per_layer) + head_params, tp_a);
  return (split + n_layers * router_params_per_layer) * bytes_per_param;
}

double ModelShape::kv_bytes_per_token(int tp_a) const {
  const int64_t heads = std::max<int64_t>(1, (n_kv_heads + tp_a - 1) / tp_a);
  return 2.0 * heads * head_dim * bytes_per_param * n_layers;
}

double ModelShape::expert_bytes(int64_t g, int tp_e) const {
  return per_tp(static_cast<double>(g) * expert_params * n_moe_layers, tp_e) * bytes_per_param;
}

double ModelShape::attention_read_bytes_per_layer(int tp_a) const {
  // A decode step reads the LM head once (vocab × hidden) and only b rows of the embedding.
  const double lm_head = static_cast<double>(vocab) * hidden;
  const double split =
      per_tp(attn_params_per_layer + mlp_params_per_layer + lm_head / n_layers, tp_a);
  return (split + router_params_per_layer) * bytes_per_param;
}

ModelShape model_shape(const ModelConfig& c) {
  ModelShape s;
  s.name = c.model_type;
  s.n_layers = c.n_layers;
  s.n_moe_layers = std::count(c.layer_is_moe.begin(), c.layer_is_moe.end(), true);
  s.hidden = c.hidden_size;
  s.n_heads = c.n_heads;
  s.n_kv_heads = c.n_kv_heads;
  s.head_dim = c.head_dim;
  s.vocab = c.vocab_size;
  s.n_experts = c.n_experts;
  s.top_k = c.n_experts_per_tok;
  s.bytes_per_param = static_cast<double>(dtype_size(c.dtype));
  const double h = static_cast<double>(c.hidden_size);
  s.attn_params_per_layer = h * (c.q_dim() + 2.0 * c.kv_dim()) + c.q_dim() * h;
  if (c.attention_bias) s.attn_params_per_layer += c.q_dim() + 2.0 * c.kv_dim();
  const double n_dense = static_cast<double>(s.n_layers - s.n_moe_layers);
  const double shared = c.shared_expert_intermediate_size > 0
                            ? 3.0 * h * c.shared_expert_intermediate_size + h  // + its gate
                            : 0.0;
  s.mlp_params_per_layer =
      (s.n_moe_layers * shared + n_dense * 3.0 * h * c.intermediate_size) / s.n_layers;
  s.router_params_per_layer = s.n_moe_layers * h * c.n_experts / static_cast<double>(s.n_layers);
  s.head_params = c.vocab_size * h * (c.tie_word_embeddings ? 1.0 : 2.0);
  s.expert_params = 3.0 * h * c.moe_intermediate_size;
  return s;
}

double total_ms(double t_a, double t_e, double t_c, int m, int64_t n_layers) {
  const double t_f = std::max(t_a, t_e);
  return (t_a + t_e + 2.0 * t_c) + t_f * (static_cast<double>(m) * n_layers - 1.0);
}

double balanced_n_attention(double k1, double k3, int64_t n_experts, int64_t top_k,
                            int64_t experts_per_worker) {
  return k1 * n_experts / (k3 * top_k * experts_per_worker);
}

double tokens_per_expert(int n_a, double b_a, int64_t top_k, int64_t n_experts) {
  return n_a * b_a * static_cast<double>(top_k) / static_cast<double>(n_experts);
}

double worker_hit_probability(int64_t n_experts, int64_t top_k, int64_t experts_per_worker) {
  // C(E−g, K) / C(E, K) = Π_{i<K} (E−g−i) / (E−i): the chance that none of the K is held.
  double miss = 1.0;
  for (int64_t i = 0; i < top_k; ++i) {
    const double num = static_cast<double>(n_experts - experts_per_worker - i);
    if (num <= 0) return 1.0;
    miss *= num / static_cast<double>(n_experts - i);
  }
  return 1.0 - miss;
}

bool pipeline_hides_communication(double t_f, double t_c, int m) {
  return t_c < t_f && m * t_f >= 2.0 * (t_f + t_c);
}

int min_micro_batches(double t_f, double t_c) {
  return static_cast<int>(std::ceil(2.0 * (1.0 + t_c / t_f) - 1e-12));
}

Result<DisaggregatedSetup> make_disaggregated_setup(const ModelShape& model, double seq_len,
                                                    const GpuSide& attention, const GpuSide& expert,
                                                    int tp_a, int tp_e, double memory_fraction) {
  DisaggregatedSetup s;
  s.model = model;
  s.seq_len = seq_len;
  s.tp_a = tp_a;
  s.tp_e = tp_e;
  MSI_ASSIGN_OR_RETURN(s.attention, attention.profile.attention_at(tp_a, seq_len));
  MSI_ASSIGN_OR_RETURN(s.expert, expert.profile.expert_at(tp_e));
  for (const GpuSide* side : {&attention, &expert}) {
    if (!(side->profile.link.bandwidth_gbs > 0) || side->profile.link.utilization.empty()) {
      return error(StatusCode::kInvalidArgument, "the {} profile has no network link",
                   side->profile.gpu);
    }
  }
  s.attention_link = attention.profile.link;
  s.expert_link = expert.profile.link;
  s.attention_usable_gib = attention.memory_gib() * memory_fraction;
  s.expert_usable_gib = expert.memory_gib() * memory_fraction;
  s.attention_price = attention.price();
  s.expert_price = expert.price();
  return s;
}

Prediction predict_disaggregated(const DisaggregatedSetup& s, const DisaggregatedShape& x,
                                 double slo_ms) {
  const ModelShape& md = s.model;
  const int64_t g = (md.n_experts + x.n_e - 1) / x.n_e;  // experts on the busiest worker
  Prediction p;
  p.b_e = tokens_per_expert(x.n_a, x.b_a, md.top_k, md.n_experts);
  p.t_a_ms = attention_ms(s.attention, x.b_a);
  p.t_e_ms = static_cast<double>(g) * expert_ms(s.expert, p.b_e);
  // Dispatch (combine is the mirror image): every token goes once to each worker it needs.
  const double hit = worker_hit_probability(md.n_experts, md.top_k, g);
  // NOTE: every tensor-parallel rank of an expert worker receives all of the worker's tokens (no
  // collective inside the worker; hardware_profile.cc), and the tp_a ranks of an attention
  // worker send disjoint shares of its tokens.
  const double sent_rows = x.b_a * hit * x.n_e * s.tp_e / s.tp_a;  // one attention GPU
  const double recv_rows = x.n_a * x.b_a * hit;                    // one expert GPU
  const double message_rows = x.b_a * hit / s.tp_a;                // one GPU pair
  const double message = std::max(1.0, message_rows * md.row_bytes());
  p.t_c_ms = std::max(s.attention_link.transfer_ms(sent_rows * md.row_bytes(), message),
                      s.expert_link.transfer_ms(recv_rows * md.row_bytes(), message));
  p.t_f_ms = std::max(p.t_a_ms, p.t_e_ms);
  p.tbt_ms = total_ms(p.t_a_ms, p.t_e_ms, p.t_c_ms, x.m, md.n_layers);
  fill_throughput(p, static_cast<double>(x.n_a) * x.m * x.b_a, x.n_a * s.tp_a + x.n_e * s.tp_e,
                  x.n_a * s.tp_a * s.attention_price + x.n_e * s.tp_e * s.expert_price);

  p.attention_gib =
      (md.non_expert_bytes(s.tp_a) + x.m * x.b_a * s.seq_len * md.kv_bytes_per_token(s.tp_a)) /
      kGiB;
  p.expert_gib = md.expert_bytes(g, s.tp_e) / kGiB;
  if (p.attention_gib > s.attention_usable_gib) {
    p.violated = Constraint::kAttentionMemory;
    p.violation = memory_violation("attention", p.attention_gib, s.attention_usable_gib);
  } else if (p.expert_gib > s.expert_usable_gib) {
    p.violated = Constraint::kExpertMemory;
    p.violation = memory_violation("expert", p.expert_gib, s.expert_usable_gib);
  } else if (!(p.t_c_ms < p.t_f_ms)) {
    p.violated = Constraint::kCommunication;
    p.violation = fmt::format("T_c {:.3f} ms >= T_f {:.3f} ms", p.t_c_ms, p.t_f_ms);
  } else if (x.m * p.t_f_ms < 2.0 * (p.t_f_ms + p.t_c_ms)) {
    p.violated = Constraint::kPipeline;
    p.violation = fmt::format("m·T_f = {}×{:.3f} ms < 2(T_f + T_c) = {:.3f} ms", x.m, p.t_f_ms,
                              2.0 * (p.t_f_ms + p.t_c_ms));
  } else if (p.tbt_ms > slo_ms) {
    p.violated = Constraint::kSlo;
    p.violation = fmt::format("TBT {:.1f} ms > SLO {:.1f} ms", p.tbt_ms, slo_ms);
  }
  return p;
}

Result<ColocatedSetup> make_colocated_setup(const ModelShape& model, double seq_len,
                                            const GpuSide& gpu, int n_gpus, int tp_a,
                                            double memory_fraction) {
  if (n_gpus < 1 || tp_a < 1 || n_gpus % tp_a != 0) {
    return error(StatusCode::kInvalidArgument,
                 "colocated: {} GPUs is not a positive multiple of tp_a {}", n_gpus, tp_a);
  }
  ColocatedSetup s;
  s.model = model;
  s.seq_len = seq_len;
  s.n_gpus = n_gpus;
  s.tp_a = tp_a;
  if (model.n_experts % n_gpus == 0) {
    s.experts_per_gpu = model.n_experts / n_gpus;
  } else if (n_gpus % model.n_experts == 0) {
    s.tp_e = static_cast<int>(n_gpus / model.n_experts);
  } else {
    return error(StatusCode::kInvalidArgument,
                 "colocated: {} GPUs neither divide nor are divided by {} experts", n_gpus,
                 model.n_experts);
  }
  MSI_ASSIGN_OR_RETURN(s.attention, gpu.profile.attention_at(tp_a, seq_len));
  MSI_ASSIGN_OR_RETURN(s.expert, gpu.profile.expert_at(s.tp_e));
  const bool one_node = n_gpus <= 8 && gpu.profile.nvlink.bandwidth_gbs > 0 &&
                        !gpu.profile.nvlink.utilization.empty();
  s.link = one_node ? gpu.profile.nvlink : gpu.profile.link;
  if (n_gpus > 1 && (!(s.link.bandwidth_gbs > 0) || s.link.utilization.empty())) {
    return error(StatusCode::kInvalidArgument, "the {} profile has no link for {} GPUs",
                 gpu.profile.gpu, n_gpus);
  }
  s.usable_gib = gpu.memory_gib() * memory_fraction;
  s.price = gpu.price();
  return s;
}

Prediction predict_colocated(const ColocatedSetup& s, double b, double slo_ms) {
  const ModelShape& md = s.model;
  const int n_groups = s.n_gpus / s.tp_a;
  Prediction p;
  p.b_e = tokens_per_expert(n_groups, b, md.top_k, md.n_experts);
  p.t_a_ms = attention_ms(s.attention, b);
  p.t_e_ms = static_cast<double>(s.experts_per_gpu) * expert_ms(s.expert, p.b_e);
  if (s.n_gpus > 1) {
    // All-to-all: each GPU sends its share of its group's tokens to every other GPU it needs
    // (expert-split GPUs each need every token of their expert).
    const int64_t g = s.experts_per_gpu;
    const double hit = s.tp_e > 1 ? worker_hit_probability(md.n_experts, md.top_k, 1)
                                  : worker_hit_probability(md.n_experts, md.top_k, g);
    const double peers = static_cast<double>(s.n_gpus - 1);
    const double rows = b / s.tp_a * hit * peers;
    const double message = std::max(1.0, b / s.tp_a * hit * md.row_bytes());
    p.t_c_ms = s.link.transfer_ms(rows * md.row_bytes(), message);
  }
  p.t_f_ms = p.t_a_ms + p.t_e_ms;
  p.tbt_ms = md.n_layers * (p.t_a_ms + p.t_e_ms + 2.0 * p.t_c_ms);
  fill_throughput(p, n_groups * b, s.n_gpus, s.n_gpus * s.price);
  p.attention_gib =
      (md.non_expert_bytes(s.tp_a) + b * s.seq_len * md.kv_bytes_per_token(s.tp_a)) / kGiB;
  p.expert_gib = md.expert_bytes(s.experts_per_gpu, s.tp_e) / kGiB;
  if (p.attention_gib + p.expert_gib > s.usable_gib) {
    p.violated = Constraint::kAttentionMemory;
    p.violation = memory_violation("colocated", p.attention_gib + p.expert_gib, s.usable_gib);
  } else if (p.tbt_ms > slo_ms) {
    p.violated = Constraint::kSlo;
    p.violation = fmt::format("TBT {:.1f} ms > SLO {:.1f} ms", p.tbt_ms, slo_ms);
  }
  return p;
}

}  // namespace msi::planner
