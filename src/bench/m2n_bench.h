// msinfer bench m2n: dispatch + combine round trips between M senders on one GPU and N receivers
// on another, over the GPU M2N transports of comm/gpu/m2n_gpu.h (NVLink peer-to-peer stores,
// copy engine, NCCL as the baseline). Not a test: a tool with JSON output.
//
// One round: every sender sends its message to every receiver (each pair its own slice and flag),
// then every receiver, once all of its M messages are in, echoes each back (the same size). The
// time of a round is measured with CUDA events on the send device's stream, from before the
// dispatch to after the last combine arrives; rounds of a batch are enqueued behind a gate and run
// back to back, so host launch latency is outside the figures. Per transport and message size:
// median, p99, min and mean round time; throughput = bytes moved in both directions per round
// (2·M·N·bytes) / mean round time; floor = the same bytes at the NVLink rate (dispatch and combine
// are serialized, each direction at `link_gbps`).
//
// Message sizes: powers of two (default 4 KiB .. 8 MiB per pair), and decode-shaped messages:
//   bytes per pair = ceil(tokens · top_k / N) · hidden · 2
// i.e. every token's bf16 hidden state travels once per selected expert (no per-receiver
// deduplication), experts spread evenly over the N receivers.
//
// Without MSI_CUDA, run_m2n_bench returns Unavailable ("built without CUDA").
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace msi::bench {

struct M2NBenchConfig {
  int send_device = 0;
  int recv_device = 1;
  int n_senders = 1;
  int n_receivers = 1;
  std::vector<size_t> sizes;  // bytes per pair; empty: 4 KiB .. 8 MiB, powers of two
  std::vector<int> decode_tokens = {1, 4, 16, 64, 128, 256, 512};  // empty: no decode shapes
  std::vector<int> decode_hidden = {4096, 6144, 7168};
  std::vector<int> decode_topk = {2, 8};
  std::vector<std::string> transports = {"p2p", "ce", "nccl"};
  int warmup = 20;   // rounds per case before the timed ones
  int iters = 200;   // timed rounds per case
  int timeout_ms = 2000;
  int p2p_blocks_per_pair = 16;
  double link_gbps = 450.0;  // NVLink 4 per direction (18 links × 25 GB/s, H100/H200)
  bool progress = true;      // a progress line on stderr
};

// "4096", "4K", "256KiB", "8M", "1G" → bytes. InvalidArgument otherwise.
Result<size_t> parse_byte_size(const std::string& text);
// "4K,256K,8M" → sizes.
Result<std::vector<size_t>> parse_byte_sizes(const std::string& text);

// Bytes per pair of a decode-shaped message (the formula above), rounded up to 16.
size_t decode_message_bytes(int tokens, int hidden, int top_k, int n_receivers);

// The result object: "config", "timing", "cases" (one per size, each with per-transport
// "median_us", "p99_us", "min_us", "mean_us", "gbps", "floor_us"), and "headline" (at 256 KiB
// per pair, each transport vs nccl: "median_latency_reduction_pct", "throughput_x").
Result<nlohmann::json> run_m2n_bench(const M2NBenchConfig& config);
// A human table of that object.
std::string m2n_bench_table(const nlohmann::json& result);

}  // namespace msi::bench
