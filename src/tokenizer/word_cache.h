// WordCache: a bounded, sharded map from a pre-token (a word) to its token ids, so that
// repeated words skip the BPE merge loop. Each shard is a mutex-protected hash map that is
// emptied when it reaches its capacity (cheaper than LRU bookkeeping; hot words come straight
// back).
//
// Owns its entries; thread-safe (a lookup or insert locks one shard briefly). Allocates on insert.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace msi::tok {

class WordCache {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kShardCapacity = 4096;  // 256Ki words in all
  static constexpr size_t kMaxWordBytes = 256;    // longer words are not cached

  // Appends the cached ids of `word` to `ids` and returns true, or returns false.
  bool lookup(std::string_view word, std::vector<int32_t>* ids) const {
    if (word.size() > kMaxWordBytes) return false;
    const size_t h = std::hash<std::string_view>()(word);
    Shard& s = shards_[h % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    ids->insert(ids->end(), it->second.begin(), it->second.end());
    return true;
  }

  void insert(std::string_view word, const int32_t* ids, size_t n_ids) const {
    if (word.size() > kMaxWordBytes) return;
    const size_t h = std::hash<std::string_view>()(word);
    Shard& s = shards_[h % kShards];
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= kShardCapacity) s.map.clear();
    s.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n_ids));
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
  };
  // NOTE: mutable because caching is invisible to callers; the BPE model is logically const.
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace msi::tok
