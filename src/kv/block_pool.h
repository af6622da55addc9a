// BlockPool: the free list of fixed-size KV blocks of one attention worker, and BlockTable, the
// blocks of one sequence in order. Block ids index the per-layer cache tensors
// [n_blocks * block_size, kv_dim] (see kv/kv_cache.h).
//
// Kept separate from the storage so prefix caching (ref-counted, hashed full blocks) can be added
// here later without touching the kernels. Not thread-safe: owned by one attention worker.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace msi {

class BlockPool {
 public:
  BlockPool(int64_t n_blocks, int64_t block_size);

  int64_t n_blocks() const { return n_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t n_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t n_used() const { return n_blocks_ - n_free(); }
  // Blocks needed to hold n_tokens tokens.
  int64_t blocks_for(int64_t n_tokens) const { return (n_tokens + block_size_ - 1) / block_size_; }

  // Takes n blocks, or fails with ResourceExhausted taking none. Never allocates memory once
  // `out` has capacity.
  Status allocate(int64_t n, std::vector<int32_t>& out);
  // Returns blocks to the pool. Freeing a block twice is a bug (checked).
  void free(const std::vector<int32_t>& blocks);

 private:
  int64_t n_blocks_;
  int64_t block_size_;
  std::vector<int32_t> free_;     // stack: the last freed is reused first
  std::vector<uint8_t> in_use_;   // [n_blocks]
};

// The KV blocks of one sequence; n_tokens tokens are stored in them.
struct BlockTable {
  std::vector<int32_t> blocks;
  int64_t n_tokens = 0;

  // Slot of token position `pos` (requires pos < blocks.size() * block_size).
  int32_t slot(int64_t pos, int64_t block_size) const {
    return blocks[static_cast<size_t>(pos / block_size)] * static_cast<int32_t>(block_size) +
           static_cast<int32_t>(pos % block_size);
  }
};

// Grows `table` so it can hold `n_tokens` tokens in total.
Status reserve_tokens(BlockPool& pool, BlockTable& table, int64_t n_tokens);

}  // namespace msi
