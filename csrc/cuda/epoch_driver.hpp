// The host side of the CUDA epochs, written once for two backends: the real device
// (csrc/cuda/driver.cu) and the test-only CPU emulation (csrc/cuda/emulation.cpp). It moves the
// data to the device once per call, launches the block programs of kernel_bodies.hpp for every
// epoch in the order of csrc/cpu/epochs.cpp (run_epochs), applies the same stop rules, and
// copies the results back.
//
// A backend `Dev` provides:
//   int block_dim() const;                                  threads per block
//   template <class T> T* alloc(int64_t n);                 zeroed device buffer, freed with Dev
//   template <class T> void upload(T* dst, const T* src, int64_t n);    host -> device
//   template <class T> void download(T* dst, const T* src, int64_t n);  device -> host (waits)
//   template <class T> void copy(T* dst, const T* src, int64_t n);      device -> device
//   template <class T> void zero(T* p, int64_t n);
//   void synchronize();                                     waits for all launched work
//   template <class Prog> void launch(const Prog& prog, int64_t grid);  grid >= 1 blocks of
//       block_dim() threads with shared_doubles(block_dim()) doubles of shared memory
// Host code only; no CUDA types.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "cpu/epochs.hpp"
#include "cuda/kernel_bodies.hpp"

namespace uec {
namespace gpu {

// The learning-rate schedule of csrc/cpu/epochs.cpp (schedule_factor).
inline float schedule_factor(const EpochParams& p, int epoch) {
  if (p.schedule == 1) {
    return std::pow(p.step_factor, static_cast<float>(epoch / std::max(1, p.step_every)));
  }
  float f = 1.0f - static_cast<float>(epoch) / static_cast<float>(std::max(1, p.n_epochs_total));
  return std::max(f, 0.0f);
}

inline KernelParams kernel_params(const EpochParams& p) {
  KernelParams k;
  k.a = p.a;
  k.b = p.b;
  k.gamma = p.gamma;
  k.negative_sample_rate = p.negative_sample_rate;
  k.alpha = p.alpha;
  k.beta = p.beta;
  k.centre_lr = p.centre_lr;
  k.attract_scale = p.attract_scale;
  k.target_power = p.target_power;
  k.mode = p.mode;
  k.clip_mode = p.clip_mode;
  k.centre_update = p.centre_update;
  return k;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Same contract as uec::run_epochs (csrc/cpu/epochs.hpp); all arrays are host arrays and are
// updated in place when the run ends (also when the callback stops it). p.n_threads is ignored.
template <class Dev>
RunResult run_epochs_on(Dev& dev, const Graph& g, float* Z, int d, float* M, int C,
                        const float* tail, int32_t* labels_t, int epoch_begin, int epoch_end,
                        const EpochParams& p, const EpochCallback& on_epoch) {
  RunResult res;
  const int64_t n = g.n_head;
  const bool clustering = p.mode != CE_ONLY;
  const bool self_tail = tail == nullptr;
  check_run_args(g, M, C, tail, labels_t, p);
  const bool fused = p.mode == LIGHT_PLUS || p.mode == PLUS;
  const int bd = dev.block_dim();
  const PointBlocks blocks(n);
  const int64_t nnz = g.indptr[n];
  const int64_t nd = n * d;
  const int Cr = clustering ? C : 1;
  const int64_t len = clustering ? centre_slots(C, d) : 0;

  // Everything moves to the device once.
  DeviceGraph dg;
  dg.n_head = n;
  dg.n_tail = g.n_tail;
  int64_t* indptr = dev.template alloc<int64_t>(n + 1);
  int32_t* indices = dev.template alloc<int32_t>(nnz);
  float* eps = dev.template alloc<float>(nnz);
  float* next_sample = dev.template alloc<float>(nnz);
  float* next_negative = dev.template alloc<float>(nnz);
  dev.upload(indptr, g.indptr, n + 1);
  dev.upload(indices, g.indices, nnz);
  dev.upload(eps, g.epochs_per_sample, nnz);
  dev.upload(next_sample, g.next_sample, nnz);
  dev.upload(next_negative, g.next_negative, nnz);
  dg.indptr = indptr;
  dg.indices = indices;
  dg.epochs_per_sample = eps;
  dg.next_sample = next_sample;
  dg.next_negative = next_negative;

  float* dZ = dev.template alloc<float>(nd);
  dev.upload(dZ, Z, nd);
  float* dtail = nullptr;
  if (self_tail) {
    dtail = dev.template alloc<float>(nd);  // the epoch-start snapshot
  } else {
    dtail = dev.template alloc<float>(g.n_tail * d);
    dev.upload(dtail, tail, g.n_tail * d);
  }
  double* rows = dev.template alloc<double>(blocks.count * bd * RowView::length(Cr, d));

  float* dM = nullptr;
  int32_t* dlabels = nullptr;
  double* stats_buf = nullptr;
  double* stat_parts = nullptr;
  double* parts = nullptr;
  double* sums = nullptr;
  if (clustering) {
    dM = dev.template alloc<float>(static_cast<int64_t>(C) * d);
    dev.upload(dM, M, static_cast<int64_t>(C) * d);
    dlabels = dev.template alloc<int32_t>(n);
    dev.upload(dlabels, labels_t, n);
    stats_buf = dev.template alloc<double>(4 * static_cast<int64_t>(C));
    stat_parts = dev.template alloc<double>(blocks.count * C);
    parts = dev.template alloc<double>(blocks.count * len);
    sums = dev.template alloc<double>(len);
  }
  const StatsView st = StatsView::at(stats_buf, C);
  const KernelParams kp = kernel_params(p);

  // F (and c when exact) of the embedding in dZ.
  auto stats = [&](bool exact) {
    StatsPass sp{dZ, n, d, dM, C, p.a, p.b, p.target_power, false, st, rows, stat_parts};
    BlockSums bs{stat_parts, blocks.count, C, st.F};
    StatsFinish fin{st, C};
    if (blocks.count > 0) {
      dev.zero(stat_parts, blocks.count * C);
      dev.launch(sp, blocks.count);
    }
    dev.launch(bs, ceil_div(C, bd));
    dev.launch(fin, ceil_div(C, bd));
    if (!exact) return;
    sp.c_pass = true;
    bs.out = st.c;
    if (blocks.count > 0) {
      dev.zero(stat_parts, blocks.count * C);
      dev.launch(sp, blocks.count);
    }
    dev.launch(bs, ceil_div(C, bd));
  };

  for (int epoch = epoch_begin; epoch < epoch_end; ++epoch) {
    EpochState es;
    es.seed = p.seed;
    es.epoch = epoch;
    es.factor = schedule_factor(p, epoch);
    es.lr = p.learning_rate * es.factor;
    es.ep1 = static_cast<float>(epoch + 1);
    if (self_tail && nd > 0) dev.copy(dtail, dZ, nd);
    if (fused) stats(p.mode == PLUS);
    if (clustering && blocks.count > 0) dev.zero(parts, blocks.count * len);

    if (blocks.count > 0) {
      EdgePass ep{dg, dZ, d, dtail, self_tail, fused, dM, C, st, dlabels, rows, parts, kp, es};
      dev.launch(ep, blocks.count);
    }
    if (p.mode == COMMA) {
      stats(false);
      if (blocks.count > 0) {
        ClusterPass cp{dZ, n, d, dM, C, st, dlabels, rows, parts, kp, es};
        dev.launch(cp, blocks.count);
      }
    }

    double change = 0.0;
    if (clustering) {
      dev.launch(BlockSums{parts, blocks.count, len, sums}, ceil_div(len, bd));
      dev.launch(CentreUpdate{dM, C, d, sums, kp, es}, ceil_div(C, bd));
      double changed = 0.0;
      dev.download(&changed, sums + (len - 1), 1);
      change = n > 0 ? changed / static_cast<double>(n) : 0.0;
      res.joint_epochs += 1;
      res.last_change = change;
    } else {
      dev.synchronize();  // the epoch is done before the callback (keeps Ctrl-C responsive)
    }
    if (end_epoch(res, p, clustering, epoch, change, on_epoch)) break;
  }

  dev.download(Z, dZ, nd);
  dev.download(g.next_sample, next_sample, nnz);
  dev.download(g.next_negative, next_negative, nnz);
  if (clustering) {
    dev.download(M, dM, static_cast<int64_t>(C) * d);
    dev.download(labels_t, dlabels, n);
  }
  return res;
}

}  // namespace gpu
}  // namespace uec
