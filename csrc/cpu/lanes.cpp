// Interleaved CE updates: see lanes.hpp.
#include "cpu/lanes.hpp"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UEC_NO_AVX2)
#define UEC_LANES_AVX2 1
#include <immintrin.h>
#endif

namespace uec {

namespace {

constexpr int kLanes = 8;

// The remaining updates [pos, end) of one head, one after the other.
template <int D>
void finish_head(const Task* tasks, int64_t pos, int64_t end, float* z, const float* z0,
                 const float* tail, int d_runtime, const EpochParams& p, float step_scale) {
  const int d = D > 0 ? D : d_runtime;
  for (; pos < end; ++pos) {
    const Task t = tasks[pos];
    ce_update<D>(z, t.kind == CE_REVERSE ? z0 : z, tail + static_cast<int64_t>(t.other) * d,
                 t.kind, d, p, step_scale);
  }
}

template <int D>
void run_interleaved(LaneScratch& ls, int64_t heads, const float* start, const float* tail,
                     int d_runtime, const EpochParams& p, float step_scale) {
  const int d = D > 0 ? D : d_runtime;
  float* z = ls.z.data();
  const Task* tasks = ls.tasks.data();
  const int64_t* first = ls.first.data();
  int64_t head[kLanes], pos[kLanes], end[kLanes];
  for (int l = 0; l < kLanes; ++l) head[l] = -1, pos[l] = end[l] = 0;
  int64_t next = 0;
  // The next head with any update into lane l; false when none is left.
  auto take = [&](int l) {
    while (next < heads && first[next] == first[next + 1]) ++next;
    if (next == heads) return false;
    head[l] = next;
    pos[l] = first[next];
    end[l] = first[next + 1];
    ++next;
    return true;
  };
  auto step = [&](int l) {
    const Task t = tasks[pos[l]++];
    float* zl = z + head[l] * d;
    const float* base = t.kind == CE_REVERSE ? start + head[l] * d : zl;
    ce_update<D>(zl, base, tail + static_cast<int64_t>(t.other) * d, t.kind, d, p, step_scale);
  };
  int live = 0;
  while (live < kLanes && take(live)) ++live;
  while (live == kLanes) {
    for (int l = 0; l < kLanes; ++l) step(l);  // fixed trip count: unrolled, interleaved
    for (int l = 0; l < kLanes; ++l) {
      if (pos[l] < end[l] || take(l)) continue;
      live = l;  // no head left: the other lanes finish their heads one by one
      head[l] = -1;
      break;
    }
  }
  for (int l = 0; l < kLanes; ++l) {
    if (head[l] >= 0 && pos[l] < end[l])
      finish_head<D>(tasks, pos[l], end[l], z + head[l] * d, start + head[l] * d, tail, d, p,
                     step_scale);
  }
}

#ifdef UEC_LANES_AVX2

#define UEC_AVX2 __attribute__((target("avx2")))

// a if the lane's mask is clear, b where it is set.
UEC_AVX2 inline __m256 sel(__m256 a, __m256 b, __m256 mask) { return _mm256_blendv_ps(a, b, mask); }

// c0 + c1 x
UEC_AVX2 inline __m256 lin(float c0, float c1, __m256 x) {
  return _mm256_add_ps(_mm256_set1_ps(c0), _mm256_mul_ps(_mm256_set1_ps(c1), x));
}

// pow_pos (core/math.hpp) in eight lanes: the same operations in the same order.
UEC_AVX2 inline __m256 pow_pos8(__m256 r, __m256 b) {
  const __m256 tiny = _mm256_cmp_ps(r, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
  const __m256 rs = sel(r, _mm256_mul_ps(r, _mm256_set1_ps(16777216.0f)), tiny);
  const __m256i bits = _mm256_castps_si256(rs);
  const __m256i biased = _mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff));
  const __m256i off = _mm256_sub_epi32(bits, _mm256_set1_epi32(0x3f3504f3));
  const __m256i eoff = _mm256_srai_epi32(off, 23);
  const __m256i e = _mm256_sub_epi32(
      eoff, _mm256_and_si256(_mm256_castps_si256(tiny), _mm256_set1_epi32(24)));
  const __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(bits, _mm256_slli_epi32(eoff, 23)));
  const __m256 t = _mm256_sub_ps(m, _mm256_set1_ps(1.0f));
  const __m256 t2 = _mm256_mul_ps(t, t), t4 = _mm256_mul_ps(t2, t2), t8 = _mm256_mul_ps(t4, t4);
  const __m256 l01 = lin(kLog2Poly[0], kLog2Poly[1], t), l23 = lin(kLog2Poly[2], kLog2Poly[3], t);
  const __m256 l45 = lin(kLog2Poly[4], kLog2Poly[5], t), l67 = lin(kLog2Poly[6], kLog2Poly[7], t);
  const __m256 l03 = _mm256_add_ps(l01, _mm256_mul_ps(l23, t2));
  const __m256 l47 = _mm256_add_ps(l45, _mm256_mul_ps(l67, t2));
  const __m256 q = _mm256_add_ps(_mm256_add_ps(l03, _mm256_mul_ps(l47, t4)),
                                 _mm256_mul_ps(_mm256_set1_ps(kLog2Poly[8]), t8));
  const __m256 bh = _mm256_and_ps(b, _mm256_castsi256_ps(_mm256_set1_epi32(0xfffff000)));
  const __m256 bl = _mm256_sub_ps(b, bh);
  const __m256 fe = _mm256_cvtepi32_ps(e);
  const __m256 ye = _mm256_mul_ps(bh, fe);
  const __m256 yr = _mm256_add_ps(_mm256_mul_ps(bl, fe), _mm256_mul_ps(b, _mm256_mul_ps(t, q)));
  __m256 y = _mm256_add_ps(ye, yr);
  const __m256 hi = _mm256_set1_ps(129.0f), lo = _mm256_set1_ps(-130.0f);
  y = sel(sel(y, lo, _mm256_cmp_ps(y, lo, _CMP_LT_OQ)), hi, _mm256_cmp_ps(y, hi, _CMP_GT_OQ));
  const __m256 magic = _mm256_set1_ps(kRoundMagic);
  const __m256 n = _mm256_sub_ps(_mm256_add_ps(y, magic), magic);
  const __m256 f = _mm256_add_ps(_mm256_sub_ps(ye, n), yr);
  const __m256 f2 = _mm256_mul_ps(f, f), f4 = _mm256_mul_ps(f2, f2);
  const __m256 e01 = lin(kExp2Poly[0], kExp2Poly[1], f), e23 = lin(kExp2Poly[2], kExp2Poly[3], f);
  const __m256 e45 = lin(kExp2Poly[4], kExp2Poly[5], f);
  const __m256 p2 = _mm256_add_ps(
      _mm256_add_ps(e01, _mm256_mul_ps(e23, f2)),
      _mm256_mul_ps(_mm256_add_ps(e45, _mm256_mul_ps(_mm256_set1_ps(kExp2Poly[6]), f2)), f4));
  const __m256i ni = _mm256_cvttps_epi32(n);
  const __m256i low = _mm256_cmpgt_epi32(_mm256_set1_epi32(-125), ni);
  const __m256i ex = _mm256_blendv_epi8(_mm256_add_epi32(ni, _mm256_set1_epi32(126)),
                                        _mm256_set1_epi32(1), low);
  const __m256 half_scale = _mm256_castsi256_ps(_mm256_slli_epi32(ex, 23));
  __m256 out = _mm256_mul_ps(_mm256_mul_ps(p2, half_scale), _mm256_set1_ps(2.0f));
  out = sel(out, _mm256_setzero_ps(), _mm256_castsi256_ps(low));
  return sel(out, r, _mm256_castsi256_ps(_mm256_cmpeq_epi32(biased, _mm256_set1_epi32(255))));
}

