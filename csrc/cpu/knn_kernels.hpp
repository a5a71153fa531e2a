// Internal to the kNN (csrc/cpu/knn.cpp, knn_trees.cpp, knn_search.cpp): the shared constants,
// helpers and the distance kernels (dot-product tiles, the direct sum of squared differences).
// Why the kernels round alike whatever the tile or the thread: the top of knn.cpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#ifdef UEC_HAVE_OPENMP
#include <omp.h>
#endif

#include "cpu/threads.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(UEC_NO_AVX2)
#define UEC_KNN_AVX2 1
#include <immintrin.h>
#endif

#include "core/rng.hpp"

// The beam search's distance loop is compiled twice, for AVX2 and for the baseline x86-64, and
// picked at load time ("avx2" does not enable FMA: both do the same roundings).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(UEC_NO_AVX2)
#define UEC_KNN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define UEC_KNN_CLONES
#endif

namespace uec {
namespace knn_detail {


inline constexpr int kLane = 16;             // rows are padded to a multiple of 16 floats
inline constexpr int32_t kNone = INT32_MAX;  // empty heap slot: sorts after every point
inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr uint8_t kNew = 1;           // entry not yet used as a join candidate
inline constexpr uint8_t kFresh = 2;         // entry inserted by the block being applied
inline constexpr int kTileA = 4, kTileB = 3; // pairs per dot-product tile

// Stream tags (the middle key of Rng).
inline constexpr uint64_t kTagTree = 1, kTagFill = 2, kTagPca = 3, kTagCandidates = 4, kTagEntries = 5;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

struct Counters {
  int64_t distances = 0, direct = 0;
  char pad[48];  // keep two threads' counters off one cache line
};

// Stage timings on stderr in a build with -DUEC_KNN_TIMING and UEC_KNN_DEBUG set (a development
// aid; compiled out otherwise).
struct DebugClock {
#ifdef UEC_KNN_TIMING
  bool on = std::getenv("UEC_KNN_DEBUG") != nullptr;
#else
  static constexpr bool on = false;
#endif
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  void lap(const char* what, const std::vector<Counters>* c = nullptr) {
    if (!on) return;
    auto t1 = std::chrono::steady_clock::now();
    long long ds = 0, dd = 0;
    if (c)
      for (const Counters& x : *c) {
        ds += x.distances;
        dd += x.direct;
      }
    std::fprintf(stderr, "[knn] %-22s %7.3f s  distances %lld (direct %lld)\n", what,
                 std::chrono::duration<double>(t1 - t0).count(), ds, dd);
    t0 = t1;
  }
};

// 64-byte aligned float storage (rows start on a cache line).
class Floats {
 public:
  Floats() = default;
  explicit Floats(size_t count) : buf_(count + 16, 0.0f) {
    auto addr = reinterpret_cast<uintptr_t>(buf_.data());
    ptr_ = buf_.data() + ((64 - addr % 64) % 64) / sizeof(float);
  }
  float* data() { return ptr_; }
  const float* data() const { return ptr_; }

