#include <atomic>
#include <cstring>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "test_util.h"
#include "model/safetensors.h"

namespace msi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

using msi::test::TempDir;

// A raw safetensors file: u64 LE header length, header text, `data_bytes` zero bytes.
std::string raw_file(const std::string& header, size_t data_bytes, uint64_t header_len = ~0ull) {
  if (header_len == ~0ull) header_len = header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(header_len >> (8 * i));
  return out + header + std::string(data_bytes, '\0');
}

Status open_status(const fs::path& path) {
  Result<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::open(path);
  return f.status();
}

void expect_open_error(const TempDir& dir, const std::string& bytes, StatusCode code,
                       const std::string& substr) {
  const fs::path path = dir.write("bad.safetensors", bytes);
  const Status s = open_status(path);
  ASSERT_FALSE(s.is_ok()) << substr;
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_THAT(s.message(), HasSubstr("bad.safetensors")) << s.to_string();
  EXPECT_THAT(s.message(), HasSubstr(substr)) << s.to_string();
}

TensorToWrite f32_tensor(const std::string& name, std::vector<int64_t> shape,
                         const std::vector<float>& values) {
  TensorToWrite t{name, DType::kF32, std::move(shape), {}};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

TEST(ModelSafetensors, WriteThenReadRoundTrips) {
  TempDir dir;
  TensorToWrite bf16{"b", DType::kBF16, {3}, {1, 2, 3, 4, 5, 6}};
  const std::vector<TensorToWrite> tensors = {f32_tensor("a", {2, 2}, {1, 2, 3, 4}), bf16,
                                              TensorToWrite{"empty", DType::kI64, {0, 4}, {}}};
  ASSERT_TRUE(write_safetensors(dir.path() / "x.safetensors", tensors).is_ok());

  std::ifstream in(dir.path() / "x.safetensors", std::ios::binary);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  EXPECT_EQ(header_len % 8, 0u);  // padded with spaces

  auto f = SafetensorsFile::open(dir.path() / "x.safetensors");
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->names(), (std::vector<std::string>{"a", "b", "empty"}));
  auto a = (*f)->get("a");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  float values[4];
  std::memcpy(values, a->data, sizeof(values));
  EXPECT_EQ(values[3], 4.0f);
  auto b = (*f)->get("b");
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(std::memcmp(b->data, bf16.bytes.data(), 6), 0);
  EXPECT_EQ((*f)->get("empty")->numel(), 0);
  auto missing = (*f)->get("zzz");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("zzz"));
}

TEST(ModelSafetensors, WriterRejectsBadTensors) {
  TempDir dir;
  const Status size = write_safetensors(dir.path() / "x.safetensors",
                                        {TensorToWrite{"a", DType::kF32, {2}, {0, 0, 0}}});
  EXPECT_EQ(size.code(), StatusCode::kInvalidArgument);
  const Status dup = write_safetensors(dir.path() / "x.safetensors",
                                       {f32_tensor("a", {1}, {1}), f32_tensor("a", {1}, {1})});
  EXPECT_EQ(dup.code(), StatusCode::kInvalidArgument);
}

TEST(ModelSafetensors, ReaderSkipsMetadataAndFixturesOpen) {
  auto f = SafetensorsFile::open(kData / "tiny-mixtral" / "model.safetensors");
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ((*f)->names().size(), 96u);  // 97 header entries minus __metadata__
  EXPECT_FALSE((*f)->contains("__metadata__"));
  auto embed = (*f)->get("model.embed_tokens.weight");
  ASSERT_TRUE(embed.is_ok());
  EXPECT_EQ(embed->dtype, DType::kBF16);
  EXPECT_EQ(embed->shape, (std::vector<int64_t>{2000, 128}));
}

TEST(ModelSafetensors, OpenValidatesEverything) {
  TempDir dir;
  const std::string ok_entry = R"("t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  expect_open_error(dir, "", StatusCode::kInvalidArgument, "too short");
  expect_open_error(dir, "1234567", StatusCode::kInvalidArgument, "too short");
  expect_open_error(dir, raw_file("{}", 0, 1000), StatusCode::kInvalidArgument,
                    "header length 1000");
  expect_open_error(dir, raw_file("{\"t\": ", 0), StatusCode::kInvalidArgument, "not valid JSON");
  expect_open_error(dir, raw_file("[1, 2]", 0), StatusCode::kInvalidArgument, "not a JSON object");
  expect_open_error(dir, raw_file(R"({"t": 5})", 0), StatusCode::kInvalidArgument, "'t'");
  expect_open_error(dir, raw_file(R"({"t": {"shape": [2], "data_offsets": [0, 8]}})", 8),
                    StatusCode::kInvalidArgument, "dtype");
  expect_open_error(dir, raw_file(R"({"t": {"dtype": "F32", "data_offsets": [0, 8]}})", 8),
                    StatusCode::kInvalidArgument, "shape");
  expect_open_error(dir, raw_file(R"({"t": {"dtype": "F32", "shape": [2]}})", 8),
                    StatusCode::kInvalidArgument, "data_offsets");
  expect_open_error(
      dir, raw_file(R"({"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8),
      StatusCode::kInvalidArgument, "shape");
  expect_open_error(dir,
                    raw_file(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", 8),
                    StatusCode::kInvalidArgument, "data_offsets");
  expect_open_error(dir, raw_file("{" + ok_entry + "}", 4), StatusCode::kInvalidArgument,
                    "beyond the data region");
  expect_open_error(dir,
                    raw_file(R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8),
                    StatusCode::kInvalidArgument, "end < begin");
  expect_open_error(dir,
                    raw_file(R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
                    StatusCode::kInvalidArgument, "need 12");
  expect_open_error(
      dir,
      raw_file(
          R"({"t": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})",
          8),
      StatusCode::kInvalidArgument, "need more");
  expect_open_error(
      dir, raw_file(R"({"t": {"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}})", 8),
      StatusCode::kUnimplemented, "F8_E4M3");
  expect_open_error(
      dir,
      raw_file(
          "{" + ok_entry + R"(, "u": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
          12),
      StatusCode::kInvalidArgument, "overlap");
  const fs::path good = dir.write("good.safetensors",
                                  raw_file("{" + ok_entry + R"(, "__metadata__": {"k": "v"}})", 8));
  EXPECT_TRUE(open_status(good).is_ok());
  EXPECT_EQ(open_status(dir.path() / "absent.safetensors").code(), StatusCode::kNotFound);
}

