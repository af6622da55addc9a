// Tests of the OpenAI-compatible protocol layer: request parsing and validation (every field's
// type and range errors name the field), and the exact JSON text of every response builder.
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/openai_protocol.h"

namespace msi::openai {
namespace {

ordered_json parse(const char* text) { return ordered_json::parse(text); }

// `base` with the keys of the JSON object `patch` set (added at the end, or replaced in place).
ordered_json with(const char* base, const char* patch) {
  ordered_json body = parse(base);
  const ordered_json fields = parse(patch);  // NOTE: items() refers to it; keep it alive
  for (const auto& [key, value] : fields.items()) body[key] = value;
  return body;
}

template <typename T>
void expect_bad_request(const ApiResult<T>& r, const std::string& param,
                        const std::string& message) {
  ASSERT_FALSE(r.is_ok()) << "expected 400 " << message;
  EXPECT_EQ(r.error().status, 400);
  EXPECT_EQ(r.error().param, param);
  EXPECT_EQ(r.error().message, message);
}

constexpr const char* kCompletionBase = R"({"model": "m", "prompt": "hi"})";
constexpr const char* kChatBase =
    R"({"model": "m", "messages": [{"role": "user", "content": "hi"}]})";

// ---------------------------------------------------------------------------------------------
// Errors

TEST(ApiErrorTest, BadRequestBodyNamesTheParam) {
  EXPECT_EQ(json_text(error_body(bad_request("'top_p' must be in (0, 1], got 0", "top_p"))),
            R"({"error":{"message":"'top_p' must be in (0, 1], got 0","type":"BadRequestError",)"
            R"("param":"top_p","code":400}})");
}

TEST(ApiErrorTest, EmptyParamIsNull) {
  EXPECT_EQ(json_text(error_body(not_found("The model `x` does not exist."))),
            R"({"error":{"message":"The model `x` does not exist.","type":"NotFoundError",)"
            R"("param":null,"code":404}})");
}

TEST(ApiErrorTest, TypeFollowsStatusUnlessGiven) {
  EXPECT_STREQ(api_error_type(400), "BadRequestError");
  EXPECT_STREQ(api_error_type(401), "AuthenticationError");
  EXPECT_STREQ(api_error_type(404), "NotFoundError");
  EXPECT_STREQ(api_error_type(413), "RequestEntityTooLarge");
  EXPECT_STREQ(api_error_type(503), "ServiceUnavailableError");
  EXPECT_STREQ(api_error_type(500), "InternalServerError");
  EXPECT_STREQ(api_error_type(599), "InternalServerError");
  EXPECT_STREQ(api_error_type(418), "BadRequestError");
  const ApiError custom{503, "EngineBusy", "try later", {}};
  EXPECT_EQ(json_text(error_body(custom)),
            R"({"error":{"message":"try later","type":"EngineBusy","param":null,"code":503}})");
}

TEST(ApiErrorTest, FromStatus) {
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kInvalidArgument, "bad")).status, 400);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kOutOfRange, "long")).status, 400);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kNotFound, "x")).status, 404);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kUnimplemented, "x")).status, 501);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kResourceExhausted, "x")).status, 503);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kUnavailable, "x")).status, 503);
  EXPECT_EQ(api_error_from_status(Status(StatusCode::kDeadlineExceeded, "x")).status, 504);
  const ApiError e = api_error_from_status(Status(StatusCode::kInternal, "boom"));
  EXPECT_EQ(e.status, 500);
  EXPECT_EQ(e.message, "boom");
}

// ---------------------------------------------------------------------------------------------
// Bodies

TEST(JsonBodyTest, ParsesAnObjectKeepingKeyOrder) {
  auto r = parse_json_body(R"({"z": 1, "a": [1, 2], "m": {"y": 0, "b": 1}})");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(json_text(*r), R"({"z":1,"a":[1,2],"m":{"y":0,"b":1}})");
}

TEST(JsonBodyTest, Errors) {
  auto invalid = parse_json_body(R"({"model": )");
  ASSERT_FALSE(invalid.is_ok());
  EXPECT_EQ(invalid.error().status, 400);
  EXPECT_EQ(invalid.error().message.rfind("request body is not valid JSON: parse error", 0), 0u)
      << invalid.error().message;
  expect_bad_request(parse_json_body("[1, 2]"), "", "request body must be a JSON object");
  expect_bad_request(parse_json_body("  \n"), "", "request body is empty");
  expect_bad_request(parse_json_body(std::string(100, '[') + std::string(100, ']')), "",
                     "request body nests deeper than 64 levels");
  // Brackets inside strings are not nesting.
  EXPECT_TRUE(parse_json_body(R"({"prompt": ")" + std::string(100, '[') + R"("})").is_ok());
}

TEST(JsonBodyTest, TooLargeIs413) {
  auto r = parse_json_body(R"({"prompt": "0123456789"})", 10);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.error().status, 413);
  EXPECT_EQ(r.error().message, "request body is 24 bytes; the limit is 10");
  EXPECT_EQ(json_text(error_body(r.error())),
            R"({"error":{"message":"request body is 24 bytes; the limit is 10",)"
            R"("type":"RequestEntityTooLarge","param":null,"code":413}})");
}

TEST(JsonBodyTest, JsonTextReplacesInvalidUtf8) {
  ordered_json j = ordered_json::object();
  j["t"] = std::string("\xFF", 1);
  EXPECT_EQ(json_text(j), "{\"t\":\"\xEF\xBF\xBD\"}");
}

// ---------------------------------------------------------------------------------------------
// /v1/completions

TEST(CompletionRequestTest, Defaults) {
  auto r = parse_completion_request(parse(kCompletionBase));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_EQ(r->model, "m");
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_FALSE(r->prompts[0].is_tokens);
  EXPECT_EQ(r->prompts[0].text, "hi");
  const SamplingOptions& s = r->sampling;
  EXPECT_EQ(s.max_tokens, std::optional<int64_t>(16));
  EXPECT_EQ(s.temperature, 1.0);
  EXPECT_EQ(s.top_p, 1.0);
  EXPECT_EQ(s.top_k, -1);
  EXPECT_FALSE(s.seed.has_value());
  EXPECT_TRUE(s.stop.empty());
  EXPECT_TRUE(s.stop_token_ids.empty());
  EXPECT_FALSE(s.ignore_eos);
  EXPECT_EQ(s.min_tokens, 0);
  EXPECT_FALSE(r->logprobs.has_value());
  EXPECT_FALSE(r->stream.stream);
  EXPECT_FALSE(r->stream.include_usage);
}

