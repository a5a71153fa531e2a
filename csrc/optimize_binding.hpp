// The `optimize` entry point shared by every compiled module that runs UEC epochs: the CPU core
// (_core), the CUDA module (_cuda) and the test-only CPU emulation of the CUDA kernels
// (_cuda_emu). Each module supplies its own epoch runner; the arguments, their checks, the
// callback/Ctrl-C handling and the returned counters are identical, so one Python call site can
// dispatch to any of them.
//
// Arrays must arrive with the exact dtype and C order (they are refused otherwise, never
// silently copied: several are updated in place). Shapes and index ranges are checked here, so a
// bad array raises ValueError instead of reading out of bounds. The GIL is released around the
// run. `callback`: None (Ctrl-C still checked at each epoch), a callable (epoch, change) -> bool
// (False stops the run), or an int32 array of one element, a stop flag read without the GIL.
#pragma once
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <exception>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/edges.hpp"
#include "core/math.hpp"
#include "cpu/epochs.hpp"

namespace uec_py {

namespace py = pybind11;

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

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

inline void check_ab(double a, double b) {
  if (!(a > 0.0) || !std::isfinite(a)) fail("a must be a positive finite number, got " + std::to_string(a));
  if (!(b > 0.0) || !std::isfinite(b)) fail("b must be a positive finite number, got " + std::to_string(b));
}

inline void check_mode(int mode) {
  if (mode < uec::CE_ONLY || mode > uec::PLUS) fail("mode must be 0 (ce), 1 (comma), 2 (light plus) or 3 (plus), got " + std::to_string(mode));
}

// A finite float32 array: NaN or infinity in an embedding or centres would spread to every point
// it touches, so it is refused at the door.
inline void check_finite(const CArray<float>& a, const char* name) {
  const float* p = a.data();
  const py::ssize_t size = a.size();
  for (py::ssize_t i = 0; i < size; ++i)
    if (!std::isfinite(p[i])) fail(std::string(name) + " contains NaN or infinity at flat index " + std::to_string(i));
}

// A real parameter that must be finite and >= low (or > low when open).
inline void check_real(double v, const char* name, double low, bool open) {
  if (!std::isfinite(v) || v < low || (open && v == low)) {
    std::ostringstream os;
    os << name << " must be a finite number " << (open ? "> " : ">= ") << low << ", got " << v;
    fail(os.str());
  }
}

// The upper bound on threads: more would only oversubscribe, and thousands of OpenMP threads can
// fail to start (libgomp aborts the process then).
inline constexpr int kMaxThreads = 1024;

inline int checked_threads(int n_jobs, const char* name) {
  if (n_jobs == 0) fail(std::string(name) + "=0 is not allowed; use a positive count or -1 for all cores");
  int t = uec::resolve_threads(n_jobs);
  if (t > kMaxThreads) fail(std::string(name) + "=" + std::to_string(n_jobs) + " asks for more than " + std::to_string(kMaxThreads) + " threads");
  return t;
}

// Centres index as k * d + t in int: keep C * d (and the partials' C * (4d + 2)) well inside int.
inline void check_centres_size(py::ssize_t C, py::ssize_t d) {
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

inline void check_params(const uec::EpochParams& p) {
  check_real(p.gamma, "gamma (repulsion_strength)", 0.0, false);
  check_real(p.negative_sample_rate, "negative_sample_rate", 0.0, true);
  // Each due edge records about this many negatives per epoch (cpu/lanes.hpp keeps a block's
  // updates): bounded so that the recorder's memory is too.
  if (p.negative_sample_rate > uec::kMaxNegativeSampleRate) {
    std::ostringstream os;
    os << "negative_sample_rate must be <= " << uec::kMaxNegativeSampleRate << ", got " << p.negative_sample_rate;
    fail(os.str());
  }
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

// Signature of uec::run_epochs; every backend implements it.
using EpochRunner = std::function<uec::RunResult(
    const uec::Graph& g, float* Z, int d, float* M, int C, const float* tail, int32_t* labels_t,
    int epoch_begin, int epoch_end, const uec::EpochParams& p, const uec::EpochCallback& cb)>;

inline py::dict optimize_with(const EpochRunner& run, CArray<float> Z, py::object M_obj,
                              CArray<int64_t> indptr, CArray<int32_t> indices,
                              CArray<float> epochs_per_sample, CArray<float> next_sample,
                              CArray<float> next_negative, py::object labels_obj,
                              py::object tail_obj, const uec::EpochParams& params,
                              int epoch_begin, int epoch_end, py::object callback) {
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
  // A stop flag instead of a callable: read at each epoch's end without the GIL, so the epochs
  // never wait for Python (a fit runs them in a thread beside its graph clustering, whose
  // igraph call holds the GIL for seconds); the run stops once the flag is non-zero.
  CArray<int32_t> flag_arr;
  const int32_t* stop_flag = nullptr;
  if (py::isinstance<py::array>(callback)) {
    flag_arr = exact_array<int32_t>(callback, "callback (a stop flag)", "int32");
    if (flag_arr.size() != 1) fail("callback as a stop flag must have exactly one element, got " + std::to_string(flag_arr.size()));
    stop_flag = flag_arr.data();
  }
  bool have_cb = !callback.is_none() && stop_flag == nullptr;
  uec::EpochCallback cb = [&](int epoch, double change) -> bool {
    // (a volatile load: another thread sets it; an aligned int32 is read whole)
    if (stop_flag != nullptr) return *static_cast<const volatile int32_t*>(stop_flag) == 0;
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
    res = run(g, z, d, M, C, tail, labels, epoch_begin, epoch_end, params, cb);
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

// Registers `name` with the argument list of `optimize` (plus any trailing extra py::arg of f).
template <typename F, typename... Extra>
void def_optimize(py::module_& m, const char* name, F&& f, const char* doc, Extra&&... extra) {
  m.def(name, std::forward<F>(f), py::arg("embedding").noconvert(), py::arg("centres"),
        py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
        py::arg("epochs_per_sample").noconvert(), py::arg("next_sample").noconvert(),
        py::arg("next_negative").noconvert(), py::arg("labels"), py::arg("tail"),
        py::arg("params"), py::arg("epoch_begin"), py::arg("epoch_end"),
        py::arg("callback") = py::none(), std::forward<Extra>(extra)..., doc);
}

}  // namespace uec_py
