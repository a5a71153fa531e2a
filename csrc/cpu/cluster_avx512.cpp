// The AVX-512 rows of the joint epochs' clustering step (cluster_rows.hpp): 2-D points, eight
// to a vector of doubles (sixteen to a power, pow_pos16). Every value is computed by the scalar
// rows' operations in their order (no FMA: -ffp-contract=off), and every reduction takes the
// points' shares one lane after the other, in point order, so the results are the scalar
// path's bits. A lane whose target denominator under- or overflows (a point far from every
// centre) gets its T from the scalar row_t (the log domain), the rest of its row in the lanes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/math.hpp"
#include "cpu/avx512_math.hpp"
#include "cpu/cluster_rows.hpp"
#include "cpu/lanes.hpp"

namespace uec {

namespace {

bool cluster_scalar_forced() {
  const char* force = std::getenv("UEC_CLUSTER_KERNEL");
  const std::string want = force ? force : "";
  if (!want.empty() && want != "scalar" && want != "avx512")
    throw std::invalid_argument("UEC_CLUSTER_KERNEL must be 'scalar' or 'avx512' (or unset), "
                                "got '" + want + "'");
  return want == "scalar";
}

}  // namespace

#ifdef UEC_LANES_AVX512

namespace {

constexpr int kPts = 8;          // points per vector of doubles

// Points g0 .. g0 + m - 1 of z (rows of 2 floats) as two vectors of doubles (x, y); lanes past
// m are 0.
UEC_AVX512 inline void load_xy(const float* z, int m, __m512d& x, __m512d& y) {
  const __mmask16 in = _cvtu32_mask16(m >= kPts ? 0xffffu : ((1u << (2 * m)) - 1u));
  const __m512 v = _mm512_maskz_loadu_ps(in, z);
  const __m512i even_odd = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  const __m512 p = _mm512_permutexvar_ps(even_odd, v);
  x = _mm512_cvtps_pd(_mm512_castps512_ps256(p));
  y = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(p), 1)));
}

}  // namespace

bool use_cluster_avx512(int d, int mode, double target_power) {
  const bool forced_scalar = cluster_scalar_forced();
  return !forced_scalar && d == 2 && (mode == COMMA || mode == LIGHT_PLUS || mode == PLUS) &&
         (target_power == 1.0 || target_power == 2.0) && cpu_has_avx512();
}

