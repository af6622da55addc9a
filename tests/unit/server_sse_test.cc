#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/sse.h"

namespace msi {
namespace {

using nlohmann::ordered_json;

TEST(SseTest, EventIsOneCompactDataLine) {
  ordered_json payload = ordered_json::object();
  payload["id"] = "cmpl-1";
  payload["choices"] = ordered_json::array({ordered_json{{"text", "a b\nc"}}});
  EXPECT_EQ(sse_event(payload),
            "data: {\"id\":\"cmpl-1\",\"choices\":[{\"text\":\"a b\\nc\"}]}\n\n");
}

TEST(SseTest, EventKeepsKeyOrder) {
  ordered_json payload = ordered_json::object();
  payload["z"] = 1;
  payload["a"] = 2;
  payload["m"] = nullptr;
  EXPECT_EQ(sse_event(payload), "data: {\"z\":1,\"a\":2,\"m\":null}\n\n");
}

TEST(SseTest, EventReplacesInvalidUtf8InsteadOfThrowing) {
  ordered_json payload = ordered_json::object();
  payload["text"] = std::string("ok\xE4", 3);  // a character cut after its first byte
  EXPECT_EQ(sse_event(payload), "data: {\"text\":\"ok\xEF\xBF\xBD\"}\n\n");
}

TEST(SseTest, Done) { EXPECT_EQ(sse_done(), "data: [DONE]\n\n"); }

TEST(SseTest, Comment) { EXPECT_EQ(sse_comment("keep-alive"), ": keep-alive\n\n"); }

TEST(SseDeathTest, CommentWithNewlineIsABug) {
  EXPECT_DEATH((void)sse_comment("two\nlines"), "one line");
}

}  // namespace
}  // namespace msi
