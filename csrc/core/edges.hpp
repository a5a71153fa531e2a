// UMAP's sampled-edge SGD for one head vertex, shared by the OpenMP epochs and the CUDA kernels
// (one definition, so both paths run the same operations in the same order).
#pragma once
#include <cstdint>

#include "core/hd.hpp"
#include "core/math.hpp"
#include "core/rng.hpp"

namespace uec {

// Head vertex i at position z (d floats, updated in place) takes every edge due this epoch
// (ep1 = epoch + 1: an edge with epochs_per_sample e is due every e epochs), reading the other
// ends from tail, then its negative samples. GraphT has indptr, indices, epochs_per_sample,
// next_sample, next_negative and n_tail; ParamsT has a, b, gamma, negative_sample_rate, alpha,
// attract_scale and clip_mode. self_tail: tail is the epoch-start snapshot of the points being
// fitted (false for a fixed tail, as in transform).
// D > 0 fixes the dimension at compile time (the loops over coordinates unroll); D = 0 reads d.
template <int D, class GraphT, class ParamsT>
UEC_HD void edge_updates_dim(const GraphT& g, int64_t i, float* z, int d_runtime,
                             const float* tail, bool self_tail, const ParamsT& p, float ep1,
                             float lr, Rng& rng) {
  const int d = D > 0 ? D : d_runtime;
  const float step_scale = lr * p.alpha;
  const uint32_t n_tail = static_cast<uint32_t>(g.n_tail);
  for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
    if (g.next_sample[e] > ep1) continue;
    const float* other = tail + static_cast<int64_t>(g.indices[e]) * d;
    if (self_tail) {
      // The pull of the reverse edge (j, i), due in the same epochs (the graph is symmetric).
      // UMAP applies it while visiting j ("move_other"), a scatter into i's row; here i gathers
      // it, evaluated at the epoch-start positions of both ends, so every point still writes
      // only its own row. Doubling the forward step instead overshoots (README, "CE layout").
      const float* zi0 = tail + i * d;
      const float rc = attractive_coeff(sq_dist(zi0, other, d), p.a, p.b);
      for (int t = 0; t < d; ++t)
        z[t] += p.attract_scale * ce_step(rc, zi0[t] - other[t], p.clip_mode) * step_scale;
    }
    const float coeff = attractive_coeff(sq_dist(z, other, d), p.a, p.b);
    for (int t = 0; t < d; ++t)
      z[t] += p.attract_scale * ce_step(coeff, z[t] - other[t], p.clip_mode) * step_scale;
    const float eps = g.epochs_per_sample[e];
    g.next_sample[e] += eps;

    const float eps_neg = eps / p.negative_sample_rate;
    const int n_neg = static_cast<int>((ep1 - g.next_negative[e]) / eps_neg);
    for (int q = 0; q < n_neg; ++q) {
      const uint32_t k = rng.below(n_tail);
      if (self_tail && static_cast<int64_t>(k) == i) continue;
      const float* neg = tail + static_cast<int64_t>(k) * d;
      const float rc = repulsive_coeff(sq_dist(z, neg, d), p.a, p.b, p.gamma);
      if (rc > 0.0f)
        for (int t = 0; t < d; ++t) z[t] += ce_step(rc, z[t] - neg[t], p.clip_mode) * step_scale;
    }
    if (n_neg > 0) g.next_negative[e] += static_cast<float>(n_neg) * eps_neg;
  }
}

// The same for any dimension, with 2-D (the default embedding) specialised.
template <class GraphT, class ParamsT>
UEC_HD void edge_updates(const GraphT& g, int64_t i, float* z, int d, const float* tail,
                         bool self_tail, const ParamsT& p, float ep1, float lr, Rng& rng) {
  if (d == 2)
    edge_updates_dim<2>(g, i, z, d, tail, self_tail, p, ep1, lr, rng);
  else
    edge_updates_dim<0>(g, i, z, d, tail, self_tail, p, ep1, lr, rng);
}

}  // namespace uec