UEC_AVX512 void stats_rows_avx512(const float* Z, int64_t i0, int64_t i1, const float* M, int C,
                                  double a, double b, double* acc, float* ucache,
                                  float* scache, std::vector<double>& scratch) {
  scratch.resize(static_cast<size_t>(C * kPts));  // C x 16 floats
  float* ts = reinterpret_cast<float*>(scratch.data());
  const __m512 av = _mm512_set1_ps(static_cast<float>(a)), one = _mm512_set1_ps(1.0f);
  const __m512 bv = _mm512_set1_ps(static_cast<float>(b)), zero = _mm512_setzero_ps();
  for (int64_t i = i0; i < i1; i += 2 * kPts) {
    const int m = static_cast<int>(std::min<int64_t>(2 * kPts, i1 - i));
    __m512d x0, y0, x1, y1;
    load_xy(Z + 2 * i, std::min(m, kPts), x0, y0);
    if (m > kPts) {
      load_xy(Z + 2 * (i + kPts), m - kPts, x1, y1);
    } else {
      x1 = y1 = _mm512_setzero_pd();
    }
    // the caches' lane-major groups (cluster_rows.hpp): lanes 0-7 and 8-15 of a vector go to
    // two groups
    const __mmask16 first = _cvtu32_mask16(m >= kPts ? 0xffu : ((1u << m) - 1u));
    const __mmask16 second = _cvtu32_mask16(m >= 2 * kPts ? 0xffu : ((1u << (m - kPts)) - 1u));
    for (int k = 0; k < C; ++k) {
      const __m512d mx = _mm512_set1_pd(static_cast<double>(M[2 * k]));
      const __m512d my = _mm512_set1_pd(static_cast<double>(M[2 * k + 1]));
      const __m512d dx0 = _mm512_sub_pd(x0, mx), dy0 = _mm512_sub_pd(y0, my);
      const __m512d dx1 = _mm512_sub_pd(x1, mx), dy1 = _mm512_sub_pd(y1, my);
      const __m512d r0 = _mm512_add_pd(_mm512_mul_pd(dx0, dx0), _mm512_mul_pd(dy0, dy0));
      const __m512d r1 = _mm512_add_pd(_mm512_mul_pd(dx1, dx1), _mm512_mul_pd(dy1, dy1));
      // row_s's fast form: r rounded to float, u and S in float
      const __m512 rf = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(r0)),
                                           _mm512_cvtpd_ps(r1), 1);
      const __mmask16 pos = _mm512_cmp_ps_mask(rf, zero, _CMP_GT_OQ);
      const __m512 uf = _mm512_maskz_mul_ps(pos, av, avx512::pow_pos16(rf, bv));
      const __m512 sf = _mm512_div_ps(one, _mm512_add_ps(one, uf));
      _mm512_storeu_ps(ts + k * 2 * kPts, sf);
      const int64_t at = (i - i0) * C + k * kPts;  // the block's region, from its first point
      _mm512_mask_storeu_ps(ucache + at, first, uf);
      _mm512_mask_storeu_ps(scache + at, first, sf);
      if (m > kPts) {
        const __m512 uh = _mm512_castps256_ps512(_mm512_extractf32x8_ps(uf, 1));
        const __m512 sh = _mm512_castps256_ps512(_mm512_extractf32x8_ps(sf, 1));
        _mm512_mask_storeu_ps(ucache + at + kPts * C, second, uh);
        _mm512_mask_storeu_ps(scache + at + kPts * C, second, sh);
      }
    }
    for (int l = 0; l < m; ++l)
      for (int k = 0; k < C; ++k) acc[k] += static_cast<double>(ts[k * 2 * kPts + l]);
  }
}

