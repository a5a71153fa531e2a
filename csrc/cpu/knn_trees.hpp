// Internal to the kNN: the data as NN-descent searches it (kept features, centred and padded
// rows, norms, flags, the random-projection trees), built by prepare (knn_trees.cpp).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "cpu/knn.hpp"
#include "cpu/knn_kernels.hpp"

namespace uec {
namespace knn_detail {

struct Rows {
  const float* data;
  int len;  // a multiple of 16
  const float* row(int64_t i) const { return data + i * len; }
};

struct Tree {
  std::vector<int32_t> perm;                        // (n) points, leaf by leaf
  std::vector<std::pair<int32_t, int32_t>> leaves;  // [begin, end) ranges of perm
};

struct Searched {
  int64_t n = 0;
  int features = 0;            // non-constant features kept
  int len = 0;                 // padded row length of x
  Floats x;                    // (n, len): kept features, centred, zero padded
  std::vector<float> norm;     // (n) x . x, by the tile kernel
  std::vector<uint8_t> ill;    // (n) 1: pairs with this point use the direct sum
  std::vector<int32_t> order;  // (n) original index of each searched row
  std::vector<Tree> trees;     // leaves in searched indices
  Kernels kern;
  const float* input = nullptr;  // (n, d) the rows as given
  int d = 0;

  const float* row(int64_t i) const { return x.data() + i * len; }

  // Sum of squared differences of the rows as given: centring would round the coordinates of a
  // point far from the mean by more than its distances to its neighbours (the differences of two
  // close floats are exact).
  float direct(int32_t p, int32_t q) const {
    return sq_dist_direct(input + static_cast<int64_t>(order[p]) * d,
                          input + static_cast<int64_t>(order[q]) * d, d);
  }
  // The squared distance of a pair, a pure function of the pair: from its dot product (taken by
  // a tile kernel) unless either point is flagged.
  float from_dot(int32_t p, int32_t q, float dot) const {
    if (ill[p] | ill[q]) return direct(p, q);
    const float d = (norm[p] + norm[q]) - 2.0f * dot;
    return d > 0.0f ? d : 0.0f;
  }
  float pair(int32_t p, int32_t q) const {
    if (ill[p] | ill[q]) return direct(p, q);
    const float* a = row(p);
    const float* b = row(q);
    float dot;
    kern.one(&a, &b, len, &dot);
    return from_dot(p, q, dot);
  }
};

// Features, projection, trees, the rows reordered by the first tree's leaves, norms and flags.
Searched prepare(const float* X, int64_t n, int d, const KnnParams& p, int nt, Errors& errors,
                 DebugClock& clock);

}  // namespace knn_detail
}  // namespace uec
