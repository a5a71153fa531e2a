// The calling thread's index inside an OpenMP parallel region (0 without OpenMP), for per-thread
// scratch buffers of the CPU core.
#pragma once

#ifdef UEC_HAVE_OPENMP
#include <omp.h>
#endif

namespace uec {

#ifdef UEC_HAVE_OPENMP
inline int thread_id() { return omp_get_thread_num(); }
#else
inline int thread_id() { return 0; }
#endif

}  // namespace uec
