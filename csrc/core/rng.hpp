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

  UEC_HD uint64_t next() {
    state += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Uniform integer in [0, n) by multiply-shift (no modulo bias worth speaking of, no division).
  UEC_HD uint32_t below(uint32_t n) {
    return static_cast<uint32_t>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }
};

}  // namespace uec
