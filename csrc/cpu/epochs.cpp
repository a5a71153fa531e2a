// OpenMP implementation of the UEC epochs. Parallel over fixed blocks of points: a point reads
// the epoch-start snapshot of every other point, writes only its own row, and adds its share of
// each reduction into its block's partial; partials are combined in block order. Results are
// therefore bit-identical for a seed whatever the number of threads.
#include "cpu/epochs.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#ifdef UEC_HAVE_OPENMP
#include <omp.h>
#endif

#include "core/math.hpp"
#include "cpu/cluster_rows.hpp"
#include "cpu/lanes.hpp"
#include "cpu/threads.hpp"
#include "core/edges.hpp"
#include "core/rng.hpp"

namespace uec {

namespace {

// Blocks depend on n only, never on the thread count.
struct Blocks {
  int64_t n, size, count;
  explicit Blocks(int64_t n_) : n(n_) {
    size = std::max<int64_t>(256, (n + 1023) / 1024);
    count = n == 0 ? 0 : (n + size - 1) / size;
  }
  int64_t begin(int64_t blk) const { return blk * size; }
  int64_t end(int64_t blk) const { return std::min(n, (blk + 1) * size); }
};

// The AVX-512 rows' caches (cluster_rows.hpp): float u, then float S, each block's rows in its
// own region of whole groups of eight points, so that a block's last, partial group never
// reaches into the next block's (blocks of more than 256 points need not be whole groups).
struct VCache {
  std::vector<float> data;
  int64_t stride = 0, count = 0;  // floats per block region, blocks
  VCache(const Blocks& blocks, int C, bool on)
      : data(on ? static_cast<size_t>(2 * blocks.count * ((blocks.size + 7) / 8 * 8) * C) : 0),
        stride(on ? (blocks.size + 7) / 8 * 8 * C : 0), count(blocks.count) {}
  bool on() const { return !data.empty(); }
  float* u(int64_t blk) { return data.data() + blk * stride; }
  float* s(int64_t blk) { return data.data() + (count + blk) * stride; }
};

// Per-thread scratch for one point's row computations.
// One heap block per thread, padded by a cache line on each side so that two threads never
// write to the same line (d is often 2: unpadded small vectors would share lines).
struct RowScratch {
  static constexpr int kPad = 8;  // doubles = 64 bytes
  std::vector<double> buf;
  double *u, *s, *phi, *t, *g, *w, *G;
  float *z, *step;
  RowScratch(int C, int d) : buf(static_cast<size_t>(6 * C + 3 * d + 2 * kPad), 0.0) {
    double* p = buf.data() + kPad;
    u = p; s = u + C; phi = s + C; t = phi + C; g = t + C; w = g + C; G = w + C;
    z = reinterpret_cast<float*>(G + d);         // d floats in d doubles of room
    step = reinterpret_cast<float*>(G + 2 * d);  // likewise
  }
  // Moving keeps the heap block (and so every pointer into it) valid; copying would not.
  RowScratch(RowScratch&&) noexcept = default;
  RowScratch(const RowScratch&) = delete;
  RowScratch& operator=(const RowScratch&) = delete;
};

// Column sums and what the rows need from them: 1 / F_k, log F_k, and c_k (plus).
struct Stats {
  std::vector<double> F, inv_f, log_f, c;
  explicit Stats(int C) : F(C), inv_f(C), log_f(C), c(C, 0.0) {}
  void finish() {
    for (size_t k = 0; k < F.size(); ++k) {
      double f = std::max(F[k], std::numeric_limits<double>::min());
      inv_f[k] = 1.0 / f;
      log_f[k] = std::log(f);
    }
  }
};

// One point's T (and g, gbar for plus) from its S row. Returns argmax T.
// log_s_known: (C) log S_k of this point cached by the c pass, or nullptr.
// fast: row_g's fast form (the epochs).
inline int point_targets(const Stats& st, int C, double p, bool exact, RowScratch& s,
                         double* gbar, const double* log_s_known = nullptr, bool fast = false) {
  double log_d = 0.0;
  int lab = row_t(s.u, s.s, st.inv_f.data(), st.log_f.data(), C, p, s.t, &log_d);
  *gbar = exact ? row_g(s.u, s.t, st.log_f.data(), log_d, C, p, s.g, log_s_known, fast) : 0.0;
  return lab;
}

// Stride of a block's partials: whole cache lines, so blocks on different threads never share one.
inline int64_t padded(int64_t len) { return (len + 7) / 8 * 8; }

// Sum of per-block partials (count blocks of stride padded(len)) in block order into out (len).
void reduce_blocks(const std::vector<double>& parts, int64_t count, int64_t len, double* out) {
  for (int64_t j = 0; j < len; ++j) out[j] = 0.0;
  for (int64_t blk = 0; blk < count; ++blk) {
    const double* src = parts.data() + blk * padded(len);
    for (int64_t j = 0; j < len; ++j) out[j] += src[j];
  }
}

float schedule_factor(const EpochParams& p, int epoch) {
  if (p.schedule == 1) {
    return std::pow(p.step_factor, static_cast<float>(epoch / std::max(1, p.step_every)));
  }
  float f = 1.0f - static_cast<float>(epoch) / static_cast<float>(std::max(1, p.n_epochs_total));
  return std::max(f, 0.0f);
}

// Per-block partials of the centre reductions: dKL/dmu (C*d), sum T (C), sum T z (C*d),
// sum T phi (C), sum T phi z (C*d), and the number of changed labels (a double, last slot).
struct CentreParts {
  int C, d;
  int64_t len;
  std::vector<double> data;
  CentreParts(int C_, int d_, int64_t blocks)
      : C(C_), d(d_), len(static_cast<int64_t>(C_) * (4 * d_ + 2) + 1),
        data(static_cast<size_t>(blocks * padded(len)), 0.0) {}
  double* block(int64_t blk) { return data.data() + blk * padded(len); }
};

// One point's clustering work at position z: fills s.step with the (clipped, signed) KL step,
// adds its share of the centre reductions to part, and returns argmax T.
// u_known, log_s_known: (C) this point's cached u and log S, or nullptr.
inline int cluster_point(const float* z, const float* M, int C, int d, const EpochParams& p,
                         const Stats& st, RowScratch& s, double* part, const double* u_known,
                         const double* log_s_known) {
  const bool exact = p.mode == PLUS;
  row_s(z, M, C, d, p.a, p.b, s.u, s.s, s.phi, u_known, true);
  double gbar = 0.0;
  int lab = point_targets(st, C, p.target_power, exact, s, &gbar, log_s_known, true);
  row_weights(s.s, s.t, s.g, gbar, st.inv_f.data(), st.c.data(), C,
              p.target_power, exact, s.w);
  for (int k = 0; k < C; ++k) s.w[k] *= s.phi[k];  // w := W phi
  row_point_grad(z, M, s.w, C, d, s.G);
  kl_step(s.G, d, p.clip_mode, s.step);
  double* grad_m = part;
  double* mass = part + C * d;
  double* tz = mass + C;
  double* mass_phi = tz + C * d;
  double* tz_phi = mass_phi + C;
  for (int k = 0; k < C; ++k) {
    const double t = s.t[k];
    // The fixed-point update counts a point for its own cluster (argmax T) only: see
    // update_centres.
    const double tp = k == lab ? t * s.phi[k] : 0.0;
    mass[k] += t;
    mass_phi[k] += tp;
    for (int j = 0; j < d; ++j) {
      const double zj = static_cast<double>(z[j]);
      grad_m[k * d + j] -= s.w[k] * (zj - static_cast<double>(M[k * d + j]));
      tz[k * d + j] += t * zj;
      tz_phi[k * d + j] += tp * zj;
    }
  }
  return lab;
}

// Column sums F (and, when exact, c of the plus variant) over fixed blocks, into st.
// ucache, lcache: (n, C) or nullptr: filled with every point's u_k (and, when exact and p != 1,
// log S_k = -log1p(u_k)) for the passes after this one at the same positions and centres (the c pass
// here, the epoch's point pass), which then skip the pow (and log1p) per point and centre.
// fast: row_s's fast form (the epochs). vcache: nullptr for the F pass in the scalar rows;
// given (d = 2, fast), the AVX-512 rows fill it instead of ucache, block by block, and take
// plus's c pass (cpass: the epoch's parameters), with the same bits.
void stats_impl(const float* Z, int64_t n, int d, const float* M, int C, double a, double b,
                double pw, bool exact, Stats& st, int n_threads, double* ucache = nullptr,
                double* lcache = nullptr, bool fast = false, VCache* vcache = nullptr,
                const EpochParams* cpass = nullptr) {
  Blocks blocks(n);
  std::vector<double> part(static_cast<size_t>(blocks.count * padded(C)), 0.0);
  std::vector<RowScratch> scr;
  for (int t = 0; t < n_threads; ++t) scr.emplace_back(C, 1);
  std::vector<std::vector<double>> vscr(vcache != nullptr ? n_threads : 0);  // per-thread room
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (int64_t blk = 0; blk < blocks.count; ++blk) {
    RowScratch& s = scr[thread_id()];
    double* acc = part.data() + blk * padded(C);
    if (vcache != nullptr) {
      stats_rows_avx512(Z, blocks.begin(blk), blocks.end(blk), M, C, a, b, acc, vcache->u(blk),
                        vcache->s(blk), vscr[thread_id()]);
      continue;
    }
    for (int64_t i = blocks.begin(blk); i < blocks.end(blk); ++i) {
      row_s(Z + i * d, M, C, d, a, b, s.u, s.s, s.phi, nullptr, fast);
      for (int k = 0; k < C; ++k) acc[k] += s.s[k];
      if (ucache != nullptr) std::copy(s.u, s.u + C, ucache + i * C);
    }
  }
  reduce_blocks(part, blocks.count, C, st.F.data());
  st.finish();
  if (!exact) return;
  std::fill(part.begin(), part.end(), 0.0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
  for (int64_t blk = 0; blk < blocks.count; ++blk) {
    RowScratch& s = scr[thread_id()];
    double* acc = part.data() + blk * padded(C);
    if (vcache != nullptr) {
      cpass_rows_avx512(Z, blocks.begin(blk), blocks.end(blk), M, C, *cpass, st.inv_f.data(),
                        st.log_f.data(), vcache->u(blk), vcache->s(blk), acc, vscr[thread_id()]);
      continue;
    }
    for (int64_t i = blocks.begin(blk); i < blocks.end(blk); ++i) {
      row_s(Z + i * d, M, C, d, a, b, s.u, s.s, s.phi, ucache != nullptr ? ucache + i * C : nullptr,
            fast);
      double* log_s = nullptr;
      if (lcache != nullptr) {
        log_s = lcache + i * C;
        for (int k = 0; k < C; ++k)  // as row_g computes it
          log_s[k] = fast ? -static_cast<double>(log1p_pos(static_cast<float>(s.u[k])))
                          : -std::log1p(s.u[k]);
      }
      double gbar = 0.0;
      point_targets(st, C, pw, true, s, &gbar, log_s, fast);
      row_c_contrib(s.t, s.g, gbar, C, acc);
    }
  }
  reduce_blocks(part, blocks.count, C, st.c.data());
}

void update_centres(float* M, int C, int d, const EpochParams& p, float factor,
                    const double* sums) {
  const double* grad_m = sums;
  const double* mass = sums + C * d;
  const double* tz = mass + C;
  const double* mass_phi = tz + C * d;
  const double* tz_phi = mass_phi + C;
  for (int k = 0; k < C; ++k) {
    if (p.centre_update == 1) {
      if (mass[k] > 1e-12)
        for (int j = 0; j < d; ++j) M[k * d + j] = static_cast<float>(tz[k * d + j] / mass[k]);
    } else if (p.centre_update == 2) {
      // The stationary point of KL with T held constant, sum_i T_ik phi_ik (z_i - mu_k) = 0,
      // over the points whose argmax T is k. Summed over all points, the small T of the many
      // points of other clusters drags every centre towards the global mean; in 5-10
      // dimensions that fed back (flatter S, flatter T) until all centres met (digits: every
      // point in one cluster). Restricted, a centre moves only with its own points.
      if (mass_phi[k] > 1e-12)
        for (int j = 0; j < d; ++j) M[k * d + j] = static_cast<float>(tz_phi[k * d + j] / mass_phi[k]);
    } else {
      double scale = static_cast<double>(p.centre_lr) * factor * p.beta / std::max(mass[k], 1.0);
      for (int j = 0; j < d; ++j)
        M[k * d + j] = static_cast<float>(M[k * d + j] - scale * grad_m[k * d + j]);
    }
  }
}

// Per-thread room of the clustering step over a block: its points' steps and the vector rows'
// scratch.
struct BlockRows {
  std::vector<float> steps;
  std::vector<double> scratch;
};

// cluster_point for count points at z (count, d) in point order, with their cached rows ucache
// (and lcache): steps (count, d) into rows.steps, argmax T into labels (count), the number of
// changed labels into part's last slot. vu, vs: the block's cached float u and S for the
// AVX-512 rows (cluster_rows.hpp: the same bits), or nullptr for the scalar rows.
void cluster_block(const float* z, int64_t count, const float* M, int C, int d,
                   const EpochParams& p, const Stats& st, RowScratch& s, CentreParts& parts,
                   double* part, const double* ucache, const double* lcache, int32_t* labels,
                   const float* vu, const float* vs, BlockRows& rows) {
  rows.steps.resize(static_cast<size_t>(count * d));
  double* changed = part + parts.len - 1;
  if (vu != nullptr) {
    cluster_rows_avx512(z, count, M, C, p, st.inv_f.data(), st.log_f.data(), st.c.data(), vu,
                        vs, part, labels, rows.steps.data(), changed, rows.scratch);
    return;
  }
  for (int64_t h = 0; h < count; ++h) {
    const int lab = cluster_point(z + h * d, M, C, d, p, st, s, part, ucache + h * C,
                                  lcache != nullptr ? lcache + h * C : nullptr);
    if (lab != labels[h]) *changed += 1.0;
    labels[h] = lab;
    std::memcpy(rows.steps.data() + h * d, s.step, sizeof(float) * d);
  }
}

}  // namespace

bool have_openmp() {
#ifdef UEC_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

int resolve_threads(int n_jobs) {
#ifdef UEC_HAVE_OPENMP
  int avail = omp_get_num_procs();
#else
  int avail = 1;
#endif
  int t = n_jobs < 0 ? avail + 1 + n_jobs : n_jobs;
#ifndef UEC_HAVE_OPENMP
  t = 1;
#endif
  return std::max(1, t);
}

RunResult run_epochs(const Graph& g, float* Z, int d, float* M, int C, const float* tail,
                     int32_t* labels_t, int epoch_begin, int epoch_end, const EpochParams& p,
                     const EpochCallback& on_epoch) {
  RunResult res;
  const int64_t n = g.n_head;
  const bool clustering = p.mode != CE_ONLY;
  const bool self_tail = tail == nullptr;
  check_run_args(g, M, C, tail, labels_t, p);
  const int nt = std::max(1, p.n_threads);
  Blocks blocks(n);
  std::vector<float> snap(self_tail ? static_cast<size_t>(n * d) : 0);
  Stats st(std::max(C, 1));
  CentreParts parts(std::max(C, 1), d, blocks.count);
  std::vector<double> sums(parts.len);
  std::vector<RowScratch> scratch;
  scratch.reserve(nt);
  for (int t = 0; t < nt; ++t) scratch.emplace_back(std::max(C, 1), d);
  // Every point's u_k = a r^b for each centre (and log S_k for plus), computed by the epoch's
  // stats passes and reused by the passes after them at the same positions: n * C doubles each.
  // The AVX-512 rows keep their own caches instead (VCache).
  const bool vec_rows = clustering && use_cluster_avx512(d, p.mode, p.target_power);
  const size_t cache_len = clustering ? static_cast<size_t>(n) * static_cast<size_t>(C) : 0;
  std::vector<double> ucache(vec_rows ? 0 : cache_len);
  VCache vcache(blocks, std::max(C, 1), vec_rows);
  double* const uc = ucache.empty() ? nullptr : ucache.data();
  VCache* const vc = vcache.on() ? &vcache : nullptr;
  // (log S_k enters plus's g only when p != 1.)
  std::vector<double> lcache(p.mode == PLUS && p.target_power != 1.0 && !vec_rows ? cache_len : 0);
  double* const lc = lcache.empty() ? nullptr : lcache.data();
  const EpochKernel kernel = pick_epoch_kernel(d, g.n_tail);
  std::vector<BlockRows> block_rows(clustering ? nt : 0);
  const bool interleaved = kernel != KERNEL_SERIAL;
  std::vector<LaneScratch> lanes(interleaved ? nt : 0);

  for (int epoch = epoch_begin; epoch < epoch_end; ++epoch) {
    const float factor = schedule_factor(p, epoch);
    const float lr = p.learning_rate * factor;
    const float ep1 = static_cast<float>(epoch + 1);
    const float* tl = tail;
    if (self_tail) {
      std::memcpy(snap.data(), Z, sizeof(float) * n * d);
      tl = snap.data();
    }
    // Stats at the epoch start (fused variants read them in their single pass).
    const bool fused = p.mode == LIGHT_PLUS || p.mode == PLUS;
    if (fused) {
      stats_impl(Z, n, d, M, C, p.a, p.b, p.target_power, p.mode == PLUS, st, nt, uc, lc, true,
                 vc, &p);
    }
    if (clustering) std::fill(parts.data.begin(), parts.data.end(), 0.0);

    // Edge pass (fused with the point step for light plus / plus).
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t blk = 0; blk < blocks.count; ++blk) {
      RowScratch& s = scratch[thread_id()];
      double* part = fused ? parts.block(blk) : nullptr;
      const int64_t b0 = blocks.begin(blk), heads = blocks.end(blk) - b0;
      // start: the heads' rows at the epoch start (the snapshot, or Z itself for a fixed tail:
      // a head's row of Z is written only at the end of its own iteration below).
      const float* start = (self_tail ? tl : Z) + b0 * d;
      LaneScratch* ls = interleaved ? &lanes[thread_id()] : nullptr;
      if (interleaved) {
        ls->z.assign(start, start + heads * d);
        record_block(kernel, g, b0, heads, self_tail, p, epoch, *ls);
        run_lanes(kernel, *ls, heads, start, tl, d, p, lr * p.alpha);
      }
      // The heads' clustering steps, all from their epoch-start rows (which no head's CE
      // update below changes before its own row is written).
      BlockRows* br = fused ? &block_rows[thread_id()] : nullptr;
      if (fused) {
        cluster_block(start, heads, M, C, d, p, st, s, parts, part,
                      uc != nullptr ? uc + b0 * C : nullptr,
                      lc != nullptr ? lc + b0 * C : nullptr, labels_t + b0,
                      vc != nullptr ? vc->u(blk) : nullptr, vc != nullptr ? vc->s(blk) : nullptr,
                      *br);
      }
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t i = b0 + h;
        // The head's CE-updated position: moved by the lanes above, or here.
        float* z = interleaved ? ls->z.data() + h * d : s.z;
        if (!interleaved) {
          std::memcpy(z, start + h * d, sizeof(float) * d);
          Rng rng(p.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(i));
          edge_updates(g, i, z, d, tl, self_tail, p, ep1, lr, rng);
        }
        if (fused) {
          const float ks = lr * p.beta;
          for (int t = 0; t < d; ++t) z[t] += ks * br->steps[h * d + t];
        }
        std::memcpy(Z + i * d, z, sizeof(float) * d);
      }
    }

    if (p.mode == COMMA) {
      // Sequential variant: stats on the CE-updated embedding, then every point's step.
      stats_impl(Z, n, d, M, C, p.a, p.b, p.target_power, false, st, nt, uc, nullptr, true, vc);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
      for (int64_t blk = 0; blk < blocks.count; ++blk) {
        RowScratch& s = scratch[thread_id()];
        BlockRows& br = block_rows[thread_id()];
        const int64_t b0 = blocks.begin(blk), count = blocks.end(blk) - b0;
        float* zb = Z + b0 * d;
        cluster_block(zb, count, M, C, d, p, st, s, parts, parts.block(blk),
                      uc != nullptr ? uc + b0 * C : nullptr, nullptr, labels_t + b0,
                      vc != nullptr ? vc->u(blk) : nullptr, vc != nullptr ? vc->s(blk) : nullptr,
                      br);
        const float ks = lr * p.beta;
        for (int64_t h = 0; h < count; ++h)
          for (int t = 0; t < d; ++t) zb[h * d + t] += ks * br.steps[h * d + t];
      }
    }

    double change = 0.0;
    if (clustering) {
      reduce_blocks(parts.data, blocks.count, parts.len, sums.data());
      update_centres(M, C, d, p, factor, sums.data());
      change = n > 0 ? sums[parts.len - 1] / static_cast<double>(n) : 0.0;
      res.joint_epochs += 1;
      res.last_change = change;
    }
    if (end_epoch(res, p, clustering, epoch, change, on_epoch)) break;
  }
  return res;
}

void cluster_stats(const float* Z, int64_t n, int d, const float* M, int C, double a, double b,
                   double p, double* F, double* c, int n_threads) {
  Stats st(C);
  stats_impl(Z, n, d, M, C, a, b, p, c != nullptr, st, std::max(1, n_threads));
  std::copy(st.F.begin(), st.F.end(), F);
  if (c != nullptr) std::copy(st.c.begin(), st.c.end(), c);
}

void cluster_gradients(const float* Z, int64_t n, int d, const float* M, int C, double a,
                       double b, double pw, int mode, double* grad_z, double* grad_m,
                       int n_threads) {
  const int nt = std::max(1, n_threads);
  const bool exact = mode == PLUS;
  Stats st(C);
  stats_impl(Z, n, d, M, C, a, b, pw, exact, st, nt);
  Blocks blocks(n);
  std::vector<double> parts(static_cast<size_t>(blocks.count * padded(C * d)), 0.0);
  std::vector<RowScratch> scratch;
  for (int t = 0; t < nt; ++t) scratch.emplace_back(C, d);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t blk = 0; blk < blocks.count; ++blk) {
    RowScratch& s = scratch[thread_id()];
    double* part = parts.data() + blk * padded(C * d);
    for (int64_t i = blocks.begin(blk); i < blocks.end(blk); ++i) {
      const float* z = Z + i * d;
      row_s(z, M, C, d, a, b, s.u, s.s, s.phi);
      double gbar = 0.0;
      point_targets(st, C, pw, exact, s, &gbar);
      row_weights(s.s, s.t, s.g, gbar, st.inv_f.data(), st.c.data(), C, pw,
                  exact, s.w);
      for (int k = 0; k < C; ++k) s.w[k] *= s.phi[k];
      row_point_grad(z, M, s.w, C, d, grad_z + i * d);
      for (int k = 0; k < C; ++k)
        for (int j = 0; j < d; ++j)
          part[k * d + j] -= s.w[k] * (static_cast<double>(z[j]) - static_cast<double>(M[k * d + j]));
    }
  }
  reduce_blocks(parts, blocks.count, static_cast<int64_t>(C) * d, grad_m);
}

