// NN-descent (Dong, Charikar & Li 2011, in pynndescent's form: random-projection-tree leaves for
// the initial graph, new/old candidate flags, at most max_candidates sampled per point, local
// joins with reverse neighbours, early stop at delta * n * k changes) for the euclidean kNN
// graph, and a beam search of that graph for new points.
//
// Deterministic whatever the thread count:
// - every random choice (tree splits, candidate sampling, random fill, entry points) comes from
//   a counter-based stream keyed by (seed, stage, item), never from a thread's position;
// - a point's heap holds the K smallest (distance, index) pairs offered to it, a strict total
//   order, skipping indices already present. Its content is then a pure function of the *set* of
//   pairs offered, whatever their order, provided a pair's distance is a pure function of the
//   two points: every pair is computed by the same float operations in the same order wherever
//   it is taken and whichever point comes first (products and sums of two are commutative);
// - within one tree each point is in exactly one leaf, so the thread joining a leaf is the only
//   one touching its points' heaps. The iterations run in fixed blocks of points (their size a
//   function of n only): within a block, threads read the heaps frozen at the block's start and
//   write proposed updates to per-thread buffers, then the updates are applied by target
//   partition. Which updates are proposed depends only on the frozen state and applying them is
//   order-independent ("pull"/Jacobi within a block), so the heaps after a block do not depend
//   on the threads. The count that steers the run (entries changed, for the early stop) is taken
//   on the final heaps, not on the push attempts.
// The bits may differ between machines: with FMA the dot products round differently (see
// dot_tile_fma); they never differ between thread counts.
//
// Speed. NN-descent spends its time on distances between the candidates of a point (the "local
// join"), a few dozen rows compared all against all. Here that is a small matrix product:
// squared distances as |x|^2 + |y|^2 - 2 x.y on centred float32 rows, 4 x 3 pairs at a time
// (register tiles: each loaded 8-float block serves 3 or 4 products), 2-3x faster than pairwise
// differences. That form's cancellation is harmless while |x|^2 is not much larger than the
// point's neighbour distances; points where it is (tight groups far from the centre) are flagged
// once, before any distance is taken, and every pair involving one uses the direct sum of squared
// differences of the rows as given. The heaps keep a few more neighbours than asked for (heap_k),
// which lifts the recall of the k asked for more cheaply than more trees or iterations. The rows
// are reordered by the leaves of the first tree, so points close in space are close in memory,
// and the next point's rows are prefetched during a join. For wide data the trees split a PCA
// projection (m << d dimensions; it also made better trees than the full rows on MNIST).
#include "cpu/knn.hpp"

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

