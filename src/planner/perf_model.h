// The performance model of MegaScale-Infer (§4.2) for one deployment: T_a, T_e, T_c, T_f,
// T_total, the balance condition, the pipeline and memory constraints, and throughput; plus the
// colocated model (every GPU runs attention and its share of experts) the planner compares with.
//
// Disaggregated layout (what the engine runs): n_a attention workers of tp_a GPUs each, holding
// all non-expert weights and the KV cache of their sequences; n_e expert workers of tp_e GPUs
// each, holding g = ceil(E / n_e) routed experts of every MoE layer (the paper's layout is
// n_e = E, g = 1). Per layer and micro-batch, with b_a sequences per attention worker:
//   b_e  = n_a·b_a·K / E             tokens routed to one expert (uniform routing)
//   T_a  = k1·b_a + k2               attention worker
//   T_e  = g·(k3·b_e + k4)           expert worker (its g experts in turn)
//   T_c  = max(sent by one attention GPU / its link, received by one expert GPU / its link),
//          each link at the utilization of the message size (one message per GPU pair)
//   T_f  = max(T_a, T_e)
//   T_total = (T_a + T_e + 2·T_c) + T_f·(m·L − 1)     one decode step = the TBT
// Balance: T_a ≈ T_e; dropping the intercepts gives n_a = k1·E / (k3·K·g) (the paper's
// n_a = k1·E / (k3·K) for g = 1).
// Constraints: T_c < T_f; m·T_f ≥ 2·(T_f + T_c); T_total ≤ SLO; attention GPU memory ≥
// non-expert weights / tp_a + KV of its m·b_a sequences at the average length; expert GPU memory
// ≥ its g experts' weights / tp_e.
// Throughput = n_a·m·b_a sequences / T_total, per GPU and per unit of (normalized) price.
//
// Values and pure functions; thread-safe. Never allocates beyond the returned strings.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"
#include "planner/gpu_catalog.h"
#include "planner/hardware_profile.h"

namespace msi::planner {

// The byte and FLOP counts of a model that the planner needs, taken from its config.
struct ModelShape {
  std::string name;  // model_type, for messages
  int64_t n_layers = 0, n_moe_layers = 0;
  int64_t hidden = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, vocab = 0;
  int64_t n_experts = 0, top_k = 0;
  double bytes_per_param = 2;
  double attn_params_per_layer = 0;  // q, k, v, o (+bias): split by tp_a
  double mlp_params_per_layer = 0;   // shared expert and dense MLPs, averaged over layers: by tp_a
  double router_params_per_layer = 0;  // averaged over layers; replicated
  double head_params = 0;              // embedding + LM head (one matrix if tied): split by tp_a
  double expert_params = 0;            // one routed expert of one layer (gate, up, down)

