// The joint epochs' clustering step over many points at once (cpu/epochs.cpp calls these): the
// AVX-512 rows of cluster_avx512.cpp, eight points per vector of doubles, which repeat the
// scalar rows' operations (core/math.hpp: row_s's and row_g's fast forms, row_t, row_weights,
// row_point_grad, kl_step) in their order and add each point's share of a reduction in point
// order, so that they give the scalar path's bits (tests/test_epoch_kernels.py compares them).
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/epochs.hpp"

namespace uec {

// Whether the AVX-512 rows take this run's clustering step: 2-D, any joint variant, target
// power 1 or 2, a CPU with AVX-512F/DQ. UEC_CLUSTER_KERNEL=scalar forces the scalar rows
// (=avx512, or unset: the vector rows where they run).
bool use_cluster_avx512(int d, int mode, double target_power);

// The u and S caches of these rows are floats (row_s's fast form computes them in float), one
// region per block of points, lane-major by groups of eight from the block's first point: the
// point i0 + h's u_k at ucache[(h - h % 8) * C + 8 k + h % 8], S_k likewise in scache. A region
// holds whole groups (its block's size rounded up to 8).
//
// Points [i0, i1) of Z (n, 2), one block: acc[k] += S_ik in point order, and each point's u_k
// and S_k into the block's regions. scratch: per-thread room.
void stats_rows_avx512(const float* Z, int64_t i0, int64_t i1, const float* M, int C, double a,
                       double b, double* acc, float* ucache, float* scache,
                       std::vector<double>& scratch);

// Plus's c pass (stats_impl) for points [i0, i1) of Z, one block, from its cached u and S (the
// block's regions): acc[k] += (g_ik - gbar_i) T_ik in point order, row_g's fast
// form. scratch: per-thread room.
void cpass_rows_avx512(const float* Z, int64_t i0, int64_t i1, const float* M, int C,
                       const EpochParams& p, const double* inv_f, const double* log_f,
                       const float* u, const float* s, double* acc, std::vector<double>& scratch);

// What cluster_point (cpu/epochs.cpp) does for count points at z (count, 2), one block, with
// their cached u and S (the block's regions): their steps (count, 2) before beta * lr, their
// argmax T into labels (the number that changed added to *changed), and their shares of the
// centre sums that p.centre_update reads added to part (cpu/epochs.cpp's CentreParts layout) in
// point order; the sums no update reads stay as they were. inv_f, log_f, c (plus): (C) of the
// epoch's stats. scratch: per-thread room, resized here.
void cluster_rows_avx512(const float* z, int64_t count, const float* M, int C,
                         const EpochParams& p, const double* inv_f, const double* log_f,
                         const double* c, const float* u, const float* s, double* part,
                         int32_t* labels,
                         float* steps,
                         double* changed, std::vector<double>& scratch);

}  // namespace uec
