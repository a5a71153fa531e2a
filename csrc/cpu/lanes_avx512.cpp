// The AVX-512 forms of the interleaved CE path (lanes.hpp): record_block with its due edges and
// negative draws sixteen and eight at a time, and the updates of 2-D and 3-D heads in sixteen
// lanes. Each performs the scalar code's operations in the scalar code's order (no FMA: the
// build has -ffp-contract=off), so the tasks and the positions are the same bits as the serial
// path's; tests/test_epoch_kernels.py compares them. Picked at run time (pick_epoch_kernel) on
// CPUs with AVX-512F and AVX-512DQ (the 64-bit multiply of the random stream).
#include <cstdint>
#include <vector>

#include "cpu/avx512_math.hpp"
#include "cpu/lanes.hpp"

namespace uec {

#ifdef UEC_LANES_AVX512

bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

namespace {

constexpr int kWide = 16;

// Rng::mix in eight 64-bit lanes.
UEC_AVX512 inline __m512i mix8(__m512i z) {
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
                         _mm512_set1_epi64(static_cast<int64_t>(0xBF58476D1CE4E5B9ULL)));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
                         _mm512_set1_epi64(static_cast<int64_t>(0x94D049BB133111EBULL)));
  return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

}  // namespace

UEC_AVX512 void record_block_avx512(const Graph& g, int64_t b0, int64_t heads, bool self_tail,
                                    const EpochParams& p, int epoch, LaneScratch& ls) {
  ls.first.resize(static_cast<size_t>(heads + 1));
  std::vector<Task>& tasks = ls.tasks;
  size_t n = 0;
  const float ep1s = static_cast<float>(epoch + 1);
  const __m512 ep1 = _mm512_set1_ps(ep1s);
  const __m512 rate = _mm512_set1_ps(p.negative_sample_rate);
  const __m512 one = _mm512_set1_ps(1.0f), cap = _mm512_set1_ps(kMaxNegativesPerTake);
  const __m512i capi = _mm512_set1_epi32(kMaxNegativesPerTake);
  // peek(q) = mix(state + (q + 1) gamma): lane u of a group of eight draws q0 + u
  const __m512i steps = _mm512_mullo_epi64(_mm512_setr_epi64(1, 2, 3, 4, 5, 6, 7, 8),
                                           _mm512_set1_epi64(static_cast<int64_t>(Rng::kGamma)));
  const __m512i n_tail = _mm512_set1_epi64(static_cast<int64_t>(static_cast<uint32_t>(g.n_tail)));
  const __m512i neg_kind = _mm512_set1_epi64(CE_NEGATIVE);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t i = b0 + h;
    ls.first[h] = static_cast<int64_t>(n);
    const int64_t e0 = g.indptr[i], deg = g.indptr[i + 1] - e0;
    if (static_cast<int64_t>(ls.due_j.size()) < deg + kWide) {
      ls.due_j.resize(static_cast<size_t>(deg + kWide));
      ls.due_n.resize(static_cast<size_t>(deg + kWide));
    }
    // edge_due and edge_advance on sixteen edges at a time: every due edge's tail and negatives
    // count, in edge order (the states are independent edge to edge)
    int64_t n_due = 0;
    for (int64_t e = e0; e < e0 + deg; e += kWide) {
      const __mmask16 in = _cvtu32_mask16(
          e0 + deg - e >= kWide ? 0xffffu : ((1u << (e0 + deg - e)) - 1u));
      const __m512 ns = _mm512_maskz_loadu_ps(in, g.next_sample + e);
      const __mmask16 due = _mm512_mask_cmp_ps_mask(in, ns, ep1, _CMP_NGT_UQ);  // !(ns > ep1)
      const __m512 eps = _mm512_maskz_loadu_ps(due, g.epochs_per_sample + e);
      _mm512_mask_storeu_ps(g.next_sample + e, due, _mm512_add_ps(ns, eps));
      const __m512 eps_neg = _mm512_div_ps(eps, rate);
      const __m512 nn = _mm512_maskz_loadu_ps(due, g.next_negative + e);
      const __m512 dd = _mm512_div_ps(_mm512_sub_ps(ep1, nn), eps_neg);
      const __mmask16 some = _mm512_mask_cmp_ps_mask(due, dd, one, _CMP_GE_OQ);
      const __mmask16 under = _mm512_cmp_ps_mask(dd, cap, _CMP_LT_OQ);
      const __m512i cnt = _mm512_mask_blend_epi32(
          some, _mm512_setzero_si512(),
          _mm512_mask_blend_epi32(under, capi, _mm512_cvttps_epi32(dd)));
      _mm512_mask_storeu_ps(
          g.next_negative + e, some,
          _mm512_add_ps(nn, _mm512_mul_ps(_mm512_cvtepi32_ps(cnt), eps_neg)));
      const __m512i j = _mm512_maskz_loadu_epi32(due, g.indices + e);
      _mm512_storeu_si512(ls.due_j.data() + n_due, _mm512_maskz_compress_epi32(due, j));
      _mm512_storeu_si512(ls.due_n.data() + n_due, _mm512_maskz_compress_epi32(due, cnt));
      n_due += _mm_popcnt_u32(_cvtmask16_u32(due));
    }
    // edge_visits of each due edge, each edge's draws after the previous edges'
    Rng rng(p.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(i));
    const __m512i head = _mm512_set1_epi64(i);
    for (int64_t k = 0; k < n_due; ++k) {
      const int32_t j = ls.due_j[k];
      const int n_neg = ls.due_n[k];
      if (tasks.size() < n + RecordTasks::kPerTake) tasks.resize(2 * tasks.size() + RecordTasks::kPerTake);
      Task* out = tasks.data();
      if (self_tail) out[n++] = {CE_REVERSE, j};
      out[n++] = {CE_FORWARD, j};
      __m512i base = _mm512_add_epi64(_mm512_set1_epi64(static_cast<int64_t>(rng.state)), steps);
      const __m512i stride = _mm512_set1_epi64(static_cast<int64_t>(8 * Rng::kGamma));
      for (int q0 = 0; q0 < n_neg; q0 += 8) {
        const __m512i x = mix8(base);
        base = _mm512_add_epi64(base, stride);
        // Rng::scale: ((x >> 32) n_tail) >> 32
        const __m512i tk = _mm512_srli_epi64(_mm512_mul_epu32(_mm512_srli_epi64(x, 32), n_tail), 32);
        const int left = n_neg - q0;
        __mmask8 valid = _cvtu32_mask8(left >= 8 ? 0xffu : ((1u << left) - 1u));
        if (self_tail) valid = _kand_mask8(valid, _mm512_cmpneq_epi64_mask(tk, head));
        const __m512i task = _mm512_or_si512(_mm512_slli_epi64(tk, 32), neg_kind);
        _mm512_storeu_si512(out + n, _mm512_maskz_compress_epi64(valid, task));
        n += static_cast<size_t>(_mm_popcnt_u32(_cvtmask8_u32(valid)));
      }
      rng.skip(static_cast<uint64_t>(n_neg));
    }
  }
  ls.first[heads] = static_cast<int64_t>(n);
}

