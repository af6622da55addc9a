#include "tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "tokenizer/utf8.h"

namespace msi {

namespace tok {

TokenizerOptions TokenizerOptions::from_config(const nlohmann::json& config) {
  TokenizerOptions o;
  if (config.is_object()) {
    auto it = config.find("clean_up_tokenization_spaces");
    if (it != config.end() && it->is_boolean()) o.clean_up_tokenization_spaces = it->get<bool>();
  }
  return o;
}

namespace {

template <typename T>
Result<T> in_component(Result<T> r, const char* component) {
  if (!r.is_ok()) return r.status().with_context(component);
  return r;
}

}  // namespace

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::create(const nlohmann::json& j,
                                                         const TokenizerOptions& options) {
  // A field of an unexpected JSON type (e.g. null where a bool belongs) throws from
  // nlohmann::json; that is bad input, not a bug.
  try {
    return create_unchecked(j, options);
  } catch (const nlohmann::json::exception& e) {
    return error(StatusCode::kInvalidArgument, "malformed tokenizer.json: {}", e.what());
  }
}

Result<std::unique_ptr<HfTokenizer>> HfTokenizer::create_unchecked(
    const nlohmann::json& j, const TokenizerOptions& options) {
  if (!j.is_object()) return error(StatusCode::kInvalidArgument, "tokenizer.json is not an object");
  if (!j.contains("model") || !j["model"].is_object()) {
    return error(StatusCode::kInvalidArgument, "tokenizer.json has no \"model\"");
  }
  const auto& model = j["model"];
  const std::string model_type =
      model.value("type", std::string(model.contains("merges") ? "BPE" : ""));
  if (model_type != "BPE") {
    return error(StatusCode::kUnimplemented, "unsupported model type '{}' (only BPE)", model_type);
  }
  std::unique_ptr<HfTokenizer> t(new HfTokenizer());
  t->options_ = options;
  const nlohmann::json null;
  auto field = [&](const char* key) -> const nlohmann::json& {
    return j.contains(key) ? j[key] : null;
  };
  MSI_ASSIGN_OR_RETURN(t->normalizer_,
                       in_component(make_normalizer(field("normalizer")), "normalizer"));
  MSI_ASSIGN_OR_RETURN(t->pre_tokenizer_,
                       in_component(make_pre_tokenizer(field("pre_tokenizer")), "pre_tokenizer"));
  MSI_ASSIGN_OR_RETURN(t->model_, in_component(BpeModel::from_json(model), "model"));
  MSI_ASSIGN_OR_RETURN(
      t->post_processor_,
      in_component(make_post_processor(field("post_processor")), "post_processor"));
  MSI_ASSIGN_OR_RETURN(t->decoder_, in_component(make_decoder(field("decoder")), "decoder"));
  MSI_ASSIGN_OR_RETURN(t->added_, in_component(AddedVocabulary::from_json(field("added_tokens"),
                                                                          t->normalizer_.get()),
                                               "added_tokens"));
  t->vocab_size_ = t->model_->id_end();
  for (const AddedToken& a : t->added_.tokens()) {
    t->vocab_size_ = std::max<int64_t>(t->vocab_size_, int64_t{a.id} + 1);
  }
  return t;
}

Result<std::vector<int32_t>> HfTokenizer::encode(std::string_view text,
                                                 bool add_special_tokens) const {
  if (!is_valid_utf8(text)) {
    return error(StatusCode::kInvalidArgument, "encode: the text is not valid UTF-8");
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<AddedSplit> splits;
  added_.split(text, /*normalized_text=*/false, &splits);
  for (const AddedSplit& s : splits) {
    if (s.id >= 0) {
      ids.push_back(s.id);
    } else {
      MSI_RETURN_IF_ERROR(encode_plain(text.substr(s.begin, s.end - s.begin), s.begin == 0, &ids));
    }
  }
  if (post_processor_) post_processor_->process(&ids, add_special_tokens);
  return ids;
}

Status HfTokenizer::encode_plain(std::string_view text, bool at_start,
                                 std::vector<int32_t>* ids) const {
  std::string normalized_storage;
  std::string_view normalized = text;
  if (normalizer_) {
    MSI_RETURN_IF_ERROR(normalizer_->normalize(text, &normalized_storage));
    normalized = normalized_storage;
  }
  if (normalized.empty()) return Status::ok();
  std::vector<AddedSplit> splits;
  added_.split(normalized, /*normalized_text=*/true, &splits);
  std::vector<PreToken> pieces;
  for (const AddedSplit& s : splits) {
    if (s.id >= 0) {
      ids->push_back(s.id);
      continue;
    }
    pieces.clear();
    pieces.push_back(PreToken{std::string(normalized.substr(s.begin, s.end - s.begin)),
                              at_start && s.begin == 0});
    if (pre_tokenizer_) MSI_RETURN_IF_ERROR(pre_tokenizer_->pre_tokenize(&pieces));
    for (const PreToken& p : pieces) model_->tokenize(p.text, ids);
  }
  return Status::ok();
}

Result<std::string> HfTokenizer::decode_raw(std::span<const int32_t> ids,
                                            bool skip_special_tokens) const {
  std::vector<DecodeToken> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const AddedToken* a = added_.find_id(id)) {
      if (skip_special_tokens && a->special) continue;
      tokens.push_back(DecodeToken{a->content, true});
    } else if (const std::string* s = model_->id_to_token(id)) {
      tokens.push_back(DecodeToken{*s, false});
    } else {
      return error(StatusCode::kOutOfRange, "decode: id {} is not in the vocabulary (size {})", id,
                   vocab_size_);
    }
  }
  std::string text;
  if (decoder_) {
    MSI_RETURN_IF_ERROR(decoder_->decode_chain(&tokens));
    for (const DecodeToken& t : tokens) text += t.text;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {  // `tokenizers` joins with spaces
      if (i > 0) text += ' ';
      text += tokens[i].text;
    }
  }
  return text;
}

Result<std::string> HfTokenizer::decode(std::span<const int32_t> ids,
                                        bool skip_special_tokens) const {
  MSI_ASSIGN_OR_RETURN(std::string text, decode_raw(ids, skip_special_tokens));
  if (options_.clean_up_tokenization_spaces) text = clean_up_tokenization(std::move(text));
  return text;
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* a = added_.find_content(token)) return a->id;
  return model_->token_to_id(token);
}