// clip (core/math.hpp) in eight lanes.
UEC_AVX2 inline __m256 clip8(__m256 v, float lim) {
  const __m256 l = _mm256_set1_ps(lim), nl = _mm256_set1_ps(-lim);
  return sel(sel(v, nl, _mm256_cmp_ps(v, nl, _CMP_LT_OQ)), l, _mm256_cmp_ps(v, l, _CMP_GT_OQ));
}

// ce_update's constants and options, broadcast.
struct Consts8 {
  __m256 b, a, k_rep, k_att, one, zero, eps, attract, scale;
  bool scaled;
};

// One update in each of the eight lanes of D-dimensional heads: position z[D], epoch-start
// position z0[D]; the lanes where `active` is clear keep their position. pos: (8) the task each
// lane takes.
template <int D>
UEC_AVX2 inline void step8(__m256 (&z)[D], const __m256 (&z0)[D], __m256i pos, __m256 active,
                           const int* tk, const float* tail, const Consts8& c) {
  // Inactive lanes read nothing (kind 0, other 0: row 0 exists) and their result is dropped.
  const __m256i none = _mm256_setzero_si256();
  const __m256i mask = _mm256_castps_si256(active);
  const __m256i kind = _mm256_mask_i32gather_epi32(none, tk, pos, mask, 8);
  const __m256i other = _mm256_mask_i32gather_epi32(none, tk + 1, pos, mask, 8);
  // the tail row's first float: other * D (a gather's scale is 1, 2, 4 or 8: D = 3 multiplies)
  const __m256i row = D == 2 ? _mm256_slli_epi32(other, 1)
                             : _mm256_mullo_epi32(other, _mm256_set1_epi32(D));
  const __m256 rev = _mm256_castsi256_ps(_mm256_cmpeq_epi32(kind, _mm256_set1_epi32(CE_REVERSE)));
  const __m256 neg = _mm256_castsi256_ps(_mm256_cmpeq_epi32(kind, _mm256_set1_epi32(CE_NEGATIVE)));
  __m256 dz[D];
  __m256 r = c.zero;  // sq_dist's order: 0 + dz0^2 + dz1^2 + ...
  for (int t = 0; t < D; ++t) {
    const __m256 o = _mm256_i32gather_ps(tail + t, row, 4);
    dz[t] = _mm256_sub_ps(sel(z[t], z0[t], rev), o);
    r = _mm256_add_ps(r, _mm256_mul_ps(dz[t], dz[t]));
  }
  const __m256 rb = pow_pos8(r, c.b);
  const __m256 num = sel(_mm256_mul_ps(c.k_att, rb), c.k_rep, neg);
  const __m256 den = _mm256_mul_ps(sel(r, _mm256_add_ps(c.eps, r), neg),
                                   _mm256_add_ps(c.one, _mm256_mul_ps(c.a, rb)));
  const __m256 coeff = sel(c.zero, _mm256_div_ps(num, den), _mm256_cmp_ps(r, c.zero, _CMP_GT_OQ));
  const __m256 mult = sel(c.attract, c.one, neg);
  for (int t = 0; t < D; ++t) {
    __m256 g = clip8(_mm256_mul_ps(coeff, dz[t]), kClipCE);
    if (c.scaled) g = _mm256_mul_ps(_mm256_set1_ps(0.25f), g);
    z[t] = sel(z[t], _mm256_add_ps(z[t], _mm256_mul_ps(_mm256_mul_ps(mult, g), c.scale)), active);
  }
}

