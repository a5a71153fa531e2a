// Leiden communities (see leiden.hpp). One level: the fast local moving of nodes (a queue of the
// nodes whose neighbourhood changed, each moved to the community of largest gain), the
// refinement of each community into well-connected sub-communities (nodes still alone join a
// sub-community of non-negative gain at random, more likely the larger the gain), and the
// aggregation of the graph by the refined partition, whose start partition is the unrefined
// one. The levels repeat until the local moving leaves every node of the aggregate alone.
// Gains are in units of edge weight: moving a node v alone into community c gains
//     w(v, c) - gamma * n_v * N_c,
// the change of H (leiden.hpp) when v, outside every community, joins c. Self-loops of the
// aggregate (the weight inside a refined community) move with their node and never change a
// gain, so they are not stored.
#include "cpu/leiden.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/rng.hpp"

namespace uec {
namespace {

struct Graph {
  int32_t n = 0;
  std::vector<int64_t> ptr;  // (n + 1)
  std::vector<int32_t> adj;  // no diagonal entries
  std::vector<double> w;
  std::vector<double> nw;  // node weights
};

double uniform(Rng& rng) { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; }

void shuffle(std::vector<int32_t>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const uint32_t j = Rng::scale(rng.next(), static_cast<uint32_t>(i));
    std::swap(v[i - 1], v[j]);
  }
}

// Relabel in place to 0..c-1 in order of first appearance; returns c.
int32_t renumber(std::vector<int32_t>& labels, std::vector<int32_t>& scratch) {
  scratch.assign(labels.size(), -1);
  int32_t c = 0;
  for (auto& l : labels) {
    if (scratch[l] < 0) scratch[l] = c++;
    l = scratch[l];
  }
  return c;
}

// Weights from v to each community (of `label`) among its neighbours; `acc` is zero on entry and
// is left zero by clear().
struct Neighbourhood {
  std::vector<double> acc;
  std::vector<char> seen;
  std::vector<int32_t> touched;

  explicit Neighbourhood(int32_t n) : acc(n, 0.0), seen(n, 0) {}

