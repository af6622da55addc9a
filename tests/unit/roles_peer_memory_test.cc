// PeerMemoryMap and PeerExports: translating the addresses a peer in another process names into
// this process's mappings, and the export list's round trip. The CUDA IPC handles themselves are
// exercised on two GPUs by engine_gpu_test (processes); here the map is filled by hand.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "roles/peer_memory.h"

namespace msi {
namespace {

TEST(PeerMemoryMap, IdentityForThreads) {
  PeerMemoryMap map;
  EXPECT_TRUE(map.is_identity());
  int x = 0;
  auto p = map.memory(&x, sizeof(x));
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(*p, &x);
  DeviceEvent e;
  auto ev = map.event(&e);
  ASSERT_TRUE(ev.is_ok());
  EXPECT_EQ(*ev, &e);
}

TEST(PeerMemoryMap, TranslatesInsideExportedRanges) {
  std::vector<std::byte> local_a(256), local_b(64);
  PeerMemoryMap map;
  map.add_memory(0x10000, 256, local_a.data());
  map.add_memory(0x20000, 64, local_b.data());
  EXPECT_FALSE(map.is_identity());
  auto at = [&](uint64_t remote, size_t bytes) {
    return map.memory(reinterpret_cast<const void*>(remote), bytes);
  };
  ASSERT_TRUE(at(0x10000, 256).is_ok());
  EXPECT_EQ(*at(0x10000, 256), local_a.data());
  EXPECT_EQ(*at(0x10040, 16), local_a.data() + 0x40);
  EXPECT_EQ(*at(0x20010, 48), local_b.data() + 0x10);
  EXPECT_EQ(*at(0x10100, 0), local_a.data() + 256);  // an empty range at the end
  // Straddling the end, before the start, between ranges: errors naming the peer.
  EXPECT_EQ(at(0x100f0, 32).status().code(), StatusCode::kInternal);
  EXPECT_EQ(at(0xff00, 4).status().code(), StatusCode::kInternal);
  EXPECT_EQ(at(0x18000, 4).status().code(), StatusCode::kInternal);
}

TEST(PeerMemoryMap, TranslatesExportedEvents) {
  PeerMemoryMap map;
  auto local = std::make_unique<DeviceEvent>();
  DeviceEvent* local_ptr = local.get();
  map.add_event(0x5000, std::move(local));
  auto ev = map.event(reinterpret_cast<const DeviceEvent*>(0x5000));
  ASSERT_TRUE(ev.is_ok());
  EXPECT_EQ(*ev, local_ptr);
  auto missing = map.event(reinterpret_cast<const DeviceEvent*>(0x6000));
  EXPECT_EQ(missing.status().code(), StatusCode::kInternal);
  EXPECT_NE(missing.status().message().find("did not export"), std::string::npos);
}

TEST(PeerExports, RoundTrips) {
  PeerExports e;
  e.memory.push_back({0x7f0000001000ull, 4096, {std::byte{0}, std::byte{0xab}, std::byte{0xff}}});
  e.events.push_back({0x55, std::vector<std::byte>(64, std::byte{7})});
  auto parsed = PeerExports::parse(e.serialize());
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  ASSERT_EQ(parsed->memory.size(), 1u);
  EXPECT_EQ(parsed->memory[0].base, 0x7f0000001000ull);
  EXPECT_EQ(parsed->memory[0].bytes, 4096u);
  EXPECT_EQ(parsed->memory[0].handle, e.memory[0].handle);
  ASSERT_EQ(parsed->events.size(), 1u);
  EXPECT_EQ(parsed->events[0].address, 0x55u);
  EXPECT_EQ(parsed->events[0].handle, e.events[0].handle);
}

TEST(PeerExports, RejectsMalformedInput) {
  auto bytes = [](const std::string& s) {
    return std::vector<std::byte>(reinterpret_cast<const std::byte*>(s.data()),
                                  reinterpret_cast<const std::byte*>(s.data()) + s.size());
  };
  EXPECT_EQ(PeerExports::parse(bytes("not json")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PeerExports::parse(bytes(R"({"memory": []})")).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PeerExports::parse(
                bytes(R"({"memory": [{"base": 1, "bytes": 2, "handle": "zz"}], "events": []})"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PeerExports::parse(
                bytes(R"({"memory": [{"base": 1, "bytes": 2, "handle": "abc"}], "events": []})"))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(PeerExports, CpuCannotShareMemoryBetweenProcesses) {
  CpuBackend backend;
  OwnedTensor t = backend.alloc(DType::kF32, {4});
  auto handle = backend.export_memory(t.tensor);
  EXPECT_EQ(handle.status().code(), StatusCode::kUnimplemented);
  std::vector<Tensor> allocations = {t.tensor};
  auto exports = export_for_peers(backend, allocations, {});
  EXPECT_EQ(exports.status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace msi
