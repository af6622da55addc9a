// The GPU M2N transports (comm/gpu/m2n_gpu.h): every transport delivers exactly the bytes sent, in
// both directions, for several sizes and M×N shapes, round after round on the same buffers (the
// flags carry sequence numbers, nothing is reset), and a silent sender makes the round fail with
// DeadlineExceeded naming it, within a bounded time, after which the group works again.
//
// Two-device tests need devices 0 and 1 with peer access (they skip otherwise). The P2P and copy-
// engine transports also run with both ends on device 0 (OneDevice*), so a single-GPU machine
// covers them; NCCL needs one rank per device.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "comm/gpu/m2n_gpu.h"

namespace {

using msi::StatusCode;
using msi::comm::gpu::GpuM2N;
using msi::comm::gpu::GpuM2NConfig;
using msi::comm::gpu::GpuTransport;
using ::testing::HasSubstr;

std::vector<std::byte> pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t x = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) v[i + j] = static_cast<std::byte>(x >> (8 * j));
  }
  return v;
}

bool have_devices(GpuTransport t, int send, int recv) {
  GpuM2NConfig c;
  c.send_device = send;
  c.recv_device = recv;
  return msi::comm::gpu::gpu_m2n_supported(t, c).is_ok();
}

std::unique_ptr<GpuM2N> make(GpuTransport t, int send, int recv, int m, int n, size_t max_bytes,
                             int timeout_ms = 2000) {
  GpuM2NConfig c;
  c.send_device = send;
  c.recv_device = recv;
  c.n_senders = m;
  c.n_receivers = n;
  c.max_bytes = max_bytes;
  c.timeout = std::chrono::milliseconds(timeout_ms);
  auto r = msi::comm::gpu::make_gpu_m2n(t, c);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : nullptr;
}

// Writes a fresh payload for every pair, runs `n_rounds` rounds, and checks that each receiver's
// dispatch inbox holds what its sender sent and each sender's combine inbox holds the echo.
void round_trip_and_check(GpuM2N& m2n, size_t bytes, uint64_t seed, int n_rounds = 1) {
  const int m = m2n.config().n_senders;
  const int n = m2n.config().n_receivers;
  std::vector<std::vector<std::byte>> sent;
  for (int s = 0; s < m; ++s) {
    for (int r = 0; r < n; ++r) {
      sent.push_back(pattern(bytes, seed * 1000003 + s * 1009 + r));
      ASSERT_TRUE(m2n.write_payload(s, r, sent.back().data(), bytes).is_ok());
    }
  }
  std::vector<float> us(n_rounds);
  const auto st = m2n.run_rounds(bytes, us.data(), n_rounds);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  for (float u : us) EXPECT_GT(u, 0.0f);
  std::vector<std::byte> got(bytes);
  for (int s = 0; s < m; ++s) {
    for (int r = 0; r < n; ++r) {
      const auto& want = sent[static_cast<size_t>(s * n + r)];
      ASSERT_TRUE(m2n.read_dispatch_inbox(s, r, got.data(), bytes).is_ok());
      ASSERT_TRUE(got == want) << "dispatch sender " << s << " → receiver " << r << ", " << bytes << " B";
      ASSERT_TRUE(m2n.read_combine_inbox(r, s, got.data(), bytes).is_ok());
      ASSERT_TRUE(got == want) << "combine receiver " << r << " → sender " << s << ", " << bytes << " B";
    }
  }
}

using Shape = std::tuple<GpuTransport, int, int>;  // transport, M, N

class M2NGpuTwoDevices : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    if (!have_devices(std::get<0>(GetParam()), 0, 1)) GTEST_SKIP() << "needs devices 0 and 1 with peer access";
  }
};