namespace {

using avx512::clip16;
using avx512::lin;
using avx512::pow_pos16;
using avx512::sel;

struct Consts16 {
  __m512 b, a, k_rep, k_att, one, zero, eps, attract, scale;
  bool scaled;
};

// Sixteen 8-byte records at the 32-bit indices idx (scale 8) as two eight-lane 64-bit gathers
// (half the element loads of two sixteen-lane 32-bit gathers), split into their first and
// second 32-bit halves, lane for lane; lanes outside m read nothing and give 0.
UEC_AVX512 inline void gather_pairs(const void* base, __m512i idx, __mmask16 m, __m512i& first,
                                    __m512i& second) {
  const __m512i none = _mm512_setzero_si512();
  const __m512i lo = _mm512_mask_i32gather_epi64(none, static_cast<__mmask8>(m),
                                                 _mm512_castsi512_si256(idx), base, 8);
  const __m512i hi = _mm512_mask_i32gather_epi64(none, static_cast<__mmask8>(m >> 8),
                                                 _mm512_extracti32x8_epi32(idx, 1), base, 8);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  first = _mm512_permutex2var_epi32(lo, even, hi);
  second = _mm512_permutex2var_epi32(lo, _mm512_add_epi32(even, _mm512_set1_epi32(1)), hi);
}

// lanes.cpp's step8 in sixteen lanes.
template <int D>
UEC_AVX512 inline void step16(__m512 (&z)[D], const __m512 (&z0)[D], __m512i pos, __mmask16 active,
                              const int* tk, const float* tail, const Consts16& c) {
  __m512i kind, other;  // each task is {kind, other}: one 8-byte record
  gather_pairs(tk, pos, active, kind, other);
  const __mmask16 rev = _mm512_cmpeq_epi32_mask(kind, _mm512_set1_epi32(CE_REVERSE));
  const __mmask16 neg = _mm512_cmpeq_epi32_mask(kind, _mm512_set1_epi32(CE_NEGATIVE));
  __m512 o[D];
  if constexpr (D == 2) {
    // a 2-D tail row is one 8-byte record (lanes without a task read row 0, as below)
    __m512i x, y;
    gather_pairs(tail, other, 0xffff, x, y);
    o[0] = _mm512_castsi512_ps(x);
    o[1] = _mm512_castsi512_ps(y);
  } else {
    const __m512i row = _mm512_mullo_epi32(other, _mm512_set1_epi32(D));
    for (int t = 0; t < D; ++t) o[t] = _mm512_i32gather_ps(row, tail + t, 4);
  }
  __m512 dz[D];
  __m512 r = c.zero;
  for (int t = 0; t < D; ++t) {
    dz[t] = _mm512_sub_ps(sel(z[t], z0[t], rev), o[t]);
    r = _mm512_add_ps(r, _mm512_mul_ps(dz[t], dz[t]));
  }
  const __m512 rb = pow_pos16(r, c.b);
  const __m512 num = sel(_mm512_mul_ps(c.k_att, rb), c.k_rep, neg);
  const __m512 den = _mm512_mul_ps(sel(r, _mm512_add_ps(c.eps, r), neg),
                                   _mm512_add_ps(c.one, _mm512_mul_ps(c.a, rb)));
  const __m512 coeff = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(r, c.zero, _CMP_GT_OQ), num, den);
  const __m512 mult = sel(c.attract, c.one, neg);
  for (int t = 0; t < D; ++t) {
    __m512 gr = clip16(_mm512_mul_ps(coeff, dz[t]), kClipCE);
    if (c.scaled) gr = _mm512_mul_ps(_mm512_set1_ps(0.25f), gr);
    z[t] = _mm512_mask_add_ps(z[t], active, z[t], _mm512_mul_ps(_mm512_mul_ps(mult, gr), c.scale));
  }
}

