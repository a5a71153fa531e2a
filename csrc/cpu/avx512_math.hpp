// AVX-512 helpers shared by the vector paths (lanes_avx512.cpp, cluster_avx512.cpp): a blend,
// a linear term, and pow_pos and log1p_pos (core/math.hpp) and clip in sixteen float lanes, each performing
// the scalar code's operations in its order (the build has -ffp-contract=off), so that a
// vector path gives the scalar path's bits. Defines UEC_LANES_AVX512 where they compile.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UEC_NO_AVX2)
#define UEC_LANES_AVX512 1
#include <immintrin.h>

#include "core/math.hpp"

#define UEC_AVX512 __attribute__((target("avx512f,avx512dq")))

namespace uec {
namespace avx512 {

// a where the mask is clear, b where it is set (lanes.cpp's sel).
UEC_AVX512 inline __m512 sel(__m512 a, __m512 b, __mmask16 m) { return _mm512_mask_blend_ps(m, a, b); }

UEC_AVX512 inline __m512 lin(float c0, float c1, __m512 x) {
  return _mm512_add_ps(_mm512_set1_ps(c0), _mm512_mul_ps(_mm512_set1_ps(c1), x));
}

// log2_ratio (core/math.hpp) in sixteen lanes.
UEC_AVX512 inline __m512 log2_ratio16(__m512 t) {
  const __m512 t2 = _mm512_mul_ps(t, t), t4 = _mm512_mul_ps(t2, t2), t8 = _mm512_mul_ps(t4, t4);
  const __m512 l01 = lin(kLog2Poly[0], kLog2Poly[1], t), l23 = lin(kLog2Poly[2], kLog2Poly[3], t);
  const __m512 l45 = lin(kLog2Poly[4], kLog2Poly[5], t), l67 = lin(kLog2Poly[6], kLog2Poly[7], t);
  const __m512 l03 = _mm512_add_ps(l01, _mm512_mul_ps(l23, t2));
  const __m512 l47 = _mm512_add_ps(l45, _mm512_mul_ps(l67, t2));
  return _mm512_add_ps(_mm512_add_ps(l03, _mm512_mul_ps(l47, t4)),
                       _mm512_mul_ps(_mm512_set1_ps(kLog2Poly[8]), t8));
}

// pow_pos (core/math.hpp) in sixteen lanes: the same operations in the same order.
UEC_AVX512 inline __m512 pow_pos16(__m512 r, __m512 b) {
  const __mmask16 tiny = _mm512_cmp_ps_mask(r, _mm512_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
  const __m512 rs = sel(r, _mm512_mul_ps(r, _mm512_set1_ps(16777216.0f)), tiny);
  const __m512i bits = _mm512_castps_si512(rs);
  const __m512i biased = _mm512_and_si512(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(0xff));
  const __m512i off = _mm512_sub_epi32(bits, _mm512_set1_epi32(0x3f3504f3));
  const __m512i eoff = _mm512_srai_epi32(off, 23);
  const __m512i e = _mm512_mask_sub_epi32(eoff, tiny, eoff, _mm512_set1_epi32(24));
  const __m512 m = _mm512_castsi512_ps(_mm512_sub_epi32(bits, _mm512_slli_epi32(eoff, 23)));
  const __m512 t = _mm512_sub_ps(m, _mm512_set1_ps(1.0f));
  const __m512 q = log2_ratio16(t);
  const __m512 bh = _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(b), _mm512_set1_epi32(static_cast<int>(0xfffff000u))));
  const __m512 bl = _mm512_sub_ps(b, bh);
  const __m512 fe = _mm512_cvtepi32_ps(e);
  const __m512 ye = _mm512_mul_ps(bh, fe);
  const __m512 yr = _mm512_add_ps(_mm512_mul_ps(bl, fe), _mm512_mul_ps(b, _mm512_mul_ps(t, q)));
  __m512 y = _mm512_add_ps(ye, yr);
  const __m512 hi = _mm512_set1_ps(129.0f), lo = _mm512_set1_ps(-130.0f);
  y = sel(sel(y, lo, _mm512_cmp_ps_mask(y, lo, _CMP_LT_OQ)), hi, _mm512_cmp_ps_mask(y, hi, _CMP_GT_OQ));
  const __m512 magic = _mm512_set1_ps(kRoundMagic);
  const __m512 n = _mm512_sub_ps(_mm512_add_ps(y, magic), magic);
  const __m512 f = _mm512_add_ps(_mm512_sub_ps(ye, n), yr);
  const __m512 f2 = _mm512_mul_ps(f, f), f4 = _mm512_mul_ps(f2, f2);
  const __m512 e01 = lin(kExp2Poly[0], kExp2Poly[1], f), e23 = lin(kExp2Poly[2], kExp2Poly[3], f);
  const __m512 e45 = lin(kExp2Poly[4], kExp2Poly[5], f);
  const __m512 p2 = _mm512_add_ps(
      _mm512_add_ps(e01, _mm512_mul_ps(e23, f2)),
      _mm512_mul_ps(_mm512_add_ps(e45, _mm512_mul_ps(_mm512_set1_ps(kExp2Poly[6]), f2)), f4));
  const __m512i ni = _mm512_cvttps_epi32(n);
  const __mmask16 low = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(-125), ni);
  const __m512i ex = _mm512_mask_blend_epi32(low, _mm512_add_epi32(ni, _mm512_set1_epi32(126)),
                                             _mm512_set1_epi32(1));
  const __m512 half_scale = _mm512_castsi512_ps(_mm512_slli_epi32(ex, 23));
  __m512 out = _mm512_mul_ps(_mm512_mul_ps(p2, half_scale), _mm512_set1_ps(2.0f));
  out = sel(out, _mm512_setzero_ps(), low);
  return sel(out, r, _mm512_cmpeq_epi32_mask(biased, _mm512_set1_epi32(255)));
}

// log1p_pos (core/math.hpp) in sixteen lanes: the same operations in the same order.
UEC_AVX512 inline __m512 log1p_pos16(__m512 u) {
  const __m512 x = _mm512_add_ps(_mm512_set1_ps(1.0f), u);
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i biased = _mm512_and_si512(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(0xff));
  const __m512i off = _mm512_sub_epi32(bits, _mm512_set1_epi32(0x3f3504f3));
  const __m512i e = _mm512_srai_epi32(off, 23);
  const __m512 m = _mm512_castsi512_ps(_mm512_sub_epi32(bits, _mm512_slli_epi32(e, 23)));
  const __m512 t = _mm512_sub_ps(m, _mm512_set1_ps(1.0f));
  const __m512 q = log2_ratio16(t);
  const __m512 y = _mm512_add_ps(_mm512_cvtepi32_ps(e), _mm512_mul_ps(t, q));
  const __m512 out = _mm512_mul_ps(y, _mm512_set1_ps(0.693147182f));
  return sel(out, x, _mm512_cmpeq_epi32_mask(biased, _mm512_set1_epi32(255)));
}

UEC_AVX512 inline __m512 clip16(__m512 v, float lim) {
  const __m512 l = _mm512_set1_ps(lim), nl = _mm512_set1_ps(-lim);
  return sel(sel(v, nl, _mm512_cmp_ps_mask(v, nl, _CMP_LT_OQ)), l, _mm512_cmp_ps_mask(v, l, _CMP_GT_OQ));
}

}  // namespace avx512
}  // namespace uec

#endif  // UEC_LANES_AVX512