TEST(CompletionRequestTest, AllFieldsSet) {
  auto r = parse_completion_request(parse(R"({
      "model": "m", "prompt": "hi", "max_tokens": 32.0, "temperature": 0, "top_p": 0.5,
      "top_k": 40, "seed": -7, "stop": "\n", "stop_token_ids": [2, 3], "ignore_eos": true,
      "min_tokens": 4, "n": 1, "logprobs": 5, "stream": true,
      "stream_options": {"include_usage": true, "continuous_usage_stats": false},
      "user": "u", "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {},
      "echo": false, "best_of": 1, "suffix": null, "an_unknown_field": [1]})"));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  const SamplingOptions& s = r->sampling;
  EXPECT_EQ(s.max_tokens, std::optional<int64_t>(32));
  EXPECT_EQ(s.temperature, 0.0);
  EXPECT_EQ(s.top_p, 0.5);
  EXPECT_EQ(s.top_k, 40);
  EXPECT_EQ(s.seed, std::optional<int64_t>(-7));
  EXPECT_EQ(s.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(s.stop_token_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_TRUE(s.ignore_eos);
  EXPECT_EQ(s.min_tokens, 4);
  EXPECT_EQ(r->logprobs, std::optional<int64_t>(5));
  EXPECT_TRUE(r->stream.stream);
  EXPECT_TRUE(r->stream.include_usage);
}

TEST(CompletionRequestTest, NullMaxTokensMeansNoLimit) {
  auto r = parse_completion_request(with(kCompletionBase, R"({"max_tokens": null})"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->sampling.max_tokens.has_value());
}

TEST(CompletionRequestTest, NullsAreDefaults) {
  auto r = parse_completion_request(with(kCompletionBase, R"({
      "temperature": null, "top_p": null, "top_k": null, "seed": null, "stop": null,
      "stop_token_ids": null, "n": null, "logprobs": null, "stream": null,
      "stream_options": null, "ignore_eos": null, "min_tokens": null})"));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_EQ(r->sampling.temperature, 1.0);
  EXPECT_FALSE(r->logprobs.has_value());
  EXPECT_FALSE(r->stream.stream);
}

TEST(CompletionRequestTest, StopList) {
  auto r =
      parse_completion_request(with(kCompletionBase, R"({"stop": ["a", "bc", "d", "e", "f"]})"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->sampling.stop, (std::vector<std::string>{"a", "bc", "d", "e", "f"}));
}

TEST(CompletionRequestTest, StreamOptionsWithoutIncludeUsage) {
  auto r =
      parse_completion_request(with(kCompletionBase, R"({"stream": true, "stream_options": {}})"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->stream.stream);
  EXPECT_FALSE(r->stream.include_usage);
}

TEST(CompletionRequestTest, PromptListOfStrings) {
  auto r = parse_completion_request(with(kCompletionBase, R"({"prompt": ["a", "b c"]})"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->prompts.size(), 2u);
  EXPECT_FALSE(r->prompts[1].is_tokens);
  EXPECT_EQ(r->prompts[0].text, "a");
  EXPECT_EQ(r->prompts[1].text, "b c");
}

TEST(CompletionRequestTest, PromptTokenIds) {
  auto r = parse_completion_request(with(kCompletionBase, R"({"prompt": [1, 2, 3]})"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_TRUE(r->prompts[0].is_tokens);
  EXPECT_EQ(r->prompts[0].token_ids, (std::vector<int32_t>{1, 2, 3}));
}

TEST(CompletionRequestTest, PromptListsOfTokenIds) {
  auto r = parse_completion_request(with(kCompletionBase, R"({"prompt": [[1, 2], [3]]})"));
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->prompts.size(), 2u);
  EXPECT_TRUE(r->prompts[0].is_tokens);
  EXPECT_EQ(r->prompts[0].token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(r->prompts[1].token_ids, (std::vector<int32_t>{3}));
}

TEST(CompletionRequestTest, NotAnObject) {
  expect_bad_request(parse_completion_request(parse("[1]")), "",
                     "request body must be a JSON object");
}

// One field with a wrong type or value → 400 whose message and param name it.
struct BadField {
  const char* name;   // the test's name
  const char* patch;  // keys set on the endpoint's minimal valid body
  const char* param;
  const char* message;
};

void PrintTo(const BadField& f, std::ostream* os) { *os << f.name; }

std::string bad_field_name(const testing::TestParamInfo<BadField>& info) { return info.param.name; }

class CompletionBadFieldTest : public testing::TestWithParam<BadField> {};

TEST_P(CompletionBadFieldTest, Is400NamingTheField) {
  const BadField& f = GetParam();
  ordered_json body = with(kCompletionBase, f.patch);
  if (body.contains("_drop")) {  // drop the named base key instead
    body.erase(body["_drop"].get<std::string>());
    body.erase("_drop");
  }
  expect_bad_request(parse_completion_request(body), f.param, f.message);
}

const BadField kCompletionBadFields[] = {
    {"ModelMissing", R"({"_drop": "model"})", "model", "'model' is required"},
    {"ModelNull", R"({"model": null})", "model", "'model' is required"},
    {"ModelType", R"({"model": 5})", "model", "'model' must be a string"},
    {"PromptMissing", R"({"_drop": "prompt"})", "prompt", "'prompt' is required"},
    {"PromptEmptyString", R"({"prompt": ""})", "prompt", "prompt is empty"},
    {"PromptEmptyList", R"({"prompt": []})", "prompt", "prompt is empty"},
    {"PromptEmptyElementString", R"({"prompt": ["a", ""]})", "prompt[1]", "prompt[1] is empty"},
    {"PromptEmptyElementList", R"({"prompt": [[1], []]})", "prompt[1]", "prompt[1] is empty"},
    {"PromptNumber", R"({"prompt": 5})", "prompt",
     "'prompt' must be a string, a list of strings, a list of token ids or a list of lists of "
     "token ids"},
    {"PromptObject", R"({"prompt": {"text": "a"}})", "prompt",
     "'prompt' must be a string, a list of strings, a list of token ids or a list of lists of "
     "token ids"},
    {"PromptListOfBools", R"({"prompt": [true]})", "prompt[0]",
     "'prompt[0]' must be a string, a token id or a list of token ids"},
    {"PromptStringThenNumber", R"({"prompt": ["a", 1]})", "prompt[1]",
     "'prompt[1]' must be a string, like prompt[0]"},
    {"PromptNumberThenString", R"({"prompt": [1, "a"]})", "prompt[1]",
     "'prompt[1]' must be an integer"},
    {"PromptListThenNumber", R"({"prompt": [[1], 2]})", "prompt[1]",
     "'prompt[1]' must be a list of token ids, like prompt[0]"},
    {"PromptNegativeTokenId", R"({"prompt": [5, -1]})", "prompt[1]",
     "'prompt[1]' must be between 0 and 2147483647, got -1"},
    {"PromptTokenIdTooLarge", R"({"prompt": [[1, 2147483648]]})", "prompt[0][1]",
     "'prompt[0][1]' must be between 0 and 2147483647, got 2147483648"},
    {"PromptFractionalTokenId", R"({"prompt": [1.5]})", "prompt[0]",
     "'prompt[0]' must be an integer"},
    {"MaxTokensString", R"({"max_tokens": "16"})", "max_tokens", "'max_tokens' must be an integer"},
    {"MaxTokensFraction", R"({"max_tokens": 1.5})", "max_tokens",
     "'max_tokens' must be an integer"},
    {"MaxTokensZero", R"({"max_tokens": 0})", "max_tokens",
     "'max_tokens' must be at least 1, got 0"},
    {"MaxTokensHuge", R"({"max_tokens": 1e30})", "max_tokens",
     "'max_tokens' must be at least 1, got 1e+30"},
    {"TemperatureString", R"({"temperature": "hot"})", "temperature",
     "'temperature' must be a number"},
    {"TemperatureBool", R"({"temperature": true})", "temperature",
     "'temperature' must be a number"},
    {"TemperatureHigh", R"({"temperature": 2.5})", "temperature",
     "'temperature' must be between 0 and 2, got 2.5"},
    {"TemperatureNegative", R"({"temperature": -0.1})", "temperature",
     "'temperature' must be between 0 and 2, got -0.1"},
    {"TopPZero", R"({"top_p": 0})", "top_p", "'top_p' must be in (0, 1], got 0"},
    {"TopPHigh", R"({"top_p": 1.5})", "top_p", "'top_p' must be in (0, 1], got 1.5"},
    {"TopPType", R"({"top_p": [1]})", "top_p", "'top_p' must be a number"},
    {"TopKLow", R"({"top_k": -2})", "top_k", "'top_k' must be at least -1, got -2"},
    {"TopKFraction", R"({"top_k": 2.5})", "top_k", "'top_k' must be an integer"},
    {"SeedString", R"({"seed": "1"})", "seed", "'seed' must be an integer"},
    {"SeedBeyondInt64", R"({"seed": 18446744073709551615})", "seed",
     "'seed' must be between -9223372036854775808 and 9223372036854775807, got "
     "18446744073709551615"},
    {"StopNumber", R"({"stop": 5})", "stop", "'stop' must be a string or a list of strings"},
    {"StopListElement", R"({"stop": ["a", 1]})", "stop[1]", "'stop[1]' must be a string"},
    {"StopEmptyString", R"({"stop": ""})", "stop", "'stop' must not be an empty string"},
    {"StopEmptyElement", R"({"stop": ["a", ""]})", "stop[1]",
     "'stop[1]' must not be an empty string"},
    {"StopTokenIdsType", R"({"stop_token_ids": "2"})", "stop_token_ids",
     "'stop_token_ids' must be a list of token ids (integers)"},
    {"StopTokenIdsElement", R"({"stop_token_ids": [1, -1]})", "stop_token_ids[1]",
     "'stop_token_ids[1]' must be between 0 and 2147483647, got -1"},
    {"StopTokenIdsElementType", R"({"stop_token_ids": [1, "2"]})", "stop_token_ids[1]",
     "'stop_token_ids[1]' must be an integer"},
    {"NTwo", R"({"n": 2})", "n", "n > 1 is not supported"},
    {"NZero", R"({"n": 0})", "n", "'n' must be at least 1, got 0"},
    {"NType", R"({"n": "1"})", "n", "'n' must be an integer"},
    {"LogprobsHigh", R"({"logprobs": 21})", "logprobs",
     "'logprobs' must be between 0 and 20, got 21"},
    {"LogprobsNegative", R"({"logprobs": -1})", "logprobs",
     "'logprobs' must be between 0 and 20, got -1"},
    {"LogprobsBool", R"({"logprobs": true})", "logprobs", "'logprobs' must be an integer"},
    {"StreamType", R"({"stream": "yes"})", "stream", "'stream' must be a boolean"},
    {"StreamOptionsWithoutStream", R"({"stream_options": {"include_usage": true}})",
     "stream_options", "'stream_options' is only allowed when 'stream' is true"},
    {"StreamOptionsWithStreamFalse", R"({"stream": false, "stream_options": {}})", "stream_options",
     "'stream_options' is only allowed when 'stream' is true"},
    {"StreamOptionsType", R"({"stream": true, "stream_options": 5})", "stream_options",
     "'stream_options' must be an object"},
    {"IncludeUsageType", R"({"stream": true, "stream_options": {"include_usage": "yes"}})",
     "stream_options.include_usage", "'stream_options.include_usage' must be a boolean"},
    {"IgnoreEosType", R"({"ignore_eos": 1})", "ignore_eos", "'ignore_eos' must be a boolean"},
    {"MinTokensNegative", R"({"min_tokens": -1})", "min_tokens",
     "'min_tokens' must be at least 0, got -1"},
    {"MinTokensAboveDefaultMax", R"({"min_tokens": 20})", "min_tokens",
     "'min_tokens' must be at most max_tokens (16), got 20"},
    {"MinTokensAboveMax", R"({"max_tokens": 4, "min_tokens": 5})", "min_tokens",
     "'min_tokens' must be at most max_tokens (4), got 5"},
    {"PresencePenalty", R"({"presence_penalty": 0.5})", "presence_penalty",
     "'presence_penalty' is not supported (only 0)"},
    {"FrequencyPenalty", R"({"frequency_penalty": -1})", "frequency_penalty",
     "'frequency_penalty' is not supported (only 0)"},
    {"FrequencyPenaltyType", R"({"frequency_penalty": "x"})", "frequency_penalty",
     "'frequency_penalty' must be a number"},
    {"RepetitionPenalty", R"({"repetition_penalty": 1.1})", "repetition_penalty",
     "'repetition_penalty' is not supported (only 1)"},
    {"MinP", R"({"min_p": 0.1})", "min_p", "'min_p' is not supported (only 0)"},
    {"LogitBias", R"({"logit_bias": {"50256": -100}})", "logit_bias",
     "'logit_bias' is not supported"},
    {"LogitBiasType", R"({"logit_bias": [1]})", "logit_bias", "'logit_bias' must be an object"},
    {"Suffix", R"({"suffix": "end"})", "suffix", "'suffix' is not supported"},
    {"Echo", R"({"echo": true})", "echo", "'echo' is not supported"},
    {"EchoType", R"({"echo": "no"})", "echo", "'echo' must be a boolean"},
    {"BestOf", R"({"best_of": 3})", "best_of", "best_of > 1 is not supported"},
    {"PromptLogprobs", R"({"prompt_logprobs": 1})", "prompt_logprobs",
     "'prompt_logprobs' is not supported"},
};

INSTANTIATE_TEST_SUITE_P(Fields, CompletionBadFieldTest, testing::ValuesIn(kCompletionBadFields),
                         bad_field_name);

// ---------------------------------------------------------------------------------------------
// /v1/chat/completions

TEST(ChatRequestTest, Defaults) {
  auto r = parse_chat_request(parse(kChatBase));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(json_text(r->messages), R"([{"role":"user","content":"hi"}])");
  EXPECT_TRUE(r->tools.is_null());
  EXPECT_EQ(r->tool_choice, "none");
  EXPECT_EQ(json_text(r->chat_template_kwargs), "{}");
  EXPECT_TRUE(r->add_generation_prompt);
  EXPECT_FALSE(r->sampling.max_tokens.has_value());  // no limit: the server fills it
  EXPECT_EQ(r->sampling.temperature, 1.0);
  EXPECT_FALSE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 0);
  EXPECT_FALSE(r->stream.stream);
}

TEST(ChatRequestTest, MaxTokensSpellings) {
  auto only_old = parse_chat_request(with(kChatBase, R"({"max_tokens": 7})"));
  ASSERT_TRUE(only_old.is_ok());
  EXPECT_EQ(only_old->sampling.max_tokens, std::optional<int64_t>(7));
  auto only_new = parse_chat_request(with(kChatBase, R"({"max_completion_tokens": 9})"));
  ASSERT_TRUE(only_new.is_ok());
  EXPECT_EQ(only_new->sampling.max_tokens, std::optional<int64_t>(9));
  auto both =
      parse_chat_request(with(kChatBase, R"({"max_tokens": 7, "max_completion_tokens": 9})"));
  ASSERT_TRUE(both.is_ok());
  EXPECT_EQ(both->sampling.max_tokens, std::optional<int64_t>(9));
  auto new_null =
      parse_chat_request(with(kChatBase, R"({"max_tokens": 7, "max_completion_tokens": null})"));
  ASSERT_TRUE(new_null.is_ok());
  EXPECT_EQ(new_null->sampling.max_tokens, std::optional<int64_t>(7));
  auto both_null =
      parse_chat_request(with(kChatBase, R"({"max_tokens": null, "max_completion_tokens": null})"));
  ASSERT_TRUE(both_null.is_ok());
  EXPECT_FALSE(both_null->sampling.max_tokens.has_value());
  // min_tokens is bounded by the resolved limit.
  expect_bad_request(
      parse_chat_request(with(kChatBase, R"({"max_completion_tokens": 3, "min_tokens": 4})")),
      "min_tokens", "'min_tokens' must be at most max_tokens (3), got 4");
  EXPECT_TRUE(parse_chat_request(with(kChatBase, R"({"min_tokens": 100})")).is_ok());
}

TEST(ChatRequestTest, TextPartsAreJoinedKeepingKeyOrder) {
  auto r = parse_chat_request(parse(R"({"model": "m", "messages": [
      {"content": "be brief", "role": "system"},
      {"name": "bob", "content": [{"type": "text", "text": "a"}, {"text": "b", "type": "text"}],
       "role": "user"}]})"));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_EQ(json_text(r->messages), R"([{"content":"be brief","role":"system"},)"
                                    R"({"name":"bob","content":"a\nb","role":"user"}])");
}

TEST(ChatRequestTest, EmptyPartListIsEmptyContent) {
  auto r = parse_chat_request(parse(R"({"model": "m", "messages": [
      {"role": "user", "content": []}]})"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(json_text(r->messages), R"([{"role":"user","content":""}])");
}

TEST(ChatRequestTest, ToolConversationPassesThrough) {
  const char* messages = R"([
      {"role": "developer", "content": "use tools"},
      {"role": "user", "content": "weather?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
       "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
      {"role": "assistant", "tool_calls": [{"id": "c2", "type": "function",
       "function": {"name": "get_time", "arguments": {}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "sunny"}])";
  ordered_json body = parse(kChatBase);
  body["messages"] = parse(messages);
  auto r = parse_chat_request(body);
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_EQ(json_text(r->messages), json_text(parse(messages)));
}

TEST(ChatRequestTest, ToolsPassThroughKeepingKeyOrder) {
  const char* tools = R"([{"function": {"parameters": {"type": "object", "required": ["city"],
      "properties": {"unit": {"enum": ["c", "f"], "type": "string"}, "city": {"type": "string"}}},
      "name": "get_weather", "description": "Weather now"}, "type": "function"},
      {"type": "function", "function": {"name": "noop"}}])";
  ordered_json body = parse(kChatBase);
  body["tools"] = parse(tools);
  auto r = parse_chat_request(body);
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_EQ(json_text(r->tools),
            R"([{"function":{"parameters":{"type":"object","required":["city"],)"
            R"("properties":{"unit":{"enum":["c","f"],"type":"string"},"city":{"type":"string"}}},)"
            R"("name":"get_weather","description":"Weather now"},"type":"function"},)"
            R"({"type":"function","function":{"name":"noop"}}])");
  EXPECT_EQ(r->tool_choice, "auto");  // the default with tools
}

TEST(ChatRequestTest, ToolChoice) {
  auto none = parse_chat_request(with(kChatBase, R"({"tools": [{"type": "function",
      "function": {"name": "f"}}], "tool_choice": "none"})"));
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->tool_choice, "none");
  auto empty_tools = parse_chat_request(with(kChatBase, R"({"tools": []})"));
  ASSERT_TRUE(empty_tools.is_ok());
  EXPECT_EQ(empty_tools->tool_choice, "none");
  EXPECT_EQ(json_text(empty_tools->tools), "[]");
  auto auto_choice = parse_chat_request(with(kChatBase, R"({"tool_choice": "auto"})"));
  ASSERT_TRUE(auto_choice.is_ok());
  EXPECT_EQ(auto_choice->tool_choice, "auto");
}