  template <class Keep>
  void gather(const Graph& g, int32_t v, const int32_t* label, Keep keep) {
    for (int64_t e = g.ptr[v]; e < g.ptr[v + 1]; ++e) {
      const int32_t u = g.adj[e];
      if (!keep(u)) continue;
      const int32_t c = label[u];
      if (!seen[c]) {
        seen[c] = 1;
        touched.push_back(c);
      }
      acc[c] += g.w[e];
    }
  }
  void clear() {
    for (int32_t c : touched) {
      acc[c] = 0.0;
      seen[c] = 0;
    }
    touched.clear();
  }
};

// Fast local moving from the partition `memb` (labels in [0, n)). Returns true if a node moved.
bool move_nodes(const Graph& g, double gamma, std::vector<int32_t>& memb, Rng& rng) {
  const int32_t n = g.n;
  std::vector<double> cw(n, 0.0);
  std::vector<int32_t> size(n, 0);
  for (int32_t v = 0; v < n; ++v) {
    cw[memb[v]] += g.nw[v];
    ++size[memb[v]];
  }
  std::vector<int32_t> empty;
  for (int32_t c = n - 1; c >= 0; --c)
    if (size[c] == 0) empty.push_back(c);
  std::vector<int32_t> queue(n);
  std::iota(queue.begin(), queue.end(), 0);
  shuffle(queue, rng);
  std::vector<char> queued(n, 1);
  size_t head = 0, count = static_cast<size_t>(n);  // circular buffer of the queued nodes
  Neighbourhood nb(n);
  bool moved = false;
  while (count > 0) {
    const int32_t v = queue[head];
    head = head + 1 == static_cast<size_t>(n) ? 0 : head + 1;
    --count;
    queued[v] = 0;
    const int32_t from = memb[v];
    const double nv = g.nw[v];
    nb.gather(g, v, memb.data(), [v](int32_t u) { return u != v; });
    cw[from] -= nv;
    --size[from];
    int32_t best = from;
    double best_gain = nb.acc[from] - gamma * nv * cw[from];
    for (int32_t c : nb.touched) {
      const double gain = nb.acc[c] - gamma * nv * cw[c];
      if (gain > best_gain) {
        best_gain = gain;
        best = c;
      }
    }
    if (best_gain < 0.0) {  // alone is better: an empty community (v's own if it emptied)
      best = size[from] == 0 ? from : empty.back();
    }
    nb.clear();
    if (best != from && size[best] == 0) empty.pop_back();  // only `empty.back()` is taken
    memb[v] = best;
    cw[best] += nv;
    ++size[best];
    if (best == from) continue;
    if (size[from] == 0) empty.push_back(from);
    moved = true;
    for (int64_t e = g.ptr[v]; e < g.ptr[v + 1]; ++e) {
      const int32_t u = g.adj[e];
      if (queued[u] || memb[u] == best || u == v) continue;
      queued[u] = 1;
      size_t tail = head + count;
      if (tail >= static_cast<size_t>(n)) tail -= n;
      queue[tail] = u;
      ++count;
    }
  }
  return moved;
}

// Refinement of each community of `memb` into sub-communities (returned, labels in [0, n)).
std::vector<int32_t> refine(const Graph& g, double gamma, double beta,
                            const std::vector<int32_t>& memb, Rng& rng) {
  const int32_t n = g.n;
  std::vector<double> total(n, 0.0);  // N of each community of memb
  for (int32_t v = 0; v < n; ++v) total[memb[v]] += g.nw[v];
  std::vector<int32_t> sub(n);
  std::iota(sub.begin(), sub.end(), 0);
  std::vector<double> sw(g.nw);  // N of each sub-community
  std::vector<double> ext(n, 0.0);  // weight from each sub-community to the rest of its community
  for (int32_t v = 0; v < n; ++v)
    for (int64_t e = g.ptr[v]; e < g.ptr[v + 1]; ++e)
      if (memb[g.adj[e]] == memb[v]) ext[v] += g.w[e];
  const std::vector<double> node_ext(ext);
  std::vector<char> joined(n, 0);  // sub-community that another node joined
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, rng);
  Neighbourhood nb(n);
  std::vector<double> gains;
  for (int32_t v : order) {
    if (joined[v] || sub[v] != v) continue;  // only nodes still alone move
    const int32_t c = memb[v];
    const double nv = g.nw[v];
    if (node_ext[v] < gamma * nv * (total[c] - nv)) continue;  // not well connected
    nb.gather(g, v, sub.data(), [&](int32_t u) { return u != v && memb[u] == c; });
    sw[v] = 0.0;
    ext[v] = 0.0;
    // candidates: v alone (gain 0) and the well-connected sub-communities of gain >= 0
    double best = 0.0;
    gains.clear();
    for (int32_t s : nb.touched) {
      double gain = -1.0;
      if (ext[s] >= gamma * sw[s] * (total[c] - sw[s])) gain = nb.acc[s] - gamma * nv * sw[s];
      gains.push_back(gain);
      best = std::max(best, gain);
    }
    double sum = std::exp((0.0 - best) / beta);
    for (double& gain : gains) {
      gain = gain >= 0.0 ? std::exp((gain - best) / beta) : 0.0;
      sum += gain;
    }
    double r = uniform(rng) * sum;
    int32_t to = v;
    r -= std::exp((0.0 - best) / beta);
    for (size_t i = 0; i < gains.size() && r >= 0.0; ++i) {
      if (gains[i] <= 0.0) continue;
      r -= gains[i];
      if (r < 0.0) to = nb.touched[i];
    }
    if (to != v) {
      sub[v] = to;
      joined[to] = 1;
      sw[to] += nv;
      ext[to] += node_ext[v] - 2.0 * nb.acc[to];
    } else {
      sw[v] = nv;
      ext[v] = node_ext[v];
    }
    nb.clear();
  }
  return sub;
}

