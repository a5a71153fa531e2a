// The math of UEC (DESIGN.md §3) as small host/device functions. The OpenMP epoch loops, the
// CUDA kernels and the test-only bindings all call these, so each formula exists exactly once.
//
// Notation: a point z (d floats), centres M (C x d, row-major), r = ||z - mu_k||^2,
// S_k = 1 / (1 + a r^b), phi(r) = 2ab r^(b-1) / (1 + a r^b), F_k = sum_l S_lk,
// N_k = S_k^p / F_k, T_k = N_k / sum_m N_m.
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

// For one point: r_k, log S_k and phi_k for every centre, in double.
// z: (d); M: (C, d); r, log_s, phi: (C) outputs.
UEC_HD void row_log_s(const float* z, const float* M, int C, int d, double a, double b,
                      double* r, double* log_s, double* phi) {
  for (int k = 0; k < C; ++k) {
    double rk = 0.0;
    for (int t = 0; t < d; ++t) {
      double diff = static_cast<double>(z[t]) - static_cast<double>(M[k * d + t]);
      rk += diff * diff;
    }
    double rb = rk > 0.0 ? pow(rk, b) : 0.0;
    r[k] = rk;
    log_s[k] = -log1p(a * rb);
    // A point exactly on a centre gets no pull from it (the limit for b > 1/2), never NaN.
    phi[k] = rk > 0.0 ? 2.0 * a * b * (rb / rk) / (1.0 + a * rb) : 0.0;
  }
}

// For one point: log T_k from log S_k and log F_k, stably (log-sum-exp, so far points whose
// S_k underflow still get a finite, normalised T). log_s, log_f: (C); log_t: (C) output.
// Returns argmax_k T_k.
UEC_HD int row_log_t(const double* log_s, const double* log_f, int C, double p, double* log_t) {
  double mx = -INFINITY;
  int arg = 0;
  for (int k = 0; k < C; ++k) {
    double v = p * log_s[k] - log_f[k];
    log_t[k] = v;
    if (v > mx) {
      mx = v;
      arg = k;
    }
  }
  double s = 0.0;
  for (int k = 0; k < C; ++k) s += exp(log_t[k] - mx);
  double lse = mx + log(s);
  for (int k = 0; k < C; ++k) log_t[k] -= lse;
  return arg;
}

// g_k = 1 + log T_k - log S_k and gbar = sum_k T_k g_k for one point (plus variant).
UEC_HD double row_gbar(const double* log_s, const double* log_t, int C) {
  double gbar = 0.0;
  for (int k = 0; k < C; ++k) gbar += exp(log_t[k]) * (1.0 + log_t[k] - log_s[k]);
  return gbar;
}

// Contribution of one point to c_k = sum_l h_lk N_lk = sum_l (g_lk - gbar_l) T_lk.
// c_acc: (C) accumulated in place.
UEC_HD void row_c_contrib(const double* log_s, const double* log_t, int C, double* c_acc) {
  double gbar = row_gbar(log_s, log_t, C);
  for (int k = 0; k < C; ++k) {
    double t = exp(log_t[k]);
    c_acc[k] += (1.0 + log_t[k] - log_s[k] - gbar) * t;
  }
}

// Clustering weights W_k of one point (DESIGN.md §3), written over log_t's companion w:
//   light plus / comma: W_k = T_k
//   plus:               W_k = T_k - p (g_k - gbar) T_k + c_k S_k / F_k
// log_s, log_t, log_f, c: (C) (c and log_f used only when exact); w: (C) output.
UEC_HD void row_weights(const double* log_s, const double* log_t, const double* log_f,
                        const double* c, int C, double p, bool exact, double* w) {
  if (!exact) {
    for (int k = 0; k < C; ++k) w[k] = exp(log_t[k]);
    return;
  }
  double gbar = row_gbar(log_s, log_t, C);
  for (int k = 0; k < C; ++k) {
    double t = exp(log_t[k]);
    double g = 1.0 + log_t[k] - log_s[k];
    w[k] = t - p * (g - gbar) * t + c[k] * exp(log_s[k] - log_f[k]);
  }
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