TEST(ChatRequestTest, ChatTemplateKwargsAndGenerationPrompt) {
  auto r = parse_chat_request(with(kChatBase, R"({"chat_template_kwargs":
      {"enable_thinking": false, "a": {"z": 1, "b": 2}}, "add_generation_prompt": false})"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(json_text(r->chat_template_kwargs), R"({"enable_thinking":false,"a":{"z":1,"b":2}})");
  EXPECT_FALSE(r->add_generation_prompt);
}

TEST(ChatRequestTest, Logprobs) {
  auto r = parse_chat_request(with(kChatBase, R"({"logprobs": true, "top_logprobs": 5})"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->logprobs);
  EXPECT_EQ(r->top_logprobs, 5);
  auto plain = parse_chat_request(with(kChatBase, R"({"logprobs": true})"));
  ASSERT_TRUE(plain.is_ok());
  EXPECT_TRUE(plain->logprobs);
  EXPECT_EQ(plain->top_logprobs, 0);
}

TEST(ChatRequestTest, SharedKnobs) {
  auto r = parse_chat_request(with(kChatBase, R"({"temperature": 0.7, "top_p": 0.9,
      "top_k": 20, "seed": 3, "stop": ["</s>"], "stop_token_ids": [7], "ignore_eos": true,
      "min_tokens": 1, "n": 1, "stream": true, "stream_options": {"include_usage": true},
      "response_format": {"type": "text"}, "parallel_tool_calls": true, "user": "u"})"));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_EQ(r->sampling.temperature, 0.7);
  EXPECT_EQ(r->sampling.top_p, 0.9);
  EXPECT_EQ(r->sampling.top_k, 20);
  EXPECT_EQ(r->sampling.seed, std::optional<int64_t>(3));
  EXPECT_EQ(r->sampling.stop, std::vector<std::string>{"</s>"});
  EXPECT_EQ(r->sampling.stop_token_ids, std::vector<int32_t>{7});
  EXPECT_TRUE(r->sampling.ignore_eos);
  EXPECT_EQ(r->sampling.min_tokens, 1);
  EXPECT_TRUE(r->stream.stream);
  EXPECT_TRUE(r->stream.include_usage);
}

class ChatBadFieldTest : public testing::TestWithParam<BadField> {};

TEST_P(ChatBadFieldTest, Is400NamingTheField) {
  const BadField& f = GetParam();
  ordered_json body = with(kChatBase, f.patch);
  if (body.contains("_drop")) {
    body.erase(body["_drop"].get<std::string>());
    body.erase("_drop");
  }
  expect_bad_request(parse_chat_request(body), f.param, f.message);
}

const BadField kChatBadFields[] = {
    {"ModelMissing", R"({"_drop": "model"})", "model", "'model' is required"},
    {"MessagesMissing", R"({"_drop": "messages"})", "messages", "'messages' is required"},
    {"MessagesObject", R"({"messages": {"role": "user"}})", "messages",
     "'messages' must be a list"},
    {"MessagesEmpty", R"({"messages": []})", "messages", "'messages' must not be empty"},
    {"MessageNotObject", R"({"messages": ["hi"]})", "messages[0]",
     "'messages[0]' must be an object"},
    {"RoleMissing", R"({"messages": [{"content": "hi"}]})", "messages[0].role",
     "'messages[0].role' is required"},
    {"RoleType", R"({"messages": [{"role": 1, "content": "hi"}]})", "messages[0].role",
     "'messages[0].role' must be a string"},
    {"RoleUnknown", R"({"messages": [{"role": "user", "content": "a"}, {"role": "bot",
     "content": "b"}]})",
     "messages[1].role",
     "'messages[1].role' must be one of system, user, assistant, tool, developer; got \"bot\""},
    {"ContentMissing", R"({"messages": [{"role": "user"}]})", "messages[0].content",
     "'messages[0].content' is required"},
    {"ContentNullForUser", R"({"messages": [{"role": "user", "content": null}]})",
     "messages[0].content", "'messages[0].content' must be a string or a list of text parts"},
    {"ContentNullWithoutToolCalls", R"({"messages": [{"role": "assistant", "content": null}]})",
     "messages[0].content", "'messages[0].content' must be a string or a list of text parts"},
    {"ContentNumber", R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content",
     "'messages[0].content' must be a string or a list of text parts"},
    {"ContentPartNotObject", R"({"messages": [{"role": "user", "content": ["hi"]}]})",
     "messages[0].content[0]", "'messages[0].content[0]' must be an object"},
    {"ContentPartImage", R"({"messages": [{"role": "user", "content": [{"type": "text",
     "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}]}]})",
     "messages[0].content[1].type",
     "'messages[0].content[1].type' must be \"text\", got \"image_url\" (other content parts "
     "are not supported)"},
    {"ContentPartTypeMissing", R"({"messages": [{"role": "user", "content": [{"text": "a"}]}]})",
     "messages[0].content[0].type", "'messages[0].content[0].type' is required"},
    {"ContentPartTextMissing", R"({"messages": [{"role": "user", "content": [{"type":
     "text"}]}]})",
     "messages[0].content[0].text", "'messages[0].content[0].text' is required"},
    {"ContentPartTextType", R"({"messages": [{"role": "user", "content": [{"type": "text",
     "text": 1}]}]})",
     "messages[0].content[0].text", "'messages[0].content[0].text' must be a string"},
    {"NameType", R"({"messages": [{"role": "user", "content": "a", "name": 1}]})",
     "messages[0].name", "'messages[0].name' must be a string"},
    {"ToolCallIdType", R"({"messages": [{"role": "tool", "content": "a", "tool_call_id": 1}]})",
     "messages[0].tool_call_id", "'messages[0].tool_call_id' must be a string"},
    {"ToolCallsType", R"({"messages": [{"role": "assistant", "content": "a",
     "tool_calls": {}}]})",
     "messages[0].tool_calls", "'messages[0].tool_calls' must be a list"},
    {"ToolCallFunctionMissing", R"({"messages": [{"role": "assistant", "tool_calls":
     [{"id": "c"}]}]})",
     "messages[0].tool_calls[0].function",
     "'messages[0].tool_calls[0].function' must be an object"},
    {"ToolCallNameMissing", R"({"messages": [{"role": "assistant", "tool_calls":
     [{"function": {"arguments": "{}"}}]}]})",
     "messages[0].tool_calls[0].function.name",
     "'messages[0].tool_calls[0].function.name' is required"},
    {"ToolsType", R"({"tools": {"type": "function"}})", "tools", "'tools' must be a list"},
    {"ToolNotObject", R"({"tools": ["f"]})", "tools[0]", "'tools[0]' must be an object"},
    {"ToolTypeNotFunction", R"({"tools": [{"type": "retrieval", "function": {"name": "f"}}]})",
     "tools[0].type", "'tools[0].type' must be \"function\", got \"retrieval\""},
    {"ToolFunctionMissing", R"({"tools": [{"type": "function"}]})", "tools[0].function",
     "'tools[0].function' must be an object"},
    {"ToolNameMissing", R"({"tools": [{"type": "function", "function": {"description": "d"}}]})",
     "tools[0].function.name", "'tools[0].function.name' is required"},
    {"ToolParametersType", R"({"tools": [{"type": "function", "function": {"name": "f",
     "parameters": "x"}}]})",
     "tools[0].function.parameters", "'tools[0].function.parameters' must be an object"},
    {"ToolChoiceRequired", R"({"tool_choice": "required"})", "tool_choice",
     "'tool_choice' \"required\" is not supported (only \"none\" or \"auto\")"},
    {"ToolChoiceNamed", R"({"tool_choice": {"type": "function", "function": {"name": "f"}}})",
     "tool_choice", "'tool_choice' naming a function is not supported (only \"none\" or \"auto\")"},
    {"ToolChoiceType", R"({"tool_choice": 1})", "tool_choice", "'tool_choice' must be a string"},
    {"ChatTemplateKwargsType", R"({"chat_template_kwargs": "x"})", "chat_template_kwargs",
     "'chat_template_kwargs' must be an object"},
    {"AddGenerationPromptType", R"({"add_generation_prompt": 1})", "add_generation_prompt",
     "'add_generation_prompt' must be a boolean"},
    {"MaxTokensType", R"({"max_tokens": "7"})", "max_tokens", "'max_tokens' must be an integer"},
    {"MaxTokensZero", R"({"max_tokens": 0})", "max_tokens",
     "'max_tokens' must be at least 1, got 0"},
    {"MaxCompletionTokensType", R"({"max_completion_tokens": [7]})", "max_completion_tokens",
     "'max_completion_tokens' must be an integer"},
    {"MaxCompletionTokensZero", R"({"max_completion_tokens": 0})", "max_completion_tokens",
     "'max_completion_tokens' must be at least 1, got 0"},
    {"TemperatureHigh", R"({"temperature": 3})", "temperature",
     "'temperature' must be between 0 and 2, got 3"},
    {"NTwo", R"({"n": 2})", "n", "n > 1 is not supported"},
    {"LogprobsType", R"({"logprobs": 5})", "logprobs", "'logprobs' must be a boolean"},
    {"TopLogprobsWithoutLogprobs", R"({"top_logprobs": 2})", "top_logprobs",
     "'top_logprobs' requires 'logprobs' to be true"},
    {"TopLogprobsWithLogprobsFalse", R"({"logprobs": false, "top_logprobs": 0})", "top_logprobs",
     "'top_logprobs' requires 'logprobs' to be true"},
    {"TopLogprobsHigh", R"({"logprobs": true, "top_logprobs": 21})", "top_logprobs",
     "'top_logprobs' must be between 0 and 20, got 21"},
    {"TopLogprobsType", R"({"logprobs": true, "top_logprobs": "2"})", "top_logprobs",
     "'top_logprobs' must be an integer"},
    {"StreamOptionsWithoutStream", R"({"stream_options": {"include_usage": true}})",
     "stream_options", "'stream_options' is only allowed when 'stream' is true"},
    {"ChatTemplate", R"({"chat_template": "{{ messages }}"})", "chat_template",
     "'chat_template' is not supported"},
    {"ContinueFinalMessage", R"({"continue_final_message": true})", "continue_final_message",
     "'continue_final_message' is not supported"},
    {"ResponseFormatJson", R"({"response_format": {"type": "json_object"}})",
     "response_format.type",
     "'response_format.type' \"json_object\" is not supported (only \"text\")"},
    {"ResponseFormatType", R"({"response_format": "json"})", "response_format",
     "'response_format' must be an object"},
};