namespace {


constexpr int kLane = 16;             // rows are padded to a multiple of 16 floats
constexpr int32_t kNone = INT32_MAX;  // empty heap slot: sorts after every point
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr uint8_t kNew = 1;           // entry not yet used as a join candidate
constexpr uint8_t kFresh = 2;         // entry inserted by the block being applied
constexpr int kTileA = 4, kTileB = 3; // pairs per dot-product tile

// Stream tags (the middle key of Rng).
constexpr uint64_t kTagTree = 1, kTagFill = 2, kTagPca = 3, kTagCandidates = 4, kTagEntries = 5;

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
#endif

using TileFn = void (*)(const float* const*, const float* const*, int, float*);

struct Kernels {
  TileFn tile;  // kTileA x kTileB
  TileFn one;   // 1 x 1
};

// The best kernels this CPU runs; UEC_KNN_KERNEL=generic|avx2|fma forces one (tests compare them).
Kernels pick_kernels() {
  const char* force = std::getenv("UEC_KNN_KERNEL");
  const std::string want = force ? force : "";
#ifdef UEC_KNN_AVX2
  const bool avx2 = __builtin_cpu_supports("avx2"), fma = avx2 && __builtin_cpu_supports("fma");
  if (fma && (want.empty() || want == "fma")) return {&dot_tile_fma<kTileA, kTileB>, &dot_tile_fma<1, 1>};
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

// ---- features and projection -------------------------------------------------------------------

// Rows in fixed chunks (depending on n only) for the deterministic column reductions.
struct Chunks {
  int64_t n, size, count;
  explicit Chunks(int64_t n_) : n(n_) {
    size = std::max<int64_t>(1024, (n + 255) / 256);
    count = (n + size - 1) / size;
  }
  int64_t begin(int64_t c) const { return c * size; }
  int64_t end(int64_t c) const { return std::min(n, (c + 1) * size); }
};

void column_stats_chunk(const float* X, int d, int64_t begin, int64_t end, double* sum, float* lo,
                        float* hi) {
  for (int j = 0; j < d; ++j) {
    sum[j] = 0.0;
    lo[j] = X[begin * d + j];
    hi[j] = lo[j];
  }
  for (int64_t i = begin; i < end; ++i) {
    const float* r = X + i * d;
    for (int j = 0; j < d; ++j) {
      sum[j] += r[j];
      lo[j] = std::min(lo[j], r[j]);
      hi[j] = std::max(hi[j], r[j]);
    }
  }
}

// The non-constant features (a constant one adds exactly 0 to every squared distance) and the
// mean of each, over fixed chunks combined in chunk order.
void searched_features(const float* X, int64_t n, int d, int nt, Errors& errors,
                       std::vector<int>& keep, std::vector<float>& mean) {
  const Chunks ch(n);
  std::vector<double> sums(static_cast<size_t>(ch.count) * d);
  std::vector<float> los(sums.size()), his(sums.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t c = 0; c < ch.count; ++c)
    errors.run([&] { column_stats_chunk(X, d, ch.begin(c), ch.end(c), &sums[c * d], &los[c * d], &his[c * d]); });
  errors.rethrow();
  keep.clear();
  mean.clear();
  for (int j = 0; j < d; ++j) {
    double s = 0.0;
    float lo = los[j], hi = his[j];
    for (int64_t c = 0; c < ch.count; ++c) {
      s += sums[c * d + j];
      lo = std::min(lo, los[c * d + j]);
      hi = std::max(hi, his[c * d + j]);
    }
    if (hi > lo) {
      keep.push_back(j);
      mean.push_back(static_cast<float>(s / n));
    }
  }
}

UEC_KNN_CLONES
void covariance_row(const double* St, int dp, int s, int a, double* C) {
  const double* ra = St + static_cast<int64_t>(a) * s;
  for (int b = a; b < dp; ++b) {
    const double* rb = St + static_cast<int64_t>(b) * s;
    double acc[8] = {};
    int r = 0;
    for (; r + 8 <= s; r += 8)
      for (int l = 0; l < 8; ++l) acc[l] += ra[r + l] * rb[r + l];
    for (; r < s; ++r) acc[0] += ra[r] * rb[r];
    C[static_cast<int64_t>(a) * dp + b] =
        ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  }
}

UEC_KNN_CLONES
void multiply_row(const double* C, const double* Q, int dp, int m, int a, double* Y) {
  double* y = Y + static_cast<int64_t>(a) * m;
  for (int c = 0; c < m; ++c) y[c] = 0.0;
  const double* ca = C + static_cast<int64_t>(a) * dp;
  for (int b = 0; b < dp; ++b) {
    const double v = ca[b];
    const double* q = Q + static_cast<int64_t>(b) * m;
    for (int c = 0; c < m; ++c) y[c] += v * q[c];
  }
}

// An orthonormal basis (dp, m) row-major of the leading principal subspace of a fixed sample of
// rows (features `keep`), by subspace iteration on their covariance in float64. Deterministic:
// every entry is one serial sum. It only steers the trees, so a few iterations do.
std::vector<float> pca_basis(const float* X, int64_t n, int d, const std::vector<int>& keep, int m,
                             uint64_t seed, int nt, Errors& errors) {
  const int dp = static_cast<int>(keep.size());
  const int s = static_cast<int>(std::min<int64_t>(n, 512));
  std::vector<double> mean(dp, 0.0);
  std::vector<double> St(static_cast<size_t>(dp) * s);  // (dp, s) centred sample, transposed
  for (int r = 0; r < s; ++r) {
    const float* row = X + (static_cast<int64_t>(r) * n / s) * d;
    for (int j = 0; j < dp; ++j) mean[j] += row[keep[j]];
  }
  for (int j = 0; j < dp; ++j) mean[j] /= s;
  for (int r = 0; r < s; ++r) {
    const float* row = X + (static_cast<int64_t>(r) * n / s) * d;
    for (int j = 0; j < dp; ++j) St[static_cast<size_t>(j) * s + r] = row[keep[j]] - mean[j];
  }
  std::vector<double> C(static_cast<size_t>(dp) * dp);
#pragma omp parallel for schedule(dynamic, 8) num_threads(nt)
  for (int a = 0; a < dp; ++a) errors.run([&] { covariance_row(St.data(), dp, s, a, C.data()); });
  errors.rethrow();
  for (int a = 0; a < dp; ++a)
    for (int b = 0; b < a; ++b) C[static_cast<size_t>(a) * dp + b] = C[static_cast<size_t>(b) * dp + a];

  std::vector<double> Q(static_cast<size_t>(dp) * m), Y(Q.size());
  for (int j = 0; j < dp; ++j) {
    Rng rng(seed, kTagPca, static_cast<uint64_t>(j));
    for (int c = 0; c < m; ++c)
      Q[static_cast<size_t>(j) * m + c] = static_cast<double>(rng.next() >> 11) * 0x1.0p-53 - 0.5;
  }
  // modified Gram-Schmidt on the columns of a row-major (dp, m) matrix, twice
  auto orthonormalise = [&](std::vector<double>& A) {
    std::vector<double> dots(m);
    for (int pass = 0; pass < 2; ++pass)
      for (int c = 0; c < m; ++c) {
        for (int e = 0; e < c; ++e) {
          double dot = 0.0;
          for (int j = 0; j < dp; ++j) dot += A[static_cast<size_t>(j) * m + c] * A[static_cast<size_t>(j) * m + e];
          for (int j = 0; j < dp; ++j) A[static_cast<size_t>(j) * m + c] -= dot * A[static_cast<size_t>(j) * m + e];
        }
        double norm = 0.0;
        for (int j = 0; j < dp; ++j) norm += A[static_cast<size_t>(j) * m + c] * A[static_cast<size_t>(j) * m + c];
        norm = std::sqrt(norm);
        if (norm > 0.0)
          for (int j = 0; j < dp; ++j) A[static_cast<size_t>(j) * m + c] /= norm;
      }
  };
  orthonormalise(Q);
  for (int it = 0; it < 4; ++it) {
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
    for (int a = 0; a < dp; ++a) multiply_row(C.data(), Q.data(), dp, m, a, Y.data());
    std::swap(Q, Y);
    orthonormalise(Q);
  }
  return std::vector<float>(Q.begin(), Q.end());
}

// z = V^T x for one row (features `keep`), skipping zero features (sparse-looking data such as
// images). Uncentred: the trees only use differences of projections.
UEC_KNN_CLONES
void project_row(const float* x, const int* keep, int dp, const float* V, int m, float* z) {
  for (int c = 0; c < m; ++c) z[c] = 0.0f;
  for (int j = 0; j < dp; ++j) {
    const float a = x[keep[j]];
    if (a == 0.0f) continue;
    const float* vr = V + static_cast<int64_t>(j) * m;
    for (int c = 0; c < m; ++c) z[c] += a * vr[c];
  }
}

// dst[c] = x[keep[c]] - mean[c]
UEC_KNN_CLONES
void centre_row(const float* x, const int* keep, const float* mean, int dp, float* dst) {
  for (int c = 0; c < dp; ++c) dst[c] = x[keep[c]] - mean[c];
}

int auto_proj_dim(int features) {
  if (features < 48) return 0;
  const int m = static_cast<int>(round_up(features / 12, kLane));
  return std::min(64, std::max(kLane, m));
}

// ---- random-projection trees ---------------------------------------------------------------

struct Rows {
  const float* data;
  int len;  // a multiple of 16
  const float* row(int64_t i) const { return data + i * len; }
};

struct Tree {
  std::vector<int32_t> perm;                        // (n) points, leaf by leaf
  std::vector<std::pair<int32_t, int32_t>> leaves;  // [begin, end) ranges of perm
};

// margin[t] = h . R.row(pts[t]) - offset
UEC_KNN_CLONES
void tree_margins(Rows R, const int32_t* pts, int64_t count, const float* h, float offset,
                  float* margin) {
  for (int64_t t = 0; t < count; ++t) margin[t] = dot_padded(h, R.row(pts[t]), R.len) - offset;
}

// One tree, built serially from its own stream: split each node by the hyperplane halfway
// between two random members (pynndescent's euclidean split) until nodes have <= leaf_size
// points. The partition is stable, so a node's points stay in increasing order and a pass over
// its rows reads memory forwards (copying the rows along to make them contiguous was slower).
Tree build_tree(Rows R, int64_t n, int leaf_size, uint64_t seed, int tree) {
  const int len = R.len;
  Tree T;
  T.perm.resize(n);
  std::iota(T.perm.begin(), T.perm.end(), 0);
  std::vector<float> h(len), margin(n);
  std::vector<int32_t> tmp(n);
  std::vector<uint8_t> side(n);
  struct Node {
    int64_t begin, end;
    int depth;
  };
  std::vector<Node> stack{{0, n, 0}};
  uint64_t node_id = 0;
  while (!stack.empty()) {
    const Node node = stack.back();
    stack.pop_back();
    const int64_t size = node.end - node.begin;
    if (size <= leaf_size || node.depth >= 100) {
      T.leaves.emplace_back(static_cast<int32_t>(node.begin), static_cast<int32_t>(node.end));
      continue;
    }
    Rng rng(seed, (kTagTree << 32) | static_cast<uint64_t>(tree), node_id++);
    int32_t* pts = T.perm.data() + node.begin;
    const uint32_t a = rng.below(static_cast<uint32_t>(size));
    uint32_t b = rng.below(static_cast<uint32_t>(size - 1));
    if (b >= a) ++b;
    const float* ra = R.row(pts[a]);
    const float* rb = R.row(pts[b]);
    float offset = 0.0f;
    for (int j = 0; j < len; ++j) {
      h[j] = ra[j] - rb[j];
      offset += h[j] * (ra[j] + rb[j]) * 0.5f;
    }
    // sides first (ties drawn in member order), then a stable partition
    tree_margins(R, pts, size, h.data(), offset, margin.data());
    int64_t left = 0;
    for (int64_t t = 0; t < size; ++t) {
      side[t] = margin[t] > 0.0f || (margin[t] == 0.0f && (rng.next() & 1));
      left += side[t];
    }
    int64_t mid = left;
    if (left == 0 || left == size) {
      mid = size / 2;  // degenerate split (all on one side): halve in the current order
    } else {
      int64_t l = 0, r = left;
      for (int64_t t = 0; t < size; ++t) tmp[side[t] ? l++ : r++] = pts[t];
      std::copy(tmp.begin(), tmp.begin() + size, pts);
    }
    // right child pushed first, so the left one is processed (and its leaves listed) first
    stack.push_back({node.begin + mid, node.end, node.depth + 1});
    stack.push_back({node.begin, node.begin + mid, node.depth + 1});
  }
  return T;
}

// ---- the data as searched ----------------------------------------------------------------------

struct Searched {
  int64_t n = 0;
  int features = 0;            // non-constant features kept
  int len = 0;                 // padded row length of x
  Floats x;                    // (n, len): kept features, centred, zero padded
  std::vector<float> norm;     // (n) x . x, by the tile kernel
  std::vector<uint8_t> ill;    // (n) 1: pairs with this point use the direct sum
  std::vector<int32_t> order;  // (n) original index of each searched row
  std::vector<Tree> trees;     // leaves in searched indices
  Kernels kern;
  const float* input = nullptr;  // (n, d) the rows as given
  int d = 0;

  const float* row(int64_t i) const { return x.data() + i * len; }

  // Sum of squared differences of the rows as given: centring would round the coordinates of a
  // point far from the mean by more than its distances to its neighbours (the differences of two
  // close floats are exact).
  float direct(int32_t p, int32_t q) const {
    return sq_dist_direct(input + static_cast<int64_t>(order[p]) * d,
                          input + static_cast<int64_t>(order[q]) * d, d);
  }
  // The squared distance of a pair, a pure function of the pair: from its dot product (taken by
  // a tile kernel) unless either point is flagged.
  float from_dot(int32_t p, int32_t q, float dot) const {
    if (ill[p] | ill[q]) return direct(p, q);
    const float d = (norm[p] + norm[q]) - 2.0f * dot;
    return d > 0.0f ? d : 0.0f;
  }
  float pair(int32_t p, int32_t q) const {
    if (ill[p] | ill[q]) return direct(p, q);
    const float* a = row(p);
    const float* b = row(q);
    float dot;
    kern.one(&a, &b, len, &dot);
    return from_dot(p, q, dot);
  }
};

// Features, projection, trees, the rows reordered by the first tree's leaves, norms and flags.
Searched prepare(const float* X, int64_t n, int d, const KnnParams& p, int nt, Errors& errors,
                 DebugClock& clock) {
  Searched S;
  S.n = n;
  S.kern = pick_kernels();
  S.input = X;
  S.d = d;
  std::vector<int> keep;
  std::vector<float> mean;
  searched_features(X, n, d, nt, errors, keep, mean);
  S.features = static_cast<int>(keep.size());
  S.len = static_cast<int>(round_up(S.features, kLane));
  int m = p.proj_dim < 0 ? auto_proj_dim(S.features) : p.proj_dim;
  if (m >= S.features || n < 2) m = 0;  // no cheaper space for the trees

  // rows the trees split, in the original order: the projections, or the centred rows
  Floats tree_rows;
  int tree_len = 0;
  if (m) {
    const std::vector<float> V = pca_basis(X, n, d, keep, m, p.seed, nt, errors);
    tree_rows = Floats(static_cast<size_t>(n) * m);
    tree_len = m;
    float* z = tree_rows.data();
#pragma omp parallel for schedule(dynamic, 256) num_threads(nt)
    for (int64_t i = 0; i < n; ++i) project_row(X + i * d, keep.data(), S.features, V.data(), m, z + i * m);
  } else {
    tree_rows = Floats(static_cast<size_t>(n) * S.len);
    tree_len = S.len;
    float* z = tree_rows.data();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < S.features; ++c) z[i * S.len + c] = X[i * d + keep[c]] - mean[c];
  }
  clock.lap("projection");
  const int leaf_size = std::max(2, p.leaf_size);
  const int n_trees = std::max(1, p.n_trees);  // the first one also orders the rows
  S.trees.resize(n_trees);
  {
    const Rows R{tree_rows.data(), tree_len};
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int t = 0; t < n_trees; ++t) errors.run([&] { S.trees[t] = build_tree(R, n, leaf_size, p.seed, t); });
    errors.rethrow();
  }
  clock.lap("trees");