// The graph whose nodes are the groups of `group` (labels 0..m-1): edge weights summed, edges
// inside a group dropped, node weights summed.
Graph aggregate(const Graph& g, const std::vector<int32_t>& group, int32_t m) {
  std::vector<int32_t> start(m + 1, 0), members(g.n);
  for (int32_t v = 0; v < g.n; ++v) ++start[group[v] + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  {
    std::vector<int32_t> pos(start.begin(), start.end() - 1);
    for (int32_t v = 0; v < g.n; ++v) members[pos[group[v]]++] = v;
  }
  Graph a;
  a.n = m;
  a.ptr.assign(m + 1, 0);
  a.nw.assign(m, 0.0);
  a.adj.reserve(g.adj.size() / 2);
  a.w.reserve(g.adj.size() / 2);
  Neighbourhood nb(m);
  for (int32_t s = 0; s < m; ++s) {
    for (int32_t i = start[s]; i < start[s + 1]; ++i) {
      const int32_t v = members[i];
      a.nw[s] += g.nw[v];
      nb.gather(g, v, group.data(), [&](int32_t u) { return group[u] != s; });
    }
    for (int32_t t : nb.touched) {
      a.adj.push_back(t);
      a.w.push_back(nb.acc[t]);
    }
    nb.clear();
    a.ptr[s + 1] = static_cast<int64_t>(a.adj.size());
  }
  return a;
}

}  // namespace

int64_t leiden(int64_t n, const int64_t* indptr, const int32_t* indices, const double* weights,
               const double* node_weights, double gamma, int n_iterations, double beta,
               uint64_t seed, bool from_start, int32_t* membership) {
  if (n == 0) return 0;
  Graph base;
  base.n = static_cast<int32_t>(n);
  base.ptr.assign(n + 1, 0);
  base.nw.assign(node_weights, node_weights + n);
  base.adj.reserve(indptr[n]);
  base.w.reserve(indptr[n]);
  for (int64_t v = 0; v < n; ++v) {
    for (int64_t e = indptr[v]; e < indptr[v + 1]; ++e) {
      if (indices[e] == v || weights[e] == 0.0) continue;
      base.adj.push_back(indices[e]);
      base.w.push_back(weights[e]);
    }
    base.ptr[v + 1] = static_cast<int64_t>(base.adj.size());
  }
  std::vector<int32_t> final_memb(n), scratch;
  if (from_start) {
    final_memb.assign(membership, membership + n);
  } else {
    std::iota(final_memb.begin(), final_memb.end(), 0);
  }
  for (int it = 0; it < n_iterations; ++it) {
    Rng rng(seed, static_cast<uint64_t>(it), 0);
    std::vector<int32_t> node_of(n);  // each original node's node in the current graph
    std::iota(node_of.begin(), node_of.end(), 0);
    std::vector<int32_t> memb(final_memb);
    const Graph* cur = &base;
    Graph next;
    while (true) {
      move_nodes(*cur, gamma, memb, rng);
      const int32_t c = renumber(memb, scratch);
      if (c == cur->n) break;  // every node alone: no coarser level
      std::vector<int32_t> sub = refine(*cur, gamma, beta, memb, rng);
      const int32_t r = renumber(sub, scratch);
      std::vector<int32_t> agg_memb;
      if (r < cur->n) {  // aggregate by the refined partition, start from the unrefined one
        agg_memb.assign(r, 0);
        for (int32_t v = 0; v < cur->n; ++v) agg_memb[sub[v]] = memb[v];
      } else {  // the refinement left every node alone: aggregate by the communities
        sub = memb;
        agg_memb.resize(c);
        std::iota(agg_memb.begin(), agg_memb.end(), 0);
      }
      for (auto& x : node_of) x = sub[x];
      Graph agg = aggregate(*cur, sub, r < cur->n ? r : c);
      next = std::move(agg);
      cur = &next;
      memb = std::move(agg_memb);
    }
    for (int64_t v = 0; v < n; ++v) final_memb[v] = memb[node_of[v]];
    renumber(final_memb, scratch);
  }
  std::copy(final_memb.begin(), final_memb.end(), membership);
  int32_t c = 0;
  for (int32_t x : final_memb) c = std::max(c, x + 1);
  return c;
}

}  // namespace uec
