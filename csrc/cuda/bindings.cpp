// pybind11 bindings of the CUDA module (uec._cuda). Compiled by the host C++ compiler, so nvcc
// never sees pybind11; the kernels and the CUDA runtime calls are in driver.cu.
#include <pybind11/pybind11.h>

#include <string>

#include "cuda/driver.hpp"
#include "cuda/kernel_bodies.hpp"
#include "optimize_binding.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "CUDA kernels of uec (the UEC epochs on one GPU)";
  py::module_::import("uec._core");  // registers EpochParams
  uec_py::def_optimize(
      m, "optimize",
      [](uec_py::CArray<float> Z, py::object M, uec_py::CArray<int64_t> indptr,
         uec_py::CArray<int32_t> indices, uec_py::CArray<float> epochs_per_sample,
         uec_py::CArray<float> next_sample, uec_py::CArray<float> next_negative,
         py::object labels, py::object tail, const uec::EpochParams& params, int epoch_begin,
         int epoch_end, py::object callback) {
        return uec_py::optimize_with(uec::gpu::run_epochs_cuda, Z, M, indptr, indices,
                                     epochs_per_sample, next_sample, next_negative, labels, tail,
                                     params, epoch_begin, epoch_end, callback);
      },
      "As uec._core.optimize, on the current CUDA device: the arrays are copied there once, "
      "all epochs run there, and the results are copied back in place.");
  m.def("device_count", []() { return uec::gpu::device_count(); },
        "Number of usable CUDA devices (0 when there is none or no driver).");
  m.def("device_status", []() {
        std::string why;
        int n = uec::gpu::device_count(&why);
        return py::make_tuple(n, why);
      },
      "(device count, why there is none: the CUDA runtime's message; empty when count > 0).");
  m.def("device_name", &uec::gpu::device_name, py::arg("index") = 0);
  m.def("runtime_version", &uec::gpu::runtime_version,
        "CUDA runtime version this module was built with (e.g. 13000 for 13.0).");
  m.attr("BLOCK_DIM") = uec::gpu::kBlockDim;
}