INSTANTIATE_TEST_SUITE_P(Fields, ChatBadFieldTest, testing::ValuesIn(kChatBadFields),
                         bad_field_name);

// ---------------------------------------------------------------------------------------------
// /tokenize and /detokenize

TEST(TokenizeTest, Prompt) {
  auto r = parse_tokenize_request(parse(R"({"model": "m", "prompt": "hello"})"));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_FALSE(r->is_chat);
  EXPECT_EQ(r->model, std::optional<std::string>("m"));
  EXPECT_EQ(r->prompt, "hello");
  EXPECT_TRUE(r->add_special_tokens);
  auto bare = parse_tokenize_request(parse(R"({"prompt": "", "add_special_tokens": false})"));
  ASSERT_TRUE(bare.is_ok());
  EXPECT_FALSE(bare->model.has_value());
  EXPECT_EQ(bare->prompt, "");
  EXPECT_FALSE(bare->add_special_tokens);
}

TEST(TokenizeTest, Messages) {
  auto r = parse_tokenize_request(parse(R"({"messages": [{"role": "user", "content":
      [{"type": "text", "text": "a"}]}], "add_generation_prompt": false,
      "chat_template_kwargs": {"enable_thinking": false},
      "tools": [{"type": "function", "function": {"name": "f"}}]})"));
  ASSERT_TRUE(r.is_ok()) << r.error().message;
  EXPECT_TRUE(r->is_chat);
  EXPECT_FALSE(r->add_special_tokens);  // the template writes them
  EXPECT_FALSE(r->add_generation_prompt);
  EXPECT_EQ(json_text(r->messages), R"([{"role":"user","content":"a"}])");
  EXPECT_EQ(json_text(r->chat_template_kwargs), R"({"enable_thinking":false})");
  EXPECT_EQ(json_text(r->tools), R"([{"type":"function","function":{"name":"f"}}])");
  auto defaults = parse_tokenize_request(parse(R"({"messages": [{"role": "user",
      "content": "a"}]})"));
  ASSERT_TRUE(defaults.is_ok());
  EXPECT_TRUE(defaults->add_generation_prompt);
  EXPECT_TRUE(defaults->tools.is_null());
}

