// Stage marks: the roles call mark(stage) as each stage of a step begins — on the device stream,
// in enqueue order — and the span until the next mark belongs to that stage. msinfer bench turns
// them into the per-stage breakdown of a decode step (CUDA events on a GPU).
#pragma once

namespace msi {

enum class Stage : int {
  kAttention = 0,  // norms, QKV, RoPE, KV append, attention, O projection
  kRouter,         // router GEMM, top-k, dispatch layout
  kExperts,        // routed experts (grouped MLPs), the shared expert, dense MLPs
  kCombine,        // unpermute and sum into the MoE output
  kOther,          // embedding, final norm, LM head, sampling
  kCount
};

inline const char* stage_name(Stage s) {
  switch (s) {
    case Stage::kAttention: return "attention";
    case Stage::kRouter: return "router_dispatch";
    case Stage::kExperts: return "experts";
    case Stage::kCombine: return "combine";
    case Stage::kOther: return "other";
    case Stage::kCount: break;
  }
  return "?";
}

class StageMarker {
 public:
  virtual ~StageMarker() = default;
  virtual void mark(Stage stage) = 0;
};

}  // namespace msi
