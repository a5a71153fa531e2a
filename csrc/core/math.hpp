// The math of UEC (docs/design.md §3) as small host/device functions. The OpenMP epoch loops, the
// CUDA kernels and the test-only bindings all call these, so each formula exists exactly once.
//
// Notation: a point z (d floats), centres M (C x d, row-major), r = ||z - mu_k||^2,
// u = a r^b, S_k = 1 / (1 + u), phi(r) = 2ab r^(b-1) / (1 + a r^b), F_k = sum_l S_lk,
// N_k = S_k^p / F_k, D = sum_m N_m, T_k = N_k / D.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/hd.hpp"

namespace uec {

// Clustering variants / modes of one epoch.
enum Mode : int { CE_ONLY = 0, COMMA = 1, LIGHT_PLUS = 2, PLUS = 3 };
// Clipping: UMAP's per-coordinate [-4, 4] for both terms; the paper's "scaled" form (CE clipped
// to [-4, 4] then divided by 4, KL clipped to [-1, 1]); or CE as UMAP with the clustering step
// rescaled to length <= 1.
enum Clip : int { CLIP_UMAP = 0, CLIP_SCALED = 1, CLIP_NORM = 2 };

constexpr float kRepulsionEps = 0.001f;
constexpr float kClipCE = 4.0f;

UEC_HD float clip(float v, float lim) { return v > lim ? lim : (v < -lim ? -lim : v); }

UEC_HD float sq_dist(const float* x, const float* y, int d) {
  float s = 0.0f;
  for (int t = 0; t < d; ++t) {
    float diff = x[t] - y[t];
    s += diff * diff;
  }
  return s;
}

// Bits of a float and back (memcpy on the host, intrinsics on the device).
UEC_HD uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint32_t>(__float_as_int(x));
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
UEC_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(static_cast<int>(u));
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// Coefficients of the two polynomials of pow_pos, fitted (weighted least squares to minimax) in
// float64 and rounded to float: log2(1 + t) = t P(t) on t in [sqrt(1/2) - 1, sqrt(2) - 1]
// (|error| < 4e-8) and 2^f = Q(f) on f in [-1/2, 1/2] (|relative error| < 2e-9).
constexpr float kLog2Poly[9] = {1.442695022e+00f, -7.213472128e-01f, 4.809102714e-01f,
                                -3.607162535e-01f, 2.879391015e-01f, -2.386756688e-01f,
                                2.152122855e-01f, -2.089338899e-01f, 1.292642802e-01f};
constexpr float kExp2Poly[7] = {1.000000000e+00f, 6.931471825e-01f, 2.402265221e-01f,
                                5.550327152e-02f, 9.617994539e-03f, 1.340043149e-03f,
                                1.547802240e-04f};
constexpr float kSqrt2 = 1.41421356f;
constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: (y + it) - it rounds |y| < 2^22

// P(t) with log2(1 + t) = t P(t) (kLog2Poly), by Estrin's scheme (short dependency chains; the
// per-sample updates are latency-bound). pow_pos and log1p_pos share it, as their vector forms do.
UEC_HD float log2_ratio(float t) {
  const float t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
  const float l01 = kLog2Poly[0] + kLog2Poly[1] * t, l23 = kLog2Poly[2] + kLog2Poly[3] * t;
  const float l45 = kLog2Poly[4] + kLog2Poly[5] * t, l67 = kLog2Poly[6] + kLog2Poly[7] * t;
  const float l03 = l01 + l23 * t2, l47 = l45 + l67 * t2;
  // (named before it is returned: nvcc reads the host array in device code in an initializer,
  // not in a return statement)
  const float q = (l03 + l47 * t4) + kLog2Poly[8] * t8;
  return q;
}

// r^b for r > 0 (the CE steps' only transcendental), as exp2(b log2 r) with the two polynomials
// above, in float: relative error below 4e-7 (a few float ulps) for r in [2^-126, 2^128) and
// b in [2^-10, 4] (tested against float64). Written
// without data-dependent branches so that the 8-lane AVX2 form (cpu/lanes.cpp, pow_pos8) runs
// exactly these operations in this order (never fused) and gives the same bits; eight lanes of
// it cost less than two calls of powf. Results below 2^-125 flush to 0; +inf and NaN come back
// as they are; overflow gives +inf.
UEC_HD float pow_pos(float r, float b) {
  const bool tiny = r < 1.17549435e-38f;                  // subnormal: scale by 2^24 (exact)
  const float rs = tiny ? r * 16777216.0f : r;
  const uint32_t bits = float_bits(rs);
  const int biased = static_cast<int>((bits >> 23) & 0xffu);
  // rs = 2^e m with m in [sqrt(1/2), sqrt(2)), by integer arithmetic on the bits (no branch on
  // the mantissa, which is random): offset by the bits of sqrt(1/2), then split.
  const int32_t off = static_cast<int32_t>(bits - 0x3f3504f3u);
  const int32_t e = (off >> 23) - (tiny ? 24 : 0);
  const float m = bits_float(bits - (static_cast<uint32_t>(off >> 23) << 23));
  const float t = m - 1.0f;                               // exact (Sterbenz)
  const float q = log2_ratio(t);
  // y = b log2 r = b e + b t q, split so that its fraction keeps float precision however large
  // its integer part: b = bh + bl with bh's 12 leading bits, so bh e is exact (|e| < 2^8).
  const float bh = bits_float(float_bits(b) & 0xfffff000u), bl = b - bh;
  const float fe = static_cast<float>(e);
  const float ye = bh * fe, yr = bl * fe + b * (t * q);
  float y = ye + yr;
  y = y > 129.0f ? 129.0f : (y < -130.0f ? -130.0f : y);  // keeps the integer part in range
  const float n = (y + kRoundMagic) - kRoundMagic;        // nearest integer, ties to even
  const float f = (ye - n) + yr;                          // about [-1/2, 1/2]; ye - n exact
  const float f2 = f * f, f4 = f2 * f2;
  const float e01 = kExp2Poly[0] + kExp2Poly[1] * f, e23 = kExp2Poly[2] + kExp2Poly[3] * f;
  const float e45 = kExp2Poly[4] + kExp2Poly[5] * f;
  const float p2 = (e01 + e23 * f2) + (e45 + kExp2Poly[6] * f2) * f4;
  const int ni = static_cast<int>(n);
  // 2^n as 2^(n-1) * 2 so that n = 128 (a result just below or above FLT_MAX) still works.
  const float half_scale = bits_float(static_cast<uint32_t>((ni < -125 ? 1 : ni + 126)) << 23);
  float out = (p2 * half_scale) * 2.0f;
  out = ni < -125 ? 0.0f : out;
  return biased == 255 ? r : out;                         // +inf, NaN
}

// log(1 + u) for u >= 0 in float (row_g's fast form of -log S), by pow_pos's log2 polynomial:
// x = 1 + u rounded to float, log2 x = e + t P(t), times ln 2; absolute error below 3e-7 for
// finite u (tested against float64). +inf and NaN come back as they are. Without
// data-dependent branches, so that cpu/avx512_math.hpp's log1p_pos16 gives the same bits.
UEC_HD float log1p_pos(float u) {
  const float x = 1.0f + u;
  const uint32_t bits = float_bits(x);
  const int biased = static_cast<int>((bits >> 23) & 0xffu);
  const int32_t off = static_cast<int32_t>(bits - 0x3f3504f3u);
  const int32_t e = off >> 23;
  const float m = bits_float(bits - (static_cast<uint32_t>(off >> 23) << 23));
  const float t = m - 1.0f;
  const float q = log2_ratio(t);
  const float y = static_cast<float>(e) + t * q;
  const float out = y * 0.693147182f;
  return biased == 255 ? x : out;
}

// UMAP's CE coefficients at squared distance r, with one division for both kinds (so that the
// 8-lane AVX2 form in cpu/lanes.cpp mirrors one expression): attractive (negative == false)
// -2ab r^(b-1) / (1 + a r^b), computed as (-2ab r^b) / (r (1 + a r^b)); repulsive
// 2 gamma b / ((eps + r)(1 + a r^b)). Zero for coincident points. The step is coeff * (z_i - z_j).
UEC_HD float ce_coeff(float r, bool negative, float a, float b, float gamma) {
  const float rb = pow_pos(r, b);
  const float num = negative ? 2.0f * gamma * b : (-2.0f * a * b) * rb;
  const float den = (negative ? kRepulsionEps + r : r) * (1.0f + a * rb);
  return r > 0.0f ? num / den : 0.0f;
}

UEC_HD float attractive_coeff(float r, float a, float b) { return ce_coeff(r, false, a, b, 0.0f); }

UEC_HD float repulsive_coeff(float r, float a, float b, float gamma) {
  return ce_coeff(r, true, a, b, gamma);
}

// Per-coordinate CE step for a coefficient, clipped as the clipping mode says (before alpha/lr).
UEC_HD float ce_step(float coeff, float diff, int clip_mode) {
  float g = clip(coeff * diff, kClipCE);
  return clip_mode == CLIP_SCALED ? 0.25f * g : g;
}

// For one point: u_k = a r_k^b, S_k = 1 / (1 + u_k) and phi_k for every centre (r_k = ||z -
// mu_k||^2 in double). z: (d); M: (C, d); u, s, phi: (C) outputs. u_known: (C) this point's u
// computed by an earlier call at the same z and M (the CPU epochs cache them), or nullptr.
// fast (the epochs): u, S and phi in float from r rounded to float, r^b by pow_pos (relative
// error below 4e-7, the CE steps' own power), then held in double; the AVX-512 rows of
// cpu/cluster_avx512.cpp and the CUDA kernels repeat these operations, so all give the same
// bits. Otherwise (the soft assignments, stats and gradients the bindings return, tested against
// float64 at 1e-10) all in double with pow.
UEC_HD void row_s(const float* z, const float* M, int C, int d, double a, double b, double* u,
                  double* s, double* phi, const double* u_known = nullptr, bool fast = false) {
  for (int k = 0; k < C; ++k) {
    double rk = 0.0;
    for (int t = 0; t < d; ++t) {
      double diff = static_cast<double>(z[t]) - static_cast<double>(M[k * d + t]);
      rk += diff * diff;
    }
    if (fast) {
      const float rf = static_cast<float>(rk), bf = static_cast<float>(b);
      const float uf = u_known != nullptr
                           ? static_cast<float>(u_known[k])
                           : (rf > 0.0f ? static_cast<float>(a) * pow_pos(rf, bf) : 0.0f);
      const float opu = 1.0f + uf;
      u[k] = uf;
      s[k] = 1.0f / opu;
      phi[k] = rf > 0.0f ? (2.0f * bf * uf) / (rf * opu) : 0.0f;
      continue;
    }
    double uk = u_known != nullptr ? u_known[k] : (rk > 0.0 ? a * pow(rk, b) : 0.0);
    u[k] = uk;
    s[k] = 1.0 / (1.0 + uk);
    // phi = 2ab r^(b-1) / (1 + a r^b) = 2b u / (r (1 + u)). A point exactly on a centre gets
    // no pull from it (the limit for b > 1/2), never NaN.
    phi[k] = rk > 0.0 ? 2.0 * b * uk / (rk * (1.0 + uk)) : 0.0;
  }
}

// N_k = S_k^p / F_k with the common powers done by multiplication.
UEC_HD double target_numerator(double s, double inv_f, double p) {
  if (p == 2.0) return s * s * inv_f;
  if (p == 1.0) return s * inv_f;
  return pow(s, p) * inv_f;
}

// For one point: T_k = N_k / D (D = sum_m N_m), in the linear domain when that is exact and in
// the log domain when the numerators underflow (points far from every centre), so T is always
// finite and normalised. u, s, inv_f, log_f: (C); t: (C) output; *log_d: log D.
// Returns argmax_k T_k.
UEC_HD int row_t(const double* u, const double* s, const double* inv_f, const double* log_f,
                 int C, double p, double* t, double* log_d) {
  double D = 0.0, mx = -1.0;
  int arg = 0;
  for (int k = 0; k < C; ++k) {
    double nk = target_numerator(s[k], inv_f[k], p);
    t[k] = nk;
    D += nk;
    if (nk > mx) {
      mx = nk;
      arg = k;
    }
  }
  if (D > 1e-280 && D < 1e280) {
    double inv = 1.0 / D;
    for (int k = 0; k < C; ++k) t[k] *= inv;
    *log_d = log(D);
    return arg;
  }
  // log N_k = -p log1p(u_k) - log F_k
  double lmx = -INFINITY;
  for (int k = 0; k < C; ++k) {
    double v = -p * log1p(u[k]) - log_f[k];
    t[k] = v;
    if (v > lmx) {
      lmx = v;
      arg = k;
    }
  }
  double acc = 0.0;
  for (int k = 0; k < C; ++k) acc += exp(t[k] - lmx);
  double lse = lmx + log(acc);
  for (int k = 0; k < C; ++k) t[k] = exp(t[k] - lse);
  *log_d = lse;
  return arg;
}

// g_k = 1 + log T_k - log S_k = 1 + (p - 1) log S_k - log F_k - log D (finite even where T_k
// underflows). g: (C) output; returns gbar = sum_k T_k g_k. log_s_known: (C) log S_k computed
// earlier for the same u (the CPU epochs cache them), or nullptr. fast (the epochs, with row_s's
// fast form): log S_k = -log1p_pos(u_k) in float; otherwise -log1p(u_k) in double.
UEC_HD double row_g(const double* u, const double* t, const double* log_f, double log_d, int C,
                    double p, double* g, const double* log_s_known = nullptr, bool fast = false) {
  double gbar = 0.0;
  for (int k = 0; k < C; ++k) {
    double log_s = p == 1.0 ? 0.0
                   : log_s_known != nullptr ? log_s_known[k]
                   : fast ? -static_cast<double>(log1p_pos(static_cast<float>(u[k])))
                          : -log1p(u[k]);
    g[k] = 1.0 + (p - 1.0) * log_s - log_f[k] - log_d;
    gbar += t[k] * g[k];
  }
  return gbar;
}

// Contribution of one point to c_k = sum_l h_lk N_lk = sum_l (g_lk - gbar_l) T_lk.
// c_acc: (C) accumulated in place.
UEC_HD void row_c_contrib(const double* t, const double* g, double gbar, int C, double* c_acc) {
  for (int k = 0; k < C; ++k) c_acc[k] += (g[k] - gbar) * t[k];
}

// Clustering weights W_k of one point (docs/design.md §3.3):
//   light plus / comma: W_k = T_k
//   plus:               W_k = T_k - p (g_k - gbar) T_k + c_k S_k / F_k
// g and c are used only when exact; w: (C) output.
UEC_HD void row_weights(const double* s, const double* t, const double* g, double gbar,
                        const double* inv_f, const double* c, int C, double p, bool exact,
                        double* w) {
  if (!exact) {
    for (int k = 0; k < C; ++k) w[k] = t[k];
    return;
  }
  for (int k = 0; k < C; ++k) w[k] = t[k] * (1.0 - p * (g[k] - gbar)) + c[k] * s[k] * inv_f[k];
}

// dKL/dz for one point: G = sum_k W_k phi_k (z - mu_k). wphi: (C) = W_k phi_k; G: (d) output.
UEC_HD void row_point_grad(const float* z, const float* M, const double* wphi, int C, int d,
                           double* G) {
  for (int t = 0; t < d; ++t) G[t] = 0.0;
  for (int k = 0; k < C; ++k) {
    if (wphi[k] == 0.0) continue;
    for (int t = 0; t < d; ++t)
      G[t] += wphi[k] * (static_cast<double>(z[t]) - static_cast<double>(M[k * d + t]));
  }
}

// Turns a clustering gradient G (d) into the step to add to z (before beta * lr), per the
// clipping mode: per-coordinate clip to [-4, 4] (UMAP), to [-1, 1] (scaled), or the whole vector
// rescaled to length <= 1 (norm). step: (d) output, minus sign included.
UEC_HD void kl_step(const double* G, int d, int clip_mode, float* step) {
  if (clip_mode == CLIP_NORM) {
    double nrm = 0.0;
    for (int t = 0; t < d; ++t) nrm += G[t] * G[t];
    nrm = sqrt(nrm);
    double scale = nrm > 1.0 ? 1.0 / nrm : 1.0;
    for (int t = 0; t < d; ++t) step[t] = static_cast<float>(-G[t] * scale);
    return;
  }
  float lim = clip_mode == CLIP_SCALED ? 1.0f : kClipCE;
  for (int t = 0; t < d; ++t) step[t] = clip(static_cast<float>(-G[t]), lim);
}

}  // namespace uec
