// Counter-based random numbers: the stream of a (seed, epoch, vertex) triple is a pure function
// of those three numbers, so a run is reproducible whatever the thread count or schedule, and a
// GPU thread and its CPU emulation draw the same values.
#pragma once
#include <cstdint>

#include "core/hd.hpp"

namespace uec {

UEC_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t state;

  // One independent stream per (seed, epoch, vertex).
  UEC_HD Rng(uint64_t seed, uint64_t epoch, uint64_t vertex)
      : state(splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ vertex)) {}

  static constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

  UEC_HD static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  UEC_HD uint64_t next() {
    state += kGamma;
    return mix(state);
  }

  // The value the (q+1)-th next() from here would return, without drawing (the stream is a
  // counter): draws can be computed out of order, then skip(n) moves past the n used.
  UEC_HD uint64_t peek(uint64_t q) const { return mix(state + (q + 1) * kGamma); }
  UEC_HD void skip(uint64_t n) { state += n * kGamma; }

  // Uniform integer in [0, n) from a draw by multiply-shift (no modulo bias worth speaking of,
  // no division).
  UEC_HD static uint32_t scale(uint64_t x, uint32_t n) {
    return static_cast<uint32_t>(((x >> 32) * static_cast<uint64_t>(n)) >> 32);
  }
  UEC_HD uint32_t below(uint32_t n) { return scale(next(), n); }
};

}  // namespace uec
