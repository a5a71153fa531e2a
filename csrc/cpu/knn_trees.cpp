// The data as NN-descent searches it: the non-constant features and their means, a PCA basis
// for wide data, the random-projection trees, the rows reordered by the first tree's leaves,
// their norms and the flagged points (why the flags: the top of knn.cpp).
#include "cpu/knn_trees.hpp"

#include "core/rng.hpp"

namespace uec {
namespace knn_detail {

namespace {

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

// ---- random-projection trees ---------------------------------------------------------------

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

}  // namespace

// ---- the data as searched ----------------------------------------------------------------------

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

}  // namespace knn_detail
}  // namespace uec
