// The CUDA kernels of UEC as block programs that compile for the host as well as the device.
//
// Every kernel of one epoch (docs/design.md §4) is a small struct: its members are the kernel's
// arguments (shapes and raw pointers), and its templated operator()(Exec&) is the program one
// thread block runs. A program is written as a sequence of
//     ex.threads([&](int t) { ...work of thread t... });   ex.sync();
// On the device (csrc/cuda/driver.cu) `threads` runs the lambda once with t = threadIdx.x and
// `sync` is __syncthreads(); in the test-only CPU emulation (csrc/cuda/emulation.cpp) `threads`
// runs it for t = 0 .. blockDim-1 in turn and `sync` does nothing. So the emulation executes the
// very code the GPU executes, in one legal interleaving of its threads. Rules that keep the two
// equivalent: values that differ between threads live in memory indexed by t (the per-thread
// rows below), never in locals of the program outside a lambda; control flow around
// `threads`/`sync` is uniform across the block.
//
// Work split (mirrors csrc/cpu/epochs.cpp, so that reductions add in the same order):
// - points are cut into the CPU core's fixed blocks (PointBlocks); GPU block b owns CPU block b
//   and walks it in rounds of blockDim consecutive points, thread t taking point begin + r + t;
// - a thread does all of one point's work (its sampled edges in CSR order, its negative samples
//   from the counter RNG of (seed, epoch, point), its clustering step), exactly as one
//   iteration of the CPU loop;
// - reductions are deterministic without atomics: after each round, the round's per-point
//   contributions are staged in shared memory kChunk slots at a time and thread q adds slot q's
//   values in point order to the block's partial in global memory; a final pass adds the block
//   partials in block order. That is the CPU's order exactly (per-block running sums over points
//   in order, then blocks in order), so the emulation agrees with the OpenMP path bit for bit.
#pragma once
#include <cfloat>
#include <cstdint>

#include "core/hd.hpp"
#include "core/math.hpp"
#include "core/edges.hpp"
#include "core/rng.hpp"