TEST(TokenizeTest, Errors) {
  expect_bad_request(parse_tokenize_request(parse(R"({"model": "m"})")), "prompt",
                     "either 'prompt' or 'messages' is required");
  expect_bad_request(parse_tokenize_request(parse(R"({"prompt": "a", "messages": [{"role": "user",
          "content": "a"}]})")),
                     "messages", "give either 'prompt' or 'messages', not both");
  expect_bad_request(parse_tokenize_request(parse(R"({"prompt": [1, 2]})")), "prompt",
                     "'prompt' must be a string");
  expect_bad_request(parse_tokenize_request(parse(R"({"model": 1, "prompt": "a"})")), "model",
                     "'model' must be a string");
  expect_bad_request(parse_tokenize_request(parse(R"({"prompt": "a", "add_special_tokens": 1})")),
                     "add_special_tokens", "'add_special_tokens' must be a boolean");
  expect_bad_request(parse_tokenize_request(parse(R"({"messages": [{"role": "x",
      "content": "a"}]})")),
                     "messages[0].role",
                     "'messages[0].role' must be one of system, user, assistant, tool, "
                     "developer; got \"x\"");
  expect_bad_request(parse_tokenize_request(parse("[]")), "", "request body must be a JSON object");
}

TEST(DetokenizeTest, ParsesTokens) {
  auto r = parse_detokenize_request(parse(R"({"model": "m", "tokens": [1, 2, 3]})"));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->tokens, (std::vector<int32_t>{1, 2, 3}));
  auto empty = parse_detokenize_request(parse(R"({"tokens": []})"));
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->tokens.empty());
  expect_bad_request(parse_detokenize_request(parse(R"({"model": "m"})")), "tokens",
                     "'tokens' is required");
  expect_bad_request(parse_detokenize_request(parse(R"({"tokens": "1 2"})")), "tokens",
                     "'tokens' must be a list of token ids (integers)");
  expect_bad_request(parse_detokenize_request(parse(R"({"tokens": [1, -5]})")), "tokens[1]",
                     "'tokens[1]' must be between 0 and 2147483647, got -5");
}

