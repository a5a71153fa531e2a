// The `optimize` entry point shared by every compiled module that runs UEC epochs: the CPU core
// (_core), the CUDA module (_cuda) and the test-only CPU emulation of the CUDA kernels
// (_cuda_emu). Each module supplies its own epoch runner; the arguments, their checks, the
// callback/Ctrl-C handling and the returned counters are identical, so one Python call site can
// dispatch to any of them.
//
// Arrays must arrive with the exact dtype and C order (they are refused otherwise, never
// silently copied: several are updated in place). Shapes and index ranges are checked here, so a
// bad array raises ValueError instead of reading out of bounds. The GIL is released around the
// run.
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
  if (!(params.negative_sample_rate > 0.0f)) fail("negative_sample_rate must be > 0");
  if (params.clip_mode < 0 || params.clip_mode > 2) fail("clip_mode must be 0, 1 or 2");
  if (epoch_begin < 0 || epoch_end < epoch_begin) fail("epoch range must satisfy 0 <= begin <= end");

  const float* tail = nullptr;
  CArray<float> tail_arr;
  py::ssize_t n_tail = n;
  if (!tail_obj.is_none()) {
    tail_arr = tail_obj.cast<CArray<float>>();
    check_2d(tail_arr, "tail", -1, d);
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
  for (py::ssize_t e = 0; e < nnz; ++e) {
    if (ix[e] < 0 || ix[e] >= n_tail)
      fail("indices[" + std::to_string(e) + "] = " + std::to_string(ix[e]) + " is outside [0, " + std::to_string(n_tail) + ")");
    if (!(eps[e] > 0.0f) || !std::isfinite(eps[e]))
      fail("epochs_per_sample must be positive and finite");
  }

  float* M = nullptr;
  int C = 0;
  CArray<float> M_arr;
  int32_t* labels = nullptr;
  CArray<int32_t> lab_arr;
  if (params.mode != uec::CE_ONLY) {
    M_arr = M_obj.cast<CArray<float>>();
    check_2d(M_arr, "centres", -1, d);
    C = static_cast<int>(M_arr.shape(0));
    if (C < 1) fail("centres must have at least one row");
    M = M_arr.mutable_data();
    lab_arr = labels_obj.cast<CArray<int32_t>>();
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
