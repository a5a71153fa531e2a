// The CUDA backend of the UEC epochs, as seen from host C++ (no CUDA headers): the pybind11
// module csrc/cuda/bindings.cpp calls these, csrc/cuda/driver.cu implements them.
#pragma once
#include <string>

#include "cpu/epochs.hpp"

namespace uec {
namespace gpu {

// Number of CUDA devices this process can use; 0 when there is none, or no driver. When it is 0
// and `why` is given, *why says what the runtime reported.
int device_count(std::string* why = nullptr);

// Name and compute capability of device `index`, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
std::string device_name(int index);

// Version of the CUDA runtime this module was built with, e.g. 13000 for 13.0.
int runtime_version();

// Same contract as uec::run_epochs, on the current CUDA device. The arrays are host arrays;
// they are copied to the device once, all epochs run there, and the results are copied back.
// Throws std::runtime_error on a CUDA error (naming the call) and when no device is usable.
RunResult run_epochs_cuda(const Graph& g, float* Z, int d, float* M, int C, const float* tail,
                          int32_t* labels_t, int epoch_begin, int epoch_end,
                          const EpochParams& p, const EpochCallback& on_epoch);

}  // namespace gpu
}  // namespace uec
