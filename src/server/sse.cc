#include "server/sse.h"

#include "core/check.h"

namespace msi {

std::string sse_event(const nlohmann::ordered_json& payload) {
  std::string out = "data: ";
  out += payload.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  out += "\n\n";
  return out;
}

std::string sse_done() { return "data: [DONE]\n\n"; }

std::string sse_comment(std::string_view text) {
  MSI_CHECK(text.find_first_of("\r\n") == std::string_view::npos,
            "an SSE comment must be one line");
  std::string out = ": ";
  out += text;
  out += "\n\n";
  return out;
}

}  // namespace msi
