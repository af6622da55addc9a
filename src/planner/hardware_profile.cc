#include "planner/hardware_profile.h"
#include "planner/json_reader.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "planner/perf_model.h"

namespace msi::planner {

using nlohmann::json;

double LinkProfile::utilization_at(double message_bytes) const {
  const auto& u = utilization;
  if (message_bytes <= u.front().bytes) return u.front().utilization;
  if (message_bytes >= u.back().bytes) return u.back().utilization;
  const auto hi = std::upper_bound(u.begin(), u.end(), message_bytes,
                                   [](double v, const UtilizationPoint& p) { return v < p.bytes; });
  const auto lo = hi - 1;
  const double t =
      (std::log(message_bytes) - std::log(lo->bytes)) / (std::log(hi->bytes) - std::log(lo->bytes));
  return lo->utilization + t * (hi->utilization - lo->utilization);
}

double LinkProfile::transfer_ms(double bytes, double message_bytes) const {
  if (bytes <= 0) return 0;
  return bytes / (bandwidth_gbs * 1e9 * utilization_at(message_bytes)) * 1e3;
}

LinkProfile latency_bandwidth_link(double bandwidth_gbs, double latency_us) {
  LinkProfile link;
  link.bandwidth_gbs = bandwidth_gbs;
  if (!(bandwidth_gbs > 0)) return link;
  for (double s = 256; s <= 1024.0 * 1024 * 1024; s *= 4) {
    // time = latency + s / bandwidth  ⇒  utilization = (s / bandwidth) / time
    const double wire_s = s / (bandwidth_gbs * 1e9);
    link.utilization.push_back({s, wire_s / (latency_us * 1e-6 + wire_s)});
  }
  return link;
}

ProfileModel profile_model_of(const ModelConfig& c) {
  return {c.model_type, c.hidden_size,       c.n_layers,
          c.n_experts,  c.n_experts_per_tok, c.moe_intermediate_size};
}

Status check_profile_model(const HardwareProfile& p, const ModelConfig& config) {
  const ProfileModel want = profile_model_of(config);
  const auto differ = [&](const char* field, auto have, auto need) {
    return error(StatusCode::kInvalidArgument,
                 "the {} profile was taken for another model: model.{} is {}, the model has {}",
                 p.gpu, field, have, need);
  };
  if (p.model.model_type != want.model_type)
    return differ("model_type", p.model.model_type, want.model_type);
  if (p.model.hidden_size != want.hidden_size)
    return differ("hidden_size", p.model.hidden_size, want.hidden_size);
  // NOTE: n_layers is not compared: every coefficient is per layer, so a profile taken on fewer
  // layers (msinfer profile --layers, to keep it fast) holds for the whole model.
  if (p.model.n_experts != want.n_experts)
    return differ("n_experts", p.model.n_experts, want.n_experts);
  if (p.model.n_experts_per_tok != want.n_experts_per_tok)
    return differ("n_experts_per_tok", p.model.n_experts_per_tok, want.n_experts_per_tok);
  if (p.model.moe_intermediate_size != want.moe_intermediate_size)
    return differ("moe_intermediate_size", p.model.moe_intermediate_size,
                  want.moe_intermediate_size);
  return Status::ok();
}

std::vector<int> HardwareProfile::attention_tps() const {
  std::set<int> s;
  for (const auto& a : attention) s.insert(a.tp);
  return {s.begin(), s.end()};
}

std::vector<int> HardwareProfile::expert_tps() const {
  std::set<int> s;
  for (const auto& e : expert) s.insert(e.tp);
  return {s.begin(), s.end()};
}

namespace {

std::string tp_list(const std::vector<int>& tps) {
  std::string out;
  for (int tp : tps) out += (out.empty() ? "" : ", ") + std::to_string(tp);
  return out.empty() ? "none" : out;
}

}  // namespace

Result<AttentionCoeffs> HardwareProfile::attention_at(int tp, double seq_len) const {
  std::vector<AttentionCoeffs> pts;
  for (const auto& a : attention) {
    if (a.tp == tp) pts.push_back(a);
  }
  if (pts.empty()) {
    return error(StatusCode::kNotFound,
                 "the {} profile has no attention coefficients for tp {} "
                 "(it has tp {})",
                 gpu, tp, tp_list(attention_tps()));
  }
  std::sort(pts.begin(), pts.end(),
            [](const auto& x, const auto& y) { return x.seq_len < y.seq_len; });
  if (pts.size() == 1) return pts[0];
  // The segment holding seq_len, or the first/last one to extrapolate.
  size_t i = 0;
  while (i + 2 < pts.size() && seq_len > pts[i + 1].seq_len) ++i;
  const AttentionCoeffs& lo = pts[i];
  const AttentionCoeffs& hi = pts[i + 1];
  const double t = (seq_len - lo.seq_len) / (hi.seq_len - lo.seq_len);
  AttentionCoeffs out{tp, seq_len, lo.k1_ms + t * (hi.k1_ms - lo.k1_ms),
                      lo.k2_ms + t * (hi.k2_ms - lo.k2_ms)};
  out.k1_ms = std::max(0.0, out.k1_ms);
  out.k2_ms = std::max(0.0, out.k2_ms);
  return out;
}

Result<ExpertCoeffs> HardwareProfile::expert_at(int tp) const {
  for (const auto& e : expert) {
    if (e.tp == tp) return e;
  }
  return error(StatusCode::kNotFound,
               "the {} profile has no expert coefficients for tp {} "
               "(it has tp {})",
               gpu, tp, tp_list(expert_tps()));
}

// ---- roofline estimate ----

namespace {

// The chord of a convex time curve between batch 1 and `anchor`: {slope, intercept}.
template <typename Fn>
std::pair<double, double> chord(Fn time_ms, int64_t anchor) {
  const double b1 = static_cast<double>(std::max<int64_t>(anchor, 2));
  const double t0 = time_ms(1.0), t1 = time_ms(b1);
  const double slope = (t1 - t0) / (b1 - 1.0);
  return {slope, t0 - slope};
}

// Ring all-reduce of `bytes` over `tp` GPUs: 2(tp−1)/tp of the data crosses each link.
double allreduce_ms(double bytes, int tp, double link_gbs, double latency_us) {
  if (tp <= 1) return 0;
  return 2.0 * (tp - 1) / tp * bytes / (link_gbs * 1e9) * 1e3 + latency_us * 1e-3;
}

}  // namespace

HardwareProfile estimate_profile(const GpuSpec& gpu, const ModelConfig& config,
                                 const EstimateOptions& o) {
  const ModelShape md = model_shape(config);
  const double bw = gpu.hbm_tbs * 1e12 * o.memory_efficiency;          // bytes/s
  const double flops = gpu.bf16_tflops * 1e12 * o.compute_efficiency;  // FLOP/s
  const double intra = gpu.intra_node_gbs();
  const bool has_mlp = md.mlp_params_per_layer > 0;  // shared expert / dense MLP: one more reduce

  HardwareProfile p;
  p.gpu = gpu.name;
  p.source = "roofline-estimate";
  p.model = profile_model_of(config);
  for (int tp : o.tps) {
    const double weights = md.attention_read_bytes_per_layer(tp);
    const double gemm_flops = 2.0 * (weights / md.bytes_per_param);  // per sequence
    const double kv_per_token = md.kv_bytes_per_token(tp) / md.n_layers;
    const double heads = std::ceil(static_cast<double>(md.n_heads) / tp);
    for (double seq : o.seq_lens) {
      // [b] sequences: GEMMs max(weights, FLOPs); attention over the KV max(KV bytes, FLOPs);
      // all-reduce of the [b, hidden] output (and of the MLP output) across tp.
      const auto time_ms = [&](double b) {
        const double gemm = std::max(weights / bw, gemm_flops * b / flops);
        const double attn =
            std::max(kv_per_token * seq * b / bw, 4.0 * heads * md.head_dim * seq * b / flops);
        const double reduce = (has_mlp ? 2 : 1) *
                              allreduce_ms(b * md.row_bytes(), tp, intra, o.collective_latency_us);
        return (gemm + attn) * 1e3 + reduce + o.attention_overhead_us * 1e-3;
      };
      const auto [k1, k2] = chord(time_ms, o.attention_anchor);
      p.attention.push_back({tp, seq, k1, k2});
    }
  }
  for (int tp : o.tps) {
    const double weights = md.expert_params * md.bytes_per_param / tp;
    const double expert_flops = 2.0 * md.expert_params / tp;  // per token
    // [b] tokens: grouped GEMMs max(weights, FLOPs). NOTE: no collective — M2N delivers each
    // token to every tensor-parallel rank of its expert worker and the attention side adds the
    // tp partial outputs, so expert TP costs link bytes (perf_model.cc: T_c), not T_e.
    const auto time_ms = [&](double b) {
      return std::max(weights / bw, expert_flops * b / flops) * 1e3 + o.expert_overhead_us * 1e-3;
    };
    const auto [k3, k4] = chord(time_ms, o.expert_anchor);
    p.expert.push_back({tp, k3, k4, {}});
  }
  p.link = latency_bandwidth_link(gpu.nic_gbs, o.network_latency_us);
  p.nvlink = latency_bandwidth_link(gpu.nvlink_one_way_gbs(), o.nvlink_latency_us);
  p.notes = fmt::format(
      "roofline estimate from the catalog entry: memory efficiency {}, compute efficiency {}, "
      "overheads {} us (attention) / {} us (expert), anchors {} sequences / {} tokens",
      o.memory_efficiency, o.compute_efficiency, o.attention_overhead_us, o.expert_overhead_us,
      o.attention_anchor, o.expert_anchor);
  return p;
}

// ---- JSON ----

namespace {

constexpr const char* kFormat = "msinfer-hardware-profile";

// The profile's fields ("profile field 'attention[2].k1_ms' must be ...", "profile has no 'gpu'").
struct Reader : FieldReader {
  Reader(const json& obj, std::string prefix = "") : FieldReader(obj, "profile", std::move(prefix)) {}
};

json link_to_json(const LinkProfile& l) {
  json curve = json::array();
  for (const auto& u : l.utilization)
    curve.push_back({{"bytes", u.bytes}, {"utilization", u.utilization}});
  return {{"bandwidth_gbs", l.bandwidth_gbs}, {"utilization", curve}};
}

Result<LinkProfile> link_from_json(const json& j, const std::string& prefix) {
  if (!j.is_object()) {
    return error(StatusCode::kInvalidArgument, "profile field '{}' must be an object, got {}",
                 prefix, j.dump());
  }
  const Reader r(j, prefix + ".");
  LinkProfile l;
  MSI_ASSIGN_OR_RETURN(l.bandwidth_gbs, r.number("bandwidth_gbs", 0, false));
  const json* curve = r.find("utilization");
  if (!curve) {
    if (l.bandwidth_gbs > 0) return r.missing("utilization");
    return l;
  }
  if (!curve->is_array() || (curve->empty() && l.bandwidth_gbs > 0)) {
    return r.bad("utilization", "a non-empty list of {\"bytes\", \"utilization\"}");
  }
  for (size_t i = 0; i < curve->size(); ++i) {
    const std::string at = fmt::format("{}.utilization[{}]", prefix, i);
    if (!(*curve)[i].is_object()) {
      return error(StatusCode::kInvalidArgument, "profile field '{}' must be an object, got {}", at,
                   (*curve)[i].dump());
    }
    const Reader p((*curve)[i], at + ".");
    UtilizationPoint u;
    MSI_ASSIGN_OR_RETURN(u.bytes, p.number("bytes", 0, true));
    MSI_ASSIGN_OR_RETURN(u.utilization, p.number("utilization", 0, true));
    if (u.utilization > 1) return p.bad("utilization", "a number in (0, 1]");
    if (!l.utilization.empty() && u.bytes <= l.utilization.back().bytes) {
      return p.bad("bytes", "larger than the previous point's");
    }
    l.utilization.push_back(u);
  }
  return l;
}

}  // namespace

json hardware_profile_to_json(const HardwareProfile& p) {
  json attention = json::array(), expert = json::array();
  for (const auto& a : p.attention) {
    attention.push_back(
        {{"tp", a.tp}, {"seq_len", a.seq_len}, {"k1_ms", a.k1_ms}, {"k2_ms", a.k2_ms}});
  }
  for (const auto& e : p.expert) {
    json x = {{"tp", e.tp}, {"k3_ms", e.k3_ms}, {"k4_ms", e.k4_ms}};
    if (!e.curve.empty()) {
      x["curve"] = json::array();
      for (const auto& c : e.curve) x["curve"].push_back({{"tokens", c.tokens}, {"ms", c.ms}});
    }
    expert.push_back(std::move(x));
  }
  json j = {{"format", kFormat},
            {"version", 1},
            {"gpu", p.gpu},
            {"source", p.source},
            {"model",
             {{"model_type", p.model.model_type},
              {"hidden_size", p.model.hidden_size},
              {"n_layers", p.model.n_layers},
              {"n_experts", p.model.n_experts},
              {"n_experts_per_tok", p.model.n_experts_per_tok},
              {"moe_intermediate_size", p.model.moe_intermediate_size}}},
            {"attention", attention},
            {"expert", expert},
            {"link", link_to_json(p.link)}};
  if (p.memory_gib > 0) j["memory_gib"] = p.memory_gib;
  if (p.price > 0) j["price"] = p.price;
  if (p.nvlink.bandwidth_gbs > 0) j["nvlink"] = link_to_json(p.nvlink);
  if (!p.notes.empty()) j["notes"] = p.notes;
  return j;
}

Result<HardwareProfile> hardware_profile_from_json(const json& j) {
  if (!j.is_object()) {
    return error(StatusCode::kInvalidArgument, "a profile must be a JSON object, got {}",
                 j.type_name());
  }
  const Reader r(j);
  MSI_ASSIGN_OR_RETURN(std::string format, r.string("format"));
  if (format != kFormat) return r.bad("format", fmt::format("\"{}\"", kFormat));
  MSI_ASSIGN_OR_RETURN(int64_t version, r.integer("version", 1));
  if (version != 1) return r.bad("version", "1");
  HardwareProfile p;
  MSI_ASSIGN_OR_RETURN(p.gpu, r.string("gpu"));
  if (p.gpu.empty()) return r.bad("gpu", "a GPU name");
  MSI_ASSIGN_OR_RETURN(p.source, r.string("source"));
  if (p.source != "measured" && p.source != "roofline-estimate") {
    return r.bad("source", "\"measured\" or \"roofline-estimate\"");
  }
  MSI_ASSIGN_OR_RETURN(p.memory_gib, r.number("memory_gib", 0, false, 0.0));
  MSI_ASSIGN_OR_RETURN(p.price, r.number("price", 0, false, 0.0));
  MSI_ASSIGN_OR_RETURN(p.notes, r.string("notes", /*required=*/false));

  const json* model = r.find("model");
  if (!model) return r.missing("model");
  if (!model->is_object()) return r.bad("model", "an object");
  const Reader m(*model, "model.");
  MSI_ASSIGN_OR_RETURN(p.model.model_type, m.string("model_type"));
  MSI_ASSIGN_OR_RETURN(p.model.hidden_size, m.integer("hidden_size", 1));
  MSI_ASSIGN_OR_RETURN(p.model.n_layers, m.integer("n_layers", 1));
  MSI_ASSIGN_OR_RETURN(p.model.n_experts, m.integer("n_experts", 1));
  MSI_ASSIGN_OR_RETURN(p.model.n_experts_per_tok, m.integer("n_experts_per_tok", 1));
  MSI_ASSIGN_OR_RETURN(p.model.moe_intermediate_size, m.integer("moe_intermediate_size", 1));

  for (const char* key : {"attention", "expert"}) {
    const json* list = r.find(key);
    if (!list) return r.missing(key);
    if (!list->is_array() || list->empty()) return r.bad(key, "a non-empty list");
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string at = fmt::format("{}[{}]", key, i);
      if (!(*list)[i].is_object()) return r.bad(key, "a list of objects");
      const Reader e((*list)[i], at + ".");
      MSI_ASSIGN_OR_RETURN(int64_t tp, e.integer("tp", 1));
      if (key == std::string_view("attention")) {
        AttentionCoeffs a;
        a.tp = static_cast<int>(tp);
        MSI_ASSIGN_OR_RETURN(a.seq_len, e.number("seq_len", 0, true));
        MSI_ASSIGN_OR_RETURN(a.k1_ms, e.number("k1_ms", 0, false));
        MSI_ASSIGN_OR_RETURN(a.k2_ms, e.number("k2_ms", 0, false));
        for (const auto& o : p.attention) {
          if (o.tp == a.tp && o.seq_len == a.seq_len) return e.bad("seq_len", "unique per tp");
        }
        p.attention.push_back(a);
      } else {
        ExpertCoeffs x;
        x.tp = static_cast<int>(tp);
        MSI_ASSIGN_OR_RETURN(x.k3_ms, e.number("k3_ms", 0, false));
        MSI_ASSIGN_OR_RETURN(x.k4_ms, e.number("k4_ms", 0, false));
        if (const json* curve = e.find("curve")) {
          if (!curve->is_array()) return e.bad("curve", "a list of {tokens, ms}");
          for (size_t c = 0; c < curve->size(); ++c) {
            if (!(*curve)[c].is_object()) return e.bad("curve", "a list of {tokens, ms}");
            const Reader cr((*curve)[c], fmt::format("{}.curve[{}].", at, c));
            ExpertCurvePoint pt;
            MSI_ASSIGN_OR_RETURN(pt.tokens, cr.number("tokens", 0, true));
            MSI_ASSIGN_OR_RETURN(pt.ms, cr.number("ms", 0, false));
            if (!x.curve.empty() && pt.tokens <= x.curve.back().tokens) {
              return cr.bad("tokens", "increasing along the curve");
            }
            x.curve.push_back(pt);
          }
        }
        for (const auto& o : p.expert) {
          if (o.tp == x.tp) return e.bad("tp", "unique");
        }
        p.expert.push_back(x);
      }
    }
  }
  const json* link = r.find("link");
  if (!link) return r.missing("link");
  MSI_ASSIGN_OR_RETURN(p.link, link_from_json(*link, "link"));
  if (!(p.link.bandwidth_gbs > 0)) return r.bad("link", "a link with bandwidth_gbs > 0");
  if (const json* nvlink = r.find("nvlink")) {
    MSI_ASSIGN_OR_RETURN(p.nvlink, link_from_json(*nvlink, "nvlink"));
  }
  return p;
}

Result<HardwareProfile> load_hardware_profile(const std::filesystem::path& path) {
  MSI_ASSIGN_OR_RETURN(json j, read_json_file(path));
  auto p = hardware_profile_from_json(j);
  if (!p.is_ok()) return p.status().with_context(path.string());
  return p;
}

}  // namespace msi::planner
