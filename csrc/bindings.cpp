// pybind11 bindings of the CPU core. Arrays must arrive with the exact dtype and C order (they
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
#include "cpu/epochs.hpp"

namespace py = pybind11;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

template <typename T>
void check_2d(const CArray<T>& a, const char* name, py::ssize_t rows, py::ssize_t cols) {
  if (a.ndim() != 2) fail(std::string(name) + " must be 2-D, got " + std::to_string(a.ndim()) + "-D");
  if ((rows >= 0 && a.shape(0) != rows) || (cols >= 0 && a.shape(1) != cols)) {
    std::ostringstream os;
    os << name << " has shape (" << a.shape(0) << ", " << a.shape(1) << "), expected (";
    os << (rows >= 0 ? std::to_string(rows) : "any") << ", " << (cols >= 0 ? std::to_string(cols) : "any") << ")";
    fail(os.str());
  }
}

template <typename T>
void check_1d(const CArray<T>& a, const char* name, py::ssize_t len) {
  if (a.ndim() != 1) fail(std::string(name) + " must be 1-D, got " + std::to_string(a.ndim()) + "-D");
  if (len >= 0 && a.shape(0) != len)
    fail(std::string(name) + " has length " + std::to_string(a.shape(0)) + ", expected " + std::to_string(len));
}

void check_ab(double a, double b) {
  if (!(a > 0.0) || !std::isfinite(a)) fail("a must be a positive finite number, got " + std::to_string(a));
  if (!(b > 0.0) || !std::isfinite(b)) fail("b must be a positive finite number, got " + std::to_string(b));
}

// A finite float32 array: NaN or infinity in an embedding or centres would spread to every point
// it touches, so it is refused at the door.
void check_finite(const CArray<float>& a, const char* name) {
  const float* p = a.data();
  const py::ssize_t size = a.size();
  for (py::ssize_t i = 0; i < size; ++i)
    if (!std::isfinite(p[i])) fail(std::string(name) + " contains NaN or infinity at flat index " + std::to_string(i));
}

// A real parameter that must be finite and >= low (or > low when open).
void check_real(double v, const char* name, double low, bool open) {
  if (!std::isfinite(v) || v < low || (open && v == low)) {
    std::ostringstream os;
    os << name << " must be a finite number " << (open ? "> " : ">= ") << low << ", got " << v;
    fail(os.str());
  }
}

// The upper bound on threads: more would only oversubscribe, and thousands of OpenMP threads can
// fail to start (libgomp aborts the process then).
constexpr int kMaxThreads = 1024;

int checked_threads(int n_jobs, const char* name) {
  if (n_jobs == 0) fail(std::string(name) + "=0 is not allowed; use a positive count or -1 for all cores");
  int t = uec::resolve_threads(n_jobs);
  if (t > kMaxThreads) fail(std::string(name) + "=" + std::to_string(n_jobs) + " asks for more than " + std::to_string(kMaxThreads) + " threads");
  return t;
}

// Centres index as k * d + t in int: keep C * d (and the partials' C * (4d + 2)) well inside int.
void check_centres_size(py::ssize_t C, py::ssize_t d) {
  if (C * (4 * d + 2) >= (py::ssize_t(1) << 31))
    fail("centres of shape (" + std::to_string(C) + ", " + std::to_string(d) + ") are too large for the core");
}

// An optional array argument taken as py::object (it may be None) must already be what the core
// writes into: a cast would silently convert a Fortran-ordered, strided or other-typed array into
// a temporary copy, and the in-place updates would be lost.
template <typename T>
CArray<T> exact_array(const py::object& obj, const char* name, const char* dtype) {
  if (!py::isinstance<CArray<T>>(obj))
    throw py::type_error(std::string(name) + " must be a C-contiguous " + dtype + " numpy array, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))) +
                         (py::isinstance<py::array>(obj) ? " of dtype " + std::string(py::str(obj.attr("dtype"))) + " (or not C-contiguous)" : ""));
  return obj.cast<CArray<T>>();
}

