#include "serving/api_server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>

#include <sys/socket.h>

#include "server/openai_protocol.h"
#include "server/sse.h"

namespace msi {

// Debian's cpp-httplib listens with a backlog of 5: a burst of clients would see dropped
// connections and 1 s retries. Listen again with a real backlog once bound.
class HttpServer final : public httplib::Server {
 public:
  void widen_backlog() { ::listen(svr_sock_, 1024); }
};

namespace {

using openai::ApiError;
using openai::ordered_json;
using namespace std::chrono_literals;

void send_json(httplib::Response& res, int status, const ordered_json& body) {
  res.status = status;
  res.set_content(openai::json_text(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, openai::error_body(e)); }

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

// msinfer:expert_tokens_total, appended to the registry's families: the routed (token, expert)
// pairs since start per MoE layer and global expert id, as the attention workers last reported.
std::string render_expert_tokens(const ExpertLoadWindow& load, const std::string& model_name) {
  constexpr const char* kName = "msinfer:expert_tokens_total";
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} counter\n", kName,
                                metrics::escape_help("Routed (token, expert) pairs per MoE layer and expert, "
                                                     "counted by the attention workers."),
                                kName);
  const std::string model = metrics::escape_label_value(model_name);
  for (int64_t l = 0; l < load.n_layers(); ++l) {
    if (!load.is_moe_layer(l)) continue;
    for (int64_t e = 0; e < load.n_experts(); ++e) {
      const int64_t v = load.totals()[static_cast<size_t>(l * load.n_experts() + e)];
      out += fmt::format("{}{{model_name=\"{}\",layer=\"{}\",expert=\"{}\"}} {}\n", kName, model, l, e,
                         metrics::format_value(static_cast<double>(v)));
    }
  }
  return out;
}

void send_expert_load(httplib::Response& res, const nlohmann::json& window) {
  res.status = 200;
  res.set_content(window.dump(), "application/json");
}

// A prompt checked against the model and turned into an engine request (vLLM's rules: the
// prompt and the completion must fit in max_model_len; no max_tokens means "up to the limit").
openai::ApiResult<ServeRequest> make_serve_request(std::vector<int32_t> ids, const openai::SamplingOptions& s,
                                                   int64_t n_logprobs, const AsyncEngine& engine) {
  const ModelConfig& cfg = engine.config();
  const int64_t max_len = engine.max_model_len();
  if (ids.empty()) return openai::bad_request("the prompt is empty", "prompt");
  for (int32_t id : ids) {
    if (id < 0 || id >= cfg.vocab_size) {
      return openai::bad_request(fmt::format("token id {} is outside the vocabulary [0, {})", id, cfg.vocab_size),
                                 "prompt");
    }
  }
  for (int32_t id : s.stop_token_ids) {
    if (id >= cfg.vocab_size) {
      return openai::bad_request(fmt::format("stop token id {} is outside the vocabulary [0, {})", id, cfg.vocab_size),
                                 "stop_token_ids");
    }
  }
  const auto n_prompt = static_cast<int64_t>(ids.size());
  if (n_prompt >= max_len) {
    return openai::bad_request(fmt::format("This model's maximum context length is {} tokens. However, your request "
                                           "has {} input tokens. Please reduce the length of the input.",
                                           max_len, n_prompt),
                               "prompt");
  }
  int64_t max_tokens = max_len - n_prompt;
  if (s.max_tokens) {
    if (n_prompt + *s.max_tokens > max_len) {
      return openai::bad_request(
          fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the "
                      "input, {} in the completion). Please reduce the length of the input or completion.",
                      max_len, n_prompt + *s.max_tokens, n_prompt, *s.max_tokens),
          "max_tokens");
    }
    max_tokens = *s.max_tokens;
  }
  if (s.min_tokens > max_tokens) {
    return openai::bad_request(fmt::format("min_tokens ({}) is larger than max_tokens ({})", s.min_tokens, max_tokens),
                               "min_tokens");
  }
  ServeRequest r;
  r.prompt = std::move(ids);
  r.sampling.temperature = static_cast<float>(s.temperature);
  r.sampling.top_p = static_cast<float>(s.top_p);
  r.sampling.top_k = s.top_k;
  if (s.seed) {
    r.sampling.seed = static_cast<uint64_t>(*s.seed);
    r.sampling.has_seed = true;
  }
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = s.ignore_eos;
  r.stop = s.stop;
  r.stop_token_ids = s.stop_token_ids;
  r.min_tokens = s.min_tokens;
  r.n_logprobs = n_logprobs;
  return r;
}

