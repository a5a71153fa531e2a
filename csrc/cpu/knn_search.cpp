// The search for new points: the graph it walks (knn_search_graph) and a best-first beam search
// of it from fixed seeded entry points (knn_search; deterministic per query, see cpu/knn.hpp).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/rng.hpp"
#include "cpu/knn.hpp"
#include "cpu/knn_kernels.hpp"

namespace uec {

using namespace knn_detail;

// ---- search for new points ---------------------------------------------------------------------

void knn_search_graph(int64_t n, const int32_t* graph, const float* graph_sq_dist, int kg,
                      int max_reverse, std::vector<int64_t>& indptr, std::vector<int32_t>& to) {
  // reverse edges, CSR by target: (distance, source)
  std::vector<int64_t> rptr(n + 1, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int t = 0; t < kg; ++t) {
      const int32_t j = graph[i * kg + t];
      if (j != i) ++rptr[j + 1];
    }
  for (int64_t i = 0; i < n; ++i) rptr[i + 1] += rptr[i];
  std::vector<std::pair<float, int32_t>> rev(rptr[n]);
  {
    std::vector<int64_t> fill(rptr.begin(), rptr.end() - 1);
    for (int64_t i = 0; i < n; ++i)
      for (int t = 0; t < kg; ++t) {
        const int32_t j = graph[i * kg + t];
        if (j != i) rev[fill[j]++] = {graph_sq_dist[i * kg + t], static_cast<int32_t>(i)};
      }
  }
  indptr.assign(n + 1, 0);
  to.clear();
  to.reserve(static_cast<size_t>(n) * (kg + std::max(0, max_reverse)));
  std::vector<int32_t> row;
  for (int64_t i = 0; i < n; ++i) {
    row.clear();
    for (int t = 0; t < kg; ++t) {
      const int32_t j = graph[i * kg + t];
      if (j != i) row.push_back(j);
    }
    auto rb = rev.begin() + rptr[i], re = rev.begin() + rptr[i + 1];
    if (re - rb > max_reverse) {
      std::partial_sort(rb, rb + max_reverse, re);
      re = rb + max_reverse;
    }
    for (auto it = rb; it != re; ++it) row.push_back(it->second);
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    to.insert(to.end(), row.begin(), row.end());
    indptr[i + 1] = static_cast<int64_t>(to.size());
  }
}

namespace {

struct Visited {
  std::vector<uint32_t> stamp;
  uint32_t now = 0;
  explicit Visited(int64_t n) : stamp(n, 0) {}
  void next() {
    if (++now == 0) {
      std::fill(stamp.begin(), stamp.end(), 0u);
      now = 1;
    }
  }
  bool test_and_set(int32_t i) {
    if (stamp[i] == now) return true;
    stamp[i] = now;
    return false;
  }
};

using Pair = std::pair<float, int32_t>;  // (squared distance, index): ordered lexicographically

// One query, serially: a best-first beam search of width ef (HNSW's search on one layer) from
// the fixed entry points; returns the k best by (distance, index).
UEC_KNN_CLONES
void search_one(const float* data, int d, const int64_t* indptr, const int32_t* adj,
                const std::vector<int32_t>& entries, const int32_t* own, int n_own,
                const float* q, int ef, int k, Visited& vis, std::vector<Pair>& cand,
                std::vector<Pair>& best, std::vector<int32_t>& fresh, int32_t* out_i,
                float* out_d) {
  vis.next();
  cand.clear();  // min-heap (std::greater)
  best.clear();  // max-heap of the ef best so far
  auto offer = [&](int32_t u) {
    const bool full = static_cast<int>(best.size()) >= ef;
    const float bound = full ? best.front().first : kInf;
    const float dist = sq_dist_direct(q, data + static_cast<int64_t>(u) * d, d, bound);
    if (!full || before(dist, u, best.front().first, best.front().second)) {
      cand.push_back({dist, u});
      std::push_heap(cand.begin(), cand.end(), std::greater<Pair>());
      best.push_back({dist, u});
      std::push_heap(best.begin(), best.end());
      if (static_cast<int>(best.size()) > ef) {
        std::pop_heap(best.begin(), best.end());
        best.pop_back();
      }
    }
  };
  for (int t = 0; t < n_own; ++t)  // the query's own entries (a tree leaf) first, then the fixed
    if (own[t] >= 0 && !vis.test_and_set(own[t])) offer(own[t]);
  for (int32_t e : entries)
    if (!vis.test_and_set(e)) offer(e);
  while (!cand.empty()) {
    const Pair c = cand.front();
    if (static_cast<int>(best.size()) >= ef &&
        before(best.front().first, best.front().second, c.first, c.second))
      break;
    std::pop_heap(cand.begin(), cand.end(), std::greater<Pair>());
    cand.pop_back();
    // the unvisited neighbours, their first cache lines requested before any is read
    fresh.clear();
    for (int64_t r = indptr[c.second]; r < indptr[c.second + 1]; ++r) {
      const int32_t u = adj[r];
      if (!vis.test_and_set(u)) {
        fresh.push_back(u);
        const char* row = reinterpret_cast<const char*>(data + static_cast<int64_t>(u) * d);
        __builtin_prefetch(row);
        __builtin_prefetch(row + 64);
      }
    }
    for (int32_t u : fresh) offer(u);
  }
  std::sort(best.begin(), best.end());
  for (int t = 0; t < k; ++t) {
    out_i[t] = best[t].second;
    out_d[t] = best[t].first;
  }
}

}  // namespace

void knn_search(const float* data, int64_t n, int d, const int64_t* indptr, const int32_t* adj,
                const float* queries, int64_t m, const SearchParams& p, int32_t* out_indices,
                float* out_sq_distances, const int32_t* query_entries, int n_query_entries) {
  if (p.k < 1 || p.k > n) throw std::invalid_argument("knn_search: k must be in [1, n]");
  const int ef = static_cast<int>(std::min<int64_t>(n, std::max(p.ef, p.k)));
  const int nt = std::max(1, p.n_threads);
  // fixed entry points (distinct), the same for every query
  std::vector<int32_t> entries;
  {
    const int64_t want = std::min<int64_t>(n, std::max(1, p.n_entries));
    std::vector<uint8_t> taken(n, 0);
    Rng rng(p.seed, kTagEntries, 0);
    for (int64_t tries = 0; static_cast<int64_t>(entries.size()) < want && tries < 8 * want; ++tries) {
      const int32_t e = static_cast<int32_t>(rng.below(static_cast<uint32_t>(n)));
      if (!taken[e]) {
        taken[e] = 1;
        entries.push_back(e);
      }
    }
    for (int64_t e = 0; static_cast<int64_t>(entries.size()) < want; ++e)
      if (!taken[e]) {
        taken[e] = 1;
        entries.push_back(static_cast<int32_t>(e));
      }
  }
  Errors errors;
#pragma omp parallel num_threads(nt)
  {
    Visited vis(n);
    std::vector<Pair> cand, best;
    std::vector<int32_t> fresh;
    cand.reserve(4 * ef);
    best.reserve(ef + 1);
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < m; ++i)
      errors.run([&] {
        search_one(data, d, indptr, adj, entries,
                   query_entries ? query_entries + i * n_query_entries : nullptr,
                   query_entries ? n_query_entries : 0, queries + i * d, ef, p.k, vis, cand,
                   best, fresh, out_indices + i * p.k, out_sq_distances + i * p.k);
      });
  }
  errors.rethrow();
}

}  // namespace uec