 private:
  std::vector<float> buf_;
  float* ptr_ = nullptr;
};

// The first exception thrown inside a parallel loop, rethrown after it (none may escape).
class Errors {
 public:
  template <class F>
  void run(F&& f) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      f();
    } catch (...) {
#pragma omp critical(uec_knn_errors)
      {
        if (!error_) error_ = std::current_exception();
      }
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

// ---- distance kernels --------------------------------------------------------------------------

inline float reduce16(const float* a) {
  float b[8], c[4];
  for (int l = 0; l < 8; ++l) b[l] = a[l] + a[l + 8];
  for (int l = 0; l < 4; ++l) c[l] = b[l] + b[l + 4];
  return (c[0] + c[2]) + (c[1] + c[3]);
}

inline float reduce8(const float* a) {
  float b[4];
  for (int l = 0; l < 4; ++l) b[l] = a[l] + a[l + 4];
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// Squared distance as a sum of squared differences, rows of len floats (any length), 16
// accumulators. Stops early, returning a partial sum > bound, once a partial sum exceeds bound
// (partial sums only grow, so a stop never hides a distance <= bound, and a completed sum is the
// same bits whatever bound was).
inline float sq_dist_direct(const float* __restrict a, const float* __restrict b, int len,
                            float bound = kInf) {
  constexpr int kCheck = 128;
  float acc[kLane] = {};
  int j = 0;
  const int full = len - len % kLane;
  while (j < full) {
    const int end = std::min(full, j + kCheck);
    for (; j < end; j += kLane)
      for (int l = 0; l < kLane; ++l) {
        const float t = a[j + l] - b[j + l];
        acc[l] += t * t;
      }
    if (j < full) {
      const float part = reduce16(acc);
      if (part > bound) return part;
    }
  }
  for (int l = 0; j < len; ++j, ++l) {
    const float t = a[j] - b[j];
    acc[l] += t * t;
  }
  return reduce16(acc);
}

// Dot products of RA rows with RB rows (len a multiple of 8): out[r * RB + c] = a[r] . b[c].
// Every product is summed the same way whatever the tile's shape or position and whichever row
// comes first: 8 lanes, lane l taking features l, l + 8, ..., each step a product rounded then
// an add rounded (no fused multiply-add), then the 8 lanes summed by reduce8. So the generic and
// the AVX2 versions give the same bits, and a pair's value does not depend on where it is taken.
template <int RA, int RB>
void dot_tile_generic(const float* const* a, const float* const* b, int len, float* out) {
  float acc[RA][RB][8] = {};
  for (int j = 0; j < len; j += 8)
    for (int r = 0; r < RA; ++r)
      for (int c = 0; c < RB; ++c)
        for (int l = 0; l < 8; ++l) {
          const float prod = a[r][j + l] * b[c][j + l];
          acc[r][c][l] = acc[r][c][l] + prod;
        }
  for (int r = 0; r < RA; ++r)
    for (int c = 0; c < RB; ++c) out[r * RB + c] = reduce8(acc[r][c]);
}

#ifdef UEC_KNN_AVX2
template <int RA, int RB>
__attribute__((target("avx2"))) void dot_tile_avx2(const float* const* a, const float* const* b,
                                                     int len, float* out) {
  __m256 acc[RA][RB];
  for (int r = 0; r < RA; ++r)
    for (int c = 0; c < RB; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int j = 0; j < len; j += 8) {
    __m256 bv[RB];
    for (int c = 0; c < RB; ++c) bv[c] = _mm256_load_ps(b[c] + j);
    for (int r = 0; r < RA; ++r) {
      const __m256 av = _mm256_load_ps(a[r] + j);
      for (int c = 0; c < RB; ++c) acc[r][c] = _mm256_add_ps(acc[r][c], _mm256_mul_ps(av, bv[c]));
    }
  }
  alignas(32) float lanes[8];
  for (int r = 0; r < RA; ++r)
    for (int c = 0; c < RB; ++c) {
      _mm256_store_ps(lanes, acc[r][c]);
      out[r * RB + c] = reduce8(lanes);
    }
}

// With FMA each step is one fused multiply-add instead of a product and an add: faster, and
// still the same bits for a pair wherever it is taken, but not the same bits as the versions
// above (so results differ between machines with and without FMA, never between thread counts).
template <int RA, int RB>
__attribute__((target("avx2,fma"))) void dot_tile_fma(const float* const* a, const float* const* b,
                                                        int len, float* out) {
  __m256 acc[RA][RB];
  for (int r = 0; r < RA; ++r)
    for (int c = 0; c < RB; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int j = 0; j < len; j += 8) {
    __m256 bv[RB];
    for (int c = 0; c < RB; ++c) bv[c] = _mm256_load_ps(b[c] + j);
    for (int r = 0; r < RA; ++r) {
      const __m256 av = _mm256_load_ps(a[r] + j);
      for (int c = 0; c < RB; ++c) acc[r][c] = _mm256_fmadd_ps(av, bv[c], acc[r][c]);
    }
  }
  alignas(32) float lanes[8];
  for (int r = 0; r < RA; ++r)
    for (int c = 0; c < RB; ++c) {
      _mm256_store_ps(lanes, acc[r][c]);
      out[r * RB + c] = reduce8(lanes);
    }
}

// dot_tile_fma's pairs, two per AVX-512 register: rows r and r + 1 side by side (a 256-bit half
// each), every column broadcast to both halves. Each half runs dot_tile_fma's chain for its pair,
// fused multiply-add by fused multiply-add in the same order, then reduce8: the same bits as
// dot_tile_fma, half the instructions. RA must be even.
template <int RA, int RB>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) void dot_tile_fma512(
    const float* const* a, const float* const* b, int len, float* out) {
  static_assert(RA % 2 == 0, "rows go in pairs");
  constexpr int RP = RA / 2;
  __m512 acc[RP][RB];
  for (int r = 0; r < RP; ++r)
    for (int c = 0; c < RB; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int j = 0; j < len; j += 8) {
    __m512 bv[RB];
    for (int c = 0; c < RB; ++c) bv[c] = _mm512_broadcast_f32x8(_mm256_load_ps(b[c] + j));
    for (int r = 0; r < RP; ++r) {
      const __m512 av = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_load_ps(a[2 * r] + j)),
                                           _mm256_load_ps(a[2 * r + 1] + j), 1);
      for (int c = 0; c < RB; ++c) acc[r][c] = _mm512_fmadd_ps(av, bv[c], acc[r][c]);
    }
  }
  alignas(64) float lanes[16];
  for (int r = 0; r < RP; ++r)
    for (int c = 0; c < RB; ++c) {
      _mm512_store_ps(lanes, acc[r][c]);
      out[(2 * r) * RB + c] = reduce8(lanes);
      out[(2 * r + 1) * RB + c] = reduce8(lanes + 8);
    }
}
#endif

using TileFn = void (*)(const float* const*, const float* const*, int, float*);

struct Kernels {
  TileFn tile;  // kTileA x kTileB
  TileFn one;   // 1 x 1
};

// The best kernels this CPU runs; UEC_KNN_KERNEL=generic|avx2|fma|fma512 forces one (tests
// compare them; fma512 is fma's arithmetic two pairs per AVX-512 register, and falls back to it).
inline Kernels pick_kernels() {
  const char* force = std::getenv("UEC_KNN_KERNEL");
  const std::string want = force ? force : "";
#ifdef UEC_KNN_AVX2
  const bool avx2 = __builtin_cpu_supports("avx2"), fma = avx2 && __builtin_cpu_supports("fma");
  const bool wide = fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  if (wide && (want.empty() || want == "fma512"))
    return {&dot_tile_fma512<kTileA, kTileB>, &dot_tile_fma<1, 1>};
  if (fma && (want.empty() || want == "fma" || want == "fma512"))
    return {&dot_tile_fma<kTileA, kTileB>, &dot_tile_fma<1, 1>};
  if (avx2 && (want.empty() || want == "avx2")) return {&dot_tile_avx2<kTileA, kTileB>, &dot_tile_avx2<1, 1>};
#endif
  return {&dot_tile_generic<kTileA, kTileB>, &dot_tile_generic<1, 1>};
}

inline float dot_padded(const float* __restrict a, const float* __restrict b, int len) {
  float acc[kLane] = {};
  for (int j = 0; j < len; j += kLane)
    for (int l = 0; l < kLane; ++l) acc[l] += a[j + l] * b[j + l];
  return reduce16(acc);
}

// (d, i) < (e, j) in the heaps' strict total order.
inline bool before(float d, int32_t i, float e, int32_t j) { return d < e || (d == e && i < j); }

}  // namespace knn_detail
}  // namespace uec