// D-dimensional heads (D = 2 or 3), sixteen at a time in two groups of eight lanes (two
// independent dependency chains for the core to overlap), all sixteen stepping together until
// the longest is done (shorter ones idle, masked). Heads go in order of their number of updates,
// so the sixteen are nearly equally long and little is idle; no lane ever switches heads mid-run
// (a branch that could not be predicted).
template <int D>
UEC_AVX2 void run_avx2(LaneScratch& ls, int64_t heads, const float* start, const float* tail,
                       const EpochParams& p, float step_scale) {
  constexpr int kAll = 2 * kLanes;
  const int* tk = reinterpret_cast<const int*>(ls.tasks.data());

  const int64_t busy = order_by_updates(ls, heads);

  const Consts8 c{_mm256_set1_ps(p.b), _mm256_set1_ps(p.a),
                  _mm256_set1_ps(2.0f * p.gamma * p.b),   // ce_coeff's constants, computed alike
                  _mm256_set1_ps(-2.0f * p.a * p.b), _mm256_set1_ps(1.0f), _mm256_setzero_ps(),
                  _mm256_set1_ps(kRepulsionEps), _mm256_set1_ps(p.attract_scale),
                  _mm256_set1_ps(step_scale), p.clip_mode == CLIP_SCALED};
  alignas(32) int32_t beg[kAll], len[kAll];
  alignas(32) float zs[D][kAll];  // one row per component, one column per lane
  for (int64_t g0 = 0; g0 < busy; g0 += kAll) {
    const int m = static_cast<int>(busy - g0 < kAll ? busy - g0 : kAll);
    const int32_t longest = load_group<D, kAll>(ls, start, g0, m, beg, len, zs);
    const __m256i beg0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(beg));
    const __m256i beg1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(beg + kLanes));
    const __m256i len0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(len));
    const __m256i len1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(len + kLanes));
    __m256 s0[D], s1[D], z0[D], z1[D];
    for (int t = 0; t < D; ++t) {
      s0[t] = z0[t] = _mm256_load_ps(zs[t]);
      s1[t] = z1[t] = _mm256_load_ps(zs[t] + kLanes);
    }
    for (int32_t it = 0; it < longest; ++it) {
      const __m256i vit = _mm256_set1_epi32(it);
      const __m256 act0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(len0, vit));
      const __m256 act1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(len1, vit));
      step8<D>(z0, s0, _mm256_add_epi32(beg0, vit), act0, tk, tail, c);
      step8<D>(z1, s1, _mm256_add_epi32(beg1, vit), act1, tk, tail, c);
    }
    for (int t = 0; t < D; ++t) {
      _mm256_store_ps(zs[t], z0[t]);
      _mm256_store_ps(zs[t] + kLanes, z1[t]);
    }
    store_group<D, kAll>(ls, g0, m, zs);
  }
}

bool cpu_has_avx2() { return __builtin_cpu_supports("avx2"); }

#else

bool cpu_has_avx2() { return false; }

#endif  // UEC_LANES_AVX2

}  // namespace