  // Non-expert weights on one attention GPU (whole model), bytes.
  double non_expert_bytes(int tp_a) const;
  // KV cache of one token on one attention GPU (all layers), bytes; KV heads split by tp_a,
  // replicated once tp_a exceeds them.
  double kv_bytes_per_token(int tp_a) const;
  // Weights of g routed experts (all MoE layers) on one expert GPU, bytes.
  double expert_bytes(int64_t g, int tp_e) const;
  // Non-expert weights read per layer per micro-batch on one attention GPU (the LM head, read
  // once per step, amortized over the layers), bytes.
  double attention_read_bytes_per_layer(int tp_a) const;
  double row_bytes() const { return static_cast<double>(hidden) * bytes_per_param; }
};
ModelShape model_shape(const ModelConfig& config);

// ---- closed forms (each a one-liner of the paper's model; tested directly) ----
inline double attention_ms(const AttentionCoeffs& c, double b_a) { return c.k1_ms * b_a + c.k2_ms; }
// One expert's time at b_e tokens: the measured curve where the profile has one, else the line.
double expert_ms(const ExpertCoeffs& c, double b_e);
// T_total = (T_a + T_e + 2·T_c) + T_f·(m·L − 1), T_f = max(T_a, T_e).
double total_ms(double t_a, double t_e, double t_c, int m, int64_t n_layers);
// n_a = k1·E / (k3·K·g): T_a = T_e when the intercepts k2, k4 are negligible.
double balanced_n_attention(double k1, double k3, int64_t n_experts, int64_t top_k,
                            int64_t experts_per_worker = 1);
// Tokens routed to one expert per micro-batch: n_a·b_a·K / E.
double tokens_per_expert(int n_a, double b_a, int64_t top_k, int64_t n_experts);
// The probability that a token has at least one of its K experts among a worker's g of E:
// 1 − C(E−g, K)/C(E, K). A token is sent once to every worker it needs.
double worker_hit_probability(int64_t n_experts, int64_t top_k, int64_t experts_per_worker);
// The ping-pong conditions: T_c < T_f and m·T_f ≥ 2·(T_f + T_c).
bool pipeline_hides_communication(double t_f, double t_c, int m);
// The least m with m·T_f ≥ 2·(T_f + T_c): ceil(2·(1 + T_c/T_f)).
int min_micro_batches(double t_f, double t_c);

// A GPU type with its coefficients: the catalog entry (memory, price) and the profile.
struct GpuSide {
  GpuSpec spec;
  HardwareProfile profile;
  double memory_gib() const {
    return profile.memory_gib > 0 ? profile.memory_gib : spec.memory_gib;
  }
  double price() const { return profile.price > 0 ? profile.price : spec.price; }
};

// Everything fixed while the search varies n_a, n_e, m and b_a.
struct DisaggregatedSetup {
  ModelShape model;
  double seq_len = 0;  // average context length during decode
  int tp_a = 1, tp_e = 1;
  AttentionCoeffs attention;                               // at (tp_a, seq_len)
  ExpertCoeffs expert;                                     // at tp_e
  LinkProfile attention_link, expert_link;                 // the NICs of each side
  double attention_usable_gib = 0, expert_usable_gib = 0;  // memory × memory_fraction
  double attention_price = 0, expert_price = 0;
};
// Looks up the coefficients; NotFound when a profile lacks tp_a or tp_e; InvalidArgument when a
// side has no network link. `memory_fraction` of each GPU's memory is usable (the rest: CUDA
// context, activations, fragmentation).
Result<DisaggregatedSetup> make_disaggregated_setup(const ModelShape& model, double seq_len,
                                                    const GpuSide& attention, const GpuSide& expert,
                                                    int tp_a, int tp_e, double memory_fraction);

struct DisaggregatedShape {
  int n_a = 1;     // attention workers
  int n_e = 1;     // expert workers
  int m = 3;       // micro-batches
  double b_a = 1;  // sequences per micro-batch per attention worker
};

// The constraint a layout violates first (checked in this order).
enum class Constraint {
  kNone,
  kAttentionMemory,  // non-expert weights + KV over the attention GPU's usable memory
  kExpertMemory,     // the experts over the expert GPU's usable memory
  kCommunication,    // T_c ≥ T_f: the transfer cannot hide behind a micro-batch
  kPipeline,         // m·T_f < 2·(T_f + T_c): too few micro-batches to cover the round trip
  kSlo,              // T_total over the TBT SLO
};

struct Prediction {
  double t_a_ms = 0, t_e_ms = 0, t_c_ms = 0, t_f_ms = 0;  // per layer, per micro-batch
  double tbt_ms = 0;                                      // T_total: one decode step
  double b_e = 0;                                         // tokens per expert per micro-batch
  double global_batch = 0;                                // sequences decoding at once
  double tokens_per_s = 0, tokens_per_s_per_gpu = 0, tokens_per_s_per_cost = 0;
  int n_gpus = 0;
  double cost = 0;                           // sum of normalized prices
  double attention_gib = 0, expert_gib = 0;  // needed per GPU
  Constraint violated = Constraint::kNone;
  std::string violation;  // what `violated` says, with numbers
  bool feasible() const { return violated == Constraint::kNone; }
};

// Evaluates one layout: every time, the constraints in order (memory, T_c < T_f, m·T_f ≥
// 2(T_f+T_c), SLO) with the first violated one described in `violation`, and the throughputs.
Prediction predict_disaggregated(const DisaggregatedSetup& setup, const DisaggregatedShape& shape,
                                 double slo_ms);

// Colocated expert parallelism on n_gpus GPUs of one type: n_gpus/tp_a attention groups of tp_a
// GPUs, each decoding b sequences; the experts spread over all GPUs (ceil(E/n_gpus) per GPU, or
// each expert split over n_gpus/E GPUs when n_gpus > E); an all-to-all dispatch and combine per
// layer over NVLink within one node (≤ 8 GPUs with NVLink), else the NIC; no overlap:
//   TBT = L·(T_a(b) + T_e + 2·T_c),  T_e = g·(k3·b_e + k4),  b_e = (n_gpus/tp_a)·b·K/E.
struct ColocatedSetup {
  ModelShape model;
  double seq_len = 0;
  int n_gpus = 1, tp_a = 1, tp_e = 1;
  int64_t experts_per_gpu = 1;
  AttentionCoeffs attention;
  ExpertCoeffs expert;
  LinkProfile link;
  double usable_gib = 0, price = 0;
};
// NotFound when the profile lacks tp_a or the expert split; InvalidArgument when n_gpus is not a
// multiple of tp_a or neither divides nor is divided by E.
Result<ColocatedSetup> make_colocated_setup(const ModelShape& model, double seq_len,
                                            const GpuSide& gpu, int n_gpus, int tp_a,
                                            double memory_fraction);
// `b`: sequences per attention group. Fills t_a/t_e/t_c (t_f = t_a + t_e: nothing overlaps).
Prediction predict_colocated(const ColocatedSetup& setup, double b, double slo_ms);

}  // namespace msi::planner
