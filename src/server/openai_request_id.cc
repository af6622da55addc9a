#include "server/openai_request_id.h"

#include <cstdint>
#include <random>

namespace msi::openai {
namespace {

std::mt19937_64& thread_generator() {
  // NOTE: seeded from 256 bits of random_device so that threads (and processes) do not share a
  // sequence; std::random_device is not required to be thread-safe, but each thread owns its own.
  thread_local std::mt19937_64 gen = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  return gen;
}

}  // namespace

std::string make_request_id(std::string_view prefix) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::mt19937_64& gen = thread_generator();
  std::string id(prefix);
  id.reserve(prefix.size() + 32);
  for (int word = 0; word < 2; ++word) {
    uint64_t bits = gen();
    for (int i = 0; i < 16; ++i, bits >>= 4) id.push_back(kHex[bits & 0xF]);
  }
  return id;
}

}  // namespace msi::openai
