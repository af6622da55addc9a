#include "kv/block_pool.h"

#include "core/check.h"

namespace msi {

BlockPool::BlockPool(int64_t n_blocks, int64_t block_size)
    : n_blocks_(n_blocks), block_size_(block_size), in_use_(static_cast<size_t>(n_blocks), 0) {
  MSI_CHECK(n_blocks >= 0 && block_size > 0, "bad pool {} x {}", n_blocks, block_size);
  free_.reserve(static_cast<size_t>(n_blocks));
  // Lowest ids on top of the stack.
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

Status BlockPool::allocate(int64_t n, std::vector<int32_t>& out) {
  if (n > n_free()) {
    return error(StatusCode::kResourceExhausted,
                 "KV cache full: need {} more blocks of {} tokens, {} of {} free", n, block_size_,
                 n_free(), n_blocks_);
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t b = free_.back();
    free_.pop_back();
    in_use_[static_cast<size_t>(b)] = 1;
    out.push_back(b);
  }
  return Status::ok();
}

void BlockPool::free(const std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) {
    MSI_CHECK(b >= 0 && b < n_blocks_ && in_use_[static_cast<size_t>(b)], "double free of block {}", b);
    in_use_[static_cast<size_t>(b)] = 0;
    free_.push_back(b);
  }
}

Status reserve_tokens(BlockPool& pool, BlockTable& table, int64_t n_tokens) {
  const int64_t need = pool.blocks_for(n_tokens) - static_cast<int64_t>(table.blocks.size());
  if (need <= 0) return Status::ok();
  return pool.allocate(need, table.blocks);
}

}  // namespace msi
