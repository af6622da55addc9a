// BlockPool and BlockTable: allocation accounting, all-or-nothing failure, growth across block
// boundaries, slot mapping, double-free detection, reuse, and a long random run.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "kv/block_pool.h"

namespace msi {
namespace {

// Every id in [0, n_blocks) is owned by exactly one holder, and the pool's counts agree.
void expect_owned_once(const BlockPool& pool, const std::vector<std::vector<int32_t>>& holders) {
  std::vector<int> owners(static_cast<size_t>(pool.n_blocks()), 0);
  int64_t n_held = 0;
  for (const auto& h : holders) {
    for (int32_t b : h) {
      ASSERT_GE(b, 0);
      ASSERT_LT(b, pool.n_blocks());
      ++owners[static_cast<size_t>(b)];
      ++n_held;
    }
  }
  for (size_t b = 0; b < owners.size(); ++b) ASSERT_LE(owners[b], 1) << "block " << b;
  EXPECT_EQ(pool.n_used(), n_held);
  EXPECT_EQ(pool.n_free() + pool.n_used(), pool.n_blocks());
}

TEST(BlockPoolTest, StartsEmptyAndCountsBlocksForTokens) {
  BlockPool pool(10, 16);
  EXPECT_EQ(pool.n_blocks(), 10);
  EXPECT_EQ(pool.block_size(), 16);
  EXPECT_EQ(pool.n_free(), 10);
  EXPECT_EQ(pool.n_used(), 0);
  EXPECT_EQ(pool.blocks_for(0), 0);
  EXPECT_EQ(pool.blocks_for(1), 1);
  EXPECT_EQ(pool.blocks_for(16), 1);
  EXPECT_EQ(pool.blocks_for(17), 2);
  EXPECT_EQ(pool.blocks_for(160), 10);
}

TEST(BlockPoolTest, AllocateAndFreeAccounting) {
  BlockPool pool(8, 4);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(pool.allocate(3, a).is_ok());
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(pool.n_free(), 5);
  EXPECT_EQ(pool.n_used(), 3);
  ASSERT_TRUE(pool.allocate(5, b).is_ok());
  EXPECT_EQ(pool.n_free(), 0);
  EXPECT_EQ(pool.n_used(), 8);
  expect_owned_once(pool, {a, b});
  // Every id handed out exactly once.
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 8u);
  EXPECT_EQ(*all.begin(), 0);
  EXPECT_EQ(*all.rbegin(), 7);

  pool.free(a);
  EXPECT_EQ(pool.n_free(), 3);
  EXPECT_EQ(pool.n_used(), 5);
  pool.free(b);
  EXPECT_EQ(pool.n_free(), 8);
  EXPECT_EQ(pool.n_used(), 0);
}

TEST(BlockPoolTest, AllocateZeroTakesNothing) {
  BlockPool pool(4, 4);
  std::vector<int32_t> out;
  ASSERT_TRUE(pool.allocate(0, out).is_ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pool.n_free(), 4);
}

TEST(BlockPoolTest, AllocateAppendsToOut) {
  BlockPool pool(6, 2);
  std::vector<int32_t> out = {};
  ASSERT_TRUE(pool.allocate(2, out).is_ok());
  const std::vector<int32_t> first = out;
  ASSERT_TRUE(pool.allocate(3, out).is_ok());
  ASSERT_EQ(out.size(), 5u);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), out.begin()));
}

