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
//
// Files: knn_kernels.hpp (constants, helpers, distance kernels), knn_trees.cpp (features,
// projection, trees: the data as searched), this file (heaps, NN-descent), knn_search.cpp (the
// search for new points).
#include "cpu/knn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "cpu/knn_kernels.hpp"
#include "cpu/knn_trees.hpp"
#include "cpu/threads.hpp"

namespace uec {

using namespace knn_detail;

namespace {

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

}  // namespace uec