TEST_P(M2NGpuTwoDevices, PayloadsArriveIntactRoundAfterRound) {
  const auto [t, m, n] = GetParam();
  const std::vector<size_t> sizes = {16, 4096, 65536 + 48, 256 * 1024, 1 << 20};
  auto m2n = make(t, 0, 1, m, n, 1 << 20);
  ASSERT_NE(m2n, nullptr);
  uint64_t seed = 1;
  for (int round = 0; round < 3; ++round) {  // the same buffers and flags, sequence numbers rising
    for (size_t bytes : sizes) round_trip_and_check(*m2n, bytes, seed++);
  }
  round_trip_and_check(*m2n, 256 * 1024, seed++, 40);  // a gated batch of back-to-back rounds
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, M2NGpuTwoDevices,
    ::testing::Combine(::testing::Values(GpuTransport::kP2P, GpuTransport::kCopyEngine, GpuTransport::kNccl),
                       ::testing::Values(1, 3), ::testing::Values(1, 2)),
    [](const auto& info) {
      return std::string(msi::comm::gpu::gpu_transport_name(std::get<0>(info.param))) + "_" +
             std::to_string(std::get<1>(info.param)) + "x" + std::to_string(std::get<2>(info.param));
    });

class M2NGpuOneDevice : public ::testing::TestWithParam<GpuTransport> {
 protected:
  void SetUp() override {
    if (!have_devices(GetParam(), 0, 0)) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(M2NGpuOneDevice, BothEndsOnDeviceZero) {
  auto m2n = make(GetParam(), 0, 0, 2, 2, 256 * 1024);
  ASSERT_NE(m2n, nullptr);
  uint64_t seed = 7;
  for (int round = 0; round < 3; ++round) {
    for (size_t bytes : {size_t{16}, size_t{4096}, size_t{256 * 1024}}) round_trip_and_check(*m2n, bytes, seed++);
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, M2NGpuOneDevice,
                         ::testing::Values(GpuTransport::kP2P, GpuTransport::kCopyEngine),
                         [](const auto& info) { return std::string(msi::comm::gpu::gpu_transport_name(info.param)); });

class M2NGpuSilentPeer : public ::testing::TestWithParam<GpuTransport> {
 protected:
  void SetUp() override {
    if (!have_devices(GetParam(), 0, 1)) GTEST_SKIP() << "needs devices 0 and 1 with peer access";
  }
};

TEST_P(M2NGpuSilentPeer, TimesOutNamingTheSilentSenderThenRecovers) {
  auto m2n = make(GetParam(), 0, 1, 3, 2, 64 * 1024, /*timeout_ms=*/200);
  ASSERT_NE(m2n, nullptr);
  round_trip_and_check(*m2n, 4096, 1);
  std::vector<float> us(3);
  const auto t0 = std::chrono::steady_clock::now();
  const auto st = m2n->run_rounds(4096, us.data(), 3, {.silent_sender = 1});
  const double waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_THAT(st.message(), HasSubstr("dispatch"));
  EXPECT_THAT(st.message(), HasSubstr("waited for sender 1"));
  EXPECT_LT(waited_s, 5.0);  // bounded: 200 ms device timeout, host backstop 2×timeout + 100 ms
  // The group drained: later rounds on the same buffers are correct again.
  round_trip_and_check(*m2n, 4096, 2);
  round_trip_and_check(*m2n, 64 * 1024, 3, 5);
}

INSTANTIATE_TEST_SUITE_P(Transports, M2NGpuSilentPeer,
                         ::testing::Values(GpuTransport::kP2P, GpuTransport::kCopyEngine),
                         [](const auto& info) { return std::string(msi::comm::gpu::gpu_transport_name(info.param)); });

TEST(M2NGpu, RejectsBadSizesAndUnsupportedFaults) {
  if (!have_devices(GpuTransport::kNccl, 0, 1)) GTEST_SKIP() << "needs devices 0 and 1 with peer access";
  auto m2n = make(GpuTransport::kNccl, 0, 1, 1, 1, 4096);
  ASSERT_NE(m2n, nullptr);
  float us[1];
  EXPECT_EQ(m2n->run_rounds(24, us, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m2n->run_rounds(8192, us, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m2n->run_rounds(4096, us, 1, {.silent_sender = 0}).code(), StatusCode::kUnimplemented);
  round_trip_and_check(*m2n, 4096, 9);  // a refused fault leaves the group usable
}

}  // namespace
