// ExpertPlacement: contiguous splits, explicit worker lists with replicas (routing and local
// indices), validation errors, and the JSON round trip.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "roles/expert_placement.h"

namespace msi {
namespace {

using Lists = std::vector<std::vector<int32_t>>;

Lists lists_of(const ExpertPlacement& p) {
  Lists out;
  for (int64_t w = 0; w < p.n_workers(); ++w) out.push_back(p.experts_of(w));
  return out;
}

// Every observable of two placements agrees: lists, local indices, and routing of many tokens.
void expect_same_behaviour(const ExpertPlacement& a, const ExpertPlacement& b) {
  ASSERT_EQ(a.n_experts(), b.n_experts());
  ASSERT_EQ(a.n_workers(), b.n_workers());
  EXPECT_EQ(lists_of(a), lists_of(b));
  for (int64_t w = 0; w < a.n_workers(); ++w) {
    for (int32_t e = 0; e < a.n_experts(); ++e) {
      EXPECT_EQ(a.local_index(w, e), b.local_index(w, e)) << "worker " << w << " expert " << e;
    }
  }
  for (int32_t e = 0; e < a.n_experts(); ++e) {
    for (int64_t t = 0; t < 17; ++t) EXPECT_EQ(a.route(e, t), b.route(e, t));
  }
}

TEST(ExpertPlacementTest, ContiguousSplits) {
  const struct {
    int64_t n_workers;
    Lists want;
  } cases[] = {
      {1, {{0, 1, 2, 3, 4, 5, 6, 7}}},
      {2, {{0, 1, 2, 3}, {4, 5, 6, 7}}},
      {3, {{0, 1, 2}, {3, 4, 5}, {6, 7}}},
      {4, {{0, 1}, {2, 3}, {4, 5}, {6, 7}}},
      {8, {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.n_workers);
    auto p = ExpertPlacement::contiguous(8, c.n_workers);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    EXPECT_EQ(p->n_experts(), 8);
    EXPECT_EQ(p->n_workers(), c.n_workers);
    EXPECT_EQ(lists_of(*p), c.want);
    // Each expert has exactly one home; route and local_index agree with the lists.
    for (int64_t w = 0; w < p->n_workers(); ++w) {
      const auto& list = p->experts_of(w);
      for (size_t j = 0; j < list.size(); ++j) {
        EXPECT_EQ(p->local_index(w, list[j]), static_cast<int32_t>(j));
        for (int64_t t = 0; t < 5; ++t) EXPECT_EQ(p->route(list[j], t), w);
      }
    }
    for (int32_t e = 0; e < 8; ++e) {
      int n_homes = 0;
      for (int64_t w = 0; w < p->n_workers(); ++w) n_homes += p->local_index(w, e) >= 0;
      EXPECT_EQ(n_homes, 1) << "expert " << e;
    }
  }
}

TEST(ExpertPlacementTest, ContiguousSizesDifferByAtMostOne) {
  for (int64_t n_experts = 1; n_experts <= 20; ++n_experts) {
    for (int64_t n_workers = 1; n_workers <= n_experts; ++n_workers) {
      auto p = ExpertPlacement::contiguous(n_experts, n_workers);
      ASSERT_TRUE(p.is_ok());
      size_t lo = SIZE_MAX, hi = 0;
      int32_t next = 0;
      for (int64_t w = 0; w < n_workers; ++w) {
        const auto& list = p->experts_of(w);
        lo = std::min(lo, list.size());
        hi = std::max(hi, list.size());
        for (int32_t e : list) EXPECT_EQ(e, next++);  // contiguous, in order, covering all
      }
      EXPECT_EQ(next, n_experts);
      EXPECT_LE(hi - lo, 1u) << n_experts << " over " << n_workers;
      EXPECT_GE(lo, 1u);
    }
  }
}

TEST(ExpertPlacementTest, ContiguousRejectsBadWorkerCounts) {
  EXPECT_EQ(ExpertPlacement::contiguous(8, 9).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpertPlacement::contiguous(8, 16).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpertPlacement::contiguous(8, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpertPlacement::contiguous(8, -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpertPlacement::contiguous(0, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(ExpertPlacementTest, ReplicatedExpertAlternatesByTokenIndex) {
  // Expert 2 lives on workers 0 and 1; expert 5 on all three.
  auto p = ExpertPlacement::from_worker_lists(6, {{0, 1, 2, 5}, {5, 2, 3}, {4, 5}});
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->n_workers(), 3);

  EXPECT_EQ(p->local_index(0, 2), 2);
  EXPECT_EQ(p->local_index(1, 2), 1);
  EXPECT_EQ(p->local_index(2, 2), -1);
  EXPECT_EQ(p->local_index(0, 5), 3);
  EXPECT_EQ(p->local_index(1, 5), 0);
  EXPECT_EQ(p->local_index(2, 5), 1);
  EXPECT_EQ(p->local_index(1, 3), 2);
  EXPECT_EQ(p->local_index(0, 3), -1);
  EXPECT_EQ(p->local_index(2, 4), 0);
  EXPECT_EQ(p->local_index(1, 0), -1);

  for (int64_t t = 0; t < 30; ++t) {
    // Replicas in worker order, chosen by token index modulo the replica count.
    EXPECT_EQ(p->route(2, t), t % 2 == 0 ? 0 : 1) << t;
    EXPECT_EQ(p->route(5, t), static_cast<int32_t>(t % 3)) << t;
    // Unreplicated experts always go home.
    EXPECT_EQ(p->route(0, t), 0);
    EXPECT_EQ(p->route(3, t), 1);
    EXPECT_EQ(p->route(4, t), 2);
    // The chosen worker holds the expert.
    for (int32_t e = 0; e < 6; ++e) EXPECT_GE(p->local_index(p->route(e, t), e), 0);
  }
  // Load splits evenly over replicas.
  int n_on[3] = {0, 0, 0};
  for (int64_t t = 0; t < 300; ++t) ++n_on[p->route(5, t)];
  EXPECT_EQ(n_on[0], 100);
  EXPECT_EQ(n_on[1], 100);
  EXPECT_EQ(n_on[2], 100);
}

TEST(ExpertPlacementTest, FromWorkerListsErrors) {
  // An expert on no worker.
  auto missing = ExpertPlacement::from_worker_lists(4, {{0, 1}, {3}});
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("expert 2"), std::string::npos)
      << missing.status().message();
  // Out of range, both ends.
  EXPECT_EQ(ExpertPlacement::from_worker_lists(4, {{0, 1}, {2, 3, 4}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpertPlacement::from_worker_lists(4, {{0, 1, -1}, {2, 3}}).status().code(),
            StatusCode::kInvalidArgument);
  // Listed twice on one worker (even non-adjacent).
  auto twice = ExpertPlacement::from_worker_lists(4, {{0, 1, 0}, {2, 3}});
  EXPECT_EQ(twice.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(twice.status().message().find("twice"), std::string::npos);
  // No workers at all.
  EXPECT_EQ(ExpertPlacement::from_worker_lists(4, {}).status().code(),
            StatusCode::kInvalidArgument);
  // The same expert on two workers is a replica, not an error.
  EXPECT_TRUE(ExpertPlacement::from_worker_lists(4, {{0, 1, 2}, {2, 3}}).is_ok());
}

TEST(ExpertPlacementTest, JsonRoundTrip) {
  std::vector<ExpertPlacement> placements;
  for (int64_t n : {1, 3, 8}) placements.push_back(*ExpertPlacement::contiguous(8, n));
  placements.push_back(
      *ExpertPlacement::from_worker_lists(8, {{0, 1, 2, 7}, {7, 3, 4}, {5, 6, 7, 2}}));
  // A random placement with replicas.
  std::mt19937 rng(99);
  Lists random_lists(4);
  for (int32_t e = 0; e < 8; ++e) {
    for (size_t w = 0; w < random_lists.size(); ++w) {
      if (w == static_cast<size_t>(e) % 4 || rng() % 3 == 0) random_lists[w].push_back(e);
    }
  }
  for (auto& l : random_lists) std::shuffle(l.begin(), l.end(), rng);
  placements.push_back(*ExpertPlacement::from_worker_lists(8, random_lists));

  for (const ExpertPlacement& p : placements) {
    const nlohmann::json j = p.to_json();
    // Through text as a plan file would go.
    const nlohmann::json parsed = nlohmann::json::parse(j.dump(2));
    auto q = ExpertPlacement::from_json(parsed, 8);
    ASSERT_TRUE(q.is_ok()) << q.status().to_string() << "\n" << j.dump();
    expect_same_behaviour(p, *q);
    EXPECT_EQ(q->to_json(), j);
  }
}

TEST(ExpertPlacementTest, FromJsonWithoutNExperts) {
  auto p = ExpertPlacement::from_json(nlohmann::json::parse(R"({"workers": [[1, 0], [2, 3]]})"), 4);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->local_index(0, 1), 0);
  EXPECT_EQ(p->local_index(0, 0), 1);
  EXPECT_EQ(p->route(3, 0), 1);
}

TEST(ExpertPlacementTest, FromJsonErrors) {
  const char* bad[] = {
      R"([])",                                              // not an object
      R"("workers")",                                       // not an object
      R"({})",                                              // no workers
      R"({"workers": {"0": [0, 1, 2, 3]}})",                // workers not an array
      R"({"workers": [0, 1, 2, 3]})",                       // a worker not a list
      R"({"workers": [[0, 1], "2,3"]})",                    // a worker not a list
      R"({"workers": [[0, 1, 2.5, 3]]})",                   // not an integer
      R"({"workers": [[0, 1, "2", 3]]})",                   // not an integer
      R"({"workers": [[0, 1, null, 3]]})",                  // not an integer
      R"({"workers": []})",                                 // no workers
      R"({"workers": [[0, 1], [3]]})",                      // expert 2 on no worker
      R"({"workers": [[0, 1, 2, 3, 4]]})",                  // out of range
      R"({"workers": [[0, 1, 2, 3, -1]]})",                 // out of range
      R"({"workers": [[0, 1, 1, 2, 3]]})",                  // twice on a worker
      R"({"n_experts": 8, "workers": [[0, 1, 2, 3]]})",     // for another model
      R"({"n_experts": "4", "workers": [[0, 1, 2, 3]]})",   // n_experts not a number
      R"({"workers": [[0, 1, 2, 4294967299]]})",            // 2^32 + 3 must not wrap to 3
      R"({"workers": [[0, 1, 2, 18446744073709551615]]})",  // 2^64 - 1
  };
  for (const char* text : bad) {
    SCOPED_TRACE(text);
    auto p = ExpertPlacement::from_json(nlohmann::json::parse(text), 4);
    EXPECT_FALSE(p.is_ok());
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(ExpertPlacement, ReplicaTableFollowsRoute) {
  auto p = ExpertPlacement::from_worker_lists(4, {{0, 1}, {0, 2}, {0, 3, 1}});
  ASSERT_TRUE(p.is_ok());
  EXPECT_TRUE(p->has_replicas());
  EXPECT_FALSE(ExpertPlacement::contiguous(4, 2)->has_replicas());
  for (int64_t w = 0; w < 3; ++w) {
    const std::vector<int32_t> table = p->replica_table(w);
    ASSERT_EQ(table.size(), 8u);
    for (int32_t e = 0; e < 4; ++e) {
      if (p->local_index(w, e) < 0) continue;
      for (int64_t t = 0; t < 12; ++t) {
        EXPECT_EQ(t % table[2 * e] == table[2 * e + 1], p->route(e, t) == w) << "worker " << w << " expert " << e;
      }
    }
  }
  EXPECT_EQ(p->replica_table(0)[0], 3);  // expert 0 on three workers
  EXPECT_EQ(p->replica_table(1)[4], 1);  // expert 2 on one
}

}  // namespace
}  // namespace msi
