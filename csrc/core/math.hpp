// The math of UEC (DESIGN.md §3) as small host/device functions. The OpenMP epoch loops, the
// CUDA kernels and the test-only bindings all call these, so each formula exists exactly once.
//
// Notation: a point z (d floats), centres M (C x d, row-major), r = ||z - mu_k||^2,
// u = a r^b, S_k = 1 / (1 + u), phi(r) = 2ab r^(b-1) / (1 + a r^b), F_k = sum_l S_lk,
// N_k = S_k^p / F_k, D = sum_m N_m, T_k = N_k / D.
#pragma once
#include <cmath>

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

// UMAP's attractive coefficient for a sampled edge at squared distance r:
// -2ab r^(b-1) / (1 + a r^b); zero for coincident points. The step is coeff * (z_i - z_j).
UEC_HD float attractive_coeff(float r, float a, float b) {
  if (!(r > 0.0f)) return 0.0f;
  float rb = powf(r, b);
  return -2.0f * a * b * (rb / r) / (1.0f + a * rb);
}

// UMAP's repulsive coefficient for a negative sample: 2 gamma b / ((eps + r)(1 + a r^b)); zero
// for coincident points. The step is coeff * (z_i - z_k).
UEC_HD float repulsive_coeff(float r, float a, float b, float gamma) {
  if (!(r > 0.0f)) return 0.0f;
  return 2.0f * gamma * b / ((kRepulsionEps + r) * (1.0f + a * powf(r, b)));
}

// Per-coordinate CE step for a coefficient, clipped as the clipping mode says (before alpha/lr).
UEC_HD float ce_step(float coeff, float diff, int clip_mode) {
  float g = clip(coeff * diff, kClipCE);
  return clip_mode == CLIP_SCALED ? 0.25f * g : g;
}

// For one point: u_k = a r_k^b, S_k = 1 / (1 + u_k) and phi_k for every centre, in double.
// z: (d); M: (C, d); u, s, phi: (C) outputs.
UEC_HD void row_s(const float* z, const float* M, int C, int d, double a, double b, double* u,
                  double* s, double* phi) {
  for (int k = 0; k < C; ++k) {
    double rk = 0.0;
    for (int t = 0; t < d; ++t) {
      double diff = static_cast<double>(z[t]) - static_cast<double>(M[k * d + t]);
      rk += diff * diff;
    }
    double uk = rk > 0.0 ? a * pow(rk, b) : 0.0;
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
// underflows). g: (C) output; returns gbar = sum_k T_k g_k.
UEC_HD double row_g(const double* u, const double* t, const double* log_f, double log_d, int C,
                    double p, double* g) {
  double gbar = 0.0;
  for (int k = 0; k < C; ++k) {
    double log_s = p == 1.0 ? 0.0 : -log1p(u[k]);
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

// Clustering weights W_k of one point (DESIGN.md §3):
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