TEST(TokenizeTest, Responses) {
  const std::vector<int32_t> ids = {151644, 872, 198};
  EXPECT_EQ(json_text(tokenize_response(ids, 4096)),
            R"({"count":3,"max_model_len":4096,"tokens":[151644,872,198]})");
  EXPECT_EQ(json_text(tokenize_response({}, 128)),
            R"({"count":0,"max_model_len":128,"tokens":[]})");
  EXPECT_EQ(json_text(detokenize_response("Hello\n")), R"({"prompt":"Hello\n"})");
}

// ---------------------------------------------------------------------------------------------
// Response builders: exact JSON text for fixed inputs.

const ResponseMeta kCompletionMeta{"cmpl-0123", 1700000000, "tiny"};
const ResponseMeta kChatMeta{"chatcmpl-0123", 1700000000, "tiny"};

std::vector<TokenLogprob> two_token_logprobs() {
  return {
      {"Hi", -0.25, {{"Hi", -0.25}, {"Hello", -1.5}}},
      {" there", -std::numeric_limits<double>::infinity(), {{" there", -0.5}}},
  };
}

TEST(CompletionResponseTest, Plain) {
  CompletionChoice c;
  c.text = "Hi there";
  c.finish_reason = "length";
  EXPECT_EQ(json_text(completion_response(kCompletionMeta, std::span(&c, 1), {5, 2})),
            R"({"id":"cmpl-0123","object":"text_completion","created":1700000000,"model":"tiny",)"
            R"("choices":[{"index":0,"text":"Hi there","logprobs":null,"finish_reason":"length",)"
            R"("stop_reason":null}],)"
            R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})");
}

