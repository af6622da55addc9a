// The OpenAI-compatible protocol layer of msinfer's HTTP server: everything between an HTTP body
// and the engine, as pure functions. The HTTP server (which owns sockets, threads, the tokenizer
// and the engine) calls, per request:
//
//   1. parse_json_body(body)                       → ordered_json, or 400/413
//   2. parse_completion_request / parse_chat_request / parse_tokenize_request /
//      parse_detokenize_request                    → a plain struct, or 400 naming the field
//      check_model_name(req.model, served)         → 404 for another model
//   3. (server: tokenize, fill max_tokens when nullopt, run the engine)
//   4. completion_response / chat_response / tokenize_response / models_response, or for a
//      stream sse_event(completion_chunk(...)) ... sse_event(usage chunk) sse_done()
//   5. on any failure: error_body(ApiError) with ApiError::status as the HTTP status (inside a
//      stream: sse_event(error_body(e)) then sse_done()).
//
// Bodies are nlohmann::ordered_json so that key order survives (tools reach the chat template in
// the client's order, and dumped responses are byte-stable).
//
// This header gathers the layer's headers and adds the body-level pieces. Pure functions;
// thread-safe; they allocate their results.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "server/openai_chat_request.h"
#include "server/openai_chat_response.h"
#include "server/openai_completion_request.h"
#include "server/openai_completion_response.h"
#include "server/openai_error.h"
#include "server/openai_models.h"
#include "server/openai_request_id.h"
#include "server/openai_response.h"
#include "server/openai_sampling.h"
#include "server/openai_tokenize.h"

namespace msi::openai {

inline constexpr size_t kDefaultMaxBodyBytes = size_t{32} << 20;  // 32 MiB
// Deeper bodies are refused before parsing: nlohmann's copies and dumps recurse per level.
inline constexpr int kMaxJsonDepth = 64;

// Parses an HTTP request body. Errors: 413 when larger than max_body_bytes; 400 when empty, not
// valid JSON (with the parser's position), nested deeper than kMaxJsonDepth, or not an object.
ApiResult<ordered_json> parse_json_body(std::string_view body,
                                        size_t max_body_bytes = kDefaultMaxBodyBytes);

// Compact JSON text (dump() without spaces) of a response; bytes that are not valid UTF-8 (a
// token cut inside a character) become U+FFFD instead of throwing.
std::string json_text(const ordered_json& j);

}  // namespace msi::openai
