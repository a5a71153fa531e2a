// Euclidean k-nearest-neighbour graph by NN-descent, and a beam search of that graph for new
// points (OpenMP). Arguments are shapes and raw pointers; every array's shape is in a comment.
// Nothing here touches Python.
//
// Both are deterministic for a seed whatever the thread count: random numbers come from
// counter-based streams keyed by (seed, stage, item), and every parallel step either writes only
// its own item's state, or produces a set of heap updates that is applied in an order-independent
// way (see knn.cpp).
#pragma once
#include <cstdint>
#include <vector>

namespace uec {

struct KnnParams {
  int k = 15;               // neighbours per point, the point itself included (column 0)
  int heap_k = 0;           // neighbours searched for (>= k; more improve the recall of the k)
  int n_trees = 8;          // random-projection trees of the initial graph (0: random start)
  int leaf_size = 40;       // largest leaf of those trees
  int max_candidates = 60;  // new (and old) candidates sampled per point and iteration
  int n_iters = 10;         // most NN-descent iterations
  double delta = 0.001;     // stop after an iteration that changed <= delta * n * k entries
  int proj_dim = -1;        // PCA dimensions the trees split: -1 auto, 0 none (the rows), else a multiple of 16
  uint64_t seed = 0;
  int n_threads = 1;
};

struct KnnStats {
  int iterations = 0;     // NN-descent iterations run
  int features = 0;       // non-constant features searched
  int64_t flagged = 0;    // points whose pairs use the direct distance (see knn.cpp)
  int64_t distances = 0;  // pair distances taken (trees and iterations)
  int64_t direct = 0;     // of which by the direct sum of squared differences
  int64_t changes = 0;    // heap entries replaced by the iterations
};

// X: (n, d) row-major, finite. out_indices (n, k): row i is i itself, then its k - 1 nearest
// other points by (distance, index). out_sq_distances (n, k): their squared distances (float32
// sums), 0 in column 0. Requires 1 <= k <= n < 2^31.
KnnStats nn_descent(const float* X, int64_t n, int d, const KnnParams& p, int32_t* out_indices,
                    float* out_sq_distances);

struct SearchParams {
  int k = 15;          // neighbours to return per query
  int ef = 64;         // beam width (>= k)
  int n_entries = 64;  // fixed entry points (seeded), shared by every query
  uint64_t seed = 0;
  int n_threads = 1;
};

// The graph the search walks, CSR: each point's neighbours in a kNN graph (graph (n, kg), self
// entries skipped) and the points that list it, at most max_reverse of those (the closest, by
// (graph_sq_dist, index)), sorted, without repeats.
void knn_search_graph(int64_t n, const int32_t* graph, const float* graph_sq_dist, int kg,
                      int max_reverse, std::vector<int64_t>& indptr, std::vector<int32_t>& to);

// The k nearest rows of `data` (n, d) to each row of `queries` (m, d) by a best-first beam search
// of the graph (indptr (n + 1), adj (indptr[n]) from knn_search_graph) from fixed seeded entry
// points, and, when query_entries is given ((m, n_query_entries), -1 for none), each query's own
// entry points as well. out_indices, out_sq_distances: (m, k), rows sorted by (squared distance,
// index). Requires 1 <= k <= n. Each query's answer depends only on (data, graph, params, its
// row and its own entries).
void knn_search(const float* data, int64_t n, int d, const int64_t* indptr, const int32_t* adj,
                const float* queries, int64_t m, const SearchParams& p, int32_t* out_indices,
                float* out_sq_distances, const int32_t* query_entries = nullptr,
                int n_query_entries = 0);

}  // namespace uec