TEST(CompletionResponseTest, TwoPromptsWithLogprobsAndStopReasons) {
  std::vector<CompletionChoice> choices(2);
  choices[0].text = "Hi there";
  choices[0].logprobs = two_token_logprobs();
  choices[0].finish_reason = "stop";
  choices[0].stop_reason = int64_t{151645};
  choices[1].index = 1;
  choices[1].text = "ok";
  choices[1].finish_reason = "stop";
  choices[1].stop_reason = std::string("\n\n");
  EXPECT_EQ(json_text(completion_response(kCompletionMeta, choices, {8, 3})),
            R"({"id":"cmpl-0123","object":"text_completion","created":1700000000,"model":"tiny",)"
            R"("choices":[{"index":0,"text":"Hi there","logprobs":{"tokens":["Hi"," there"],)"
            R"("token_logprobs":[-0.25,-9999.0],"top_logprobs":[{"Hi":-0.25,"Hello":-1.5},)"
            R"({" there":-0.5}],"text_offset":[0,2]},"finish_reason":"stop",)"
            R"("stop_reason":151645},)"
            R"({"index":1,"text":"ok","logprobs":null,"finish_reason":"stop",)"
            R"("stop_reason":"\n\n"}],)"
            R"("usage":{"prompt_tokens":8,"completion_tokens":3,"total_tokens":11}})");
}

TEST(CompletionResponseTest, StreamChunks) {
  CompletionChoice delta;
  delta.text = "\xC3\xA9x";  // "éx": 3 bytes, 2 code points
  delta.logprobs = std::vector<TokenLogprob>{{"\xC3\xA9", -0.5, {}}, {"x", -1.0, {{"x", -1.0}}}};
  delta.text_offset = 10;
  EXPECT_EQ(json_text(completion_chunk(kCompletionMeta, delta)),
            R"({"id":"cmpl-0123","object":"text_completion","created":1700000000,"model":"tiny",)"
            "\"choices\":[{\"index\":0,\"text\":\"\xC3\xA9x\",\"logprobs\":{\"tokens\":"
            "[\"\xC3\xA9\",\"x\"],"
            R"("token_logprobs":[-0.5,-1.0],"top_logprobs":[{},{"x":-1.0}],"text_offset":[10,11]},)"
            R"("finish_reason":null,"stop_reason":null}]})");

  CompletionChoice last;
  last.finish_reason = "length";
  EXPECT_EQ(json_text(completion_chunk(kCompletionMeta, last)),
            R"({"id":"cmpl-0123","object":"text_completion","created":1700000000,"model":"tiny",)"
            R"("choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length",)"
            R"("stop_reason":null}]})");

  EXPECT_EQ(json_text(completion_usage_chunk(kCompletionMeta, {4, 6})),
            R"({"id":"cmpl-0123","object":"text_completion","created":1700000000,"model":"tiny",)"
            R"("choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}})");
}

TEST(CompletionResponseTest, RepeatedTopTokenKeepsTheFirst) {
  const std::vector<TokenLogprob> t = {{"a", -0.1, {{"a", -0.1}, {"b", -2.0}, {"a", -3.0}}}};
  EXPECT_EQ(json_text(completion_logprobs_json(t, 0)),
            R"({"tokens":["a"],"token_logprobs":[-0.1],"top_logprobs":[{"a":-0.1,"b":-2.0}],)"
            R"("text_offset":[0]})");
}

TEST(CompletionResponseTest, Utf8Length) {
  EXPECT_EQ(utf8_length(""), 0);
  EXPECT_EQ(utf8_length("abc"), 3);
  EXPECT_EQ(utf8_length("\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"), 3);  // é 中 😀
}

TEST(ResponseTest, ClampLogprob) {
  EXPECT_EQ(clamp_logprob(-0.5), -0.5);
  EXPECT_EQ(clamp_logprob(-1e6), -9999.0);
  EXPECT_EQ(clamp_logprob(-std::numeric_limits<double>::infinity()), -9999.0);
  EXPECT_EQ(clamp_logprob(std::nan("")), -9999.0);
}

TEST(ChatResponseTest, Plain) {
  ChatChoice c;
  c.content = "Hello!";
  c.finish_reason = "stop";
  c.stop_reason = int64_t{2};
  EXPECT_EQ(json_text(chat_response(kChatMeta, std::span(&c, 1), {9, 3})),
            R"({"id":"chatcmpl-0123","object":"chat.completion","created":1700000000,)"
            R"("model":"tiny","choices":[{"index":0,"message":{"role":"assistant",)"
            R"("content":"Hello!"},"logprobs":null,"finish_reason":"stop","stop_reason":2}],)"
            R"("usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}})");
}

