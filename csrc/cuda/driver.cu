// CUDA backend of the UEC epochs: thin __global__ kernels over the block programs of
// kernel_bodies.hpp, and the device memory/launch backend for the host driver of
// epoch_driver.hpp. Everything about the epochs themselves lives in those two headers, which the
// CPU emulation (emulation.cpp) compiles too; this file holds only what needs the CUDA runtime.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/driver.hpp"
#include "cuda/epoch_driver.hpp"
#include "cuda/kernel_bodies.hpp"

namespace uec {
namespace gpu {

namespace {

// What a block program sees on the device: its own thread index, barriers, shared memory.
// The members are host/device so the host compilation pass (which never runs them) stays silent.
struct DeviceExec {
  UEC_HD int64_t block() const {
#ifdef __CUDA_ARCH__
    return static_cast<int64_t>(blockIdx.x);
#else
    return 0;
#endif
  }
  UEC_HD int block_dim() const {
#ifdef __CUDA_ARCH__
    return static_cast<int>(blockDim.x);
#else
    return 0;
#endif
  }
  UEC_HD double* shared() const {
#ifdef __CUDA_ARCH__
    extern __shared__ double uec_shared[];
    return uec_shared;
#else
    return nullptr;
#endif
  }
  template <class F>
  UEC_HD void threads(F&& f) const {
#ifdef __CUDA_ARCH__
    f(static_cast<int>(threadIdx.x));
#else
    (void)f;
#endif
  }
  UEC_HD void sync() const {
#ifdef __CUDA_ARCH__
    __syncthreads();
#endif
  }
};

// One kernel per block program (separate names show up in profilers).
__global__ void __launch_bounds__(kBlockDim) stats_pass_kernel(const StatsPass prog) {
  DeviceExec ex;
  prog(ex);
}
__global__ void __launch_bounds__(kBlockDim) block_sums_kernel(const BlockSums prog) {
  DeviceExec ex;
  prog(ex);
}
__global__ void __launch_bounds__(kBlockDim) stats_finish_kernel(const StatsFinish prog) {
  DeviceExec ex;
  prog(ex);
}
__global__ void __launch_bounds__(kBlockDim) edge_pass_kernel(const EdgePass prog) {
  DeviceExec ex;
  prog(ex);
}
__global__ void __launch_bounds__(kBlockDim) cluster_pass_kernel(const ClusterPass prog) {
  DeviceExec ex;
  prog(ex);
}
__global__ void __launch_bounds__(kBlockDim) centre_update_kernel(const CentreUpdate prog) {
  DeviceExec ex;
  prog(ex);
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(err) +
                             " (" + cudaGetErrorString(err) + ")");
}

// Device memory and launches on one stream; frees everything it allocated when destroyed.
class CudaDev {
 public:
  CudaDev() {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~CudaDev() {
    cudaStreamSynchronize(stream_);
    for (void* p : bufs_) cudaFree(p);
    cudaStreamDestroy(stream_);
  }
  CudaDev(const CudaDev&) = delete;
  CudaDev& operator=(const CudaDev&) = delete;

  int block_dim() const { return kBlockDim; }

  template <class T>
  T* alloc(int64_t n) {
    void* p = nullptr;
    const size_t bytes = sizeof(T) * static_cast<size_t>(n > 0 ? n : 1);
    check(cudaMalloc(&p, bytes), "cudaMalloc");
    bufs_.push_back(p);
    check(cudaMemsetAsync(p, 0, bytes, stream_), "cudaMemsetAsync");
    return static_cast<T*>(p);
  }
  template <class T>
  void upload(T* dst, const T* src, int64_t n) {
    if (n > 0)
      check(cudaMemcpyAsync(dst, src, sizeof(T) * n, cudaMemcpyHostToDevice, stream_),
            "cudaMemcpy (host to device)");
  }
  template <class T>
  void download(T* dst, const T* src, int64_t n) {
    if (n > 0)
      check(cudaMemcpyAsync(dst, src, sizeof(T) * n, cudaMemcpyDeviceToHost, stream_),
            "cudaMemcpy (device to host)");
    synchronize();
  }
  template <class T>
  void copy(T* dst, const T* src, int64_t n) {
    if (n > 0)
      check(cudaMemcpyAsync(dst, src, sizeof(T) * n, cudaMemcpyDeviceToDevice, stream_),
            "cudaMemcpy (device to device)");
  }
  template <class T>
  void zero(T* p, int64_t n) {
    if (n > 0) check(cudaMemsetAsync(p, 0, sizeof(T) * n, stream_), "cudaMemsetAsync");
  }
  void synchronize() { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

  void launch(const StatsPass& p, int64_t grid) {
    stats_pass_kernel<<<dims(grid), kBlockDim, shmem(), stream_>>>(p);
    check(cudaGetLastError(), "stats_pass_kernel launch");
  }
  void launch(const BlockSums& p, int64_t grid) {
    block_sums_kernel<<<dims(grid), kBlockDim, 0, stream_>>>(p);
    check(cudaGetLastError(), "block_sums_kernel launch");
  }
  void launch(const StatsFinish& p, int64_t grid) {
    stats_finish_kernel<<<dims(grid), kBlockDim, 0, stream_>>>(p);
    check(cudaGetLastError(), "stats_finish_kernel launch");
  }
  void launch(const EdgePass& p, int64_t grid) {
    edge_pass_kernel<<<dims(grid), kBlockDim, shmem(), stream_>>>(p);
    check(cudaGetLastError(), "edge_pass_kernel launch");
  }
  void launch(const ClusterPass& p, int64_t grid) {
    cluster_pass_kernel<<<dims(grid), kBlockDim, shmem(), stream_>>>(p);
    check(cudaGetLastError(), "cluster_pass_kernel launch");
  }
  void launch(const CentreUpdate& p, int64_t grid) {
    centre_update_kernel<<<dims(grid), kBlockDim, 0, stream_>>>(p);
    check(cudaGetLastError(), "centre_update_kernel launch");
  }

 private:
  static dim3 dims(int64_t grid) {
    // PointBlocks gives at most 1024 blocks; the small passes ceil(len / 256).
    if (grid < 1 || grid > 0x7fffffff) throw std::logic_error("kernel grid out of range");
    return dim3(static_cast<unsigned>(grid));
  }
  static size_t shmem() { return sizeof(double) * static_cast<size_t>(shared_doubles(kBlockDim)); }

  cudaStream_t stream_ = nullptr;
  std::vector<void*> bufs_;
};

}  // namespace

int device_count(std::string* why) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why != nullptr) *why = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear it, so that later calls do not report it again
    return 0;
  }
  if (n == 0 && why != nullptr) *why = "the CUDA runtime reports no device";
  return n;
}

std::string device_name(int index) {
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

int runtime_version() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) return 0;
  return v;
}

RunResult run_epochs_cuda(const Graph& g, float* Z, int d, float* M, int C, const float* tail,
                          int32_t* labels_t, int epoch_begin, int epoch_end,
                          const EpochParams& p, const EpochCallback& on_epoch) {
  std::string why;
  if (device_count(&why) < 1) throw std::runtime_error("no usable CUDA device: " + why);
  CudaDev dev;
  return run_epochs_on(dev, g, Z, d, M, C, tail, labels_t, epoch_begin, epoch_end, p, on_epoch);
}

}  // namespace gpu
}  // namespace uec
