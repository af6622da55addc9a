#include "engine/worker_channel.h"

namespace msi {

namespace {

nlohmann::json sched_request_to_json(const SchedRequest& r) {
  const SamplingParams& s = r.sampling;
  return {{"id", r.id},
          {"prompt", r.prompt},
          {"temperature", s.temperature},
          {"top_p", s.top_p},
          {"top_k", s.top_k},
          {"seed", s.seed},
          {"has_seed", s.has_seed},
          {"max_tokens", s.max_tokens},
          {"ignore_eos", s.ignore_eos},
          {"stop_token_ids", r.stop_token_ids},
          {"min_tokens", r.min_tokens},
          {"return_logits", r.return_logits},
          {"n_logprobs", r.n_logprobs},
          {"fallback_seed", r.fallback_seed}};
}

SchedRequest sched_request_from_json(const nlohmann::json& j) {
  SchedRequest r;
  r.id = j.at("id");
  r.prompt = j.at("prompt").get<std::vector<int32_t>>();
  r.sampling.temperature = j.at("temperature");
  r.sampling.top_p = j.at("top_p");
  r.sampling.top_k = j.at("top_k");
  r.sampling.seed = j.at("seed");
  r.sampling.has_seed = j.at("has_seed");
  r.sampling.max_tokens = j.at("max_tokens");
  r.sampling.ignore_eos = j.at("ignore_eos");
  r.stop_token_ids = j.at("stop_token_ids").get<std::vector<int32_t>>();
  r.min_tokens = j.at("min_tokens");
  r.return_logits = j.at("return_logits");
  r.n_logprobs = j.at("n_logprobs");
  r.fallback_seed = j.at("fallback_seed");
  return r;
}

}  // namespace

nlohmann::json event_to_json(const WorkerEvent& e) {
  switch (e.kind) {
    case WorkerEvent::Kind::kAdd: return {{"op", "add"}, {"request", sched_request_to_json(e.request)}};
    case WorkerEvent::Kind::kAbort: return {{"op", "abort"}, {"id", e.id}};
    case WorkerEvent::Kind::kWake: return {{"op", "wake"}};
    case WorkerEvent::Kind::kShutdown: return {{"op", "shutdown"}};
  }
  return {};
}

Result<WorkerEvent> event_from_json(const nlohmann::json& j) {
  try {
    WorkerEvent e;
    const std::string op = j.at("op");
    if (op == "add") {
      e.kind = WorkerEvent::Kind::kAdd;
      e.request = sched_request_from_json(j.at("request"));
    } else if (op == "abort") {
      e.kind = WorkerEvent::Kind::kAbort;
      e.id = j.at("id");
    } else if (op == "wake") {
      e.kind = WorkerEvent::Kind::kWake;
    } else if (op == "shutdown") {
      e.kind = WorkerEvent::Kind::kShutdown;
    } else {
      return error(StatusCode::kInvalidArgument, "unknown worker event '{}'", op);
    }
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return error(StatusCode::kInvalidArgument, "bad worker event: {}", ex.what());
  }
}

nlohmann::json report_to_json(const WorkerReport& r) {
  nlohmann::json outputs = nlohmann::json::array();
  for (const SeqOutput& o : r.outputs) {
    nlohmann::json j = {{"id", o.id}, {"token", o.token}, {"finished", o.finished}, {"reason", o.finish_reason}};
    if (!o.logits.empty()) j["logits"] = o.logits;
    if (o.token >= 0) {
      j["logprob"] = o.logprob;
      if (!o.top_logprobs.empty()) j["top"] = o.top_logprobs;
    }
    outputs.push_back(std::move(j));
  }
  const WorkerStats& s = r.stats;
  nlohmann::json j = {{"outputs", std::move(outputs)},
                      {"stats", {{"running", s.n_running}, {"waiting", s.n_waiting}, {"kv_used", s.kv_blocks_used},
                                 {"kv_total", s.kv_blocks_total}, {"preemptions", s.n_preemptions}}}};
  if (!r.expert_tokens.empty()) j["expert_load"] = {{"tokens", r.expert_tokens}, {"steps", r.expert_steps}};
  return j;
}

Result<WorkerReport> report_from_json(const nlohmann::json& j) {
  try {
    WorkerReport r;
    for (const auto& o : j.at("outputs")) {
      SeqOutput out;
      out.id = o.at("id");
      out.token = o.at("token");
      out.finished = o.at("finished");
      out.finish_reason = o.at("reason");
      if (o.contains("logits")) out.logits = o["logits"].get<std::vector<float>>();
      if (o.contains("logprob")) out.logprob = o["logprob"];
      if (o.contains("top")) out.top_logprobs = o["top"].get<std::vector<std::pair<int32_t, float>>>();
      r.outputs.push_back(std::move(out));
    }
    const auto& s = j.at("stats");
    r.stats = {s.at("running"), s.at("waiting"), s.at("kv_used"), s.at("kv_total"), s.at("preemptions")};
    if (j.contains("expert_load")) {
      r.expert_tokens = j["expert_load"].at("tokens").get<std::vector<int64_t>>();
      r.expert_steps = j["expert_load"].at("steps");
    }
    return r;
  } catch (const nlohmann::json::exception& ex) {
    return error(StatusCode::kInvalidArgument, "bad worker report: {}", ex.what());
  }
}

}  // namespace msi
