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
#include "cpu/epochs.hpp"
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