namespace {

// One group's rows up to T (row_s's fast form from the cached float u and S, row_t): fills
// tu, ts, tphi, tt (C, lanes) in double, and, when log_d is given, each lane's log D as row_t
// returns it. Returns the lanes' argmax T.
struct Group {
  const float* z;
  int m;
  __mmask8 in;
  __m512d x, y;
};

struct Rows {
  double *tu, *ts, *tphi, *tt, *lane_u, *lane_s, *lane_t;
};

UEC_AVX512 inline __m512i group_targets(const Group& g, const float* M, int C, double pw,
                                        float b, const double* inv_f, const double* log_f,
                                        const float* u, const float* s_cached, const Rows& rw,
                                        double* log_d) {
  const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
  const __m256 two_bf = _mm256_set1_ps(2.0f * b), one_f = _mm256_set1_ps(1.0f);
  const __mmask16 in16 = _cvtu32_mask16(_cvtmask8_u32(g.in));
  __m512d D = zero, mx = _mm512_set1_pd(-1.0);
  __m512i arg = _mm512_setzero_si512();
  for (int k = 0; k < C; ++k) {
    const __m512d dx = _mm512_sub_pd(g.x, _mm512_set1_pd(static_cast<double>(M[2 * k])));
    const __m512d dy = _mm512_sub_pd(g.y, _mm512_set1_pd(static_cast<double>(M[2 * k + 1])));
    const __m512d r = _mm512_add_pd(_mm512_mul_pd(dx, dx), _mm512_mul_pd(dy, dy));
    const __m256 uf = _mm512_castps512_ps256(_mm512_maskz_loadu_ps(in16, u + k * kPts));
    const __m256 sf = _mm512_castps512_ps256(_mm512_maskz_loadu_ps(in16, s_cached + k * kPts));
    const __m256 rf = _mm512_cvtpd_ps(r);
    const __m256 phif = _mm256_and_ps(
        _mm256_cmp_ps(rf, _mm256_setzero_ps(), _CMP_GT_OQ),
        _mm256_div_ps(_mm256_mul_ps(two_bf, uf), _mm256_mul_ps(rf, _mm256_add_ps(one_f, uf))));
    const __m512d sk = _mm512_cvtps_pd(sf);
    const __m512d fk = _mm512_set1_pd(inv_f[k]);
    const __m512d nk = pw == 2.0 ? _mm512_mul_pd(_mm512_mul_pd(sk, sk), fk) : _mm512_mul_pd(sk, fk);
    D = _mm512_add_pd(D, nk);
    const __mmask8 gt = _mm512_cmp_pd_mask(nk, mx, _CMP_GT_OQ);
    mx = _mm512_mask_mov_pd(mx, gt, nk);
    arg = _mm512_mask_mov_epi64(arg, gt, _mm512_set1_epi64(k));
    _mm512_storeu_pd(rw.tu + k * kPts, _mm512_cvtps_pd(uf));
    _mm512_storeu_pd(rw.ts + k * kPts, sk);
    _mm512_storeu_pd(rw.tphi + k * kPts, _mm512_cvtps_pd(phif));
    _mm512_storeu_pd(rw.tt + k * kPts, nk);
  }
  const __mmask8 ok = _mm512_cmp_pd_mask(D, _mm512_set1_pd(1e-280), _CMP_GT_OQ) &
                      _mm512_cmp_pd_mask(D, _mm512_set1_pd(1e280), _CMP_LT_OQ);
  const __m512d inv = _mm512_div_pd(one, D);
  for (int k = 0; k < C; ++k)
    _mm512_storeu_pd(rw.tt + k * kPts, _mm512_mul_pd(_mm512_loadu_pd(rw.tt + k * kPts), inv));
  const uint32_t bad = _cvtmask8_u32(_kandn_mask8(ok, g.in));
  if (bad == 0u && log_d == nullptr) return arg;
  alignas(64) int64_t args[kPts];
  alignas(64) double ds[kPts];
  _mm512_store_si512(args, arg);
  _mm512_store_pd(ds, D);
  for (int l = 0; l < g.m; ++l) {
    if (!((bad >> l) & 1u)) {
      if (log_d != nullptr) log_d[l] = std::log(ds[l]);  // as row_t's linear domain
      continue;
    }
    // the log domain (a point far from every centre): the scalar row_t for this lane
    for (int k = 0; k < C; ++k) {
      rw.lane_u[k] = rw.tu[k * kPts + l];
      rw.lane_s[k] = rw.ts[k * kPts + l];
    }
    double ld = 0.0;
    args[l] = row_t(rw.lane_u, rw.lane_s, inv_f, log_f, C, pw, rw.lane_t, &ld);
    if (log_d != nullptr) log_d[l] = ld;
    for (int k = 0; k < C; ++k) rw.tt[k * kPts + l] = rw.lane_t[k];
  }
  return _mm512_load_si512(args);
}

// row_g's fast form for one centre of a group: g_k (double) from the lanes' T, cached float u
// and log D; gbar += T_k g_k.
UEC_AVX512 inline __m512d group_g(__m256 uf, double pw, double log_f, __m512d log_d) {
  const __m512d ls = pw == 1.0 ? _mm512_setzero_pd()
                               : _mm512_xor_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(
                                                   avx512::log1p_pos16(_mm512_castps256_ps512(uf)))),
                                               _mm512_set1_pd(-0.0));
  return _mm512_sub_pd(
      _mm512_sub_pd(_mm512_add_pd(_mm512_set1_pd(1.0), _mm512_mul_pd(_mm512_set1_pd(pw - 1.0), ls)),
                    _mm512_set1_pd(log_f)),
      log_d);
}

