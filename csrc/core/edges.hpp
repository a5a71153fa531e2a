// UMAP's sampled-edge SGD for one head vertex, shared by the OpenMP epochs and the CUDA kernels.
// Two pieces, each defined once: edge_schedule decides which updates a head takes in an epoch
// (due edges, their negative samples, the random draws, the sampling state), and ce_update
// applies one of them. edge_updates runs them one after the other; the OpenMP epochs instead
// record every head's schedule and run several heads' updates interleaved (cpu/lanes.hpp),
// which performs the same updates in the same order for every head.
#pragma once
#include <cstdint>

#include "core/hd.hpp"
#include "core/math.hpp"
#include "core/rng.hpp"

namespace uec {

// What one CE update of a head is: the pull of the reverse edge (evaluated at the epoch-start
// position of the head), the pull of the edge itself, or the push of a negative sample.
enum CeKind : int { CE_REVERSE = 0, CE_FORWARD = 1, CE_NEGATIVE = 2 };

// The most negative samples one due edge takes in one epoch. With the rates the bindings accept
// (negative_sample_rate <= kMaxNegativeSampleRate) and the sampling state they advance, a take
// asks for about the rate; the clamp only bounds crafted states and keeps the float-to-int
// conversion defined.
constexpr int kMaxNegativesPerTake = 1 << 16;
constexpr float kMaxNegativeSampleRate = 1000.0f;

// One CE update of the head at z (d floats, updated in place): base is z for CE_FORWARD and
// CE_NEGATIVE and the head's epoch-start position for CE_REVERSE; other is the tail row.
// The coefficient is ce_coeff's; a coincident pair moves nothing.
template <int D, class ParamsT>
UEC_HD void ce_update(float* z, const float* base, const float* other, int kind, int d_runtime,
                      const ParamsT& p, float step_scale) {
  const int d = D > 0 ? D : d_runtime;
  const bool neg = kind == CE_NEGATIVE;
  const float coeff = ce_coeff(sq_dist(base, other, d), neg, p.a, p.b, p.gamma);
  const float mult = neg ? 1.0f : p.attract_scale;
  for (int t = 0; t < d; ++t)
    z[t] += (mult * ce_step(coeff, base[t] - other[t], p.clip_mode)) * step_scale;
}

// Whether edge e is due this epoch (ep1 = epoch + 1: an edge with epochs_per_sample e is due
// every e epochs).
template <class GraphT>
UEC_HD bool edge_due(const GraphT& g, int64_t e, float ep1) {
  return !(g.next_sample[e] > ep1);
}

// Takes due edge e at ep1: advances its sampling state (next_sample, next_negative) and returns
// how many negative samples the take draws. Negatives due: the count is a float that a huge
// rate or a crafted state can push past int's range (the conversion would be undefined) or make
// NaN. Clamped in float first: at most kMaxNegativesPerTake (far above what a rate the bindings
// accept asks for), none when below one or NaN; every ordinary count converts exactly as before.
// GraphT has epochs_per_sample, next_sample and next_negative; ParamsT has negative_sample_rate.
template <class GraphT, class ParamsT>
UEC_HD int edge_advance(const GraphT& g, int64_t e, const ParamsT& p, float ep1) {
  const float eps = g.epochs_per_sample[e];
  g.next_sample[e] += eps;
  const float eps_neg = eps / p.negative_sample_rate;
  const float due = (ep1 - g.next_negative[e]) / eps_neg;
  const int n_neg = due >= 1.0f ? (due < static_cast<float>(kMaxNegativesPerTake)
                                       ? static_cast<int>(due) : kMaxNegativesPerTake)
                                : 0;
  if (n_neg > 0) g.next_negative[e] += static_cast<float>(n_neg) * eps_neg;
  return n_neg;
}

// The updates of one take of edge e of head i with n_neg negatives drawn from rng (not advanced),
// in order, as visit(kind, tail index, valid) calls (an update with valid == false is not taken:
// the negatives are drawn eight at a time without branching, and those past n_neg or equal to
// the head are invalid): its reverse pull first when fitting (self_tail), then its own pull,
// then its negative samples. GraphT has indices and n_tail.
//
// The reverse pull: the graph is symmetric, and UMAP applies the pull of edge (j, i) while
// visiting j ("move_other"), a scatter into i's row. Here i gathers it, evaluated at the
// epoch-start positions of both ends, so every point writes only its own row. Doubling the
// forward step instead overshoots (docs/design.md §4).
template <class GraphT, class Visit>
UEC_HD void edge_visits(const GraphT& g, int64_t i, int64_t e, bool self_tail, int n_neg,
                        const Rng& rng, Visit& visit) {
  const int64_t j = g.indices[e];
  if (self_tail) visit(CE_REVERSE, j, true);
  visit(CE_FORWARD, j, true);
  const uint32_t n_tail = static_cast<uint32_t>(g.n_tail);
  for (int q0 = 0; q0 < n_neg; q0 += 8) {
    for (int u = 0; u < 8; ++u) {
      const int q = q0 + u;
      const int64_t k = Rng::scale(rng.peek(static_cast<uint64_t>(q)), n_tail);
      visit(CE_NEGATIVE, k, q < n_neg && !(self_tail && k == i));
    }
  }
}

// The updates of one due edge e of head i (edge_advance, then edge_visits), after which rng has
// moved past the negatives drawn.
template <class GraphT, class ParamsT, class Visit>
UEC_HD void edge_take(const GraphT& g, int64_t i, int64_t e, bool self_tail, const ParamsT& p,
                      float ep1, Rng& rng, Visit& visit) {
  const int n_neg = edge_advance(g, e, p, ep1);
  edge_visits(g, i, e, self_tail, n_neg, rng, visit);
  rng.skip(static_cast<uint64_t>(n_neg));
}

// The updates head vertex i takes in this epoch: every due edge's, in edge order.
template <class GraphT, class ParamsT, class Visit>
UEC_HD void edge_schedule(const GraphT& g, int64_t i, bool self_tail, const ParamsT& p,
                          float ep1, Rng& rng, Visit& visit) {
  for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; ++e)
    if (edge_due(g, e, ep1)) edge_take(g, i, e, self_tail, p, ep1, rng, visit);
}

// Applies each scheduled update at once (edge_updates).
template <int D, class ParamsT>
struct ApplyNow {
  float* z;
  const float* zi0;   // the head's epoch-start row (self_tail) or its start (fixed tail)
  const float* tail;
  int d;
  const ParamsT& p;
  float step_scale;
  UEC_HD void operator()(int kind, int64_t j, bool valid) {
    if (!valid) return;
    const int dd = D > 0 ? D : d;
    ce_update<D>(z, kind == CE_REVERSE ? zi0 : z, tail + j * dd, kind, d, p, step_scale);
  }
};

// Head vertex i at position z (d floats, updated in place) takes every valid update
// edge_schedule lists, reading the other ends from tail. self_tail: tail is the epoch-start snapshot of the
// points being fitted (false for a fixed tail, as in transform). D > 0 fixes the dimension at
// compile time (the loops over coordinates unroll); D = 0 reads d.
template <int D, class GraphT, class ParamsT>
UEC_HD void edge_updates_dim(const GraphT& g, int64_t i, float* z, int d, const float* tail,
                             bool self_tail, const ParamsT& p, float ep1, float lr, Rng& rng) {
  ApplyNow<D, ParamsT> apply{z, self_tail ? tail + i * d : z, tail, d, p, lr * p.alpha};
  edge_schedule(g, i, self_tail, p, ep1, rng, apply);
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