// What one choice accumulates.
struct ChoiceState {
  std::shared_ptr<RequestHandle> handle;
  std::string text;
  std::vector<openai::TokenLogprob> logprobs;
  int64_t n_prompt = 0, n_output = 0;
  int64_t streamed_chars = 0;  // code points already streamed (completion text_offset)
  bool done = false;
  std::string finish_reason;
  openai::StopReason stop_reason;
};

std::vector<openai::TokenLogprob> to_api_logprobs(const TextFrontend& f, const StreamDelta& d) {
  std::vector<openai::TokenLogprob> out;
  for (const TokenLogprob& lp : d.logprobs) {
    openai::TokenLogprob t;
    auto text = f.tokenizer().decode(std::span<const int32_t>(&lp.token, 1), false);
    t.token = text.is_ok() ? *text : "";
    t.logprob = lp.logprob;
    for (const auto& [id, v] : lp.top) {
      auto alt = f.tokenizer().decode(std::span<const int32_t>(&id, 1), false);
      t.top_logprobs.push_back({alt.is_ok() ? *alt : "", v});
    }
    out.push_back(std::move(t));
  }
  return out;
}

void apply_delta(ChoiceState& c, const StreamDelta& d, const std::vector<int32_t>& stop_token_ids) {
  c.text += d.text;
  c.n_prompt = d.n_prompt_tokens;
  c.n_output = d.n_output_tokens;
  if (d.finished) {
    c.done = true;
    c.finish_reason = d.finish_reason;
    if (!d.stop_string.empty()) {
      c.stop_reason = d.stop_string;
    } else if (d.stop_token >= 0 &&
               std::find(stop_token_ids.begin(), stop_token_ids.end(), d.stop_token) != stop_token_ids.end()) {
      c.stop_reason = static_cast<int64_t>(d.stop_token);  // a stop_token_ids hit (EOS gives null)
    }
  }
}

// Waits for the next delta of `c`, up to a second at a time, while the engine is healthy.
Result<StreamDelta> wait_delta(ChoiceState& c, const AsyncEngine& engine) {
  for (;;) {
    Result<StreamDelta> d = c.handle->next(1000ms);
    if (d.status().code() != StatusCode::kDeadlineExceeded) return d;
    MSI_RETURN_IF_ERROR(engine.health());
  }
}

enum class Api { kCompletions, kChat };

struct Job {
  Api api;
  openai::ResponseMeta meta;
  std::vector<ChoiceState> choices;
  std::vector<int32_t> stop_token_ids;
  bool want_logprobs = false;
  bool include_usage = false;
};

openai::Usage usage_of(const Job& job) {
  openai::Usage u;
  for (const ChoiceState& c : job.choices) {
    u.prompt_tokens += c.n_prompt;
    u.completion_tokens += c.n_output;
  }
  return u;
}

// Runs the job to the end and builds the JSON response.
void respond_whole(Job& job, AsyncEngine& engine, const TextFrontend& frontend, httplib::Response& res) {
  for (ChoiceState& c : job.choices) {
    while (!c.done) {
      Result<StreamDelta> d = wait_delta(c, engine);
      if (!d.is_ok()) {
        for (ChoiceState& o : job.choices) o.handle->cancel();
        return send_error(res, ApiError{503, "", "the engine failed: " + d.status().message(), ""});
      }
      apply_delta(c, *d, job.stop_token_ids);
      if (job.want_logprobs) {
        auto lps = to_api_logprobs(frontend, *d);
        c.logprobs.insert(c.logprobs.end(), lps.begin(), lps.end());
      }
    }
  }
  if (job.api == Api::kCompletions) {
    std::vector<openai::CompletionChoice> out;
    for (size_t i = 0; i < job.choices.size(); ++i) {
      const ChoiceState& c = job.choices[i];
      openai::CompletionChoice cc;
      cc.index = static_cast<int64_t>(i);
      cc.text = c.text;
      if (job.want_logprobs) cc.logprobs = c.logprobs;
      cc.finish_reason = c.finish_reason;
      cc.stop_reason = c.stop_reason;
      out.push_back(std::move(cc));
    }
    return send_json(res, 200, openai::completion_response(job.meta, out, usage_of(job)));
  }
  std::vector<openai::ChatChoice> out;
  for (size_t i = 0; i < job.choices.size(); ++i) {
    const ChoiceState& c = job.choices[i];
    openai::ChatChoice cc;
    cc.index = static_cast<int64_t>(i);
    cc.content = c.text;
    if (job.want_logprobs) cc.logprobs = c.logprobs;
    cc.finish_reason = c.finish_reason;
    cc.stop_reason = c.stop_reason;
    out.push_back(std::move(cc));
  }
  send_json(res, 200, openai::chat_response(job.meta, out, usage_of(job)));
}

