#include "roles/expert_worker.h"

namespace msi {

ExpertWorker::ExpertWorker(const ModelConfig& config, Backend& backend, ExpertWeights weights,
                           int64_t max_rows)
    : config_(config), backend_(backend), weights_(std::move(weights)), max_rows_(max_rows) {
  const DType dt = backend.compute_dtype();
  const int64_t h = config.hidden_size;
  x_all_ = backend.alloc(dt, {max_rows, h});
  y_all_ = backend.alloc(dt, {max_rows, h});
  x_expert_ = backend.alloc(dt, {max_rows, h});
  y_expert_ = backend.alloc(dt, {max_rows, h});
  scratch_ = backend.alloc(dt, {2 * max_rows * config.moe_intermediate_size});
  rows_ = backend.alloc(DType::kI32, {max_rows});
  scale_ = backend.alloc(DType::kF32, {max_rows});
  expert_rows_.resize(weights_.experts.size());
  expert_gates_.resize(weights_.experts.size());
  for (size_t j = 0; j < weights_.experts.size(); ++j) {
    expert_rows_[j].reserve(static_cast<size_t>(max_rows));
    expert_gates_[j].reserve(static_cast<size_t>(max_rows));
  }
}

Status ExpertWorker::process(int layer, std::span<const DispatchMessage> in,
                             std::span<CombineMessage> out) {
  MSI_CHECK(in.size() == out.size(), "process: {} inputs, {} outputs", in.size(), out.size());
  MSI_CHECK(config_.is_moe_layer(layer), "layer {} has no experts", layer);
  const int64_t top_k = config_.n_experts_per_tok;
  const auto n_local = static_cast<int32_t>(weights_.experts.size());

  // Plan on the host: concatenate the sources, then list each local expert's rows and gates.
  for (auto& r : expert_rows_) r.clear();
  for (auto& g : expert_gates_) g.clear();
  int64_t total = 0;
  for (const DispatchMessage& m : in) total += m.n_tokens;
  if (total > max_rows_) {
    return error(StatusCode::kInvalidArgument, "expert unit of layer {} has {} tokens, capacity {}",
                 layer, total, max_rows_);
  }
  int64_t row = 0;
  for (const DispatchMessage& m : in) {
    const auto* ids = m.expert_ids.as<int32_t>();
    const auto* gates = m.gates.as<float>();
    for (int64_t t = 0; t < m.n_tokens; ++t, ++row) {
      for (int64_t k = 0; k < top_k; ++k) {
        const int32_t local = ids[t * top_k + k];
        if (local < 0) continue;
        if (local >= n_local) {
          return error(StatusCode::kInvalidArgument, "dispatch names local expert {}, worker holds {}",
                       local, n_local);
        }
        expert_rows_[static_cast<size_t>(local)].push_back(static_cast<int32_t>(row));
        expert_gates_[static_cast<size_t>(local)].push_back(gates[t * top_k + k]);
      }
    }
    if (m.n_tokens > 0) {
      backend_.copy(x_all_.tensor.slice_rows(row - m.n_tokens, m.n_tokens),
                    m.hidden.slice_rows(0, m.n_tokens));
    }
  }

  // Run: one batched MLP per local expert over its rows from every source.
  const Tensor y_all = y_all_.tensor.slice_rows(0, total);
  backend_.fill_zero(y_all);
  const Tensor x_all = x_all_.tensor.slice_rows(0, total);
  for (int32_t j = 0; j < n_local; ++j) {
    const auto& rows = expert_rows_[static_cast<size_t>(j)];
    const auto n = static_cast<int64_t>(rows.size());
    if (n == 0) continue;
    const ExpertFfnWeights& w = weights_.layers[static_cast<size_t>(layer)][static_cast<size_t>(j)];
    const Tensor rows_t = rows_.tensor.slice_rows(0, n);
    const Tensor scale_t = scale_.tensor.slice_rows(0, n);
    backend_.copy_from_host(rows_t, rows.data(), rows.size() * sizeof(int32_t));
    backend_.copy_from_host(scale_t, expert_gates_[static_cast<size_t>(j)].data(), rows.size() * sizeof(float));
    const Tensor xe = x_expert_.tensor.slice_rows(0, n);
    const Tensor ye = y_expert_.tensor.slice_rows(0, n);
    backend_.gather_rows(x_all, rows_t, xe);
    backend_.swiglu_mlp(xe, w.gate.tensor, w.up.tensor, w.down.tensor, ye, scratch_.tensor);
    backend_.scatter_add_rows(ye, rows_t, scale_t, y_all);
  }

  // Return one row per dispatched token to each source.
  row = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    out[i].n_tokens = in[i].n_tokens;
    if (in[i].n_tokens > 0) {
      backend_.copy(out[i].partial.slice_rows(0, in[i].n_tokens), y_all.slice_rows(row, in[i].n_tokens));
    }
    row += in[i].n_tokens;
  }
  return Status::ok();
}

}  // namespace msi
