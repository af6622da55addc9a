#include "roles/peer_memory.h"

#include <nlohmann/json.hpp>

namespace msi {
namespace {

using json = nlohmann::json;

std::string to_hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    s.push_back(kDigits[static_cast<unsigned>(b) >> 4]);
    s.push_back(kDigits[static_cast<unsigned>(b) & 15]);
  }
  return s;
}

Result<std::vector<std::byte>> from_hex(const std::string& s) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (s.size() % 2 != 0)
    return error(StatusCode::kInvalidArgument, "peer exports: odd-length handle");
  std::vector<std::byte> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = digit(s[2 * i]), lo = digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return error(StatusCode::kInvalidArgument, "peer exports: a handle is not hex");
    out[i] = static_cast<std::byte>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

std::vector<std::byte> PeerExports::serialize() const {
  json j = {{"memory", json::array()}, {"events", json::array()}};
  for (const Memory& m : memory)
    j["memory"].push_back({{"base", m.base}, {"bytes", m.bytes}, {"handle", to_hex(m.handle)}});
  for (const Event& e : events)
    j["events"].push_back({{"address", e.address}, {"handle", to_hex(e.handle)}});
  const std::string text = j.dump();
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return std::vector<std::byte>(p, p + text.size());
}

Result<PeerExports> PeerExports::parse(std::span<const std::byte> bytes) {
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  try {
    const json j = json::parse(text);
    PeerExports out;
    for (const json& m : j.at("memory")) {
      MSI_ASSIGN_OR_RETURN(auto handle, from_hex(m.at("handle").get<std::string>()));
      out.memory.push_back(
          {m.at("base").get<uint64_t>(), m.at("bytes").get<uint64_t>(), std::move(handle)});
    }
    for (const json& e : j.at("events")) {
      MSI_ASSIGN_OR_RETURN(auto handle, from_hex(e.at("handle").get<std::string>()));
      out.events.push_back({e.at("address").get<uint64_t>(), std::move(handle)});
    }
    return out;
  } catch (const json::exception& e) {
    return error(StatusCode::kInvalidArgument, "bad peer exports: {}", e.what());
  }
}

Result<PeerExports> export_for_peers(Backend& backend, std::span<const Tensor> allocations,
                                     std::span<DeviceEvent* const> events) {
  PeerExports out;
  for (const Tensor& t : allocations) {
    MSI_ASSIGN_OR_RETURN(auto handle, backend.export_memory(t));
    out.memory.push_back(
        {reinterpret_cast<uint64_t>(t.data), static_cast<uint64_t>(t.nbytes()), std::move(handle)});
  }
  for (DeviceEvent* e : events) {
    MSI_ASSIGN_OR_RETURN(auto handle, backend.export_event(*e));
    out.events.push_back({reinterpret_cast<uint64_t>(e), std::move(handle)});
  }
  return out;
}

Result<PeerMemoryMap> PeerMemoryMap::import(Backend& backend, const PeerExports& exports,
                                            std::string peer) {
  PeerMemoryMap map;
  map.imported_ = true;
  map.peer_ = std::move(peer);
  for (const PeerExports::Memory& m : exports.memory) {
    Result<void*> local = backend.import_memory(m.handle);
    if (!local.is_ok())
      return local.status().with_context(fmt::format("mapping {}'s memory", map.peer_));
    map.add_memory(m.base, m.bytes, *local);
  }
  for (const PeerExports::Event& e : exports.events) {
    Result<std::unique_ptr<DeviceEvent>> local = backend.import_event(e.handle);
    if (!local.is_ok())
      return local.status().with_context(fmt::format("opening {}'s events", map.peer_));
    map.add_event(e.address, std::move(*local));
  }
  return map;
}

void PeerMemoryMap::add_memory(uint64_t remote_base, uint64_t bytes, const void* local_base) {
  imported_ = true;
  ranges_.push_back({remote_base, bytes, static_cast<const std::byte*>(local_base)});
}

void PeerMemoryMap::add_event(uint64_t remote_address, std::unique_ptr<DeviceEvent> local) {
  imported_ = true;
  events_.push_back({remote_address, std::move(local)});
}

Result<const void*> PeerMemoryMap::memory(const void* remote, size_t bytes) const {
  if (!imported_) return remote;
  const auto addr = reinterpret_cast<uint64_t>(remote);
  for (const Range& r : ranges_) {
    if (addr >= r.remote_base && addr - r.remote_base <= r.bytes &&
        bytes <= r.bytes - (addr - r.remote_base)) {
      return static_cast<const void*>(r.local_base + (addr - r.remote_base));
    }
  }
  return error(StatusCode::kInternal, "{} named {} bytes at {:#x}, outside the memory it exported",
               peer_, bytes, addr);
}

Result<DeviceEvent*> PeerMemoryMap::event(const DeviceEvent* remote) const {
  if (!imported_) return const_cast<DeviceEvent*>(remote);
  const auto addr = reinterpret_cast<uint64_t>(remote);
  for (const Opened& e : events_) {
    if (e.remote == addr) return e.local.get();
  }
  return error(StatusCode::kInternal, "{} named an event ({:#x}) it did not export", peer_, addr);
}

}  // namespace msi
