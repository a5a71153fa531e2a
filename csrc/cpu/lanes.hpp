// Interleaved CE updates for the OpenMP epochs (docs/design.md §4 and §7).
//
// One head's updates form a dependency chain (each reads the position the previous one wrote);
// run one head at a time they leave the CPU waiting on latencies (pow_pos, the division) most
// of the time. The heads of a block are independent within an epoch (each reads the epoch-start
// snapshot and writes only its own row), so the edge pass first records every head's schedule
// (record_block: edge_take on each due edge, as edge_schedule does), then advances several
// heads in turn, one update each (ce_update: the same arithmetic). Every head
// takes exactly edge_updates's updates in edge_updates's order, so the bits are the same
// whichever path runs (the tests compare them):
//   serial       edge_updates, head after head (also what the CUDA kernels run);
//   interleaved  kLanes heads in turn, plain C++, any dimension;
//   avx2         2-D and 3-D: sixteen heads in two groups of eight AVX2 lanes, pow_pos and the
//                update written with intrinsics that perform the scalar code's operations.
#pragma once
#include <cstdint>
#include <vector>

#include "core/edges.hpp"
#include "cpu/epochs.hpp"

namespace uec {

struct Task {
  int32_t kind;   // CeKind
  int32_t other;  // tail row (indices are int32)
};

// One thread's buffers for one block of heads, reused from block to block.
struct LaneScratch {
  std::vector<Task> tasks;      // every head's updates, head after head
  std::vector<int64_t> first;   // (heads + 1) offsets into tasks
  std::vector<float> z;         // (heads, d) the heads' positions while they move
  std::vector<int64_t> order;   // avx2: the heads in the order they run
  std::vector<int64_t> due;     // one head's due edges
  std::vector<int> n_neg;       // their negatives counts (edge_advance)
  std::vector<int32_t> due_j;   // avx512: one head's due edges' tails
  std::vector<int32_t> due_n;   // and their negatives counts
};

// Writes every update, and counts only the valid ones (no branch on validity: the next write
// overwrites an invalid one). n: the tasks so far. The room is made once per edge (reserve: the
// most one edge_take can write), so the writes themselves check nothing.
struct RecordTasks {
  std::vector<Task>& tasks;
  size_t n = 0;
  Task* out = nullptr;
  // Room for one edge_take: its reverse and forward pulls and up to kMaxNegativesPerTake
  // negatives, drawn eight at a time.
  static constexpr size_t kPerTake = 2 + kMaxNegativesPerTake + 8;
  void reserve() {
    if (tasks.size() < n + kPerTake) tasks.resize(2 * tasks.size() + kPerTake);
    out = tasks.data();
  }
  void operator()(int kind, int64_t j, bool valid) {
    out[n] = {kind, static_cast<int32_t>(j)};
    n += valid ? 1 : 0;
  }
};

// Records the updates of heads [b0, b0 + heads) in ls (tasks, first): edge_take on every due
// edge in edge order, as edge_schedule does, with the due edges found without branching.
enum EpochKernel : int { KERNEL_SERIAL = 0, KERNEL_INTERLEAVED = 1, KERNEL_AVX2 = 2,
                         KERNEL_AVX512 = 3 };

// The avx512 kernel records with AVX-512 (lanes_avx512.cpp: the same tasks), the others with
// the scalar code.
void record_block(EpochKernel kernel, const Graph& g, int64_t b0, int64_t heads,
                  bool self_tail, const EpochParams& p, int epoch, LaneScratch& ls);

// The path for a d-dimensional embedding with n_tail tail points: UEC_EPOCH_KERNEL=
// serial|interleaved|avx2|avx512 forces one (avx512 falls back to avx2, avx2 to interleaved
// where they cannot run); the default is the fastest that runs here.
EpochKernel pick_epoch_kernel(int d, int64_t n_tail);

// Moves heads [0, heads) of a block from start (heads, d) to ls.z, taking the updates recorded
// in ls.tasks / ls.first. tail: (n_tail, d); step_scale = lr * alpha.
void run_lanes(EpochKernel kernel, LaneScratch& ls, int64_t heads, const float* start,
               const float* tail, int d, const EpochParams& p, float step_scale);

}  // namespace uec

namespace uec {
// For the vector kernels (run_avx2, run_avx512): the block's heads with any update, by
// decreasing update count, into ls.order (a counting sort; counts above 254 share the top
// bucket, which only costs a little idling). Returns how many there are.
int64_t order_by_updates(LaneScratch& ls, int64_t heads);

// Group g0 of the heads in ls.order, kAll lanes wide (m = the heads it has): each lane's first
// task and task count, and its head's start position, one row per coordinate (lanes past m are
// empty). Returns the longest count.
template <int D, int kAll>
int32_t load_group(const LaneScratch& ls, const float* start, int64_t g0, int m, int32_t* beg,
                   int32_t* len, float (&zs)[D][kAll]) {
  const int64_t* first = ls.first.data();
  int32_t longest = 0;
  for (int l = 0; l < kAll; ++l) {
    const int64_t h = l < m ? ls.order[g0 + l] : -1;
    beg[l] = h < 0 ? 0 : static_cast<int32_t>(first[h]);
    len[l] = h < 0 ? 0 : static_cast<int32_t>(first[h + 1] - first[h]);
    for (int t = 0; t < D; ++t) zs[t][l] = h < 0 ? 0.0f : start[D * h + t];
    longest = len[l] > longest ? len[l] : longest;
  }
  return longest;
}

// The group's final positions back into ls.z.
template <int D, int kAll>
void store_group(LaneScratch& ls, int64_t g0, int m, const float (&zs)[D][kAll]) {
  for (int l = 0; l < m; ++l) {
    const int64_t h = ls.order[g0 + l];
    for (int t = 0; t < D; ++t) ls.z[D * h + t] = zs[t][l];
  }
}

// lanes_avx512.cpp (false / no-ops where it is not compiled).
bool cpu_has_avx512();
void record_block_avx512(const Graph& g, int64_t b0, int64_t heads, bool self_tail,
                         const EpochParams& p, int epoch, LaneScratch& ls);
void run_avx512(LaneScratch& ls, int64_t heads, const float* start, const float* tail, int d,
                const EpochParams& p, float step_scale);
}  // namespace uec