// lanes.cpp's run_avx2 with sixteen lanes per group: thirty-two heads, two chains.
template <int D>
UEC_AVX512 void run16(LaneScratch& ls, int64_t heads, const float* start, const float* tail,
                      const EpochParams& p, float step_scale) {
  constexpr int kAll = 2 * kWide;
  const int* tk = reinterpret_cast<const int*>(ls.tasks.data());
  const int64_t busy = order_by_updates(ls, heads);

  const Consts16 c{_mm512_set1_ps(p.b), _mm512_set1_ps(p.a),
                   _mm512_set1_ps(2.0f * p.gamma * p.b), _mm512_set1_ps(-2.0f * p.a * p.b),
                   _mm512_set1_ps(1.0f), _mm512_setzero_ps(), _mm512_set1_ps(kRepulsionEps),
                   _mm512_set1_ps(p.attract_scale), _mm512_set1_ps(step_scale),
                   p.clip_mode == CLIP_SCALED};
  alignas(64) int32_t beg[kAll], len[kAll];
  alignas(64) float zs[D][kAll];
  for (int64_t g0 = 0; g0 < busy; g0 += kAll) {
    const int m = static_cast<int>(busy - g0 < kAll ? busy - g0 : kAll);
    const int32_t longest = load_group<D, kAll>(ls, start, g0, m, beg, len, zs);
    const __m512i beg0 = _mm512_load_si512(beg), beg1 = _mm512_load_si512(beg + kWide);
    const __m512i len0 = _mm512_load_si512(len), len1 = _mm512_load_si512(len + kWide);
    __m512 s0[D], s1[D], z0[D], z1[D];
    for (int t = 0; t < D; ++t) {
      s0[t] = z0[t] = _mm512_load_ps(zs[t]);
      s1[t] = z1[t] = _mm512_load_ps(zs[t] + kWide);
    }
    for (int32_t it = 0; it < longest; ++it) {
      const __m512i vit = _mm512_set1_epi32(it);
      step16<D>(z0, s0, _mm512_add_epi32(beg0, vit), _mm512_cmpgt_epi32_mask(len0, vit), tk, tail, c);
      step16<D>(z1, s1, _mm512_add_epi32(beg1, vit), _mm512_cmpgt_epi32_mask(len1, vit), tk, tail, c);
    }
    for (int t = 0; t < D; ++t) {
      _mm512_store_ps(zs[t], z0[t]);
      _mm512_store_ps(zs[t] + kWide, z1[t]);
    }
    store_group<D, kAll>(ls, g0, m, zs);
  }
}

}  // namespace

void run_avx512(LaneScratch& ls, int64_t heads, const float* start, const float* tail, int d,
                const EpochParams& p, float step_scale) {
  if (d == 2) return run16<2>(ls, heads, start, tail, p, step_scale);
  run16<3>(ls, heads, start, tail, p, step_scale);
}

#else

bool cpu_has_avx512() { return false; }
void record_block_avx512(const Graph&, int64_t, int64_t, bool, const EpochParams&, int,
                         LaneScratch&) {}
void run_avx512(LaneScratch&, int64_t, const float*, const float*, int, const EpochParams&,
                float) {}

#endif  // UEC_LANES_AVX512

}  // namespace uec
