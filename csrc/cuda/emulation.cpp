// Test-only CPU emulation of the CUDA epochs (module uec._cuda_emu, always built).
//
// It runs the host driver of csrc/cuda/epoch_driver.hpp with a backend whose "device memory" is
// host memory and whose kernel launch walks the grid serially: block after block, and inside a
// block each `threads` phase for thread 0 .. blockDim-1 in turn (a legal interleaving of the
// GPU's threads, since the programs only exchange data across `sync` barriers). The block
// programs are the ones csrc/cuda/driver.cu launches on the device, compiled here by the host
// C++ compiler. tests/test_cuda_emulation.py compares this module with the OpenMP core.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/epoch_driver.hpp"
#include "cuda/kernel_bodies.hpp"
#include "optimize_binding.hpp"

namespace py = pybind11;

namespace {

// What a block program sees of "its" block, for one block at a time.
struct EmuExec {
  int64_t blk;
  int bd;
  double* sh;
  int64_t block() const { return blk; }
  int block_dim() const { return bd; }
  double* shared() const { return sh; }
  template <class F>
  void threads(F&& f) const {
    for (int t = 0; t < bd; ++t) f(t);
  }
  void sync() const {}
};

class EmuDev {
 public:
  explicit EmuDev(int block_dim) : bd_(block_dim), shared_(uec::gpu::shared_doubles(block_dim)) {}
  int block_dim() const { return bd_; }

  template <class T>
  T* alloc(int64_t n) {
    // One heap block per buffer, as cudaMalloc gives; zeroed.
    bufs_.emplace_back(new unsigned char[sizeof(T) * static_cast<size_t>(n > 0 ? n : 1)]());
    return reinterpret_cast<T*>(bufs_.back().get());
  }
  template <class T>
  void upload(T* dst, const T* src, int64_t n) { move(dst, src, n); }
  template <class T>
  void download(T* dst, const T* src, int64_t n) { move(dst, src, n); }
  template <class T>
  void copy(T* dst, const T* src, int64_t n) { move(dst, src, n); }
  template <class T>
  void zero(T* p, int64_t n) {
    if (n > 0) std::memset(p, 0, sizeof(T) * static_cast<size_t>(n));
  }
  void synchronize() {}

  template <class Prog>
  void launch(const Prog& prog, int64_t grid) {
    if (grid < 1) throw std::logic_error("kernel launched with an empty grid");
    for (int64_t b = 0; b < grid; ++b) {
      EmuExec ex{b, bd_, shared_.data()};
      prog(ex);
    }
  }

 private:
  template <class T>
  static void move(T* dst, const T* src, int64_t n) {
    if (n > 0) std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(n));
  }
  int bd_;
  std::vector<double> shared_;
  std::vector<std::unique_ptr<unsigned char[]>> bufs_;
};

py::dict optimize(uec_py::CArray<float> Z, py::object M, uec_py::CArray<int64_t> indptr,
                  uec_py::CArray<int32_t> indices, uec_py::CArray<float> epochs_per_sample,
                  uec_py::CArray<float> next_sample, uec_py::CArray<float> next_negative,
                  py::object labels, py::object tail, const uec::EpochParams& params,
                  int epoch_begin, int epoch_end, py::object callback, int block_dim) {
  if (block_dim < 1 || block_dim > 1024)
    uec_py::fail("block_dim must be in [1, 1024], got " + std::to_string(block_dim));
  auto run = [block_dim](const uec::Graph& g, float* z, int d, float* m, int C, const float* tl,
                         int32_t* lab, int b, int e, const uec::EpochParams& p,
                         const uec::EpochCallback& cb) {
    EmuDev dev(block_dim);
    return uec::gpu::run_epochs_on(dev, g, z, d, m, C, tl, lab, b, e, p, cb);
  };
  return uec_py::optimize_with(run, Z, M, indptr, indices, epochs_per_sample, next_sample,
                               next_negative, labels, tail, params, epoch_begin, epoch_end,
                               callback);
}

}  // namespace

PYBIND11_MODULE(_cuda_emu, m) {
  m.doc() =
      "Test-only CPU emulation of uec's CUDA kernels: the same block programs and host driver, "
      "with the grid run serially on the CPU.";
  py::module_::import("uec._core");  // registers EpochParams
  uec_py::def_optimize(m, "optimize", &optimize,
                       "As uec._core.optimize, through the CUDA path's kernels run serially on "
                       "the CPU; block_dim is the threads per block (the device uses 256).",
                       py::arg("block_dim") = uec::gpu::kBlockDim);
  m.attr("BLOCK_DIM") = uec::gpu::kBlockDim;
}