  // searched index t is original point order[t] (the first tree's leaf order)
  S.order = S.trees[0].perm;
  std::vector<int32_t> pos(n);
  for (int64_t t = 0; t < n; ++t) pos[S.order[t]] = static_cast<int32_t>(t);
  for (Tree& T : S.trees)
    for (int32_t& v : T.perm) v = pos[v];
  S.x = Floats(static_cast<size_t>(n) * S.len);
  S.norm.assign(n, 0.0f);
  {
    float* xp = S.x.data();
    const int dp = S.features, len = S.len;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t t = 0; t < n; ++t) {
      float* dst = xp + t * len;
      centre_row(X + static_cast<int64_t>(S.order[t]) * d, keep.data(), mean.data(), dp, dst);
      const float* a = dst;
      S.kern.one(&a, &a, len, &S.norm[t]);
    }
  }
  clock.lap("copy");

  // Flags. The dot form's rounding is a few sqrt(len) u (|x|^2 + |y|^2) (u = 2^-24); compare
  // |x|^2 with the point's typical squared distance to its first leaf's members (in the tree
  // space, which underestimates it: conservative) and flag where that rounding could exceed
  // 1e-3 of the distance.
  S.ill.assign(n, 0);
  {
    const double kappa = 1e-3 / (4.0 * std::sqrt(static_cast<double>(S.len)) * std::ldexp(1.0, -24));
    const Tree& T0 = S.trees[0];
    const int64_t n_leaves = static_cast<int64_t>(T0.leaves.size());
    const Rows R{tree_rows.data(), tree_len};
#pragma omp parallel num_threads(nt)
    {
      std::vector<float> dist;
#pragma omp for schedule(dynamic, 16)
      for (int64_t l = 0; l < n_leaves; ++l) {
        const int32_t b = T0.leaves[l].first, e = T0.leaves[l].second;
        for (int32_t t = b; t < e; ++t) {
          dist.clear();
          // tree rows are still in the original order
          for (int32_t u = b; u < e; ++u)
            if (u != t) dist.push_back(sq_dist_direct(R.row(S.order[t]), R.row(S.order[u]), tree_len));
          if (dist.empty()) continue;
          std::nth_element(dist.begin(), dist.begin() + dist.size() / 2, dist.end());
          const double scale = dist[dist.size() / 2];
          S.ill[t] = static_cast<double>(S.norm[t]) > kappa * scale;
        }
      }
    }
  }
  clock.lap("flags");
  return S;
}