TEST(BlockPoolTest, FailsAllOrNothingWhenShort) {
  BlockPool pool(5, 8);
  std::vector<int32_t> held;
  ASSERT_TRUE(pool.allocate(3, held).is_ok());
  std::vector<int32_t> out = {123, 456};  // pre-existing contents must be untouched
  const Status s = pool.allocate(3, out);
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(out, (std::vector<int32_t>{123, 456}));
  EXPECT_EQ(pool.n_free(), 2);
  EXPECT_EQ(pool.n_used(), 3);
  // Exactly what is left still works.
  std::vector<int32_t> rest;
  ASSERT_TRUE(pool.allocate(2, rest).is_ok());
  EXPECT_EQ(pool.n_free(), 0);
  expect_owned_once(pool, {held, rest});
  std::vector<int32_t> none;
  EXPECT_EQ(pool.allocate(1, none).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(none.empty());
}

TEST(BlockPoolTest, EmptyPool) {
  BlockPool pool(0, 16);
  EXPECT_EQ(pool.n_free(), 0);
  std::vector<int32_t> out;
  EXPECT_TRUE(pool.allocate(0, out).is_ok());
  EXPECT_EQ(pool.allocate(1, out).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(out.empty());
}

TEST(BlockPoolTest, ReusesFreedBlocks) {
  BlockPool pool(4, 4);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.allocate(4, a).is_ok());
  std::vector<int32_t> some = {a[1], a[3]};
  pool.free(some);
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.allocate(2, b).is_ok());
  std::sort(some.begin(), some.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(b, some);
  EXPECT_EQ(pool.n_free(), 0);
  // Free all, then the whole pool is available again.
  pool.free({a[0], a[2]});
  pool.free(b);
  std::vector<int32_t> c;
  ASSERT_TRUE(pool.allocate(4, c).is_ok());
  std::sort(c.begin(), c.end());
  EXPECT_EQ(c, (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(BlockPoolDeathTest, DoubleFreeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(4, 4);
        std::vector<int32_t> a;
        (void)pool.allocate(2, a);
        pool.free(a);
        pool.free(a);
      },
      "double free");
}

TEST(BlockPoolDeathTest, FreeOfNeverAllocatedOrOutOfRangeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(4, 4);
        pool.free({2});
      },
      "double free");
  EXPECT_DEATH(
      {
        BlockPool pool(4, 4);
        pool.free({4});
      },
      "block 4");
  EXPECT_DEATH(
      {
        BlockPool pool(4, 4);
        pool.free({-1});
      },
      "block -1");
}

TEST(BlockPoolDeathTest, DuplicateInOneFreeCallAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        BlockPool pool(4, 4);
        std::vector<int32_t> a;
        (void)pool.allocate(1, a);
        pool.free({a[0], a[0]});
      },
      "double free");
}

TEST(ReserveTokensTest, GrowsAcrossBlockBoundaries) {
  BlockPool pool(10, 4);
  BlockTable table;
  ASSERT_TRUE(reserve_tokens(pool, table, 0).is_ok());
  EXPECT_EQ(table.blocks.size(), 0u);
  ASSERT_TRUE(reserve_tokens(pool, table, 1).is_ok());
  EXPECT_EQ(table.blocks.size(), 1u);
  ASSERT_TRUE(reserve_tokens(pool, table, 4).is_ok());  // still fits in the first block
  EXPECT_EQ(table.blocks.size(), 1u);
  ASSERT_TRUE(reserve_tokens(pool, table, 5).is_ok());  // crosses into a second block
  EXPECT_EQ(table.blocks.size(), 2u);
  const std::vector<int32_t> before = table.blocks;
  ASSERT_TRUE(reserve_tokens(pool, table, 17).is_ok());  // 5 blocks
  ASSERT_EQ(table.blocks.size(), 5u);
  // Growth only appends: existing blocks keep their positions.
  EXPECT_TRUE(std::equal(before.begin(), before.end(), table.blocks.begin()));
  // Shrinking requests are no-ops.
  ASSERT_TRUE(reserve_tokens(pool, table, 3).is_ok());
  EXPECT_EQ(table.blocks.size(), 5u);
  EXPECT_EQ(pool.n_used(), 5);
  expect_owned_once(pool, {table.blocks});
}

TEST(ReserveTokensTest, FailureTakesNothing) {
  BlockPool pool(3, 4);
  BlockTable a, b;
  ASSERT_TRUE(reserve_tokens(pool, a, 8).is_ok());  // 2 blocks
  ASSERT_TRUE(reserve_tokens(pool, b, 1).is_ok());  // 1 block
  EXPECT_EQ(pool.n_free(), 0);
  const Status s = reserve_tokens(pool, b, 5);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(b.blocks.size(), 1u);
  // Freeing a, then b can grow.
  pool.free(a.blocks);
  a.blocks.clear();
  ASSERT_TRUE(reserve_tokens(pool, b, 12).is_ok());
  EXPECT_EQ(b.blocks.size(), 3u);
  // Short by one of a multi-block request: all or nothing.
  BlockPool small(4, 2);
  BlockTable c;
  ASSERT_TRUE(reserve_tokens(small, c, 2).is_ok());
  EXPECT_EQ(reserve_tokens(small, c, 9).code(), StatusCode::kResourceExhausted);  // needs 4 more
  EXPECT_EQ(c.blocks.size(), 1u);
  EXPECT_EQ(small.n_free(), 3);
}