void soft_assign(const float* Z, int64_t n, int d, const float* M, int C, double a, double b,
                 double pw, double* S, double* T, int32_t* labels_s, int32_t* labels_t,
                 int n_threads) {
  const int nt = std::max(1, n_threads);
  Stats st(C);
  const bool need_t = T != nullptr || labels_t != nullptr;
  if (need_t) stats_impl(Z, n, d, M, C, a, b, pw, false, st, nt);
  std::vector<RowScratch> scratch;
  for (int t = 0; t < nt; ++t) scratch.emplace_back(C, d);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    RowScratch& s = scratch[thread_id()];
    row_s(Z + i * d, M, C, d, a, b, s.u, s.s, s.phi);
    if (S != nullptr)
      for (int k = 0; k < C; ++k) S[i * C + k] = s.s[k];
    if (labels_s != nullptr) {
      int arg = 0;  // nearest centre = largest S (u is monotone in r)
      for (int k = 1; k < C; ++k)
        if (s.u[k] < s.u[arg]) arg = k;
      labels_s[i] = arg;
    }
    if (need_t) {
      double gbar = 0.0;
      int lab = point_targets(st, C, pw, false, s, &gbar);
      if (labels_t != nullptr) labels_t[i] = lab;
      if (T != nullptr)
        for (int k = 0; k < C; ++k) T[i * C + k] = s.t[k];
    }
  }
}

}  // namespace uec