// ---- heaps and their updates -----------------------------------------------------------------

struct Heaps {
  int64_t n;
  int K;
  std::vector<float> dist;     // (n, K) max-heap by (dist, index) per row
  std::vector<int32_t> index;  // (n, K)
  std::vector<uint8_t> flags;  // (n, K) kNew | kFresh
  std::vector<float> thr;      // (n) the root distance (+inf while not full)

  Heaps(int64_t n_, int K_)
      : n(n_), K(K_), dist(static_cast<size_t>(n_) * K_, kInf),
        index(static_cast<size_t>(n_) * K_, kNone), flags(static_cast<size_t>(n_) * K_, 0),
        thr(n_, kInf) {}

  bool full(int64_t p) const { return index[p * K] != kNone; }
  void refresh(int64_t p) { thr[p] = dist[p * K]; }
};

// Push (d, q) unless it is not before the root or q is present; true if inserted.
inline bool heap_push(float* hd, int32_t* hi, uint8_t* hf, int K, float d, int32_t q,
                      uint8_t flag) {
  if (!before(d, q, hd[0], hi[0])) return false;
  for (int t = 0; t < K; ++t)
    if (hi[t] == q) return false;
  int pos = 0;
  for (;;) {
    int c = 2 * pos + 1;
    if (c >= K) break;
    if (c + 1 < K && before(hd[c], hi[c], hd[c + 1], hi[c + 1])) ++c;
    if (!before(d, q, hd[c], hi[c])) break;
    hd[pos] = hd[c];
    hi[pos] = hi[c];
    hf[pos] = hf[c];
    pos = c;
  }
  hd[pos] = d;
  hi[pos] = q;
  hf[pos] = flag;
  return true;
}

struct Update {
  int32_t target;
  int32_t index;
  float dist;
};

// Proposed updates, per thread and per target partition (contiguous ranges of 2^shift points).
class Updates {
 public:
  Updates(int64_t n, int threads) : threads_(threads) {
    shift_ = 0;
    while ((n >> shift_) > 256) ++shift_;
    parts_ = static_cast<int>(((n - 1) >> shift_) + 1);
    buf_.resize(static_cast<size_t>(threads) * parts_);
  }
  int parts() const { return parts_; }
  int threads() const { return threads_; }
  void emit(int tid, int32_t target, int32_t index, float dist) {
    buf_[static_cast<size_t>(tid) * parts_ + (target >> shift_)].push_back({target, index, dist});
  }
  std::vector<Update>& at(int tid, int part) { return buf_[static_cast<size_t>(tid) * parts_ + part]; }
  size_t pending() const {
    size_t s = 0;
    for (const auto& b : buf_) s += b.size();
    return s;
  }

 private:
  int threads_, shift_, parts_;
  std::vector<std::vector<Update>> buf_;
};

// Per-thread copies of the norms, thresholds and flags of a join's points (read once per pair).
struct JoinScratch {
  std::vector<float> norm, thr, mat;
  std::vector<uint8_t> ill;
  std::vector<std::pair<float, int32_t>> offer;
};