void check_params(const uec::EpochParams& p) {
  check_real(p.gamma, "gamma (repulsion_strength)", 0.0, false);
  check_real(p.negative_sample_rate, "negative_sample_rate", 0.0, true);
  check_real(p.alpha, "alpha", 0.0, false);
  check_real(p.beta, "beta", 0.0, false);
  check_real(p.learning_rate, "learning_rate", 0.0, false);
  check_real(p.centre_lr, "centre_lr", 0.0, false);
  check_real(p.target_power, "target_power", 0.0, true);
  check_real(p.step_factor, "step_factor", 0.0, false);
  check_real(p.attract_scale, "attract_scale", 0.0, false);
  check_real(p.tol, "tol", 0.0, false);
  if (p.clip_mode < 0 || p.clip_mode > 2) fail("clip_mode must be 0, 1 or 2, got " + std::to_string(p.clip_mode));
  if (p.schedule < 0 || p.schedule > 1) fail("schedule must be 0 (linear) or 1 (step), got " + std::to_string(p.schedule));
  if (p.step_every < 1) fail("step_every must be >= 1, got " + std::to_string(p.step_every));
  if (p.centre_update < 0 || p.centre_update > 2)
    fail("centre_update must be 0 (gradient), 1 (mean) or 2 (fixed point), got " + std::to_string(p.centre_update));
  if (p.n_epochs_total < 1) fail("n_epochs_total must be >= 1, got " + std::to_string(p.n_epochs_total));
  if (p.min_joint_epochs < 0) fail("min_joint_epochs must be >= 0, got " + std::to_string(p.min_joint_epochs));
  if (p.n_threads < 1 || p.n_threads > kMaxThreads)
    fail("n_threads must be in [1, " + std::to_string(kMaxThreads) + "], got " + std::to_string(p.n_threads));
}

void check_mode(int mode) {
  if (mode < uec::CE_ONLY || mode > uec::PLUS) fail("mode must be 0 (ce), 1 (comma), 2 (light plus) or 3 (plus), got " + std::to_string(mode));
}

