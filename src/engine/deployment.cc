#include "engine/deployment.h"

namespace msi {

Status Deployment::submit(int worker, SchedRequest request) {
  if (worker < 0 || worker >= n_attention_workers()) {
    return error(StatusCode::kInvalidArgument, "no attention worker {}", worker);
  }
  WorkerEvent add;
  add.kind = WorkerEvent::Kind::kAdd;
  add.request = std::move(request);
  MSI_RETURN_IF_ERROR(post(worker, std::move(add)));
  for (int w = 0; w < n_attention_workers(); ++w) {
    if (w != worker) MSI_RETURN_IF_ERROR(post(w, WorkerEvent{WorkerEvent::Kind::kWake, {}, 0}));
  }
  return Status::ok();
}

Status Deployment::abort(int worker, int64_t id) {
  if (worker < 0 || worker >= n_attention_workers()) {
    return error(StatusCode::kInvalidArgument, "no attention worker {}", worker);
  }
  return post(worker, WorkerEvent{WorkerEvent::Kind::kAbort, {}, id});
}

}  // namespace msi
