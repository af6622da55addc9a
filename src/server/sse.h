// Server-sent events framing for streamed responses (text/event-stream): one "data:" line per
// event and a blank line after it. OpenAI streams end with the literal event "data: [DONE]".
//
// Pure functions; thread-safe; they allocate the returned string.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace msi {

// "data: <compact JSON>\n\n". Compact JSON is one line (strings escape their newlines), so one
// data line carries it. Bytes that are not valid UTF-8 become U+FFFD instead of throwing.
std::string sse_event(const nlohmann::ordered_json& payload);

// "data: [DONE]\n\n": the end of an OpenAI stream.
std::string sse_done();

// ": <text>\n\n", a comment line that clients ignore: a keep-alive. Requires `text` to have no
// '\r' or '\n' (MSI_CHECK).
std::string sse_comment(std::string_view text);

}  // namespace msi