UEC_AVX512 inline Rows rows_in(std::vector<double>& scratch, int C, int extra) {
  scratch.resize(static_cast<size_t>((4 + extra) * C * kPts + 3 * C));
  Rows rw;
  rw.tu = scratch.data();
  rw.ts = rw.tu + C * kPts;
  rw.tphi = rw.ts + C * kPts;
  rw.tt = rw.tphi + C * kPts;
  rw.lane_u = rw.tt + (1 + extra) * C * kPts;  // after tt and the caller's extra rows
  rw.lane_s = rw.lane_u + C;
  rw.lane_t = rw.lane_s + C;
  return rw;
}

}  // namespace

UEC_AVX512 void cpass_rows_avx512(const float* Z, int64_t i0, int64_t i1, const float* M, int C,
                                  const EpochParams& p, const double* inv_f,
                                  const double* log_f, const float* u, const float* s_cached,
                                  double* acc, std::vector<double>& scratch) {
  const Rows rw = rows_in(scratch, C, 1);
  double* share = rw.tt + C * kPts;  // (g_k - gbar) T_k by centre and lane
  const double pw = p.target_power;
  for (int64_t g0 = i0; g0 < i1; g0 += kPts) {
    Group g;
    g.m = static_cast<int>(std::min<int64_t>(kPts, i1 - g0));
    g.in = _cvtu32_mask8(g.m >= kPts ? 0xffu : ((1u << g.m) - 1u));
    load_xy(Z + 2 * g0, g.m, g.x, g.y);
    alignas(64) double lds[kPts] = {0.0};
    const int64_t at = (g0 - i0) * C;  // the block's region, from its first point
    group_targets(g, M, C, pw, p.b, inv_f, log_f, u + at, s_cached + at, rw, lds);
    const __m512d ld = _mm512_load_pd(lds);
    __m512d gbar = _mm512_setzero_pd();
    for (int k = 0; k < C; ++k) {
      const __m256 uf = _mm512_castps512_ps256(_mm512_maskz_loadu_ps(
          _cvtu32_mask16(_cvtmask8_u32(g.in)), u + at + k * kPts));
      const __m512d gk = group_g(uf, pw, log_f[k], ld);
      const __m512d t = _mm512_loadu_pd(rw.tt + k * kPts);
      gbar = _mm512_add_pd(gbar, _mm512_mul_pd(t, gk));
      _mm512_storeu_pd(share + k * kPts, gk);
    }
    for (int k = 0; k < C; ++k) {
      const __m512d t = _mm512_loadu_pd(rw.tt + k * kPts);
      _mm512_storeu_pd(share + k * kPts,
                       _mm512_mul_pd(_mm512_sub_pd(_mm512_loadu_pd(share + k * kPts), gbar), t));
    }
    for (int l = 0; l < g.m; ++l)
      for (int k = 0; k < C; ++k) acc[k] += share[k * kPts + l];
  }
}