// Every pair (list[a], list[b]) with a < n_rows and a < b < n_cols, except a point with itself
// (list[0, n_rows) has distinct points, list[n_rows, n_cols) too, but the two parts may share
// some), its squared distance taken in 4 x 3 dot-product tiles (or directly for flagged rows),
// handed to pair(a, b, d) in a fixed order. Fills js.norm and js.ill for list[0, n_cols).
template <class Pair>
void tile_pairs(const Searched& S, const int32_t* list, int n_rows, int n_cols, Counters& cnt,
                JoinScratch& js, Pair&& pair) {
  const int len = S.len;
  js.norm.resize(n_cols);
  js.ill.resize(n_cols);
  for (int b = 0; b < n_cols; ++b) {
    js.norm[b] = S.norm[list[b]];
    js.ill[b] = S.ill[list[b]];
  }
  const float* A[kTileA];
  const float* B[kTileB];
  float dots[kTileA * kTileB];
  int64_t pairs = 0, direct = 0;
  for (int a0 = 0; a0 < n_rows; a0 += kTileA) {
    const int na = std::min(kTileA, n_rows - a0);
    for (int u = 0; u < kTileA; ++u) A[u] = S.row(list[a0 + std::min(u, na - 1)]);
    for (int b0 = a0 + 1; b0 < n_cols; b0 += kTileB) {
      const int nb = std::min(kTileB, n_cols - b0);
      for (int v = 0; v < kTileB; ++v) B[v] = S.row(list[b0 + std::min(v, nb - 1)]);
      S.kern.tile(A, B, len, dots);
      for (int u = 0; u < na; ++u) {
        const int a = a0 + u;
        const int32_t p = list[a];
        for (int v = 0; v < nb; ++v) {
          const int b = b0 + v;
          if (b <= a) continue;
          const int32_t q = list[b];
          if (b >= n_rows && q == p) continue;
          ++pairs;
          float d;
          if (js.ill[a] | js.ill[b]) {
            ++direct;
            d = S.direct(p, q);
          } else {
            d = (js.norm[a] + js.norm[b]) - 2.0f * dots[u * kTileB + v];
            d = d > 0.0f ? d : 0.0f;
          }
          pair(a, b, d);
        }
      }
    }
  }
  cnt.distances += pairs;
  cnt.direct += direct;
}

// The pairs of tile_pairs, each proposed to both heaps where it can beat the frozen threshold.
void join_lists(const Searched& S, const Heaps& H, const int32_t* list, int n_rows, int n_cols,
                Updates& U, int tid, Counters& cnt, JoinScratch& js) {
  if (n_rows < 1 || n_cols < 2) return;
  js.thr.resize(n_cols);
  for (int b = 0; b < n_cols; ++b) js.thr[b] = H.thr[list[b]];
  tile_pairs(S, list, n_rows, n_cols, cnt, js, [&](int a, int b, float d) {
    if (d <= js.thr[a]) U.emit(tid, list[a], list[b], d);
    if (d <= js.thr[b]) U.emit(tid, list[b], list[a], d);
  });
}

// The pairs of one leaf, pushed straight into the heaps: within one tree each point is in exactly
// one leaf, so the thread that joins a leaf is the only one touching its points' heaps. The
// leaf's distance matrix is taken first; then each point is offered only the best K of the leaf
// mates that beat its root (fewer heap operations than offering every pair in turn; the heap's
// final content is the same).
void join_leaf(const Searched& S, Heaps& H, const int32_t* list, int size, Counters& cnt,
               JoinScratch& js) {
  if (size < 2) return;
  const int K = H.K;
  js.mat.resize(static_cast<size_t>(size) * size);
  float* mat = js.mat.data();
  tile_pairs(S, list, size, size, cnt, js, [&](int a, int b, float d) {
    mat[a * size + b] = d;
    mat[b * size + a] = d;
  });
  std::vector<std::pair<float, int32_t>>& offer = js.offer;
  for (int a = 0; a < size; ++a) {
    const int64_t pk = static_cast<int64_t>(list[a]) * K;
    float* hd = &H.dist[pk];
    int32_t* hi = &H.index[pk];
    offer.clear();
    for (int b = 0; b < size; ++b)
      if (b != a && before(mat[a * size + b], list[b], hd[0], hi[0]))
        offer.emplace_back(mat[a * size + b], list[b]);
    if (static_cast<int>(offer.size()) > K) {
      std::nth_element(offer.begin(), offer.begin() + K, offer.end());
      offer.resize(K);
    }
    for (const auto& o : offer) heap_push(hd, hi, &H.flags[pk], K, o.first, o.second, kNew);
    H.refresh(list[a]);
  }
}

// Applies every proposed update (parallel over target partitions; order-independent) and returns
// how many heap entries changed, counted on the final heaps.
int64_t apply_updates(Heaps& H, Updates& U, std::vector<uint8_t>& touched_mark, int nt,
                      Errors& errors) {
  int64_t changed = 0;
  const int K = H.K;
#pragma omp parallel num_threads(nt) reduction(+ : changed)
  {
    std::vector<int32_t> touched;
#pragma omp for schedule(dynamic, 1)
    for (int part = 0; part < U.parts(); ++part)
      errors.run([&] {
        touched.clear();
        for (int t = 0; t < U.threads(); ++t) {
          std::vector<Update>& buf = U.at(t, part);
          for (const Update& u : buf) {
            const int64_t p = u.target;
            if (heap_push(&H.dist[p * K], &H.index[p * K], &H.flags[p * K], K, u.dist, u.index,
                          kNew | kFresh) &&
                !touched_mark[p]) {
              touched_mark[p] = 1;
              touched.push_back(u.target);
            }
          }
          buf.clear();
        }
        for (int32_t p : touched) {
          uint8_t* f = &H.flags[static_cast<int64_t>(p) * K];
          for (int t = 0; t < K; ++t)
            if (f[t] & kFresh) {
              ++changed;
              f[t] = static_cast<uint8_t>(f[t] & ~kFresh);
            }
          touched_mark[p] = 0;
          H.refresh(p);
        }
      });
  }
  errors.rethrow();
  return changed;
}