py::dict optimize(CArray<float> Z, py::object M_obj, CArray<int64_t> indptr, CArray<int32_t> indices,
                  CArray<float> epochs_per_sample, CArray<float> next_sample,
                  CArray<float> next_negative, py::object labels_obj, py::object tail_obj,
                  const uec::EpochParams& params, int epoch_begin, int epoch_end,
                  py::object callback) {
  check_2d(Z, "embedding", -1, -1);
  const py::ssize_t n = Z.shape(0);
  const int d = static_cast<int>(Z.shape(1));
  if (d < 1) fail("embedding must have at least one column");
  check_1d(indptr, "indptr", n + 1);
  const py::ssize_t nnz = indices.ndim() == 1 ? indices.shape(0) : -1;
  check_1d(indices, "indices", -1);
  check_1d(epochs_per_sample, "epochs_per_sample", nnz);
  check_1d(next_sample, "next_sample", nnz);
  check_1d(next_negative, "next_negative", nnz);
  check_mode(params.mode);
  check_ab(params.a, params.b);
  check_params(params);
  if (epoch_begin < 0 || epoch_end < epoch_begin) fail("epoch range must satisfy 0 <= begin <= end");
  if (n >= (py::ssize_t(1) << 31)) fail("the embedding has more rows than int32 indices can address");
  check_finite(Z, "embedding");

  const float* tail = nullptr;
  CArray<float> tail_arr;
  py::ssize_t n_tail = n;
  if (!tail_obj.is_none()) {
    tail_arr = exact_array<float>(tail_obj, "tail", "float32");
    check_2d(tail_arr, "tail", -1, d);
    check_finite(tail_arr, "tail");
    tail = tail_arr.data();
    n_tail = tail_arr.shape(0);
  }
  if (n_tail < 1 && nnz > 0) fail("the tail embedding is empty but the graph has edges");

  const int64_t* ip = indptr.data();
  if (ip[0] != 0 || ip[n] != nnz) fail("indptr must start at 0 and end at len(indices)");
  for (py::ssize_t i = 0; i < n; ++i)
    if (ip[i + 1] < ip[i]) fail("indptr must be non-decreasing");
  const int32_t* ix = indices.data();
  const float* eps = epochs_per_sample.data();
  const float* ns = next_sample.data();
  const float* nn = next_negative.data();
  for (py::ssize_t e = 0; e < nnz; ++e) {
    if (ix[e] < 0 || ix[e] >= n_tail)
      fail("indices[" + std::to_string(e) + "] = " + std::to_string(ix[e]) + " is outside [0, " + std::to_string(n_tail) + ")");
    if (!(eps[e] > 0.0f) || !std::isfinite(eps[e]))
      fail("epochs_per_sample must be positive and finite, got " + std::to_string(eps[e]) + " at " + std::to_string(e));
    // The sampling state is an epoch count: a negative or infinite one would ask for an unbounded
    // number of negative samples (and the float-to-int conversion would be undefined).
    if (!(ns[e] >= 0.0f) || !std::isfinite(ns[e]))
      fail("next_sample must be finite and >= 0, got " + std::to_string(ns[e]) + " at " + std::to_string(e));
    if (!(nn[e] >= 0.0f) || !std::isfinite(nn[e]))
      fail("next_negative must be finite and >= 0, got " + std::to_string(nn[e]) + " at " + std::to_string(e));
  }

  float* M = nullptr;
  int C = 0;
  CArray<float> M_arr;
  int32_t* labels = nullptr;
  CArray<int32_t> lab_arr;
  if (params.mode != uec::CE_ONLY) {
    M_arr = exact_array<float>(M_obj, "centres", "float32");
    check_2d(M_arr, "centres", -1, d);
    if (M_arr.shape(0) < 1) fail("centres must have at least one row");
    check_centres_size(M_arr.shape(0), d);
    check_finite(M_arr, "centres");
    C = static_cast<int>(M_arr.shape(0));
    M = M_arr.mutable_data();
    lab_arr = exact_array<int32_t>(labels_obj, "labels", "int32");
    check_1d(lab_arr, "labels", n);
    labels = lab_arr.mutable_data();
  }

  uec::Graph g;
  g.n_head = n;
  g.n_tail = n_tail;
  g.indptr = ip;
  g.indices = ix;
  g.epochs_per_sample = eps;
  g.next_sample = next_sample.mutable_data();
  g.next_negative = next_negative.mutable_data();

  std::exception_ptr cb_error;
  bool have_cb = !callback.is_none();
  uec::EpochCallback cb = [&](int epoch, double change) -> bool {
    py::gil_scoped_acquire acquire;
    if (PyErr_CheckSignals() != 0) {
      cb_error = std::make_exception_ptr(py::error_already_set());
      return false;
    }
    if (!have_cb) return true;
    try {
      py::object r = callback(epoch, change);
      return r.is_none() || r.cast<bool>();
    } catch (...) {
      cb_error = std::current_exception();
      return false;
    }
  };

  float* z = Z.mutable_data();
  uec::RunResult res;
  {
    py::gil_scoped_release release;
    res = uec::run_epochs(g, z, d, M, C, tail, labels, epoch_begin, epoch_end, params, cb);
  }
  if (cb_error) std::rethrow_exception(cb_error);
  py::dict out;
  out["epochs_run"] = res.epochs_run;
  out["joint_epochs"] = res.joint_epochs;
  out["last_change"] = res.last_change;
  out["converged"] = res.converged;
  out["interrupted"] = res.interrupted;
  return out;
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
  m.def("resolve_threads", &uec::resolve_threads, py::arg("n_jobs"));
  m.def("have_openmp", &uec::have_openmp);
  m.attr("MODE_CE") = static_cast<int>(uec::CE_ONLY);
  m.attr("MODE_COMMA") = static_cast<int>(uec::COMMA);
  m.attr("MODE_LIGHT_PLUS") = static_cast<int>(uec::LIGHT_PLUS);
  m.attr("MODE_PLUS") = static_cast<int>(uec::PLUS);
}