// Streams the job as Server-Sent Events in OpenAI's chunk format. A failed write means the
// client is gone: every unfinished request of the job is aborted (its KV freed) at once.
void respond_stream(std::shared_ptr<Job> job, AsyncEngine& engine, const TextFrontend& frontend,
                    httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, &engine, &frontend](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        if (job->api == Api::kChat) {
          for (size_t i = 0; i < job->choices.size(); ++i) {
            if (!write(sse_event(openai::chat_role_chunk(job->meta, static_cast<int64_t>(i))))) return false;
          }
        }
        size_t n_done = 0;
        while (n_done < job->choices.size()) {
          for (size_t i = 0; i < job->choices.size(); ++i) {
            ChoiceState& c = job->choices[i];
            if (c.done) continue;
            Result<StreamDelta> d = c.handle->next(20ms);
            if (d.status().code() == StatusCode::kDeadlineExceeded) {
              if (!engine.health().is_ok()) d = engine.health();
              else continue;
            }
            if (!d.is_ok()) {  // the engine failed: end the stream with an error event
              write(sse_event(openai::error_body(ApiError{503, "", d.status().message(), ""})));
              write(sse_done());
              sink.done();
              return true;
            }
            apply_delta(c, *d, job->stop_token_ids);
            std::optional<std::vector<openai::TokenLogprob>> lps;
            if (job->want_logprobs) lps = to_api_logprobs(frontend, *d);
            std::optional<std::string> finish;
            if (c.done) finish = c.finish_reason;
            std::string event;
            if (job->api == Api::kCompletions) {
              openai::CompletionChoice cc;
              cc.index = static_cast<int64_t>(i);
              cc.text = d->text;
              cc.logprobs = lps;
              cc.text_offset = c.streamed_chars;
              cc.finish_reason = finish;
              if (c.done) cc.stop_reason = c.stop_reason;
              c.streamed_chars += openai::utf8_length(d->text);
              event = sse_event(openai::completion_chunk(job->meta, cc));
            } else {
              if (!d->text.empty() || (lps && !lps->empty())) {
                openai::ChatChunkChoice cc;
                cc.index = static_cast<int64_t>(i);
                cc.delta.content = d->text;
                cc.logprobs = lps;
                event = sse_event(openai::chat_chunk(job->meta, cc));
              }
              if (c.done) {
                openai::ChatChunkChoice last;
                last.index = static_cast<int64_t>(i);
                last.finish_reason = finish;
                last.stop_reason = c.stop_reason;
                event += sse_event(openai::chat_chunk(job->meta, last));
              }
            }
            if (!event.empty() && !write(event)) {
              for (ChoiceState& o : job->choices) o.handle->cancel();  // the client is gone
              return false;
            }
            if (c.done) ++n_done;
          }
        }
        if (job->include_usage) {
          const auto usage = usage_of(*job);
          const std::string e = sse_event(job->api == Api::kCompletions ? openai::completion_usage_chunk(job->meta, usage)
                                                                        : openai::chat_usage_chunk(job->meta, usage));
          if (!write(e)) return false;
        }
        write(sse_done());
        sink.done();
        return true;
      },
      [job](bool) {
        for (ChoiceState& c : job->choices) {
          if (!c.done) c.handle->cancel();  // released early: the client went away
        }
      });
}

}  // namespace