// Fills a heap that is not full with random points (its own heap only).
void fill_random(const Searched& S, Heaps& H, int64_t p, uint64_t seed) {
  const int K = H.K;
  const int64_t n = S.n;
  float* hd = &H.dist[p * K];
  int32_t* hi = &H.index[p * K];
  uint8_t* hf = &H.flags[p * K];
  const int32_t me = static_cast<int32_t>(p);
  Rng rng(seed, kTagFill, static_cast<uint64_t>(p));
  for (int tries = 0; tries < 4 * K + 16 && hi[0] == kNone; ++tries) {
    const int32_t q = static_cast<int32_t>(rng.below(static_cast<uint32_t>(n)));
    if (q != me) heap_push(hd, hi, hf, K, S.pair(me, q), q, kNew);
  }
  // k close to n: take the others in turn from a random start until full
  const int64_t start = rng.below(static_cast<uint32_t>(n));
  for (int64_t t = 0; t < n && hi[0] == kNone; ++t) {
    const int32_t q = static_cast<int32_t>((start + t) % n);
    if (q != me) heap_push(hd, hi, hf, K, S.pair(me, q), q, kNew);
  }
}

// ---- NN-descent iterations -------------------------------------------------------------------

struct Candidates {
  int C;
  std::vector<int32_t> lists;           // (n, 2C): new ones then old ones, each sorted
  std::vector<int32_t> n_fresh, n_old;  // (n)
  Candidates(int64_t n, int C_)
      : C(C_), lists(static_cast<size_t>(n) * 2 * C_), n_fresh(n), n_old(n) {}
};

struct Item {
  uint64_t prio;
  int32_t index;
  uint8_t is_new;
};

// Up to C items of the given kind with the smallest (priority, index), one per index, written
// sorted by index; returns how many.
int select_candidates(const std::vector<Item>& items, std::vector<Item>& tmp, uint8_t kind, int C,
                      int32_t* out) {
  tmp.clear();
  for (const Item& it : items)
    if (it.is_new == kind) tmp.push_back(it);
  std::sort(tmp.begin(), tmp.end(), [](const Item& a, const Item& b) {
    return a.index < b.index || (a.index == b.index && a.prio < b.prio);
  });
  tmp.erase(std::unique(tmp.begin(), tmp.end(),
                        [](const Item& a, const Item& b) { return a.index == b.index; }),
            tmp.end());
  if (static_cast<int>(tmp.size()) > C) {
    std::nth_element(tmp.begin(), tmp.begin() + C, tmp.end(), [](const Item& a, const Item& b) {
      return a.prio < b.prio || (a.prio == b.prio && a.index < b.index);
    });
    tmp.resize(C);
    std::sort(tmp.begin(), tmp.end(), [](const Item& a, const Item& b) { return a.index < b.index; });
  }
  for (size_t t = 0; t < tmp.size(); ++t) out[t] = tmp[t].index;
  return static_cast<int>(tmp.size());
}

inline uint64_t edge_priority(uint64_t key, int32_t from, int32_t to) {
  return splitmix64(key ^ ((static_cast<uint64_t>(static_cast<uint32_t>(from)) << 32) |
                           static_cast<uint32_t>(to)));
}

// Each point's candidates: its neighbours and the points that list it ("reverse neighbours"),
// new and old apart, at most C of each by a random priority per directed edge; the new entries
// sampled are then marked old. Pull form: each point writes only its own lists and flags.
void build_candidates(Heaps& H, Candidates& cand, uint64_t key, int nt, Errors& errors) {
  const int64_t n = H.n;
  const int K = H.K;
  // reverse edges, CSR by target, sources in increasing order
  std::vector<int64_t> ptr(n + 1, 0);
  for (int64_t i = 0; i < n * K; ++i)
    if (H.index[i] != kNone) ++ptr[H.index[i] + 1];
  for (int64_t i = 0; i < n; ++i) ptr[i + 1] += ptr[i];
  std::vector<int32_t> src(ptr[n]);
  std::vector<uint8_t> src_new(ptr[n]);
  {
    std::vector<int64_t> fill(ptr.begin(), ptr.end() - 1);
    for (int64_t i = 0; i < n; ++i)
      for (int t = 0; t < K; ++t) {
        const int32_t j = H.index[i * K + t];
        if (j == kNone) continue;
        src[fill[j]] = static_cast<int32_t>(i);
        src_new[fill[j]++] = H.flags[i * K + t] & kNew;
      }
  }
  const int C = cand.C;
#pragma omp parallel num_threads(nt)
  {
    std::vector<Item> items, tmp;
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < n; ++i)
      errors.run([&] {
        items.clear();
        const int32_t me = static_cast<int32_t>(i);
        for (int t = 0; t < K; ++t) {
          const int32_t j = H.index[i * K + t];
          if (j != kNone)
            items.push_back({edge_priority(key, me, j), j,
                             static_cast<uint8_t>(H.flags[i * K + t] & kNew)});
        }
        for (int64_t r = ptr[i]; r < ptr[i + 1]; ++r)
          items.push_back({edge_priority(key, src[r], me), src[r], src_new[r]});
        int32_t* list = &cand.lists[i * 2 * C];
        const int nf = select_candidates(items, tmp, kNew, C, list);
        cand.n_fresh[i] = nf;
        cand.n_old[i] = select_candidates(items, tmp, 0, C, list + nf);
        for (int t = 0; t < K; ++t) {
          uint8_t& f = H.flags[i * K + t];
          if ((f & kNew) && std::binary_search(list, list + nf, H.index[i * K + t]))
            f = static_cast<uint8_t>(f & ~kNew);
        }
      });
  }
  errors.rethrow();
}

// (squared distance, original index) of point t's heap entries. A distance taken in the dot form
// that is small compared with that form's rounding (|x|^2 + |y|^2 times a few sqrt(len) u) is
// taken again as a sum of squared differences: near-duplicates then get their true distance.
UEC_KNN_CLONES
void final_row(const Searched& S, int32_t t, const float* dist, const int32_t* idx, int K,
               std::pair<float, int32_t>* out) {
  const float eps = static_cast<float>(1024.0 * std::sqrt(static_cast<double>(S.len)) * std::ldexp(1.0, -24));
  for (int u = 0; u < K; ++u) {
    const int32_t q = idx[u];
    float d = dist[u];
    if (!(S.ill[t] | S.ill[q]) && d <= eps * (S.norm[t] + S.norm[q]))
      d = S.direct(t, q);
    out[u] = {d, S.order[q]};
  }
}