TEST(ChatResponseTest, Logprobs) {
  ChatChoice c;
  c.content = "Hi there";
  c.logprobs = two_token_logprobs();
  c.finish_reason = "length";
  EXPECT_EQ(json_text(chat_response(kChatMeta, std::span(&c, 1), {1, 2})),
            R"({"id":"chatcmpl-0123","object":"chat.completion","created":1700000000,)"
            R"("model":"tiny","choices":[{"index":0,"message":{"role":"assistant",)"
            R"("content":"Hi there"},"logprobs":{"content":[)"
            R"({"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[)"
            R"({"token":"Hi","logprob":-0.25,"bytes":[72,105]},)"
            R"({"token":"Hello","logprob":-1.5,"bytes":[72,101,108,108,111]}]},)"
            R"({"token":" there","logprob":-9999.0,"bytes":[32,116,104,101,114,101],)"
            R"("top_logprobs":[{"token":" there","logprob":-0.5,)"
            R"("bytes":[32,116,104,101,114,101]}]}]},)"
            R"("finish_reason":"length","stop_reason":null}],)"
            R"("usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})");
}

TEST(ChatResponseTest, PartialUtf8TokenBytes) {
  // The first byte of "中" alone: the bytes are exact, the text gets U+FFFD when dumped.
  const std::vector<TokenLogprob> t = {{std::string("\xE4", 1), -0.5, {}}};
  EXPECT_EQ(json_text(chat_logprobs_json(t)),
            "{\"content\":[{\"token\":\"\xEF\xBF\xBD\",\"logprob\":-0.5,\"bytes\":[228],"
            "\"top_logprobs\":[]}]}");
}

TEST(ChatResponseTest, ToolCallsAndReasoning) {
  ChatChoice c;
  c.reasoning_content = "The user wants weather.";
  c.tool_calls = {{"chatcmpl-tool-1", "get_weather", R"({"city": "Oslo"})"}};
  c.finish_reason = "tool_calls";
  EXPECT_EQ(json_text(chat_response(kChatMeta, std::span(&c, 1), {20, 15})),
            R"({"id":"chatcmpl-0123","object":"chat.completion","created":1700000000,)"
            R"("model":"tiny","choices":[{"index":0,"message":{"role":"assistant",)"
            R"("content":null,"reasoning_content":"The user wants weather.","tool_calls":[)"
            R"({"id":"chatcmpl-tool-1","type":"function","function":{"name":"get_weather",)"
            R"("arguments":"{\"city\": \"Oslo\"}"}}]},"logprobs":null,)"
            R"("finish_reason":"tool_calls","stop_reason":null}],)"
            R"("usage":{"prompt_tokens":20,"completion_tokens":15,"total_tokens":35}})");
}

TEST(ChatResponseTest, StreamChunks) {
  const std::string head =
      R"({"id":"chatcmpl-0123","object":"chat.completion.chunk","created":1700000000,)"
      R"("model":"tiny",)";
  EXPECT_EQ(json_text(chat_role_chunk(kChatMeta, 0)),
            head + R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
                   R"("logprobs":null,"finish_reason":null,"stop_reason":null}]})");

  ChatChunkChoice content;
  content.delta.content = "Hi";
  content.logprobs = std::vector<TokenLogprob>{{"Hi", -0.25, {}}};
  EXPECT_EQ(json_text(chat_chunk(kChatMeta, content)),
            head + R"("choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":{"content":[)"
                   R"({"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[]}]},)"
                   R"("finish_reason":null,"stop_reason":null}]})");

  ChatChunkChoice last;
  last.finish_reason = "stop";
  last.stop_reason = std::string("###");
  EXPECT_EQ(json_text(chat_chunk(kChatMeta, last)),
            head + R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop",)"
                   R"("stop_reason":"###"}]})");

  EXPECT_EQ(json_text(chat_usage_chunk(kChatMeta, {3, 4})),
            head + R"("choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,)"
                   R"("total_tokens":7}})");
}

TEST(ChatResponseTest, ToolCallDeltaHasIndex) {
  ChatChunkChoice c;
  c.delta.reasoning_content = "r";
  c.delta.tool_calls = {{"t0", "f", "{}"}, {"t1", "g", "[]"}};
  EXPECT_EQ(json_text(chat_chunk(kChatMeta, c)),
            R"({"id":"chatcmpl-0123","object":"chat.completion.chunk","created":1700000000,)"
            R"("model":"tiny","choices":[{"index":0,"delta":{"reasoning_content":"r",)"
            R"("tool_calls":[{"index":0,"id":"t0","type":"function","function":{"name":"f",)"
            R"("arguments":"{}"}},{"index":1,"id":"t1","type":"function","function":)"
            R"({"name":"g","arguments":"[]"}}]},"logprobs":null,"finish_reason":null,)"
            R"("stop_reason":null}]})");
}

// ---------------------------------------------------------------------------------------------
// /v1/models

TEST(ModelsTest, List) {
  const ModelCard cards[] = {{"qwen3-moe", 1700000000, "/models/qwen3-moe", 32768}};
  EXPECT_EQ(json_text(models_response(cards)),
            R"({"object":"list","data":[{"id":"qwen3-moe","object":"model","created":1700000000,)"
            R"("owned_by":"msinfer","root":"/models/qwen3-moe","parent":null,)"
            R"("max_model_len":32768}]})");
  EXPECT_EQ(json_text(models_response({})), R"({"object":"list","data":[]})");
}

TEST(ModelsTest, CheckModelName) {
  const std::vector<std::string> served = {"a", "b"};
  EXPECT_FALSE(check_model_name("b", served).has_value());
  ApiCheck missing = check_model_name("c", served);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->param, "model");
  EXPECT_EQ(json_text(error_body(*missing)),
            R"({"error":{"message":"The model `c` does not exist.","type":"NotFoundError",)"
            R"("param":"model","code":404}})");
}

// ---------------------------------------------------------------------------------------------
// Request ids

bool is_id(const std::string& id, const std::string& prefix) {
  if (id.size() != prefix.size() + 32 || id.rfind(prefix, 0) != 0) return false;
  return id.find_first_not_of("0123456789abcdef", prefix.size()) == std::string::npos;
}

TEST(RequestIdTest, Format) {
  EXPECT_TRUE(is_id(make_completion_id(), "cmpl-"));
  EXPECT_TRUE(is_id(make_chat_completion_id(), "chatcmpl-"));
  EXPECT_TRUE(is_id(make_request_id("x-"), "x-"));
}

TEST(RequestIdTest, UniqueAcrossThreads) {
  constexpr int kThreads = 4, kPerThread = 2000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(make_chat_completion_id());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), size_t{kThreads * kPerThread});
}

}  // namespace
}  // namespace msi::openai