namespace uec {
namespace gpu {

constexpr int kBlockDim = 256;  // threads per block of every pass on the device
constexpr int kChunk = 16;      // reduction slots staged in shared memory per step

UEC_HD int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
UEC_HD int64_t max64(int64_t x, int64_t y) { return x > y ? x : y; }

// Shared memory (doubles) a block of block_dim threads needs.
UEC_HD int64_t shared_doubles(int block_dim) { return static_cast<int64_t>(block_dim) * kChunk; }

// The CPU core's fixed point blocks (csrc/cpu/epochs.cpp, Blocks): they depend on n only.
struct PointBlocks {
  int64_t n, size, count;
  UEC_HD explicit PointBlocks(int64_t n_) : n(n_) {
    size = max64(256, (n + 1023) / 1024);
    count = n == 0 ? 0 : (n + size - 1) / size;
  }
  UEC_HD int64_t begin(int64_t blk) const { return blk * size; }
  UEC_HD int64_t end(int64_t blk) const { return min64(n, (blk + 1) * size); }
};

// The epoch parameters the kernels read (types as in uec::EpochParams, so the arithmetic is the
// CPU core's).
struct KernelParams {
  float a, b, gamma, negative_sample_rate, alpha, beta, centre_lr, attract_scale;
  double target_power;
  int mode, clip_mode, centre_update;
};

// Per-epoch values, computed on the host once per epoch.
struct EpochState {
  uint64_t seed;
  int epoch;
  float lr;      // learning rate of this epoch
  float factor;  // schedule factor of this epoch (centre "gradient" step)
  float ep1;     // epoch + 1
};

// The graph on the device (CSR by head vertex), as uec::Graph.
struct DeviceGraph {
  int64_t n_head, n_tail;
  const int64_t* indptr;           // (n_head + 1)
  const int32_t* indices;          // (nnz)
  const float* epochs_per_sample;  // (nnz)
  float* next_sample;              // (nnz) state
  float* next_negative;            // (nnz) state
};

// Column statistics of S: F, 1/F, log F, and c (plus). Each (C), one buffer of 4C doubles.
struct StatsView {
  double *F, *inv_f, *log_f, *c;
  UEC_HD static StatsView at(double* base, int C) {
    StatsView v;
    v.F = base;
    v.inv_f = base + C;
    v.log_f = base + 2 * C;
    v.c = base + 3 * C;
    return v;
  }
};

// One thread's working row (the CPU core's RowScratch), in global memory at a fixed slot per
// (block, thread): u, s, phi, t, g, w (C each), G (d), z, z0, step (d floats in d doubles each),
// gbar, changed, lab (argmax T, as a double).
struct RowView {
  double *u, *s, *phi, *t, *g, *w, *G, *gbar, *changed, *lab;
  float *z, *z0, *step;
  UEC_HD static int64_t length(int C, int d) { return 6 * static_cast<int64_t>(C) + 4 * d + 3; }
  UEC_HD static RowView at(double* rows, int64_t slot, int C, int d) {
    RowView r;
    double* p = rows + slot * length(C, d);
    r.u = p;
    r.s = r.u + C;
    r.phi = r.s + C;
    r.t = r.phi + C;
    r.g = r.t + C;
    r.w = r.g + C;
    r.G = r.w + C;
    r.z = reinterpret_cast<float*>(r.G + d);
    r.z0 = reinterpret_cast<float*>(r.G + 2 * d);
    r.step = reinterpret_cast<float*>(r.G + 3 * d);
    r.gbar = r.G + 4 * d;
    r.changed = r.gbar + 1;
    r.lab = r.changed + 1;
    return r;
  }
};

// Slots of the centre reduction: dKL/dmu (C*d), sum T (C), sum T z (C*d), sum T phi (C),
// sum T phi z (C*d), and the number of changed labels (last slot).
UEC_HD int64_t centre_slots(int C, int d) { return static_cast<int64_t>(C) * (4 * d + 2) + 1; }

// One point's contribution to centre-reduction slot j, from its row (z0: the position the
// clustering step was computed at; w: W*phi). Same products as the CPU core's cluster_point.
UEC_HD double centre_contrib(const RowView& r, const float* M, int C, int d, int64_t j) {
  const int64_t cd = static_cast<int64_t>(C) * d;
  if (j < cd) {  // dKL/dmu_k: -= w_k (z - mu_k), i.e. += -(w_k (z - mu_k))
    const int k = static_cast<int>(j / d), c = static_cast<int>(j % d);
    return -(r.w[k] * (static_cast<double>(r.z0[c]) - static_cast<double>(M[j])));
  }
  j -= cd;
  if (j < C) return r.t[j];  // sum T
  j -= C;
  if (j < cd) {  // sum T z
    const int k = static_cast<int>(j / d), c = static_cast<int>(j % d);
    return r.t[k] * static_cast<double>(r.z0[c]);
  }
  j -= cd;
  const int lab = static_cast<int>(*r.lab);  // fixed-point sums: own cluster only
  if (j < C) return static_cast<int>(j) == lab ? r.t[j] * r.phi[j] : 0.0;  // sum T phi
  j -= C;
  if (j < cd) {  // sum T phi z
    const int k = static_cast<int>(j / d), c = static_cast<int>(j % d);
    return k == lab ? (r.t[k] * r.phi[k]) * static_cast<double>(r.z0[c]) : 0.0;
  }
  return *r.changed;
}

// Adds one round's contributions (threads 0 .. nvalid-1, in thread = point order) to the block's
// running partial acc (len slots), kChunk slots at a time through shared memory. contrib(t, j)
// is thread t's value for slot j. Ends with a barrier.
template <class Exec, class Contrib>
UEC_HD void accumulate_round(Exec& ex, int nvalid, int64_t len, double* acc, Contrib contrib) {
  double* sh = ex.shared();
  const int bd = ex.block_dim();
  for (int64_t c0 = 0; c0 < len; c0 += kChunk) {
    const int width = static_cast<int>(min64(kChunk, len - c0));
    ex.threads([&](int t) {
      if (t < nvalid)
        for (int q = 0; q < width; ++q) sh[t * kChunk + q] = contrib(t, c0 + q);
    });
    ex.sync();
    ex.threads([&](int t) {
      for (int q = t; q < width; q += bd) {  // one slot per thread when blockDim >= kChunk
        double a = acc[c0 + q];
        for (int r = 0; r < nvalid; ++r) a += sh[r * kChunk + q];
        acc[c0 + q] = a;
      }
    });
    ex.sync();
  }
}

// UEC's clustering work for one point at position z (C, d): fills r.u .. r.w (w = W*phi),
// r.G, r.step (the clipped, signed KL step) and r.gbar; returns argmax T. As cluster_point in
// csrc/cpu/epochs.cpp, without the reduction (done afterwards from the row).
UEC_HD int cluster_row(const float* z, const float* M, int C, int d, const KernelParams& p,
                       const StatsView& st, RowView& r) {
  const bool exact = p.mode == PLUS;
  row_s(z, M, C, d, p.a, p.b, r.u, r.s, r.phi, nullptr, true);  // the epochs' fast power
  double log_d = 0.0;
  const int lab = row_t(r.u, r.s, st.inv_f, st.log_f, C, p.target_power, r.t, &log_d);
  const double gbar =
      exact ? row_g(r.u, r.t, st.log_f, log_d, C, p.target_power, r.g, nullptr, true) : 0.0;
  *r.gbar = gbar;
  row_weights(r.s, r.t, r.g, gbar, st.inv_f, st.c, C, p.target_power, exact, r.w);
  for (int k = 0; k < C; ++k) r.w[k] *= r.phi[k];
  row_point_grad(z, M, r.w, C, d, r.G);
  kl_step(r.G, d, p.clip_mode, r.step);
  return lab;
}

// ---- Kernels ----------------------------------------------------------------------------------

// Stats pass over the points of each block: its partial of F (sum of S rows) or, with c_pass,
// of c (sum of (g - gbar) T rows, which needs F finished). Grid: PointBlocks(n).count.
struct StatsPass {
  const float* Z;  // (n, d)
  int64_t n;
  int d;
  const float* M;  // (C, d)
  int C;
  double a, b, pw;
  bool c_pass;
  StatsView st;   // reads inv_f, log_f when c_pass
  double* rows;   // (grid * blockDim, RowView::length(C, d))
  double* parts;  // (grid, C) block partials, zeroed before the launch