ApiServer::ApiServer(AsyncEngine& engine, const TextFrontend& frontend, metrics::Registry& registry,
                     ApiServerOptions options)
    : engine_(engine), frontend_(frontend), registry_(registry), options_(std::move(options)),
      http_(std::make_unique<HttpServer>()), created_(unix_now()) {
  const int n_threads = std::max(options_.n_http_threads, 4);
  http_->new_task_queue = [n_threads] { return new httplib::ThreadPool(static_cast<size_t>(n_threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_max_count(1000);
  http_->set_tcp_nodelay(true);  // small SSE chunks go out at once
  install_routes();
}

ApiServer::~ApiServer() { stop(); }

Status ApiServer::bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ <= 0) return error(StatusCode::kUnavailable, "cannot bind {}", options_.host);
  } else if (!http_->bind_to_port(options_.host, options_.port)) {
    return error(StatusCode::kUnavailable, "cannot bind {}:{} (in use, or not an address of this host)",
                 options_.host, options_.port);
  } else {
    port_ = options_.port;
  }
  http_->widen_backlog();
  return Status::ok();
}

Status ApiServer::serve() {
  if (!http_->listen_after_bind()) return error(StatusCode::kUnavailable, "the HTTP server stopped with an error");
  return Status::ok();
}

void ApiServer::stop() {
  if (http_) http_->stop();
}