// --- open_checkpoint ---

TEST(ModelCheckpoint, SingleFileFixture) {
  auto source = open_checkpoint(kData / "tiny-mixtral");
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  auto t = (*source)->get("model.layers.2.block_sparse_moe.experts.7.w2.weight");
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->shape, (std::vector<int64_t>{128, 256}));
  auto missing = (*source)->get("model.layers.3.input_layernorm.weight");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("tensor 'model.layers.3.input_layernorm.weight' not found in checkpoint"));
  EXPECT_THAT(missing.status().message(), HasSubstr("tiny-mixtral"));
}

TEST(ModelCheckpoint, ShardedFixture) {
  auto source = open_checkpoint(kData / "tiny-qwen3-moe");
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  for (const char* name : {"lm_head.weight", "model.embed_tokens.weight",
                           "model.layers.2.mlp.experts.15.up_proj.weight", "model.norm.weight"}) {
    EXPECT_TRUE((*source)->get(name).is_ok()) << name;
  }
  EXPECT_EQ((*source)->get("model.embed_tokens.weight")->shape, (std::vector<int64_t>{2048, 96}));
}

TEST(ModelCheckpoint, IndexErrors) {
  TempDir dir;
  ASSERT_TRUE(write_safetensors(dir.path() / "a.safetensors", {f32_tensor("x", {1}, {1})}).is_ok());
  dir.write("model.safetensors.index.json",
            R"({"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}})");
  Status s = open_checkpoint(dir.path()).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.to_string();
  EXPECT_THAT(s.message(), HasSubstr("b.safetensors"));

  dir.write("model.safetensors.index.json",
            R"({"weight_map": {"x": "a.safetensors", "y": "a.safetensors"}})");
  s = open_checkpoint(dir.path()).status();
  EXPECT_FALSE(s.is_ok());
  EXPECT_THAT(s.message(), HasSubstr("'y'"));

  dir.write("model.safetensors.index.json", R"({"metadata": {}})");
  s = open_checkpoint(dir.path()).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("weight_map"));

  dir.write("model.safetensors.index.json", R"({"weight_map": )");
  s = open_checkpoint(dir.path()).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors.index.json"));

  dir.write("model.safetensors.index.json", R"({"weight_map": {"x": "a.safetensors"}})");
  auto source = open_checkpoint(dir.path());
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  EXPECT_TRUE((*source)->get("x").is_ok());
}

TEST(ModelCheckpoint, GlobFallbackAndEmptyDir) {
  TempDir dir;
  Status s = open_checkpoint(dir.path()).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(dir.path().string()));
  EXPECT_EQ(open_checkpoint(dir.path() / "absent").status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(
      write_safetensors(dir.path() / "part1.safetensors", {f32_tensor("x", {1}, {1})}).is_ok());
  ASSERT_TRUE(
      write_safetensors(dir.path() / "part2.safetensors", {f32_tensor("y", {2}, {1, 2})}).is_ok());
  auto source = open_checkpoint(dir.path());
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  EXPECT_TRUE((*source)->get("x").is_ok());
  EXPECT_EQ((*source)->get("y")->shape, (std::vector<int64_t>{2}));

  // A tensor in two files is ambiguous.
  ASSERT_TRUE(
      write_safetensors(dir.path() / "part3.safetensors", {f32_tensor("y", {1}, {1})}).is_ok());
  EXPECT_EQ(open_checkpoint(dir.path()).status().code(), StatusCode::kInvalidArgument);

  // model.safetensors wins over the other files.
  ASSERT_TRUE(
      write_safetensors(dir.path() / "model.safetensors", {f32_tensor("z", {1}, {1})}).is_ok());
  source = open_checkpoint(dir.path());
  ASSERT_TRUE(source.is_ok()) << source.status().to_string();
  EXPECT_TRUE((*source)->get("z").is_ok());
  EXPECT_EQ((*source)->get("x").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace msi