  template <class Exec>
  UEC_HD void operator()(Exec& ex) const {
    const PointBlocks blocks(n);
    const int64_t blk = ex.block();
    const int bd = ex.block_dim();
    const int64_t end = blocks.end(blk);
    double* acc = parts + blk * C;
    for (int64_t r0 = blocks.begin(blk); r0 < end; r0 += bd) {
      const int nvalid = static_cast<int>(min64(bd, end - r0));
      ex.threads([&](int t) {
        if (t >= nvalid) return;
        RowView r = RowView::at(rows, blk * bd + t, C, d);
        const int64_t i = r0 + t;
        row_s(Z + i * d, M, C, d, a, b, r.u, r.s, r.phi, nullptr, true);
        if (c_pass) {
          double log_d = 0.0;
          row_t(r.u, r.s, st.inv_f, st.log_f, C, pw, r.t, &log_d);
          *r.gbar = row_g(r.u, r.t, st.log_f, log_d, C, pw, r.g, nullptr, true);
        }
      });
      ex.sync();
      accumulate_round(ex, nvalid, C, acc, [&](int t, int64_t k) -> double {
        const RowView r = RowView::at(rows, blk * bd + t, C, d);
        return c_pass ? (r.g[k] - *r.gbar) * r.t[k] : r.s[k];
      });
    }
  }
};

// out[j] = sum over blocks of parts[blk, j], blocks in order (the CPU's reduce_blocks).
// Grid: ceil(len / blockDim).
struct BlockSums {
  const double* parts;  // (count, len)
  int64_t count, len;
  double* out;          // (len)