void ApiServer::install_routes() {
  auto& h = *http_;
  const std::vector<std::string> served = {options_.served_model_name};

  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.api_key.empty() || req.path.rfind("/v1", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
      send_error(res, ApiError{401, "", "Unauthorized: a valid API key is required (Authorization: Bearer ...)", ""});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  h.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) return send_error(res, ApiError{413, "", "the request body is too large", ""});
    if (res.status == 404) return send_error(res, openai::not_found("no route " + req.method + " " + req.path));
    send_error(res, ApiError{res.status, "", "HTTP error " + std::to_string(res.status), ""});
  });

  h.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    Status st = engine_.health();
    if (st.is_ok()) {
      res.status = 200;
      return;
    }
    send_error(res, ApiError{503, "", st.message(), ""});
  });
  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    openai::ModelCard card{options_.served_model_name, created_, options_.model_root, engine_.max_model_len()};
    send_json(res, 200, openai::models_response(std::span<const openai::ModelCard>(&card, 1)));
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_.render() + render_expert_tokens(engine_.expert_load(), options_.served_model_name),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  // Expert load in the bench's "expert_load" shape (engine/expert_load.h), for
  // `msinfer plan --expert-load`: the current window, or (reset) the window it closes.
  h.Get("/expert_load", [this](const httplib::Request&, httplib::Response& res) {
    send_expert_load(res, engine_.expert_load_window(false));
  });
  h.Post("/expert_load/reset", [this](const httplib::Request&, httplib::Response& res) {
    send_expert_load(res, engine_.expert_load_window(true));
  });

  h.Post("/tokenize", [this, served](const httplib::Request& req, httplib::Response& res) {
    auto body = openai::parse_json_body(req.body, options_.max_body_bytes);
    if (!body.is_ok()) return send_error(res, body.error());
    auto t = openai::parse_tokenize_request(*body);
    if (!t.is_ok()) return send_error(res, t.error());
    if (t->model) {
      if (auto e = openai::check_model_name(*t->model, served)) return send_error(res, *e);
    }
    Result<std::vector<int32_t>> ids = error(StatusCode::kInternal, "unset");
    if (t->is_chat) {
      ChatRenderOptions o;
      o.add_generation_prompt = t->add_generation_prompt;
      o.tools = t->tools;
      o.extra_context = t->chat_template_kwargs;
      // vLLM's add_special_tokens: the post-processor's tokens on top of what the template wrote.
      auto rendered = frontend_.render_chat(t->messages, o);
      ids = rendered.is_ok() ? frontend_.encode_text(*rendered, t->add_special_tokens)
                             : Result<std::vector<int32_t>>(rendered.status());
    } else {
      ids = frontend_.encode_text(t->prompt, t->add_special_tokens);
    }
    if (!ids.is_ok()) return send_error(res, openai::api_error_from_status(ids.status()));
    send_json(res, 200, openai::tokenize_response(*ids, engine_.max_model_len()));
  });
  h.Post("/detokenize", [this, served](const httplib::Request& req, httplib::Response& res) {
    auto body = openai::parse_json_body(req.body, options_.max_body_bytes);
    if (!body.is_ok()) return send_error(res, body.error());
    auto d = openai::parse_detokenize_request(*body);
    if (!d.is_ok()) return send_error(res, d.error());
    if (d->model) {
      if (auto e = openai::check_model_name(*d->model, served)) return send_error(res, *e);
    }
    auto text = frontend_.tokenizer().decode(d->tokens, false);
    if (!text.is_ok()) return send_error(res, openai::bad_request(text.status().message(), "tokens"));
    send_json(res, 200, openai::detokenize_response(*text));
  });

  auto submit_all = [this](Job& job, std::vector<ServeRequest>& requests) -> std::optional<ApiError> {
    for (ServeRequest& r : requests) {
      ChoiceState c;
      auto handle = engine_.submit(std::move(r));
      if (!handle.is_ok()) {
        for (ChoiceState& o : job.choices) o.handle->cancel();
        return ApiError{503, "", handle.status().message(), ""};  // full, shutting down or failed
      }
      c.handle = *handle;
      job.choices.push_back(std::move(c));
    }
    return std::nullopt;
  };

  h.Post("/v1/completions", [this, served, submit_all](const httplib::Request& req, httplib::Response& res) {
    auto body = openai::parse_json_body(req.body, options_.max_body_bytes);
    if (!body.is_ok()) return send_error(res, body.error());
    auto c = openai::parse_completion_request(*body);
    if (!c.is_ok()) return send_error(res, c.error());
    if (auto e = openai::check_model_name(c->model, served)) return send_error(res, *e);
    std::vector<ServeRequest> requests;
    for (const openai::PromptInput& p : c->prompts) {
      std::vector<int32_t> ids = p.token_ids;
      if (!p.is_tokens) {
        auto enc = frontend_.encode_text(p.text, true);
        if (!enc.is_ok()) return send_error(res, openai::bad_request(enc.status().message(), "prompt"));
        ids = std::move(enc).value();
      }
      auto r = make_serve_request(std::move(ids), c->sampling, c->logprobs ? *c->logprobs : -1, engine_);
      if (!r.is_ok()) return send_error(res, r.error());
      requests.push_back(std::move(r).value());
    }
    auto job = std::make_shared<Job>();
    job->api = Api::kCompletions;
    job->meta = {openai::make_completion_id(), unix_now(), c->model};
    job->stop_token_ids = c->sampling.stop_token_ids;
    job->want_logprobs = c->logprobs.has_value();
    job->include_usage = c->stream.include_usage;
    if (auto e = submit_all(*job, requests)) return send_error(res, *e);
    if (c->stream.stream) return respond_stream(job, engine_, frontend_, res);
    respond_whole(*job, engine_, frontend_, res);
  });

  h.Post("/v1/chat/completions", [this, served, submit_all](const httplib::Request& req, httplib::Response& res) {
    auto body = openai::parse_json_body(req.body, options_.max_body_bytes);
    if (!body.is_ok()) return send_error(res, body.error());
    auto c = openai::parse_chat_request(*body);
    if (!c.is_ok()) return send_error(res, c.error());
    if (auto e = openai::check_model_name(c->model, served)) return send_error(res, *e);
    ChatRenderOptions o;
    o.add_generation_prompt = c->add_generation_prompt;
    o.tools = c->tools;
    o.extra_context = c->chat_template_kwargs;
    auto ids = frontend_.encode_chat(c->messages, o);
    if (!ids.is_ok()) return send_error(res, openai::bad_request(ids.status().message(), "messages"));
    auto r = make_serve_request(std::move(ids).value(), c->sampling, c->logprobs ? c->top_logprobs : -1, engine_);
    if (!r.is_ok()) return send_error(res, r.error());
    std::vector<ServeRequest> requests;
    requests.push_back(std::move(r).value());
    auto job = std::make_shared<Job>();
    job->api = Api::kChat;
    job->meta = {openai::make_chat_completion_id(), unix_now(), c->model};
    job->stop_token_ids = c->sampling.stop_token_ids;
    job->want_logprobs = c->logprobs;
    job->include_usage = c->stream.include_usage;
    if (auto e = submit_all(*job, requests)) return send_error(res, *e);
    if (c->stream.stream) return respond_stream(job, engine_, frontend_, res);
    respond_whole(*job, engine_, frontend_, res);
  });
}

}  // namespace msi
