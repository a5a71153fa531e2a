// pybind11 bindings of the CPU core. The shared `optimize` entry point and the argument checks
// live in optimize_binding.hpp (the CUDA module and its CPU emulation use the same ones).
// Arrays must arrive with the exact dtype and C order (they
// are refused otherwise, never silently copied: several are updated in place); Python converts
// on purpose, once. Shapes and index ranges are checked here, so a bad array raises ValueError
// instead of reading out of bounds. The GIL is released around every long call.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/math.hpp"
#include "cpu/cluster_rows.hpp"
#include "cpu/epochs.hpp"
#include "cpu/knn.hpp"
#include "cpu/leiden.hpp"
#include "cpu/lanes.hpp"
#include "optimize_binding.hpp"

namespace py = pybind11;

namespace {

using uec_py::CArray;
using uec_py::check_1d;
using uec_py::check_2d;
using uec_py::check_ab;
using uec_py::check_centres_size;
using uec_py::check_finite;
using uec_py::check_mode;
using uec_py::check_real;
using uec_py::checked_threads;
using uec_py::fail;

py::dict optimize(CArray<float> Z, py::object M_obj, CArray<int64_t> indptr, CArray<int32_t> indices,
                  CArray<float> epochs_per_sample, CArray<float> next_sample,
                  CArray<float> next_negative, py::object labels_obj, py::object tail_obj,
                  const uec::EpochParams& params, int epoch_begin, int epoch_end,
                  py::object callback) {
  return uec_py::optimize_with(uec::run_epochs, Z, M_obj, indptr, indices, epochs_per_sample,
                               next_sample, next_negative, labels_obj, tail_obj, params,
                               epoch_begin, epoch_end, callback);
}

void check_zm(const CArray<float>& Z, const CArray<float>& M, double a, double b, double p) {
  check_2d(Z, "embedding", -1, -1);
  check_2d(M, "centres", -1, Z.shape(1));
  if (M.shape(0) < 1) fail("centres must have at least one row");
  check_centres_size(M.shape(0), M.shape(1));
  check_finite(Z, "embedding");
  check_finite(M, "centres");
  check_ab(a, b);
  check_real(p, "p (target_power)", 0.0, true);
}

py::tuple cluster_stats(CArray<float> Z, CArray<float> M, double a, double b, double p,
                        bool exact, int n_jobs) {
  check_zm(Z, M, a, b, p);
  const int C = static_cast<int>(M.shape(0));
  py::array_t<double> F(C), c(C);
  double* fp = F.mutable_data();
  double* cp = exact ? c.mutable_data() : nullptr;
  int nt = checked_threads(n_jobs, "n_jobs");
  {
    py::gil_scoped_release release;
    uec::cluster_stats(Z.data(), Z.shape(0), static_cast<int>(Z.shape(1)), M.data(), C, a, b, p, fp, cp, nt);
  }
  if (!exact) return py::make_tuple(F, py::none());
  return py::make_tuple(F, c);
}

py::tuple cluster_gradients(CArray<float> Z, CArray<float> M, double a, double b, double p,
                            int mode, int n_jobs) {
  check_zm(Z, M, a, b, p);
  check_mode(mode);
  const py::ssize_t n = Z.shape(0), d = Z.shape(1), C = M.shape(0);
  py::array_t<double> gz({n, d}), gm({C, d});
  double* gzp = gz.mutable_data();
  double* gmp = gm.mutable_data();
  int nt = checked_threads(n_jobs, "n_jobs");
  {
    py::gil_scoped_release release;
    uec::cluster_gradients(Z.data(), n, static_cast<int>(d), M.data(), static_cast<int>(C), a, b, p, mode, gzp, gmp, nt);
  }
  return py::make_tuple(gz, gm);
}

py::tuple soft_assign(CArray<float> Z, CArray<float> M, double a, double b, double p,
                      bool want_matrices, int n_jobs) {
  check_zm(Z, M, a, b, p);
  const py::ssize_t n = Z.shape(0), d = Z.shape(1), C = M.shape(0);
  py::array_t<int32_t> ls(n), lt(n);
  py::array_t<double> S, T;
  double* sp = nullptr;
  double* tp = nullptr;
  if (want_matrices) {
    S = py::array_t<double>({n, C});
    T = py::array_t<double>({n, C});
    sp = S.mutable_data();
    tp = T.mutable_data();
  }
  int32_t* lsp = ls.mutable_data();
  int32_t* ltp = lt.mutable_data();
  int nt = checked_threads(n_jobs, "n_jobs");
  {
    py::gil_scoped_release release;
    uec::soft_assign(Z.data(), n, static_cast<int>(d), M.data(), static_cast<int>(C), a, b, p, sp, tp, lsp, ltp, nt);
  }
  if (!want_matrices) return py::make_tuple(ls, lt, py::none(), py::none());
  return py::make_tuple(ls, lt, S, T);
}

// Per-sample CE steps exactly as the epoch loop computes them, for tests: for each row, the
// clipped attractive step toward y and the clipped repulsive step away from y (no lr/alpha).
py::tuple ce_steps(CArray<float> X, CArray<float> Y, float a, float b, float gamma, int clip_mode) {
  check_2d(X, "x", -1, -1);
  check_2d(Y, "y", X.shape(0), X.shape(1));
  check_ab(a, b);
  check_real(gamma, "gamma", 0.0, false);
  if (clip_mode < 0 || clip_mode > 2) fail("clip_mode must be 0, 1 or 2, got " + std::to_string(clip_mode));
  const py::ssize_t n = X.shape(0), d = X.shape(1);
  py::array_t<float> att({n, d}), rep({n, d});
  float* ap = att.mutable_data();
  float* rp = rep.mutable_data();
  const float* x = X.data();
  const float* y = Y.data();
  for (py::ssize_t i = 0; i < n; ++i) {
    float r = uec::sq_dist(x + i * d, y + i * d, static_cast<int>(d));
    float ca = uec::attractive_coeff(r, a, b);
    float cr = uec::repulsive_coeff(r, a, b, gamma);
    for (py::ssize_t t = 0; t < d; ++t) {
      float diff = x[i * d + t] - y[i * d + t];
      ap[i * d + t] = uec::ce_step(ca, diff, clip_mode);
      rp[i * d + t] = cr > 0.0f ? uec::ce_step(cr, diff, clip_mode) : 0.0f;
    }
  }
  return py::make_tuple(att, rep);
}

// log(1 + u) elementwise by the core's log1p_pos (for tests against float64).
py::array_t<float> log1p_pos(CArray<float> U) {
  py::array_t<float> out(U.size());
  const float* u = U.data();
  float* o = out.mutable_data();
  for (py::ssize_t i = 0; i < U.size(); ++i) o[i] = uec::log1p_pos(u[i]);
  return out;
}

// r^b elementwise by the core's pow_pos (for tests against float64).
py::array_t<float> pow_pos(CArray<float> R, float b) {
  check_real(b, "b", 0.0, true);
  py::array_t<float> out(R.size());
  const float* r = R.data();
  float* o = out.mutable_data();
  for (py::ssize_t i = 0; i < R.size(); ++i) o[i] = uec::pow_pos(r[i], b);
  return out;
}

// ---- kNN (csrc/cpu/knn.hpp) ------------------------------------------------------------------

void check_int(long long v, const char* name, long long low, long long high, const char* what) {
  if (v < low || v > high) {
    std::ostringstream os;
    os << name << " must be " << what << ", got " << v;
    fail(os.str());
  }
}

py::tuple nn_descent(CArray<float> X, int k, int n_trees, int leaf_size, int max_candidates,
                     int n_iters, double delta, uint64_t seed, int heap_k, int proj_dim,
                     int n_threads) {
  check_2d(X, "X", -1, -1);
  const py::ssize_t n = X.shape(0);
  if (n < 1) fail("X must have at least one row, got 0");
  if (n >= INT32_MAX) fail("X has " + std::to_string(n) + " rows; at most 2^31 - 2 are supported");
  if (X.shape(1) > INT32_MAX / 2) fail("X has too many features");
  check_int(k, "k (n_neighbors)", 1, n, ("an integer in [1, n_samples = " + std::to_string(n) + "]").c_str());
  check_int(heap_k, "heap_k", 0, INT32_MAX, "an integer >= 0 (0: k)");
  check_int(n_trees, "n_trees", 0, 1024, "an integer in [0, 1024]");
  check_int(leaf_size, "leaf_size", 2, INT32_MAX, "an integer >= 2");
  check_int(max_candidates, "max_candidates", 1, 4096, "an integer in [1, 4096]");
  check_int(n_iters, "n_iters", 0, 1000, "an integer in [0, 1000]");
  if (!(delta >= 0.0 && delta <= 1.0)) fail("delta must be a number in [0, 1], got " + std::to_string(delta));
  if (!(proj_dim == -1 || (proj_dim >= 0 && proj_dim <= 1024 && proj_dim % 16 == 0)))
    fail("proj_dim must be -1 (auto), 0 (none) or a multiple of 16 up to 1024, got " + std::to_string(proj_dim));
  check_finite(X, "X");
  uec::KnnParams p;
  p.k = k;
  p.heap_k = heap_k;
  p.n_trees = n_trees;
  p.leaf_size = leaf_size;
  p.max_candidates = max_candidates;
  p.n_iters = n_iters;
  p.delta = delta;
  p.seed = seed;
  p.proj_dim = proj_dim;
  p.n_threads = checked_threads(n_threads, "n_threads");
  py::array_t<int32_t> idx({n, static_cast<py::ssize_t>(k)});
  py::array_t<float> dist({n, static_cast<py::ssize_t>(k)});
  int32_t* ip = idx.mutable_data();
  float* dp = dist.mutable_data();
  uec::KnnStats st;
  {
    py::gil_scoped_release release;
    st = uec::nn_descent(X.data(), n, static_cast<int>(X.shape(1)), p, ip, dp);
  }
  py::dict stats;
  stats["iterations"] = st.iterations;
  stats["features"] = st.features;
  stats["flagged"] = st.flagged;
  stats["distances"] = st.distances;
  stats["direct"] = st.direct;
  stats["changes"] = st.changes;
  return py::make_tuple(idx, dist, stats);
}

py::tuple knn_search_graph(CArray<int32_t> graph, CArray<float> graph_sq_dist, int max_reverse) {
  check_2d(graph, "graph", -1, -1);
  const py::ssize_t n = graph.shape(0);
  if (n < 1 || graph.shape(1) < 1) fail("graph must have at least one row and one column");
  if (n >= INT32_MAX) fail("graph has too many rows");
  check_2d(graph_sq_dist, "graph_sq_dist", n, graph.shape(1));
  check_int(max_reverse, "max_reverse", 0, 1 << 20, "an integer in [0, 2^20]");
  const int32_t* g = graph.data();
  for (py::ssize_t i = 0; i < graph.size(); ++i)
    if (g[i] < 0 || g[i] >= n)
      fail("graph indices must lie in [0, " + std::to_string(n) + "), got " + std::to_string(g[i]) +
           " at flat index " + std::to_string(i));
  std::vector<int64_t> indptr;
  std::vector<int32_t> to;
  {
    py::gil_scoped_release release;
    uec::knn_search_graph(n, g, graph_sq_dist.data(), static_cast<int>(graph.shape(1)), max_reverse,
                          indptr, to);
  }
  py::array_t<int64_t> ip(static_cast<py::ssize_t>(indptr.size()));
  py::array_t<int32_t> ix(static_cast<py::ssize_t>(to.size()));
  std::copy(indptr.begin(), indptr.end(), ip.mutable_data());
  std::copy(to.begin(), to.end(), ix.mutable_data());
  return py::make_tuple(ip, ix);
}

py::tuple knn_search(CArray<float> data, CArray<int64_t> indptr, CArray<int32_t> adj,
                     CArray<float> queries, int k, int ef, int n_entries, uint64_t seed,
                     int n_threads, py::object entries_obj) {
  check_2d(data, "data", -1, -1);
  const py::ssize_t n = data.shape(0);
  if (n < 1) fail("data must have at least one row, got 0");
  if (n >= INT32_MAX) fail("data has " + std::to_string(n) + " rows; at most 2^31 - 2 are supported");
  check_1d(indptr, "indptr", n + 1);
  check_1d(adj, "adj", -1);
  const int64_t* ip = indptr.data();
  if (ip[0] != 0 || ip[n] != adj.shape(0)) fail("indptr must start at 0 and end at len(adj)");
  for (py::ssize_t i = 0; i < n; ++i)
    if (ip[i + 1] < ip[i]) fail("indptr must be non-decreasing");
  const int32_t* a = adj.data();
  for (py::ssize_t i = 0; i < adj.shape(0); ++i)
    if (a[i] < 0 || a[i] >= n)
      fail("adj indices must lie in [0, " + std::to_string(n) + "), got " + std::to_string(a[i]));
  check_2d(queries, "queries", -1, data.shape(1));
  check_int(k, "k (n_neighbors)", 1, n, ("an integer in [1, n_samples = " + std::to_string(n) + "]").c_str());
  check_int(ef, "ef", 1, 1 << 20, "an integer in [1, 2^20]");
  check_int(n_entries, "n_entries", 1, 1 << 20, "an integer in [1, 2^20]");
  check_finite(data, "data");
  check_finite(queries, "queries");
  uec::SearchParams p;
  p.k = k;
  p.ef = ef;
  p.n_entries = n_entries;
  p.seed = seed;
  p.n_threads = checked_threads(n_threads, "n_threads");
  const py::ssize_t m = queries.shape(0);
  CArray<int32_t> own;
  int n_own = 0;
  if (!entries_obj.is_none()) {
    own = entries_obj.cast<CArray<int32_t>>();
    check_2d(own, "entries", m, -1);
    n_own = static_cast<int>(own.shape(1));
    for (py::ssize_t i = 0; i < own.size(); ++i)
      if (own.data()[i] < -1 || own.data()[i] >= n)
        fail("entries must lie in [-1, " + std::to_string(n) + "), got " +
             std::to_string(own.data()[i]));
  }
  py::array_t<int32_t> idx({m, static_cast<py::ssize_t>(k)});
  py::array_t<float> dist({m, static_cast<py::ssize_t>(k)});
  int32_t* op = idx.mutable_data();
  float* dp = dist.mutable_data();
  {
    py::gil_scoped_release release;
    uec::knn_search(data.data(), n, static_cast<int>(data.shape(1)), ip, a, queries.data(), m, p,
                    op, dp, n_own ? own.data() : nullptr, n_own);
  }
  return py::make_tuple(idx, dist);
}

py::array_t<int32_t> leiden(CArray<int64_t> indptr, CArray<int32_t> indices, CArray<double> weights,
                            CArray<double> node_weights, double gamma, int n_iterations,
                            double beta, uint64_t seed, py::object start) {
  check_1d(indptr, "indptr", -1);
  if (indptr.shape(0) < 1) fail("indptr must have at least one entry (n + 1)");
  const py::ssize_t n = indptr.shape(0) - 1;
  if (n >= INT32_MAX) fail("the graph has " + std::to_string(n) + " nodes; at most 2^31 - 2 are supported");
  check_1d(indices, "indices", -1);
  check_1d(weights, "weights", indices.shape(0));
  check_1d(node_weights, "node_weights", n);
  const int64_t* ip = indptr.data();
  if (ip[0] != 0 || ip[n] != indices.shape(0)) fail("indptr must start at 0 and end at len(indices)");
  for (py::ssize_t i = 0; i < n; ++i)
    if (ip[i + 1] < ip[i]) fail("indptr must be non-decreasing");
  const int32_t* a = indices.data();
  for (py::ssize_t i = 0; i < indices.shape(0); ++i)
    if (a[i] < 0 || a[i] >= n)
      fail("indices must lie in [0, " + std::to_string(n) + "), got " + std::to_string(a[i]));
  const double* w = weights.data();
  for (py::ssize_t i = 0; i < weights.shape(0); ++i)
    if (!(w[i] >= 0.0) || !std::isfinite(w[i]))
      fail("weights must be finite and >= 0, got " + std::to_string(w[i]) + " at index " + std::to_string(i));
  const double* nw = node_weights.data();
  for (py::ssize_t i = 0; i < n; ++i)
    if (!(nw[i] >= 0.0) || !std::isfinite(nw[i]))
      fail("node_weights must be finite and >= 0, got " + std::to_string(nw[i]) + " at index " + std::to_string(i));
  check_real(gamma, "gamma (resolution)", 0.0, true);
  check_int(n_iterations, "n_iterations", 1, 1000, "an integer in [1, 1000]");
  check_real(beta, "beta", 0.0, true);
  py::array_t<int32_t> out(n);
  int32_t* op = out.mutable_data();
  const bool from_start = !start.is_none();
  if (from_start) {
    CArray<int32_t> s = start.cast<CArray<int32_t>>();
    check_1d(s, "start", n);
    for (py::ssize_t i = 0; i < n; ++i) {
      if (s.data()[i] < 0 || s.data()[i] >= n)
        fail("start labels must lie in [0, " + std::to_string(n) + "), got " + std::to_string(s.data()[i]));
      op[i] = s.data()[i];
    }
  }
  {
    py::gil_scoped_release release;
    uec::leiden(n, ip, a, w, nw, gamma, n_iterations, beta, seed, from_start, op);
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled CPU core of uec (OpenMP epochs of UEC)";

  py::class_<uec::EpochParams>(m, "EpochParams")
      .def(py::init<>())
      .def_readwrite("a", &uec::EpochParams::a)
      .def_readwrite("b", &uec::EpochParams::b)
      .def_readwrite("gamma", &uec::EpochParams::gamma)
      .def_readwrite("negative_sample_rate", &uec::EpochParams::negative_sample_rate)
      .def_readwrite("alpha", &uec::EpochParams::alpha)
      .def_readwrite("beta", &uec::EpochParams::beta)
      .def_readwrite("learning_rate", &uec::EpochParams::learning_rate)
      .def_readwrite("centre_lr", &uec::EpochParams::centre_lr)
      .def_readwrite("target_power", &uec::EpochParams::target_power)
      .def_readwrite("mode", &uec::EpochParams::mode)
      .def_readwrite("clip_mode", &uec::EpochParams::clip_mode)
      .def_readwrite("schedule", &uec::EpochParams::schedule)
      .def_readwrite("step_every", &uec::EpochParams::step_every)
      .def_readwrite("step_factor", &uec::EpochParams::step_factor)
      .def_readwrite("centre_update", &uec::EpochParams::centre_update)
      .def_readwrite("n_epochs_total", &uec::EpochParams::n_epochs_total)
      .def_readwrite("attract_scale", &uec::EpochParams::attract_scale)
      .def_readwrite("seed", &uec::EpochParams::seed)
      .def_readwrite("tol", &uec::EpochParams::tol)
      .def_readwrite("min_joint_epochs", &uec::EpochParams::min_joint_epochs)
      .def_readwrite("n_threads", &uec::EpochParams::n_threads);

  m.def("optimize", &optimize, py::arg("embedding").noconvert(), py::arg("centres"),
        py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
        py::arg("epochs_per_sample").noconvert(), py::arg("next_sample").noconvert(),
        py::arg("next_negative").noconvert(), py::arg("labels"), py::arg("tail"),
        py::arg("params"), py::arg("epoch_begin"), py::arg("epoch_end"),
        py::arg("callback") = py::none(),
        "Run epochs [epoch_begin, epoch_end) in place; returns a dict of counters.");
  m.def("cluster_stats", &cluster_stats, py::arg("embedding").noconvert(), py::arg("centres").noconvert(),
        py::arg("a"), py::arg("b"), py::arg("p"), py::arg("exact"), py::arg("n_jobs") = 1);
  m.def("cluster_gradients", &cluster_gradients, py::arg("embedding").noconvert(),
        py::arg("centres").noconvert(), py::arg("a"), py::arg("b"), py::arg("p"), py::arg("mode"),
        py::arg("n_jobs") = 1);
  m.def("soft_assign", &soft_assign, py::arg("embedding").noconvert(), py::arg("centres").noconvert(),
        py::arg("a"), py::arg("b"), py::arg("p"), py::arg("matrices") = false, py::arg("n_jobs") = 1);
  m.def("ce_steps", &ce_steps, py::arg("x").noconvert(), py::arg("y").noconvert(), py::arg("a"),
        py::arg("b"), py::arg("gamma") = 1.0f, py::arg("clip_mode") = 0);
  m.def("pow_pos", &pow_pos, py::arg("r").noconvert(), py::arg("b"),
        "r ** b (r > 0, flattened) as the CE steps compute it.");
  m.def("log1p_pos", &log1p_pos, py::arg("u").noconvert(),
        "log(1 + u) (u >= 0, flattened) as the joint epochs' log S computes it.");
  m.def("nn_descent", &nn_descent, py::arg("X").noconvert(), py::arg("k"), py::arg("n_trees"),
        py::arg("leaf_size"), py::arg("max_candidates"), py::arg("n_iters"), py::arg("delta"),
        py::arg("seed"), py::arg("heap_k") = 0, py::arg("proj_dim") = -1, py::arg("n_threads") = 1,
        "Euclidean kNN of every row of X by NN-descent: (indices (n, k) int32 with the row itself "
        "first, squared distances (n, k) float32, stats dict). Same bits for a seed whatever "
        "n_threads.");
  m.def("knn_search_graph", &knn_search_graph, py::arg("graph").noconvert(),
        py::arg("graph_sq_dist").noconvert(), py::arg("max_reverse"),
        "The search graph of a kNN graph, CSR (indptr int64, indices int32): each point's "
        "neighbours and up to max_reverse of the points listing it.");
  m.def("knn_search", &knn_search, py::arg("data").noconvert(), py::arg("indptr").noconvert(),
        py::arg("indices").noconvert(), py::arg("queries").noconvert(), py::arg("k"),
        py::arg("ef") = 64, py::arg("n_entries") = 64, py::arg("seed") = 0, py::arg("n_threads") = 1,
        py::arg("entries") = py::none(),
        "k nearest rows of data to each query by a beam search of a search graph (from "
        "knn_search_graph) from n_entries fixed seeded entry points and, with entries (m, e) "
        "int32 (-1: none), each query's own: (indices (m, k) int32, squared distances (m, k) "
        "float32), rows sorted.");
  m.def("leiden", &leiden, py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
        py::arg("weights").noconvert(), py::arg("node_weights").noconvert(), py::arg("gamma"),
        py::arg("n_iterations") = 2, py::arg("beta") = 0.01, py::arg("seed") = 0,
        py::arg("start") = py::none(),
        "Leiden communities of the constant Potts model with node weights on a symmetric CSR "
        "graph (diagonal ignored): int32 labels numbered by first appearance. Node weights = "
        "degrees and gamma = resolution / total weight give modularity. Deterministic per seed.");
  m.def("resolve_threads", &uec::resolve_threads, py::arg("n_jobs"));
  m.def("have_openmp", &uec::have_openmp);
  m.def(
      "epoch_kernel",
      [](int d, int64_t n_tail) {
        static const char* names[] = {"serial", "interleaved", "avx2", "avx512"};
        return std::string(names[uec::pick_epoch_kernel(d, n_tail)]);
      },
      py::arg("d"), py::arg("n_tail"),
      "The CE path the epochs take for a d-dimensional embedding (UEC_EPOCH_KERNEL forces one).");
  m.def(
      "cluster_kernel",
      [](int d, int mode, double target_power) {
        return std::string(uec::use_cluster_avx512(d, mode, target_power) ? "avx512" : "scalar");
      },
      py::arg("d"), py::arg("mode"), py::arg("target_power"),
      "The rows the joint epochs' clustering step takes (UEC_CLUSTER_KERNEL=scalar forces the "
      "scalar ones).");
  m.attr("MODE_CE") = static_cast<int>(uec::CE_ONLY);
  m.attr("MODE_COMMA") = static_cast<int>(uec::COMMA);
  m.attr("MODE_LIGHT_PLUS") = static_cast<int>(uec::LIGHT_PLUS);
  m.attr("MODE_PLUS") = static_cast<int>(uec::PLUS);
}