// Asks for the first cache lines of the rows the next point's join reads (the hardware then
// streams the rest), so that their latency overlaps the current join.
inline void prefetch_list(const Searched& S, const Candidates& cand, int64_t i) {
  const int32_t* list = &cand.lists[i * 2 * cand.C];
  const int count = cand.n_fresh[i] + cand.n_old[i];
  for (int b = 0; b < count; ++b) {
    const char* row = reinterpret_cast<const char*>(S.row(list[b]));
    __builtin_prefetch(row, 0, 2);
    __builtin_prefetch(row + 64, 0, 2);
    __builtin_prefetch(row + 128, 0, 2);
    __builtin_prefetch(row + 192, 0, 2);
  }
}

// Points per block of the NN-descent iterations (a function of n only): heaps are frozen within a
// block, so smaller blocks tighten the thresholds sooner; the updates of a block are buffered.
int64_t block_size_for(int64_t n) { return std::max<int64_t>(4096, std::min<int64_t>(16384, n / 8)); }

}  // namespace

KnnStats nn_descent(const float* X, int64_t n, int d, const KnnParams& p, int32_t* out_indices,
                    float* out_sq_distances) {
  if (n < 1 || n > INT32_MAX - 1) throw std::invalid_argument("nn_descent: n must be in [1, 2^31 - 1)");
  if (p.k < 1 || p.k > n) throw std::invalid_argument("nn_descent: k must be in [1, n]");
  KnnStats stats;
  // the heaps keep a few more than asked for (better recall of the k asked for), at most n - 1
  const int K = static_cast<int>(std::min<int64_t>(n - 1, std::max(p.k, p.heap_k) - 1));
  const int k_out = p.k;
  const int nt = std::max(1, p.n_threads);
  if (k_out == 1) {
    for (int64_t i = 0; i < n; ++i) {
      out_indices[i] = static_cast<int32_t>(i);
      out_sq_distances[i] = 0.0f;
    }
    return stats;
  }
  Errors errors;
  DebugClock clock;
  Searched S = prepare(X, n, d, p, nt, errors, clock);
  stats.features = S.features;
  for (uint8_t f : S.ill) stats.flagged += f;
  Heaps H(n, K);
  Updates U(n, nt);
  std::vector<uint8_t> touched(n, 0);
  std::vector<Counters> cnt(nt);
  std::vector<JoinScratch> scratch(nt);

  // 1. the leaves of each tree in turn (with no trees asked for, the one built to order the rows
  // is not joined)
  for (size_t t = 0; t < S.trees.size() && static_cast<int>(t) < p.n_trees; ++t) {
    const Tree& T = S.trees[t];
    const int64_t n_leaves = static_cast<int64_t>(T.leaves.size());
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
    for (int64_t l = 0; l < n_leaves; ++l)
      errors.run([&] {
        const int tid = thread_id();
        const int32_t* pts = T.perm.data() + T.leaves[l].first;
        join_leaf(S, H, pts, T.leaves[l].second - T.leaves[l].first, cnt[tid], scratch[tid]);
      });
    errors.rethrow();
  }
  S.trees.clear();
  S.trees.shrink_to_fit();
  clock.lap("leaves joined", &cnt);
  // 2. heaps the leaves left short (small leaves, large k, no trees): random points
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt)
  for (int64_t i = 0; i < n; ++i)
    errors.run([&] {
      if (!H.full(i)) {
        fill_random(S, H, i, p.seed);
        H.refresh(i);
      }
    });
  errors.rethrow();

  // 3. NN-descent: the local join of each point's candidates, new x new and new x old
  Candidates cand(n, std::max(1, p.max_candidates));
  const int64_t block = block_size_for(n);
  for (int it = 0; it < p.n_iters; ++it) {
    const uint64_t key =
        splitmix64(splitmix64(p.seed ^ (kTagCandidates << 56)) + static_cast<uint64_t>(it));
    build_candidates(H, cand, key, nt, errors);
    clock.lap("candidates");
    int64_t changed = 0;
    for (int64_t b0 = 0; b0 < n; b0 += block) {
      const int64_t b1 = std::min(n, b0 + block);
#pragma omp parallel for schedule(dynamic, 32) num_threads(nt)
      for (int64_t i = b0; i < b1; ++i)
        errors.run([&] {
          const int tid = thread_id();
          if (i + 1 < b1) prefetch_list(S, cand, i + 1);
          const int32_t* list = &cand.lists[i * 2 * cand.C];
          const int nf = cand.n_fresh[i];
          join_lists(S, H, list, nf, nf + cand.n_old[i], U, tid, cnt[tid], scratch[tid]);
        });
      errors.rethrow();
      if (clock.on) std::fprintf(stderr, "[knn] block %lld: %zu updates\n", static_cast<long long>(b0), U.pending());
      changed += apply_updates(H, U, touched, nt, errors);
    }
    clock.lap("joined", &cnt);
    if (clock.on) std::fprintf(stderr, "[knn] iteration %d: %lld changed\n", it, static_cast<long long>(changed));
    stats.iterations = it + 1;
    stats.changes += changed;
    if (static_cast<double>(changed) <= p.delta * static_cast<double>(n) * (K + 1)) break;
  }
  for (const Counters& c : cnt) {
    stats.distances += c.distances;
    stats.direct += c.direct;
  }

  // 4. rows in the original order, the point itself first, then its neighbours sorted by
  // (distance, original index)
  const std::vector<int32_t>& order = S.order;
#pragma omp parallel num_threads(nt)
  {
    std::vector<std::pair<float, int32_t>> row(K);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n; ++t) {
      const int64_t i = order[t];
      final_row(S, static_cast<int32_t>(t), &H.dist[t * K], &H.index[t * K], K, row.data());
      std::sort(row.begin(), row.end());
      out_indices[i * k_out] = static_cast<int32_t>(i);
      out_sq_distances[i * k_out] = 0.0f;
      for (int u = 0; u + 1 < k_out; ++u) {
        out_indices[i * k_out + 1 + u] = row[u].second;
        out_sq_distances[i * k_out + 1 + u] = row[u].first;
      }
    }
  }
  clock.lap("output");
  return stats;
}

// ---- search for new points ---------------------------------------------------------------------

