// The Leiden algorithm (Traag, Waltman & van Eck 2019) for the constant Potts model with node
// weights on an undirected weighted graph: the partition maximising
//     H = sum over communities c of [ w_in(c) - gamma * N_c^2 / 2 ],
// w_in(c) the weight of the edges inside c and N_c the sum of its node weights. With node
// weights equal to the degrees and gamma = resolution / (total weight, both directions) this is
// Newman's modularity at that resolution; with unit node weights it is the plain CPM.
// Single-threaded and deterministic for a seed. Nothing here touches Python.
#pragma once
#include <cstdint>

namespace uec {

// Graph in CSR form with both directions of every edge (indptr (n + 1), indices and weights
// (nnz)); entries on the diagonal are ignored. node_weights (n), >= 0. membership (n): on entry
// the start partition of the first iteration when `from_start` (labels in [0, n)), otherwise
// ignored (every node alone); on return each node's community, numbered 0.. in order of first
// appearance. n_iterations >= 1: each iteration runs the whole multilevel procedure from the
// previous one's partition. beta: the randomness of the refinement (igraph's default 0.01).
// Returns the number of communities.
int64_t leiden(int64_t n, const int64_t* indptr, const int32_t* indices, const double* weights,
               const double* node_weights, double gamma, int n_iterations, double beta,
               uint64_t seed, bool from_start, int32_t* membership);

}  // namespace uec