TEST(BlockTableTest, SlotMapping) {
  BlockTable table;
  table.blocks = {7, 2, 5};
  const int64_t bs = 4;
  EXPECT_EQ(table.slot(0, bs), 28);
  EXPECT_EQ(table.slot(3, bs), 31);
  EXPECT_EQ(table.slot(4, bs), 8);
  EXPECT_EQ(table.slot(7, bs), 11);
  EXPECT_EQ(table.slot(8, bs), 20);
  EXPECT_EQ(table.slot(11, bs), 23);
  // General formula over every position, and slots of different positions never collide.
  std::set<int32_t> seen;
  for (int64_t pos = 0; pos < 12; ++pos) {
    const int32_t s = table.slot(pos, bs);
    EXPECT_EQ(s, table.blocks[static_cast<size_t>(pos / bs)] * bs + pos % bs);
    EXPECT_TRUE(seen.insert(s).second);
  }
}

TEST(BlockTableTest, SlotsOfPoolTablesAreDisjointAndInRange) {
  BlockPool pool(32, 16);
  std::mt19937 rng(7);
  std::vector<BlockTable> tables(5);
  std::set<int32_t> seen;
  for (auto& t : tables) {
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 90)(rng);
    ASSERT_TRUE(reserve_tokens(pool, t, n).is_ok());
    for (int64_t pos = 0; pos < n; ++pos) {
      const int32_t s = t.slot(pos, pool.block_size());
      ASSERT_GE(s, 0);
      ASSERT_LT(s, pool.n_blocks() * pool.block_size());
      ASSERT_TRUE(seen.insert(s).second) << "slot " << s << " used twice";
    }
  }
}

TEST(BlockPoolTest, RandomAllocateFreeKeepsInvariants) {
  constexpr int64_t kBlocks = 64;
  BlockPool pool(kBlocks, 16);
  std::mt19937 rng(12345);
  std::vector<std::vector<int32_t>> holders(12);
  std::vector<int> owner(kBlocks, -1);
  int n_failures = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    const size_t h = std::uniform_int_distribution<size_t>(0, holders.size() - 1)(rng);
    const int op = std::uniform_int_distribution<int>(0, 2)(rng);
    if (op < 2) {
      const int64_t n = std::uniform_int_distribution<int64_t>(0, 12)(rng);
      const int64_t free_before = pool.n_free();
      const size_t size_before = holders[h].size();
      const Status s = pool.allocate(n, holders[h]);
      if (n > free_before) {
        ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
        ASSERT_EQ(holders[h].size(), size_before);
        ASSERT_EQ(pool.n_free(), free_before);
        ++n_failures;
      } else {
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        ASSERT_EQ(holders[h].size(), size_before + static_cast<size_t>(n));
        ASSERT_EQ(pool.n_free(), free_before - n);
        for (size_t i = size_before; i < holders[h].size(); ++i) {
          const int32_t b = holders[h][i];
          ASSERT_GE(b, 0);
          ASSERT_LT(b, kBlocks);
          ASSERT_EQ(owner[static_cast<size_t>(b)], -1) << "block " << b << " owned twice";
          owner[static_cast<size_t>(b)] = static_cast<int>(h);
        }
      }
    } else if (!holders[h].empty()) {
      // Free a random subset (sometimes everything).
      std::shuffle(holders[h].begin(), holders[h].end(), rng);
      const size_t k = std::uniform_int_distribution<size_t>(1, holders[h].size())(rng);
      std::vector<int32_t> freed(holders[h].end() - static_cast<std::ptrdiff_t>(k),
                                 holders[h].end());
      holders[h].resize(holders[h].size() - k);
      const int64_t free_before = pool.n_free();
      pool.free(freed);
      ASSERT_EQ(pool.n_free(), free_before + static_cast<int64_t>(k));
      for (int32_t b : freed) owner[static_cast<size_t>(b)] = -1;
    }
    ASSERT_EQ(pool.n_free() + pool.n_used(), pool.n_blocks());
    if (iter % 97 == 0) expect_owned_once(pool, holders);
  }
  expect_owned_once(pool, holders);
  EXPECT_GT(n_failures, 0);  // the run did hit a full pool
  for (auto& h : holders) pool.free(h);
  EXPECT_EQ(pool.n_free(), kBlocks);
}

}  // namespace
}  // namespace msi