UEC_AVX512 void cluster_rows_avx512(const float* z, int64_t count, const float* M, int C,
                                    const EpochParams& p, const double* inv_f,
                                    const double* log_f, const double* c, const float* u,
                                    const float* s_cached, double* part, int32_t* labels,
                                    float* steps, double* changed, std::vector<double>& scratch) {
  // after T: the shares of the reductions (T, W phi (z - mu), T z by coordinate) and W
  constexpr int kShares = 5;
  const Rows rw = rows_in(scratch, C, kShares + 1);
  double* share = rw.tt + C * kPts;               // (C, kShares, lanes)
  double* tw = share + kShares * C * kPts;        // (C, lanes) W_k (plus)
  double* grad_m = part;
  double* mass = part + C * 2;
  double* tz = mass + C;
  double* mass_phi = tz + C * 2;
  double* tz_phi = mass_phi + C;
  const bool exact = p.mode == PLUS;
  // Only the sums the centre update reads (update_centres): the scalar rows fill every one.
  const bool need_grad = p.centre_update != 1 && p.centre_update != 2;
  const bool need_tz = p.centre_update == 1;
  const double pw = p.target_power;
  const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
  const __m512d sign = _mm512_set1_pd(-0.0);
  const float lim = p.clip_mode == CLIP_SCALED ? 1.0f : kClipCE;
  for (int64_t g0 = 0; g0 < count; g0 += kPts) {
    Group g;
    g.m = static_cast<int>(std::min<int64_t>(kPts, count - g0));
    g.in = _cvtu32_mask8(g.m >= kPts ? 0xffu : ((1u << g.m) - 1u));
    load_xy(z + 2 * g0, g.m, g.x, g.y);
    alignas(64) double lds[kPts] = {0.0};
    const __m512i arg = group_targets(g, M, C, pw, p.b, inv_f, log_f, u + g0 * C,
                                      s_cached + g0 * C, rw, exact ? lds : nullptr);
    if (exact) {
      // row_g (fast form) and row_weights' exact W = T (1 - p (g - gbar)) + c S / F
      const __m512d ld = _mm512_load_pd(lds);
      const __mmask16 in16 = _cvtu32_mask16(_cvtmask8_u32(g.in));
      __m512d gbar = zero;
      for (int k = 0; k < C; ++k) {
        const __m256 uf = _mm512_castps512_ps256(_mm512_maskz_loadu_ps(in16, u + g0 * C + k * kPts));
        const __m512d gk = group_g(uf, pw, log_f[k], ld);
        gbar = _mm512_add_pd(gbar, _mm512_mul_pd(_mm512_loadu_pd(rw.tt + k * kPts), gk));
        _mm512_storeu_pd(tw + k * kPts, gk);
      }
      const __m512d pv = _mm512_set1_pd(pw);
      for (int k = 0; k < C; ++k) {
        const __m512d t = _mm512_loadu_pd(rw.tt + k * kPts);
        const __m512d gk = _mm512_loadu_pd(tw + k * kPts);
        const __m512d a1 = _mm512_mul_pd(t, _mm512_sub_pd(one, _mm512_mul_pd(pv, _mm512_sub_pd(gk, gbar))));
        const __m512d a2 = _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(c[k]), _mm512_loadu_pd(rw.ts + k * kPts)),
                                         _mm512_set1_pd(inv_f[k]));
        _mm512_storeu_pd(tw + k * kPts, _mm512_add_pd(a1, a2));
      }
    }
    // W phi, row_point_grad, and the point's shares of the reductions
    __m512d G0 = zero, G1 = zero;
    for (int k = 0; k < C; ++k) {
      const __m512d mkx = _mm512_set1_pd(static_cast<double>(M[2 * k]));
      const __m512d mky = _mm512_set1_pd(static_cast<double>(M[2 * k + 1]));
      const __m512d dx = _mm512_sub_pd(g.x, mkx), dy = _mm512_sub_pd(g.y, mky);
      const __m512d t = _mm512_loadu_pd(rw.tt + k * kPts);
      const __m512d w = _mm512_mul_pd(exact ? _mm512_loadu_pd(tw + k * kPts) : t,
                                      _mm512_loadu_pd(rw.tphi + k * kPts));
      const __mmask8 nz = _mm512_cmp_pd_mask(w, zero, _CMP_NEQ_UQ);
      G0 = _mm512_mask_add_pd(G0, nz, G0, _mm512_mul_pd(w, dx));
      G1 = _mm512_mask_add_pd(G1, nz, G1, _mm512_mul_pd(w, dy));
      double* sh = share + k * kShares * kPts;
      if (need_grad || need_tz) _mm512_storeu_pd(sh + 0 * kPts, t);
      if (need_grad) {
        _mm512_storeu_pd(sh + 1 * kPts, _mm512_mul_pd(w, dx));
        _mm512_storeu_pd(sh + 2 * kPts, _mm512_mul_pd(w, dy));
      }
      if (need_tz) {
        _mm512_storeu_pd(sh + 3 * kPts, _mm512_mul_pd(t, g.x));
        _mm512_storeu_pd(sh + 4 * kPts, _mm512_mul_pd(t, g.y));
      }
    }
    // kl_step
    const __m512d n0 = _mm512_xor_pd(G0, sign), n1 = _mm512_xor_pd(G1, sign);
    __m512 st;  // steps of the eight points, x in the low half, y in the high
    if (p.clip_mode == CLIP_NORM) {
      const __m512d nrm = _mm512_sqrt_pd(_mm512_add_pd(_mm512_mul_pd(G0, G0), _mm512_mul_pd(G1, G1)));
      const __mmask8 big = _mm512_cmp_pd_mask(nrm, one, _CMP_GT_OQ);
      const __m512d scale = _mm512_mask_div_pd(one, big, one, nrm);
      st = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_mul_pd(n0, scale))),
                              _mm512_cvtpd_ps(_mm512_mul_pd(n1, scale)), 1);
    } else {
      st = avx512::clip16(_mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(n0)),
                                             _mm512_cvtpd_ps(n1), 1), lim);
    }
    alignas(64) float sv[2 * kPts];
    alignas(64) int64_t args[kPts];
    _mm512_store_ps(sv, st);
    _mm512_store_si512(args, arg);
    for (int l = 0; l < g.m; ++l) {
      if (need_grad) {
        for (int k = 0; k < C; ++k) {
          const double* sh = share + k * kShares * kPts + l;
          mass[k] += sh[0 * kPts];
          grad_m[2 * k] -= sh[1 * kPts];
          grad_m[2 * k + 1] -= sh[2 * kPts];
        }
      } else if (need_tz) {
        for (int k = 0; k < C; ++k) {
          const double* sh = share + k * kShares * kPts + l;
          mass[k] += sh[0 * kPts];
          tz[2 * k] += sh[3 * kPts];
          tz[2 * k + 1] += sh[4 * kPts];
        }
      }
      // The fixed-point sums take T phi of the point's own centre only; the scalar rows add
      // 0 for the others, which leaves a sum that starts at +0 unchanged (it is never -0).
      // (Filled for every update: two slots and three additions a point.)
      const int own = static_cast<int>(args[l]);
      const double tp = rw.tt[own * kPts + l] * rw.tphi[own * kPts + l];
      const double zx = static_cast<double>(z[2 * (g0 + l)]);
      const double zy = static_cast<double>(z[2 * (g0 + l) + 1]);
      mass_phi[own] += tp;
      tz_phi[2 * own] += tp * zx;
      tz_phi[2 * own + 1] += tp * zy;
      const int64_t i = g0 + l;
      steps[2 * i] = sv[l];
      steps[2 * i + 1] = sv[kPts + l];
      const int32_t lab = static_cast<int32_t>(args[l]);
      if (lab != labels[i]) *changed += 1.0;
      labels[i] = lab;
    }
  }
}

#else

bool use_cluster_avx512(int, int, double) {
  (void)cluster_scalar_forced();  // an unknown value is refused everywhere
  return false;
}
void stats_rows_avx512(const float*, int64_t, int64_t, const float*, int, double, double,
                       double*, float*, float*, std::vector<double>&) {}
void cpass_rows_avx512(const float*, int64_t, int64_t, const float*, int, const EpochParams&,
                       const double*, const double*, const float*, const float*, double*,
                       std::vector<double>&) {}
void cluster_rows_avx512(const float*, int64_t, const float*, int, const EpochParams&,
                         const double*, const double*, const double*, const float*, const float*,
                         double*, int32_t*,
                         float*, double*, std::vector<double>&) {}

#endif  // UEC_LANES_AVX512

}  // namespace uec