void knn_search_graph(int64_t n, const int32_t* graph, const float* graph_sq_dist, int kg,
                      int max_reverse, std::vector<int64_t>& indptr, std::vector<int32_t>& to) {
  // reverse edges, CSR by target: (distance, source)
  std::vector<int64_t> rptr(n + 1, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int t = 0; t < kg; ++t) {
      const int32_t j = graph[i * kg + t];
      if (j != i) ++rptr[j + 1];
    }
  for (int64_t i = 0; i < n; ++i) rptr[i + 1] += rptr[i];
  std::vector<std::pair<float, int32_t>> rev(rptr[n]);
  {
    std::vector<int64_t> fill(rptr.begin(), rptr.end() - 1);
    for (int64_t i = 0; i < n; ++i)
      for (int t = 0; t < kg; ++t) {
        const int32_t j = graph[i * kg + t];
        if (j != i) rev[fill[j]++] = {graph_sq_dist[i * kg + t], static_cast<int32_t>(i)};
      }
  }
  indptr.assign(n + 1, 0);
  to.clear();
  to.reserve(static_cast<size_t>(n) * (kg + std::max(0, max_reverse)));
  std::vector<int32_t> row;
  for (int64_t i = 0; i < n; ++i) {
    row.clear();
    for (int t = 0; t < kg; ++t) {
      const int32_t j = graph[i * kg + t];
      if (j != i) row.push_back(j);
    }
    auto rb = rev.begin() + rptr[i], re = rev.begin() + rptr[i + 1];
    if (re - rb > max_reverse) {
      std::partial_sort(rb, rb + max_reverse, re);
      re = rb + max_reverse;
    }
    for (auto it = rb; it != re; ++it) row.push_back(it->second);
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    to.insert(to.end(), row.begin(), row.end());
    indptr[i + 1] = static_cast<int64_t>(to.size());
  }
}

namespace {

struct Visited {
  std::vector<uint32_t> stamp;
  uint32_t now = 0;
  explicit Visited(int64_t n) : stamp(n, 0) {}
  void next() {
    if (++now == 0) {
      std::fill(stamp.begin(), stamp.end(), 0u);
      now = 1;
    }
  }
  bool test_and_set(int32_t i) {
    if (stamp[i] == now) return true;
    stamp[i] = now;
    return false;
  }
};

using Pair = std::pair<float, int32_t>;  // (squared distance, index): ordered lexicographically

// One query, serially: a best-first beam search of width ef (HNSW's search on one layer) from
// the fixed entry points; returns the k best by (distance, index).
UEC_KNN_CLONES
void search_one(const float* data, int d, const int64_t* indptr, const int32_t* adj,
                const std::vector<int32_t>& entries, const float* q, int ef, int k, Visited& vis,
                std::vector<Pair>& cand, std::vector<Pair>& best, std::vector<int32_t>& fresh,
                int32_t* out_i, float* out_d) {
  vis.next();
  cand.clear();  // min-heap (std::greater)
  best.clear();  // max-heap of the ef best so far
  auto offer = [&](int32_t u) {
    const bool full = static_cast<int>(best.size()) >= ef;
    const float bound = full ? best.front().first : kInf;
    const float dist = sq_dist_direct(q, data + static_cast<int64_t>(u) * d, d, bound);
    if (!full || before(dist, u, best.front().first, best.front().second)) {
      cand.push_back({dist, u});
      std::push_heap(cand.begin(), cand.end(), std::greater<Pair>());
      best.push_back({dist, u});
      std::push_heap(best.begin(), best.end());
      if (static_cast<int>(best.size()) > ef) {
        std::pop_heap(best.begin(), best.end());
        best.pop_back();
      }
    }
  };
  for (int32_t e : entries)
    if (!vis.test_and_set(e)) offer(e);
  while (!cand.empty()) {
    const Pair c = cand.front();
    if (static_cast<int>(best.size()) >= ef &&
        before(best.front().first, best.front().second, c.first, c.second))
      break;
    std::pop_heap(cand.begin(), cand.end(), std::greater<Pair>());
    cand.pop_back();
    // the unvisited neighbours, their first cache lines requested before any is read
    fresh.clear();
    for (int64_t r = indptr[c.second]; r < indptr[c.second + 1]; ++r) {
      const int32_t u = adj[r];
      if (!vis.test_and_set(u)) {
        fresh.push_back(u);
        const char* row = reinterpret_cast<const char*>(data + static_cast<int64_t>(u) * d);
        __builtin_prefetch(row);
        __builtin_prefetch(row + 64);
      }
    }
    for (int32_t u : fresh) offer(u);
  }
  std::sort(best.begin(), best.end());
  for (int t = 0; t < k; ++t) {
    out_i[t] = best[t].second;
    out_d[t] = best[t].first;
  }
}

}  // namespace

void knn_search(const float* data, int64_t n, int d, const int64_t* indptr, const int32_t* adj,
                const float* queries, int64_t m, const SearchParams& p, int32_t* out_indices,
                float* out_sq_distances) {
  if (p.k < 1 || p.k > n) throw std::invalid_argument("knn_search: k must be in [1, n]");
  const int ef = static_cast<int>(std::min<int64_t>(n, std::max(p.ef, p.k)));
  const int nt = std::max(1, p.n_threads);
  // fixed entry points (distinct), the same for every query
  std::vector<int32_t> entries;
  {
    const int64_t want = std::min<int64_t>(n, std::max(1, p.n_entries));
    std::vector<uint8_t> taken(n, 0);
    Rng rng(p.seed, kTagEntries, 0);
    for (int64_t tries = 0; static_cast<int64_t>(entries.size()) < want && tries < 8 * want; ++tries) {
      const int32_t e = static_cast<int32_t>(rng.below(static_cast<uint32_t>(n)));
      if (!taken[e]) {
        taken[e] = 1;
        entries.push_back(e);
      }
    }
    for (int64_t e = 0; static_cast<int64_t>(entries.size()) < want; ++e)
      if (!taken[e]) {
        taken[e] = 1;
        entries.push_back(static_cast<int32_t>(e));
      }
  }
  Errors errors;
#pragma omp parallel num_threads(nt)
  {
    Visited vis(n);
    std::vector<Pair> cand, best;
    std::vector<int32_t> fresh;
    cand.reserve(4 * ef);
    best.reserve(ef + 1);
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < m; ++i)
      errors.run([&] {
        search_one(data, d, indptr, adj, entries, queries + i * d, ef, p.k, vis, cand, best,
                   fresh, out_indices + i * p.k, out_sq_distances + i * p.k);
      });
  }
  errors.rethrow();
}

}  // namespace uec