std::optional<std::string> HfTokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* a = added_.find_id(id)) return a->content;
  if (const std::string* s = model_->id_to_token(id)) return *s;
  return std::nullopt;
}

bool HfTokenizer::is_special(int32_t id) const {
  const AddedToken* a = added_.find_id(id);
  return a != nullptr && a->special;
}

}  // namespace tok

namespace {

Result<nlohmann::json> read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(StatusCode::kIoError, "cannot read {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    return error(StatusCode::kInvalidArgument, "{}: {}", path.string(), e.what());
  }
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return error(StatusCode::kNotFound, "{} not found", path.string());
  }
  MSI_ASSIGN_OR_RETURN(nlohmann::json j, read_json(path));
  tok::TokenizerOptions options;
  const auto config_path = model_dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config_path, ec)) {
    MSI_ASSIGN_OR_RETURN(nlohmann::json config, read_json(config_path));
    options = tok::TokenizerOptions::from_config(config);
  }
  auto t = tok::HfTokenizer::create(j, options);
  if (!t.is_ok()) return t.status().with_context(path.string());
  return std::unique_ptr<Tokenizer>(std::move(t).value());
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(const nlohmann::json& tokenizer_json) {
  MSI_ASSIGN_OR_RETURN(auto t, tok::HfTokenizer::create(tokenizer_json, tok::TokenizerOptions()));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace msi
