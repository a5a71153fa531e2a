// Host/device qualifiers. Every function in csrc/core is compiled both by the C++ compiler
// (OpenMP path, CPU emulation of kernels) and by nvcc (CUDA kernels), so the two paths run the
// very same arithmetic.
#pragma once

#if defined(__CUDACC__)
#define UEC_HD __host__ __device__ __forceinline__
#else
#define UEC_HD inline
#endif