int64_t order_by_updates(LaneScratch& ls, int64_t heads) {
  constexpr int kBuckets = 256;
  const int64_t* first = ls.first.data();
  int64_t hist[kBuckets + 1] = {0};
  auto bucket = [&](int64_t h) {
    const int64_t n = first[h + 1] - first[h];
    return static_cast<int>(kBuckets - 1 - (n < kBuckets - 1 ? n : kBuckets - 1));
  };
  int64_t busy = 0;
  for (int64_t h = 0; h < heads; ++h)
    if (first[h + 1] > first[h]) ++hist[bucket(h) + 1], ++busy;
  for (int k = 0; k < kBuckets; ++k) hist[k + 1] += hist[k];
  ls.order.resize(static_cast<size_t>(busy));
  for (int64_t h = 0; h < heads; ++h)
    if (first[h + 1] > first[h]) ls.order[hist[bucket(h)]++] = h;
  return busy;
}

void record_block(EpochKernel kernel, const Graph& g, int64_t b0, int64_t heads,
                  bool self_tail, const EpochParams& p, int epoch, LaneScratch& ls) {
  if (kernel == KERNEL_AVX512) return record_block_avx512(g, b0, heads, self_tail, p, epoch, ls);
  ls.first.resize(static_cast<size_t>(heads + 1));
  RecordTasks rec{ls.tasks};
  const float ep1 = static_cast<float>(epoch + 1);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t i = b0 + h;
    ls.first[h] = static_cast<int64_t>(rec.n);
    const int64_t e0 = g.indptr[i], deg = g.indptr[i + 1] - e0;
    if (static_cast<int64_t>(ls.due.size()) < deg) ls.due.resize(static_cast<size_t>(deg));
    int64_t n_due = 0;
    for (int64_t e = e0; e < e0 + deg; ++e) {
      ls.due[n_due] = e;
      n_due += edge_due(g, e, ep1) ? 1 : 0;
    }
    // edge_take on each due edge in two passes, the same updates in the same order: first
    // every due edge's sampling state and negatives count (independent edge to edge), then the
    // visits, each edge's draws after the previous edges' (no chain of divisions between them)
    if (static_cast<int64_t>(ls.n_neg.size()) < n_due) ls.n_neg.resize(static_cast<size_t>(deg));
    for (int64_t k = 0; k < n_due; ++k) ls.n_neg[k] = edge_advance(g, ls.due[k], p, ep1);
    Rng rng(p.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(i));
    for (int64_t k = 0; k < n_due; ++k) {
      rec.reserve();
      edge_visits(g, i, ls.due[k], self_tail, ls.n_neg[k], rng, rec);
      rng.skip(static_cast<uint64_t>(ls.n_neg[k]));
    }
  }
  ls.first[heads] = static_cast<int64_t>(rec.n);
}

EpochKernel pick_epoch_kernel(int d, int64_t n_tail) {
  const char* force = std::getenv("UEC_EPOCH_KERNEL");
  const std::string want = force ? force : "";
  if (want == "serial") return KERNEL_SERIAL;
  if (want == "interleaved") return KERNEL_INTERLEAVED;
  if (!want.empty() && want != "avx2" && want != "avx512")
    throw std::invalid_argument("UEC_EPOCH_KERNEL must be 'serial', 'interleaved', 'avx2' or "
                                "'avx512' (or unset), got '" + want + "'");
  // avx2 and avx512 gather tail coordinates by 32-bit offset (avx512's 2-D rows by 32-bit row
  // index, scale 8) and the block's tasks by 32-bit position.
  const bool fits = n_tail * d < (int64_t{1} << 31);
  if (!((d == 2 || d == 3) && fits)) return KERNEL_INTERLEAVED;
  if (want != "avx2" && cpu_has_avx512()) return KERNEL_AVX512;
  return cpu_has_avx2() ? KERNEL_AVX2 : KERNEL_INTERLEAVED;
}

void run_lanes(EpochKernel kernel, LaneScratch& ls, int64_t heads, const float* start,
               const float* tail, int d, const EpochParams& p, float step_scale) {
#ifdef UEC_LANES_AVX2
  if (kernel == KERNEL_AVX512 && ls.first[heads] < (int64_t{1} << 31))
    return run_avx512(ls, heads, start, tail, d, p, step_scale);
  if (kernel == KERNEL_AVX2 && ls.first[heads] < (int64_t{1} << 31)) {
    if (d == 2) return run_avx2<2>(ls, heads, start, tail, p, step_scale);
    if (d == 3) return run_avx2<3>(ls, heads, start, tail, p, step_scale);
  }
#endif
  (void)kernel;
  if (d == 2)
    run_interleaved<2>(ls, heads, start, tail, d, p, step_scale);
  else
    run_interleaved<0>(ls, heads, start, tail, d, p, step_scale);
}

}  // namespace uec