  template <class Exec>
  UEC_HD void operator()(Exec& ex) const {
    const int64_t base = ex.block() * ex.block_dim();
    ex.threads([&](int t) {
      const int64_t j = base + t;
      if (j >= len) return;
      double s = 0.0;
      for (int64_t blk = 0; blk < count; ++blk) s += parts[blk * len + j];
      out[j] = s;
    });
  }
};

// 1/F and log F from F (the CPU's Stats::finish). Grid: ceil(C / blockDim).
struct StatsFinish {
  StatsView st;
  int C;

  template <class Exec>
  UEC_HD void operator()(Exec& ex) const {
    const int64_t base = ex.block() * ex.block_dim();
    ex.threads([&](int t) {
      const int64_t k = base + t;
      if (k >= C) return;
      const double f = st.F[k] < DBL_MIN ? DBL_MIN : st.F[k];  // std::max(F, DBL_MIN)
      st.inv_f[k] = 1.0 / f;
      st.log_f[k] = log(f);
    });
  }
};

// The sampled-edge pass; fused with each point's clustering step for light plus and plus.
// Thread of point i: start from the epoch-start position, take the clustering step's values
// there (fused), run the point's edge and negative samples against `tail`, add the KL step,
// write the row of Z. Fused blocks then add the round's centre contributions to their partial.
// Grid: PointBlocks(n).count.
struct EdgePass {
  DeviceGraph g;
  float* Z;           // (n, d) written
  int d;
  const float* tail;  // (n_tail, d): the epoch-start snapshot of Z (self_tail) or a fixed tail
  bool self_tail;
  bool fused;
  const float* M;     // (C, d), fused only
  int C;
  StatsView st;       // fused only
  int32_t* labels;    // (n) argmax T of the previous epoch, updated; fused only
  double* rows;       // (grid * blockDim, RowView::length(max(C, 1), d))
  double* parts;      // (grid, centre_slots(C, d)), zeroed before the launch; fused only
  KernelParams p;
  EpochState es;

  template <class Exec>
  UEC_HD void operator()(Exec& ex) const {
    const PointBlocks blocks(g.n_head);
    const int64_t blk = ex.block();
    const int bd = ex.block_dim();
    const int64_t end = blocks.end(blk);
    const int Cr = C > 0 ? C : 1;
    const int64_t len = centre_slots(C, d);
    for (int64_t r0 = blocks.begin(blk); r0 < end; r0 += bd) {
      const int nvalid = static_cast<int>(min64(bd, end - r0));
      ex.threads([&](int t) {
        if (t >= nvalid) return;
        RowView r = RowView::at(rows, blk * bd + t, Cr, d);
        const int64_t i = r0 + t;
        const float* start = self_tail ? tail + i * d : Z + i * d;
        for (int c = 0; c < d; ++c) r.z[c] = r.z0[c] = start[c];
        if (fused) {
          const int lab = cluster_row(r.z0, M, C, d, p, st, r);
          *r.changed = lab != labels[i] ? 1.0 : 0.0;
        *r.lab = static_cast<double>(lab);
          labels[i] = lab;
        }
        Rng rng(es.seed, static_cast<uint64_t>(es.epoch), static_cast<uint64_t>(i));
        edge_updates(g, i, r.z, d, tail, self_tail, p, es.ep1, es.lr, rng);
        if (fused) {
          const float ks = es.lr * p.beta;
          for (int c = 0; c < d; ++c) r.z[c] += ks * r.step[c];
        }
        for (int c = 0; c < d; ++c) Z[i * d + c] = r.z[c];
      });
      if (!fused) continue;
      ex.sync();
      accumulate_round(ex, nvalid, len, parts + blk * len, [&](int t, int64_t j) -> double {
        return centre_contrib(RowView::at(rows, blk * bd + t, C, d), M, C, d, j);
      });
    }
  }
};

// The comma variant's clustering step, after the edge pass and the stats on its result: each
// point moves by its KL step in place; blocks add the centre contributions to their partial.
// Grid: PointBlocks(n).count.
struct ClusterPass {
  float* Z;  // (n, d) updated
  int64_t n;
  int d;
  const float* M;  // (C, d)
  int C;
  StatsView st;
  int32_t* labels;  // (n)
  double* rows;     // (grid * blockDim, RowView::length(C, d))
  double* parts;    // (grid, centre_slots(C, d)), zeroed before the edge pass
  KernelParams p;
  EpochState es;

