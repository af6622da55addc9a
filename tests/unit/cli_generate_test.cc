// `msinfer generate` end to end: the real binary, its JSON contract, and a clear error (exit 1,
// never a crash or a hang) for each kind of bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;
const std::string kMixtralCase0 = "1,383,302,331,444,341";

using msi::test::RunResult;
using msi::test::TempDir;
using msi::test::slurp;

RunResult msinfer(const std::string& args) { return msi::test::msinfer_shell(args); }

// A writable copy of a fixture model directory.
fs::path copy_model(const TempDir& tmp, const std::string& name) {
  const fs::path dst = tmp.path() / name;
  fs::copy(kData / name, dst, fs::copy_options::recursive);
  for (const auto& e : fs::directory_iterator(dst)) {
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  }
  return dst;
}

json run_json(const std::string& args) {
  RunResult r = msinfer(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

void expect_error(const std::string& args, const std::string& message) {
  RunResult r = msinfer(args);
  EXPECT_EQ(r.exit_code, 1) << "args: " << args << "\nstderr: " << r.err;
  EXPECT_THAT(r.err, HasSubstr("msinfer: error:")) << args;
  EXPECT_THAT(r.err, HasSubstr(message)) << args;
  EXPECT_TRUE(r.out.empty()) << "no partial results on error: " << r.out;
}

std::string model(const fs::path& dir) { return "generate --model " + dir.string(); }

TEST(CliGenerate, JsonContractAndReferenceTokens) {
  json j = run_json(model(kData / "tiny-mixtral") + " --prompt-ids " + kMixtralCase0 + " --max-tokens 10 --return-logits");
  ASSERT_EQ(j["results"].size(), 1u);
  const json& r = j["results"][0];
  EXPECT_EQ(r["prompt_ids"], json::parse("[" + kMixtralCase0 + "]"));
  EXPECT_EQ(r["output_ids"], json::parse("[668, 1787, 1419, 1296, 1419, 1878, 134, 1612, 1739, 1397]"));
  EXPECT_EQ(r["finish_reason"], "length");
  ASSERT_EQ(r["logits"].size(), 10u);
  EXPECT_EQ(r["logits"][0].size(), 2000u);
  // Without --return-logits there is no "logits" key; the default is 16 tokens.
  json plain = run_json(model(kData / "tiny-mixtral") + " --prompt-ids " + kMixtralCase0);
  EXPECT_FALSE(plain["results"][0].contains("logits"));
  EXPECT_EQ(plain["results"][0]["output_ids"].size(), 16u);
}

TEST(CliGenerate, SeveralPromptsRunAsOneBatchInOrder) {
  const std::string a = kMixtralCase0, b = "1,1969,1310,1768,672,610,501,1011,496";
  json both = run_json(model(kData / "tiny-mixtral") + " --prompt-ids " + a + " --prompt-ids " + b + " --max-tokens 5");
  json only_b = run_json(model(kData / "tiny-mixtral") + " --prompt-ids " + b + " --max-tokens 5");
  ASSERT_EQ(both["results"].size(), 2u);
  EXPECT_EQ(both["results"][1], only_b["results"][0]);
  EXPECT_EQ(both["results"][0]["prompt_ids"], json::parse("[" + a + "]"));
}

TEST(CliGenerate, OutputFile) {
  TempDir tmp;
  const fs::path file = tmp.path() / "result.json";
  RunResult r = msinfer(model(kData / "tiny-qwen3-moe") + " --prompt-ids 42,71,275,81 --max-tokens 3 --output " + file.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(json::parse(slurp(file))["results"][0]["output_ids"], json::parse("[1084, 1084, 1084]"));
}

TEST(CliGenerate, StopsAtEosUnlessIgnored) {
  // Make the first greedy token of case 0 an EOS id: generation stops after it.
  const std::string base = model(kData / "tiny-mixtral") + " --prompt-ids " + kMixtralCase0 +
                           " --max-tokens 10 --hf-overrides '{\"eos_token_id\": 1419}'";
  json stop = run_json(base);
  EXPECT_EQ(stop["results"][0]["output_ids"], json::parse("[668, 1787, 1419]"));
  EXPECT_EQ(stop["results"][0]["finish_reason"], "stop");
  json ignore = run_json(base + " --ignore-eos");
  EXPECT_EQ(ignore["results"][0]["output_ids"].size(), 10u);
  EXPECT_EQ(ignore["results"][0]["finish_reason"], "length");
}

TEST(CliGenerate, SamplingIsSeededAndTopK1IsGreedy) {
  const std::string base = model(kData / "tiny-mixtral") + " --prompt-ids " + kMixtralCase0 + " --max-tokens 12 --temperature 1.5";
  json s1 = run_json(base + " --seed 7");
  json s2 = run_json(base + " --seed 7");
  json s3 = run_json(base + " --seed 8");
  EXPECT_EQ(s1, s2);
  EXPECT_NE(s1["results"][0]["output_ids"], s3["results"][0]["output_ids"]);
  json greedy = run_json(model(kData / "tiny-mixtral") + " --prompt-ids " + kMixtralCase0 + " --max-tokens 12");
  json top1 = run_json(base + " --seed 9 --top-k 1");
  EXPECT_EQ(top1["results"][0]["output_ids"], greedy["results"][0]["output_ids"]);
  json top_p = run_json(base + " --seed 9 --top-p 0.000001");
  EXPECT_EQ(top_p["results"][0]["output_ids"], greedy["results"][0]["output_ids"]);
}

TEST(CliGenerate, DummyWeightsFromConfigAloneAndMakeCheckpoint) {
  TempDir tmp;
  const fs::path cfg_only = tmp.path() / "cfg";
  fs::create_directories(cfg_only);
  fs::copy_file(kData / "tiny-qwen2-moe" / "config.json", cfg_only / "config.json");
  json dummy = run_json(model(cfg_only) + " --load-format dummy --prompt-ids 1,2,3 --max-tokens 4");
  EXPECT_EQ(dummy["results"][0]["output_ids"].size(), 4u);
  // Without weights and without --load-format dummy: a clear error.
  expect_error(model(cfg_only) + " --prompt-ids 1,2,3", "safetensors");
  // make-checkpoint writes the same weights that --load-format dummy generates.
  const fs::path ckpt = tmp.path() / "ckpt";
  RunResult r = msinfer("make-checkpoint --config " + (cfg_only / "config.json").string() + " --out " + ckpt.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json loaded = run_json(model(ckpt) + " --prompt-ids 1,2,3 --max-tokens 4");
  EXPECT_EQ(loaded["results"], dummy["results"]);
}

TEST(CliGenerate, ExpertWorkersAndMicroBatchesKeepOutputs) {
  const std::string base = model(kData / "tiny-qwen3-moe") + " --prompt-ids 42,71,275,81 --prompt-ids 1360,839,1421 --max-tokens 6";
  json one = run_json(base);
  EXPECT_EQ(run_json(base + " --expert-workers 3 --micro-batches 2")["results"], one["results"]);
}

TEST(CliGenerateErrors, ModelDirectoryAndConfig) {
  TempDir tmp;
  expect_error(model(tmp.path() / "nope") + " --prompt-ids 1", "config.json does not exist");
  const fs::path m = copy_model(tmp, "tiny-mixtral");
  std::ofstream(m / "config.json") << "{\"model_type\": \"mixtral\", ";
  expect_error(model(m) + " --prompt-ids 1", "is not valid JSON");
  std::ofstream(m / "config.json") << "{\"hidden_size\": 8}";
  expect_error(model(m) + " --prompt-ids 1", "has no model_type");
  std::ofstream(m / "config.json") << "{\"model_type\": \"llama\"}";
  expect_error(model(m) + " --prompt-ids 1", "model_type 'llama' is not supported");
  fs::copy_file(kData / "tiny-mixtral" / "config.json", m / "config.json", fs::copy_options::overwrite_existing);
  expect_error(model(m) + " --prompt-ids 1 --hf-overrides '{\"rope_parameters\": {\"rope_type\": \"yarn\", \"factor\": 4}}'",
               "rope scaling type 'yarn' is not implemented");
}

TEST(CliGenerateErrors, Checkpoint) {
  TempDir tmp;
  // More layers than the checkpoint has: a missing tensor, named.
  expect_error(model(kData / "tiny-mixtral") + " --prompt-ids 1 --hf-overrides '{\"num_hidden_layers\": 4}'",
               "model.layers.3.");
  // A config that disagrees with the tensors: a shape mismatch, named.
  expect_error(model(kData / "tiny-mixtral") + " --prompt-ids 1 --hf-overrides '{\"intermediate_size\": 128}'",
               "has shape [256, 128], expected [128, 128]");
  const fs::path m = copy_model(tmp, "tiny-mixtral");
  const fs::path st = m / "model.safetensors";
  fs::resize_file(st, 1000);  // truncated: the header says more than the file holds
  expect_error(model(m) + " --prompt-ids 1", "model.safetensors");
  fs::resize_file(st, 4);  // shorter than the header length field
  expect_error(model(m) + " --prompt-ids 1", "model.safetensors");
  {
    std::ofstream f(st, std::ios::binary | std::ios::trunc);
    const uint64_t n = 16;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << "{not json at all";  // corrupt header
  }
  expect_error(model(m) + " --prompt-ids 1", "model.safetensors");
}

TEST(CliGenerateErrors, Prompts) {
  const std::string m = model(kData / "tiny-mixtral");
  expect_error(m + " --prompt-ids 1,5000", "token id 5000 is outside the vocabulary [0, 2000)");
  expect_error(m + " --prompt-ids 1,-3", "outside the vocabulary");
  expect_error(m + " --prompt-ids 1,x", "'x' is not a token id");
  expect_error(m + " --prompt-ids ''", "is not a token id");
  expect_error(m + " --prompt-ids 1,2,3,4,5,6,7,8,9 --max-model-len 8", "maximum model length is 8");
  expect_error(m + " --prompt-ids 1,2 --max-model-len 100000", "exceeds the model's max_position_embeddings");
  expect_error(m + " --prompt-ids " + kMixtralCase0 + " --num-kv-blocks 1 --kv-block-size 4", "KV cache too small");
  expect_error(m + " --prompt-ids 1 --load-format bogus", "unknown --load-format 'bogus'");
  expect_error(m + " --prompt-ids 1 --temperature -1", "--temperature");
  expect_error(m + " --prompt-ids 1 --top-p 0", "--top-p");
  expect_error(m + " --prompt-ids 1 --hf-overrides '[1]'", "--hf-overrides must be a JSON object");
  expect_error(m + " --prompt-ids 1 --expert-workers 9", "cannot place 8 experts on 9 expert workers");
  expect_error(m + " --prompt-ids 1 --device cuda:0", "unknown device 'cuda:0'");
}

TEST(CliGenerateErrors, UsageErrorsExitTwo) {
  EXPECT_EQ(msinfer("generate --prompt-ids 1").exit_code, 2);  // --model is required
  EXPECT_EQ(msinfer("").exit_code, 2);
  EXPECT_EQ(msinfer("frobnicate").exit_code, 2);
}

}  // namespace
