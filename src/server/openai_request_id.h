// Request ids for responses: "cmpl-<32 hex>" and "chatcmpl-<32 hex>" (128 random bits, like
// vLLM's uuid4().hex), unique with overwhelming probability across threads and restarts.
//
// Thread-safe: each thread draws from its own generator, seeded once from std::random_device.
// Allocates the returned string; never blocks after a thread's first call.
#pragma once

#include <string>
#include <string_view>

namespace msi::openai {

// `prefix` followed by 32 lowercase hex digits.
std::string make_request_id(std::string_view prefix);

inline std::string make_completion_id() { return make_request_id("cmpl-"); }
inline std::string make_chat_completion_id() { return make_request_id("chatcmpl-"); }

}  // namespace msi::openai
