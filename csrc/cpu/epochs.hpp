// The OpenMP epoch loops of UEC (docs/design.md §4). Arguments are shapes and raw pointers; every
// array's shape is given in a comment. Nothing here touches Python.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>

namespace uec {

// The fuzzy graph in CSR form by head vertex. Each head's row lists its sampled edges.
struct Graph {
  int64_t n_head = 0;                         // rows (points being moved)
  int64_t n_tail = 0;                         // points negatives are drawn from
  const int64_t* indptr = nullptr;            // (n_head + 1)
  const int32_t* indices = nullptr;           // (nnz) tail vertex of each edge, in [0, n_tail)
  const float* epochs_per_sample = nullptr;   // (nnz) > 0
  float* next_sample = nullptr;               // (nnz) state: epoch of the edge's next sample
  float* next_negative = nullptr;             // (nnz) state: epoch of its next negative sample
};

struct EpochParams {
  float a = 1.577f, b = 0.895f;   // q = 1 / (1 + a r^b)
  float gamma = 1.0f;             // repulsion strength
  float negative_sample_rate = 5.0f;
  float alpha = 1.0f;             // weight of CE
  float beta = 1.0f;              // weight of KL
  float learning_rate = 1.0f;     // initial learning rate
  float centre_lr = 1.0f;         // centre learning rate ("gradient" update), same schedule
  double target_power = 2.0;      // p in N = S^p / F
  int mode = 2;                   // Mode
  int clip_mode = 0;              // Clip
  int schedule = 0;               // 0: linear decay to 0 at n_epochs_total; 1: step
  int step_every = 10;            // step schedule: multiply by step_factor every step_every
  float step_factor = 0.1f;
  int centre_update = 0;          // 0: gradient (Eq. 11, normalised); 1: T-weighted mean;
                                  // 2: fixed point of the constant-T gradient (T phi-weighted)
  int n_epochs_total = 200;       // schedule length
  float attract_scale = 1.0f;     // multiplier of the attractive step
  uint64_t seed = 0;
  double tol = 1e-3;              // stop when the fraction of changed argmax T is below
  int min_joint_epochs = 10;      // ... but not before this many clustering epochs
  int n_threads = 1;
};

struct RunResult {
  int epochs_run = 0;            // epochs completed in this call
  int joint_epochs = 0;          // of which clustering epochs
  double last_change = 1.0;      // fraction of points whose argmax T changed in the last epoch
  bool converged = false;        // stopped by the tolerance
  bool interrupted = false;      // stopped by the callback
};

// Called after every epoch with (epoch index, fraction changed); returning false stops the run.
using EpochCallback = std::function<bool(int, double)>;

// What every backend's run_epochs requires of its arguments (throws std::invalid_argument).
inline void check_run_args(const Graph& g, const float* M, int C, const float* tail,
                           const int32_t* labels_t, const EpochParams& p) {
  if (tail == nullptr && g.n_tail != g.n_head)
    throw std::invalid_argument("n_tail must equal n_head when fitting");
  if (p.mode != 0 /* CE_ONLY */ && (C < 1 || M == nullptr || labels_t == nullptr))
    throw std::invalid_argument("clustering modes need centres and a label buffer");
}

// End-of-epoch bookkeeping of every backend: count the epoch, call the callback, then apply the
// assignment-change stop. Returns true when the run must stop.
inline bool end_epoch(RunResult& res, const EpochParams& p, bool clustering, int epoch,
                      double change, const EpochCallback& on_epoch) {
  res.epochs_run += 1;
  if (on_epoch && !on_epoch(epoch, change)) {
    res.interrupted = true;
    return true;
  }
  if (clustering && res.joint_epochs >= p.min_joint_epochs && change < p.tol) {
    res.converged = true;
    return true;
  }
  return false;
}

// Runs epochs [epoch_begin, epoch_end) of the schedule in place.
// Z: (n_head, d) moved in place. M: (C, d) moved in place (unused for CE_ONLY).
// tail: (n_tail, d) fixed embedding the heads are attracted to / repelled from, or nullptr to
//   use a per-epoch snapshot of Z itself (fitting; then n_tail must equal n_head).
// labels_t: (n_head) argmax T of the previous epoch (-1 = none), updated; may be null for CE_ONLY.
// Deterministic for a given seed whatever the thread count: every point reads the snapshot of
// the epoch's start and writes only its own row; reductions go over fixed blocks in order.
RunResult run_epochs(const Graph& g, float* Z, int d, float* M, int C, const float* tail,
                     int32_t* labels_t, int epoch_begin, int epoch_end, const EpochParams& p,
                     const EpochCallback& on_epoch);

// Stats passes: F (C) = column sums of S; when c != nullptr also c (C) of the plus variant.
// Z: (n, d); M: (C, d).
void cluster_stats(const float* Z, int64_t n, int d, const float* M, int C, double a, double b,
                   double p, double* F, double* c, int n_threads);

// The exact clustering gradient of KL(T||S) at (Z, M) for a mode (LIGHT_PLUS/COMMA: T held
// constant; PLUS: through T and F). grad_z: (n, d); grad_m: (C, d). For tests and diagnostics.
void cluster_gradients(const float* Z, int64_t n, int d, const float* M, int C, double a,
                       double b, double p, int mode, double* grad_z, double* grad_m,
                       int n_threads);

// Soft assignments and labels. S, T: (n, C) or nullptr; labels_s, labels_t: (n) or nullptr.
void soft_assign(const float* Z, int64_t n, int d, const float* M, int C, double a, double b,
                 double p, double* S, double* T, int32_t* labels_s, int32_t* labels_t,
                 int n_threads);

// Threads the core uses for n_jobs (-1 = all, -2 = all but one, ...).
int resolve_threads(int n_jobs);
bool have_openmp();

}  // namespace uec