  template <class Exec>
  UEC_HD void operator()(Exec& ex) const {
    const PointBlocks blocks(n);
    const int64_t blk = ex.block();
    const int bd = ex.block_dim();
    const int64_t end = blocks.end(blk);
    const int64_t len = centre_slots(C, d);
    for (int64_t r0 = blocks.begin(blk); r0 < end; r0 += bd) {
      const int nvalid = static_cast<int>(min64(bd, end - r0));
      ex.threads([&](int t) {
        if (t >= nvalid) return;
        RowView r = RowView::at(rows, blk * bd + t, C, d);
        const int64_t i = r0 + t;
        float* zi = Z + i * d;
        for (int c = 0; c < d; ++c) r.z0[c] = zi[c];
        const int lab = cluster_row(r.z0, M, C, d, p, st, r);
        *r.changed = lab != labels[i] ? 1.0 : 0.0;
        *r.lab = static_cast<double>(lab);
        labels[i] = lab;
        const float ks = es.lr * p.beta;
        for (int c = 0; c < d; ++c) zi[c] += ks * r.step[c];
      });
      ex.sync();
      accumulate_round(ex, nvalid, len, parts + blk * len, [&](int t, int64_t j) -> double {
        return centre_contrib(RowView::at(rows, blk * bd + t, C, d), M, C, d, j);
      });
    }
  }
};

// The centre update from the reduced sums (the CPU's update_centres), one thread per centre.
// Grid: ceil(C / blockDim).
struct CentreUpdate {
  float* M;            // (C, d)
  int C, d;
  const double* sums;  // (centre_slots(C, d))
  KernelParams p;
  EpochState es;

  template <class Exec>
  UEC_HD void operator()(Exec& ex) const {
    const int64_t base = ex.block() * ex.block_dim();
    ex.threads([&](int t) {
      const int64_t kk = base + t;
      if (kk >= C) return;
      const int k = static_cast<int>(kk);
      const int64_t cd = static_cast<int64_t>(C) * d;
      const double* grad_m = sums;
      const double* mass = sums + cd;
      const double* tz = mass + C;
      const double* mass_phi = tz + cd;
      const double* tz_phi = mass_phi + C;
      if (p.centre_update == 1) {
        if (mass[k] > 1e-12)
          for (int j = 0; j < d; ++j) M[k * d + j] = static_cast<float>(tz[k * d + j] / mass[k]);
      } else if (p.centre_update == 2) {
        if (mass_phi[k] > 1e-12)
          for (int j = 0; j < d; ++j)
            M[k * d + j] = static_cast<float>(tz_phi[k * d + j] / mass_phi[k]);
      } else {
        const double m = mass[k] < 1.0 ? 1.0 : mass[k];  // std::max(mass, 1.0)
        const double scale = static_cast<double>(p.centre_lr) * es.factor * p.beta / m;
        for (int j = 0; j < d; ++j)
          M[k * d + j] = static_cast<float>(M[k * d + j] - scale * grad_m[k * d + j]);
      }
    });
  }
};

}  // namespace gpu
}  // namespace uec
