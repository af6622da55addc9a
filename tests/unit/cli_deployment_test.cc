// `msinfer generate` on multi-process deployments (--transport shm): the same outputs as the
// single-worker run for every fixture and (M, N, m); a killed expert worker fails the run fast,
// names the worker and leaves no process behind; the trace shows attention and expert compute
// overlapping across micro-batches.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const fs::path kData = MSI_TEST_DATA_DIR;

using msi::test::RunResult;
using msi::test::children_matching;
using msi::test::slurp;
using msi::test::TempDir;

RunResult msinfer(const std::string& args) { return msi::test::msinfer_shell(args); }

// Every prompt of a fixture's reference.json as --prompt-ids flags.
std::string fixture_prompts(const std::string& fixture) {
  const json ref = json::parse(slurp(kData / fixture / "reference.json"));
  std::string flags;
  for (const auto& c : ref["cases"]) {
    std::string ids;
    for (const auto& t : c["prompt_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(t.get<int>());
    flags += " --prompt-ids " + ids;
  }
  return flags;
}

using Deployment = std::tuple<int, int, int>;  // M, N, m

class ShmDeploymentTest : public ::testing::TestWithParam<std::tuple<std::string, Deployment>> {};

TEST_P(ShmDeploymentTest, EqualsSingleWorker) {
  const auto& [fixture, d] = GetParam();
  const auto& [m_attn, n_exp, mb] = d;
  const std::string base = "generate --model " + (kData / fixture).string() + fixture_prompts(fixture) +
                           " --max-tokens 10 --return-logits --peer-timeout 30";
  RunResult single = msinfer(base);
  RunResult split = msinfer(base + " --transport shm --attention-workers " + std::to_string(m_attn) +
                            " --expert-workers " + std::to_string(n_exp) + " --micro-batches " + std::to_string(mb));
  ASSERT_EQ(single.exit_code, 0) << single.err;
  ASSERT_EQ(split.exit_code, 0) << split.err;
  const json a = json::parse(single.out)["results"], b = json::parse(split.out)["results"];
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["output_ids"], b[i]["output_ids"]) << "request " << i;
    EXPECT_EQ(a[i]["prompt_ids"], b[i]["prompt_ids"]);
    double max_abs = 0;
    for (size_t j = 0; j < a[i]["logits"].size(); ++j) {
      for (size_t v = 0; v < a[i]["logits"][j].size(); ++v) {
        max_abs = std::max(max_abs, std::fabs(a[i]["logits"][j][v].get<double>() - b[i]["logits"][j][v].get<double>()));
      }
    }
    EXPECT_LE(max_abs, 1e-5) << "request " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Deployments, ShmDeploymentTest,
    ::testing::Combine(::testing::Values("tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"),
                       ::testing::Values(Deployment{1, 1, 1}, Deployment{1, 1, 2}, Deployment{2, 3, 3},
                                         Deployment{3, 2, 4}, Deployment{1, 4, 2},
                                         Deployment{1, 0, 1}, Deployment{2, 0, 2})),
    [](const auto& info) {
      std::string name = std::get<0>(info.param);
      for (char& c : name) c = c == '-' ? '_' : c;
      const Deployment& d = std::get<1>(info.param);
      return name + "_M" + std::to_string(std::get<0>(d)) + "_N" + std::to_string(std::get<1>(d)) + "_m" +
             std::to_string(std::get<2>(d));
    });

TEST(ShmDeployment, KilledExpertWorkerFailsFastAndLeavesNothing) {
  TempDir tmp;
  const fs::path err = tmp.path() / "err";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen(err.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    const std::string model = (kData / "tiny-mixtral").string();
    execl(MSI_BINARY_PATH, "msinfer", "generate", "--model", model.c_str(), "--prompt-ids", "1,383,302,331,444,341",
          "--prompt-ids", "1,1969,1310", "--max-tokens", "4000", "--ignore-eos", "--max-model-len", "4096",
          "--transport", "shm", "--attention-workers", "2", "--expert-workers", "2", "--micro-batches", "2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the workers to be up and generating.
  std::vector<pid_t> experts;
  const auto start = std::chrono::steady_clock::now();
  while (experts.size() < 2 && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
    experts = children_matching(pid, "--role expert");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(experts.size(), 2u) << "expert workers never appeared";
  const std::vector<pid_t> all_workers = children_matching(pid, "msinfer worker");
  EXPECT_EQ(all_workers.size(), 4u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // mid-generation

  std::vector<pid_t> expert1 = children_matching(pid, "--role expert --index 1");
  ASSERT_EQ(expert1.size(), 1u);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(expert1[0], SIGKILL), 0);
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(15)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "msinfer still running 15 s after its expert worker was killed";
  }
  EXPECT_LT(secs, 10.0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  const std::string stderr_text = slurp(err);
  EXPECT_THAT(stderr_text, HasSubstr("msinfer: error: expert worker 1 (pid " + std::to_string(expert1[0]) +
                                     ") was killed by signal 9"));
  // No worker survives its supervisor's exit.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (pid_t w : all_workers) {
    EXPECT_TRUE(::kill(w, 0) != 0 && errno == ESRCH) << "worker " << w << " is still alive";
  }
}

// A config big enough that a unit's compute takes far longer than a message.
const char* kBigOverrides =
    "'{\"hidden_size\": 512, \"intermediate_size\": 2048, \"num_attention_heads\": 8, \"head_dim\": 64, "
    "\"num_hidden_layers\": 4}'";

// Pairs of (attention compute, expert compute) spans of different micro-batches that overlap.
int overlapping_pairs(const json& trace) {
  struct Span {
    double begin, end;
    int mb;
  };
  std::vector<Span> attention, experts;
  for (const auto& ev : trace["traceEvents"]) {
    if (ev["ph"] != "X" || ev["cat"] != "compute") continue;
    const std::string name = ev["name"];
    const Span s{ev["ts"].get<double>(), ev["ts"].get<double>() + ev["dur"].get<double>(),
                 ev["args"]["micro_batch"].get<int>()};
    if (name.rfind("attention ", 0) == 0) attention.push_back(s);
    if (name.rfind("experts ", 0) == 0) experts.push_back(s);
  }
  int pairs = 0;
  for (const Span& a : attention) {
    for (const Span& e : experts) {
      if (a.mb != e.mb && a.begin < e.end && e.begin < a.end) ++pairs;
    }
  }
  return pairs;
}

TEST(Trace, PingPongOverlapsAttentionAndExpertsAcrossMicroBatches) {
  for (const std::string transport : {"inproc", "shm"}) {
    TempDir tmp;
    const fs::path trace = tmp.path() / "trace.json";
    RunResult r = msinfer("generate --model " + (kData / "tiny-mixtral").string() +
                          " --load-format dummy --hf-overrides " + kBigOverrides +
                          " --prompt-ids 1,2,3,4,5,6,7,8 --prompt-ids 9,10,11,12,13,14,15,16"
                          " --prompt-ids 17,18,19,20,21,22 --prompt-ids 23,24,25,26,27,28,29"
                          " --max-tokens 6 --ignore-eos --attention-workers 2 --expert-workers 2"
                          " --micro-batches 3 --transport " + transport + " --trace " + trace.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json t = json::parse(slurp(trace));
    std::set<int> tracks;
    for (const auto& ev : t["traceEvents"]) {
      if (ev["ph"] == "X") tracks.insert(ev["tid"].get<int>());
    }
    // A host track per worker; a device track per attention worker (expert workers behind the
    // host transport compute before their handler returns: no device spans).
    EXPECT_EQ(tracks, (std::set<int>{0, 1, 2, 3, 1000, 1001})) << transport;
    EXPECT_GT(overlapping_pairs(t), 0)
        << transport << ": no attention compute overlapped expert compute";
  }
}

// Device spans (on the CPU, its clock is the host's): with the peer transport every worker has a
// device track, every unit with tokens has its device spans, each inside the host span that ran it
// (the CPU computes before returning), in order on its track.
TEST(Trace, DeviceTracksTimeEveryUnit) {
  TempDir tmp;
  const fs::path trace = tmp.path() / "trace.json";
  RunResult r =
      msinfer("generate --model " + (kData / "tiny-mixtral").string() +
              " --prompt-ids 1,2,3,4,5,6,7,8 --prompt-ids 9,10,11 --prompt-ids 12,13,14,15"
              " --max-tokens 4 --ignore-eos --attention-workers 2 --micro-batches 2"
              " --attention-devices cpu --expert-devices cpu,cpu --trace " +
              trace.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json t = json::parse(slurp(trace));
  std::map<int, std::string> names;
  struct Span {
    std::string kind;  // the name without " L<layer> mb<micro-batch>"
    std::tuple<int64_t, int, int> unit;
    int64_t tokens;
    double begin, end;
  };
  std::map<int, std::vector<Span>> by_track;
  for (const auto& ev : t["traceEvents"]) {
    if (ev["ph"] == "M" && ev["name"] == "thread_name") {
      names[ev["tid"].get<int>()] = ev["args"]["name"];
    }
    if (ev["ph"] != "X") continue;
    const std::string name = ev["name"];
    const auto& a = ev["args"];
    const size_t unit_at = name.rfind(" L");
    ASSERT_NE(unit_at, std::string::npos) << name;
    by_track[ev["tid"].get<int>()].push_back(
        {name.substr(0, unit_at),
         {a["step"].get<int64_t>(), a["layer"].get<int>(), a["micro_batch"].get<int>()},
         a["tokens"].get<int64_t>(),
         ev["ts"].get<double>(),
         ev["ts"].get<double>() + ev["dur"].get<double>()});
    EXPECT_EQ(ev["cat"] == "device", ev["tid"].get<int>() >= 1000) << name;
  }
  EXPECT_EQ(names[1000], "attention worker 0 (device)");
  EXPECT_EQ(names[1001], "attention worker 1 (device)");
  EXPECT_EQ(names[1002], "expert worker 0 (device)");
  EXPECT_EQ(names[1003], "expert worker 1 (device)");

  constexpr double kSlackUs = 200.0;  // the host-clock mapping's offset, and rounding
  // For every host span of `host_kind` with tokens, the one device span of `device_kind` of its
  // unit lies inside it.
  auto check = [&](int tid, const std::string& host_kind, const std::string& device_kind) {
    int n = 0;
    for (const Span& h : by_track[tid]) {
      if (h.kind != host_kind || h.tokens == 0) continue;
      int found = 0;
      for (const Span& d : by_track[1000 + tid]) {
        if (d.kind != device_kind || d.unit != h.unit) continue;
        ++found;
        EXPECT_GE(d.begin, h.begin - kSlackUs) << names[tid] << " " << device_kind;
        EXPECT_LE(d.end, h.end + kSlackUs) << names[tid] << " " << device_kind;
        EXPECT_EQ(d.tokens, h.tokens);
      }
      EXPECT_EQ(found, 1) << names[tid] << ": " << device_kind << " of step " << std::get<0>(h.unit)
                          << " L" << std::get<1>(h.unit) << " mb" << std::get<2>(h.unit);
      ++n;
    }
    EXPECT_GT(n, 0) << names[tid] << ": no " << host_kind << " spans";
  };
  for (int tid : {0, 1}) check(tid, "attention", "attention");
  for (int tid : {2, 3}) check(tid, "experts", "experts");
  for (int tid : {0, 1}) {
    int n_attention = 0, n_combine = 0, n_logits = 0;
    for (const Span& d : by_track[1000 + tid]) {
      n_attention += d.kind == "attention";
      n_combine += d.kind == "wait+combine";
      n_logits += d.kind == "logits+sample";
    }
    EXPECT_EQ(n_combine, n_attention) << "every layer of tiny-mixtral is MoE";
    EXPECT_GT(n_logits, 0);
  }
  // One device runs one thing at a time.
  for (int tid = 1000; tid < 1004; ++tid) {
    std::vector<Span>& spans = by_track[tid];
    ASSERT_FALSE(spans.empty()) << names[tid];
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_LE(spans[i].begin, spans[i].end) << names[tid];
      if (i > 0) {
        EXPECT_GE(spans[i].begin, spans[i - 1].end - 1.0) << names[tid] << " span " << i;
      }
    }
  }
}

// The peer transport from the command line (CPU "devices", threads): the default run's tokens.
TEST(PeerDeployment, DevicesFlagsGiveTheDefaultTokens) {
  const std::string base = "generate --model " + (kData / "tiny-qwen2-moe").string() +
                           " --prompt-ids 1,2,3 --prompt-ids 4,5 --max-tokens 6";
  RunResult want = msinfer(base);
  RunResult got = msinfer(base + " --attention-devices cpu --expert-devices cpu,cpu --micro-batches 2 --attention-workers 2");
  ASSERT_EQ(want.exit_code, 0) << want.err;
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(nlohmann::json::parse(got.out)["results"], nlohmann::json::parse(want.out)["results"]);
}

TEST(ShmDeploymentErrors, BadFlags) {
  const std::string base = "generate --model " + (kData / "tiny-mixtral").string() + " --prompt-ids 1,2";
  RunResult r = msinfer(base + " --transport carrier-pigeon");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("unknown --transport 'carrier-pigeon'"));
  r = msinfer(base + " --transport shm --expert-workers 9");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot place 8 experts on 9 expert workers"));
  r = msinfer(base + " --transport shm --attention-workers 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--attention-workers must be at least 1"));
  r = msinfer(base + " --expert-workers -2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--expert-workers must be at least 0"));
  r = msinfer(base + " --device cuda:0 --expert-workers 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("expert workers on a GPU need device-to-device transport"));
  r = msinfer(base + " --expert-devices cpu,cpu --expert-workers 3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--expert-workers 3 disagrees with 2 --expert-devices"));
  r = msinfer(base + " --expert-devices cpu,cpu --transport shm");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("which needs GPU devices, not 'cpu'"));
  r = msinfer(base + " --expert-devices cpu,,cpu");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("an empty device"));
  r = msinfer(base + ",99999 --transport shm");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("outside the vocabulary"));
}

}  // namespace
