#include "roles/expert_server.h"

#include "roles/moe_message.h"

namespace msi {

ExpertServer::ExpertServer(const ModelConfig& config, ExpertUnitHandler& handler,
                           std::unique_ptr<comm::M2NReceiver> dispatch,
                           std::unique_ptr<comm::M2NSender> combine, int n_attention_workers,
                           int n_micro_batches, Timeline* timeline)
    : config_(config),
      handler_(handler),
      dispatch_(std::move(dispatch)),
      combine_(std::move(combine)),
      n_sources_(n_attention_workers),
      n_micro_batches_(n_micro_batches),
      timeline_(timeline),
      headers_(static_cast<size_t>(n_attention_workers)),
      replies_(static_cast<size_t>(n_attention_workers)) {
  for (int l = 0; l < config.n_layers; ++l) {
    if (config.is_moe_layer(l)) moe_layers_.push_back(l);
  }
  if (timeline_ != nullptr && handler_.device_backend() != nullptr) {
    device_ = std::make_unique<DeviceTimeline>(*handler_.device_backend());
  }
}

Status ExpertServer::run() {
  MSI_CHECK(!moe_layers_.empty(), "an expert server needs a model with MoE layers");
  for (int64_t step = 0;; ++step) {
    bool idle_step = false;
    for (size_t li = 0; li < moe_layers_.size() && !idle_step; ++li) {
      for (int mb = 0; mb < n_micro_batches_ && !idle_step; ++mb) {
        bool stop = false;
        // After a step where everyone was idle, the next step starts whenever a request comes:
        // its first unit is waited for without a deadline (dead peers are still noticed).
        const bool patient = after_idle_step_ && li == 0 && mb == 0;
        MSI_RETURN_IF_ERROR(
            serve_unit(UnitId{step, moe_layers_[li], mb}, patient, &stop, &idle_step));
        if (stop) {
          if (device_) device_->flush_into(*timeline_);
          return Status::ok();
        }
      }
    }
    after_idle_step_ = idle_step;
  }
}

Status ExpertServer::serve_unit(const UnitId& unit, bool patient, bool* stop, bool* idle_step) {
  const bool first_unit_of_step = unit.layer == moe_layers_.front() && unit.micro_batch == 0;
  // Wait for every source's message of this unit.
  Timeline::Span wait =
      timeline_ ? timeline_->begin(SpanKind::kExpertWait, unit) : Timeline::Span{};
  bool all_idle = true, all_shutdown = true;
  for (int s = 0; s < n_sources_; ++s) {
    Result<comm::Message> received = dispatch_->receive(s, &unit);
    while (patient && received.status().code() == StatusCode::kDeadlineExceeded) {
      received = dispatch_->receive(s, &unit);
    }
    MSI_ASSIGN_OR_RETURN(comm::Message msg, std::move(received));
    headers_[static_cast<size_t>(s)] = msg.header;
    all_idle = all_idle && (msg.header.flags & kFlagIdle) != 0;
    all_shutdown = all_shutdown && (msg.header.flags & kFlagShutdown) != 0;
    MSI_RETURN_IF_ERROR(handler_.take(s, msg.header, msg.payload));
  }
  if (timeline_) timeline_->end(wait);
  // This unit's tokens are ready only once the sources have combined this device's results of
  // the previous step: resolving the marks so far waits at most for work that this unit's compute
  // would wait for anyway.
  if (device_ && first_unit_of_step && device_->half_full()) device_->flush_into(*timeline_);

  if (first_unit_of_step && all_idle) {
    // Nobody has work: tell them (they may sleep until they have), or that the run is over.
    for (int s = 0; s < n_sources_; ++s) {
      dispatch_->release(s);
      comm::MessageHeader reply;
      reply.unit = unit;
      reply.flags = all_shutdown ? kFlagStop : kFlagAllIdle;
      MSI_RETURN_IF_ERROR(combine_->send(s, reply, {}));
    }
    *stop = all_shutdown;
    *idle_step = true;
    return Status::ok();
  }

  // Replies are written in place into each source's combine mailbox.
  for (int s = 0; s < n_sources_; ++s) {
    MSI_ASSIGN_OR_RETURN(replies_[static_cast<size_t>(s)], combine_->acquire(s));
    headers_[static_cast<size_t>(s)] = comm::MessageHeader{};
    headers_[static_cast<size_t>(s)].unit = unit;
  }
  const int64_t rows = handler_.unit_rows();
  Timeline::Span compute =
      timeline_ ? timeline_->begin(SpanKind::kExpertCompute, unit, rows) : Timeline::Span{};
  handler_.wait_inputs();  // so that the device span below times the compute only
  DeviceTimeline::Span device = device_ && rows > 0
                                    ? device_->begin(SpanKind::kExpertCompute, unit, rows)
                                    : DeviceTimeline::Span{};
  Status st = handler_.run(unit.layer, replies_, headers_);
  if (device_) device_->end(device);
  if (timeline_) timeline_->end(compute);
  for (int s = 0; s < n_sources_; ++s) dispatch_->release(s);
  MSI_RETURN_IF_ERROR(st);
  for (int s = 0; s < n_sources_; ++s)
    MSI_RETURN_IF_ERROR(combine_->commit(s, headers_[static_cast<size_t>(s)]));
  return Status::ok();
}

}  // namespace msi
