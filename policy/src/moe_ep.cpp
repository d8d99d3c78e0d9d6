// Expert-parallel dispatch and combine of one MoE layer over MPI all-to-alls (moe_ep.h).
#include "moe_ep.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/tensor.h"

namespace aha::policy {

namespace {

// Where rows sit on both sides of an exchange. The sender packs rank q's share as the rows of
// q's experts j = 0..L-1 in a.slots order; the owner holds them as rank s's rows of expert j,
// s = 0..S-1, so that each local expert sees the rows in global token order (rank 0's tokens
// first), as one rank would.
struct Plan {
  int S = 1, L = 0, first = 0, d = 0;
  std::vector<int64_t> recv;              // [S, L]: rows rank s sent local expert j
  std::vector<int64_t> send_values;       // [S]: values this rank sends rank q
  std::vector<int64_t> recv_values;       // [S]: values rank s sends here
  std::vector<int64_t> rows;              // [L]: rows of local expert j over every rank
  int64_t recv_row(int s, int j) const {  // first row of (s, j) in the received buffer
    int64_t r = 0;
    for (int i = 0; i < s * L + j; ++i) r += recv[i];
    return r;
  }
  int64_t expert_row(int s, int j) const {  // first row of rank s within local expert j
    int64_t r = 0;
    for (int i = 0; i < s; ++i) r += recv[i * L + j];
    return r;
  }
};

template <typename T>
Plan make_plan(const ModelConfig& c, const MoeActs<T>& a, std::vector<int64_t> recv) {
  Plan pl;
  pl.S = a.ep.size;
  pl.L = a.ep.n_local(c.n_routed_experts);
  pl.first = a.ep.first(c.n_routed_experts);
  pl.d = c.hidden_size;
  pl.recv = std::move(recv);
  pl.send_values.assign(pl.S, 0);
  pl.recv_values.assign(pl.S, 0);
  pl.rows.assign(pl.L, 0);
  for (int q = 0; q < pl.S; ++q) {
    for (int j = 0; j < pl.L; ++j) {
      pl.send_values[q] += static_cast<int64_t>(a.slots[q * pl.L + j].size()) * pl.d;
      pl.recv_values[q] += pl.recv[q * pl.L + j] * pl.d;
      pl.rows[j] += pl.recv[q * pl.L + j];
    }
  }
  return pl;
}

// The owner's side: its experts' rows back in the received layout.
template <typename T>
Buf<T> from_experts(const Plan& pl, const std::vector<const T*>& per_expert) {
  int64_t total = 0;
  for (int64_t v : pl.recv_values) total += v;
  Buf<T> out(total);
  for (int s = 0; s < pl.S; ++s) {
    for (int j = 0; j < pl.L; ++j) {
      std::copy_n(per_expert[j] + pl.expert_row(s, j) * pl.d, pl.recv[s * pl.L + j] * pl.d,
                  out.data() + pl.recv_row(s, j) * pl.d);
    }
  }
  return out;
}

// The sender's side: what came back, split into every expert's rows in a.slots order.
template <typename T, typename Rows>
void to_slots(const Plan& pl, const MoeActs<T>& a, const Buf<T>& back, std::vector<Rows>& out) {
  out.resize(a.slots.size());
  int64_t at = 0;
  for (size_t e = 0; e < a.slots.size(); ++e) {
    const int64_t n = static_cast<int64_t>(a.slots[e].size()) * pl.d;
    out[e].assign(back.data() + at, back.data() + at + n);
    at += n;
  }
}

template <typename T>
Buf<T> exchange(const Plan& pl, const Buf<T>& send, bool forward_way, const char* what) {
  const auto& sc = forward_way ? pl.send_values : pl.recv_values;
  const auto& rc = forward_way ? pl.recv_values : pl.send_values;
  int64_t total = 0;
  for (int64_t v : rc) total += v;
  Buf<T> got(total);
  dist::alltoallv(send.data(), sc, got.data(), rc, what);
  return got;
}

// The forward dispatch and the backward's output gradients move a token's row once per
// destination rank, not once per chosen expert there. The forward sends its route along: a
// bit mask of the token's experts on that rank (kMaskBits bits per double, exact), then their
// combine weights, which the owner keeps to weight the gradients in backward.
constexpr int kMaskBits = 52;

struct Unique {
  std::vector<std::vector<int32_t>> tokens;  // per destination rank: tokens, ascending
  std::vector<std::vector<double>> routes;   // per destination rank: [tokens, words + L]
  int words = 1, width = 1;
};

template <typename T>
Unique unique_per_rank(const MoeActs<T>& a, int K, int L) {
  Unique u;
  u.words = (L + kMaskBits - 1) / kMaskBits;
  u.width = u.words + L;
  u.tokens.resize(a.ep.size);
  u.routes.resize(a.ep.size);
  const int64_t n = static_cast<int64_t>(a.topk.size()) / K;
  for (int64_t t = 0; t < n; ++t) {
    for (int k = 0; k < K; ++k) {
      const int32_t e = a.topk[t * K + k];
      const int q = e / L, j = e - q * L;
      if (u.tokens[q].empty() || u.tokens[q].back() != t) {
        u.tokens[q].push_back(static_cast<int32_t>(t));
        u.routes[q].resize(u.routes[q].size() + u.width, 0.0);
      }
      double* route = u.routes[q].data() + u.routes[q].size() - u.width;
      route[j / kMaskBits] += std::ldexp(1.0, j % kMaskBits);
      route[u.words + j] = static_cast<double>(a.weights[t * K + k]);
    }
  }
  return u;
}

// Calls f(row, j, at) for every received row and each local expert j its route names (rows in
// received order, j ascending); at is the row's place in expert j's batch, rank s's rows of
// expert j in token order after ranks 0..s-1's, as the per-expert dispatch would place them.
template <typename F>
void for_each_placement(const Plan& pl, const std::vector<int64_t>& recv_rows, int width,
                        const std::vector<double>& routes, F&& f) {
  int64_t row = 0;
  for (int s = 0; s < pl.S; ++s) {
    std::vector<int64_t> at(pl.L);
    for (int j = 0; j < pl.L; ++j) at[j] = pl.expert_row(s, j);
    for (int64_t u = 0; u < recv_rows[s]; ++u, ++row) {
      for (int j = 0; j < pl.L; ++j) {
        const double word = routes[row * width + j / kMaskBits];
        if (std::fmod(std::ldexp(word, -(j % kMaskBits)), 2.0) < 1.0) continue;
        f(row, j, at[j]++);
      }
    }
    for (int j = 0; j < pl.L; ++j) {
      AHA_CHECK(at[j] == pl.expert_row(s, j) + pl.recv[s * pl.L + j], "MoE dispatch: rank ", s,
                " sent ", at[j] - pl.expert_row(s, j), " rows of expert ", j, ", counted ",
                pl.recv[s * pl.L + j]);
    }
  }
}

// One block of `width` values per (token, destination rank), from the senders to the owners
// (recv_rows: the rows each rank sends here).
template <typename Vec>
Vec send_per_token(const Plan& pl, const Unique& u, const std::vector<int64_t>& recv_rows,
                   const Vec& send, int64_t width, const char* what) {
  std::vector<int64_t> send_v(pl.S), recv_v(pl.S);
  int64_t total = 0;
  for (int q = 0; q < pl.S; ++q) {
    send_v[q] = static_cast<int64_t>(u.tokens[q].size()) * width;
    recv_v[q] = recv_rows[q] * width;
    total += recv_v[q];
  }
  Vec got(total);
  dist::alltoallv(send.data(), send_v, got.data(), recv_v, what);
  return got;
}

// This rank's rows (x [n, d]) of its distinct tokens per destination, in Unique order.
template <typename T>
Buf<T> rows_per_token(const Unique& u, const T* x, int d) {
  Buf<T> send;
  for (const auto& tokens : u.tokens) {
    for (int32_t t : tokens) send.insert(send.end(), x + int64_t{t} * d, x + (int64_t{t} + 1) * d);
  }
  return send;
}

}  // namespace

template <typename T>
void ep_experts_forward(const ModelConfig& c, const MoeP& p, const T* params, const T* x,
                        MoeActs<T>& a, bool rowstable) {
  const int E = c.n_routed_experts, K = c.num_experts_per_tok, d = c.hidden_size;
  AHA_CHECK(E % a.ep.size == 0, "expert parallel: ", E, " experts over ", a.ep.size, " ranks");
  const int S = a.ep.size, L = E / S;
  // Per destination: the rows of each of its experts, then the distinct tokens sent there.
  const Unique u = unique_per_rank(a, K, L);
  std::vector<int64_t> counts(S * (L + 1));
  for (int q = 0; q < S; ++q) {
    for (int j = 0; j < L; ++j) counts[q * (L + 1) + j] = int64_t(a.slots[q * L + j].size());
    counts[q * (L + 1) + L] = static_cast<int64_t>(u.tokens[q].size());
  }
  const std::vector<int64_t> got_counts =
      dist::alltoall_counts(counts, L + 1, "MoE dispatch counts");
  std::vector<int64_t> recv(S * L), recv_rows(S);
  for (int s = 0; s < S; ++s) {
    std::copy_n(got_counts.begin() + s * (L + 1), L, recv.begin() + s * L);
    recv_rows[s] = got_counts[s * (L + 1) + L];
  }
  const Plan pl = make_plan(c, a, std::move(recv));
  a.ep_recv = pl.recv;
  a.ep_recv_rows = recv_rows;
  const Buf<T> got = send_per_token(pl, u, recv_rows, rows_per_token(u, x, d), d, "MoE dispatch");
  std::vector<double> send_routes;
  for (const auto& r : u.routes) send_routes.insert(send_routes.end(), r.begin(), r.end());
  a.ep_routes = send_per_token(pl, u, recv_rows, send_routes, u.width, "MoE dispatch routes");
  a.xin.assign(E, {});
  a.expert_acts.assign(E, {});
  for (int j = 0; j < pl.L; ++j) a.xin[pl.first + j].resize(pl.rows[j] * d);
  for_each_placement(pl, recv_rows, u.width, a.ep_routes, [&](int64_t row, int j, int64_t at) {
    std::copy_n(got.data() + row * d, d, a.xin[pl.first + j].data() + at * d);
  });
  std::vector<Buf<T>> out(pl.L);
  tbb::parallel_for(0, pl.L, [&](int j) {
    const int e = pl.first + j;
    out[j].resize(pl.rows[j] * d);
    if (pl.rows[j] == 0) return;
    expert_forward_task(pl.L, rowstable, [&] {
      mlp_forward(p.experts[e], params, a.xin[e].data(), out[j].data(), pl.rows[j],
                  a.expert_acts[e], false, rowstable);
    });
  });
  std::vector<const T*> outs(pl.L);
  for (int j = 0; j < pl.L; ++j) outs[j] = out[j].data();
  const Buf<T> back = exchange(pl, from_experts(pl, outs), false, "MoE combine");
  to_slots(pl, a, back, a.out);
}

template <typename T>
void ep_experts_backward(const ModelConfig& c, const MoeP& p, const T* params, T* grads,
                         const T* dy, const MoeActs<T>& a, std::vector<ScratchBuf<T>>& dxe) {
  const int K = c.num_experts_per_tok, d = c.hidden_size;
  const Plan pl = make_plan(c, a, a.ep_recv);
  // Each token's dy goes once to each rank of its experts; the gradient of each expert row's
  // output is its combine weight (from the forward's route) times it, as one rank forms it.
  const Unique u = unique_per_rank(a, K, pl.L);
  const Buf<T> got =
      send_per_token(pl, u, a.ep_recv_rows, rows_per_token(u, dy, d), d, "MoE backward dispatch");
  std::vector<Buf<T>> dye(pl.L);
  std::vector<ScratchBuf<T>> dxl(pl.L);
  for (int j = 0; j < pl.L; ++j) dye[j].resize(pl.rows[j] * d);
  for_each_placement(pl, a.ep_recv_rows, u.width, a.ep_routes, [&](int64_t row, int j, int64_t at) {
    const T w = static_cast<T>(a.ep_routes[row * u.width + u.words + j]);
    const T* g = got.data() + row * d;
    T* o = dye[j].data() + at * d;
    for (int i = 0; i < d; ++i) o[i] = w * g[i];
  });
  tbb::parallel_for(0, pl.L, [&](int j) {
    const int e = pl.first + j;
    resize_for_overwrite(dxl[j], size_t(pl.rows[j] * d));  // written by the expert's backward
    if (pl.rows[j] == 0) return;
    gemms_of_loop_task(pl.L, [&] {
      mlp_backward(p.experts[e], params, grads, a.xin[e].data(), dye[j].data(), dxl[j].data(),
                   pl.rows[j], a.expert_acts[e], true);
    });
  });
  std::vector<const T*> dxs(pl.L);
  for (int j = 0; j < pl.L; ++j) dxs[j] = dxl[j].data();
  const Buf<T> back = exchange(pl, from_experts(pl, dxs), false, "MoE backward combine");
  to_slots(pl, a, back, dxe);
}

#define AHA_INSTANTIATE_MOE_EP(T)                                                               \
  template void ep_experts_forward<T>(const ModelConfig&, const MoeP&, const T*, const T*,      \
                                      MoeActs<T>&, bool);                                       \
  template void ep_experts_backward<T>(const ModelConfig&, const MoeP&, const T*, T*, const T*, \
                                       const MoeActs<T>&, std::vector<ScratchBuf<T>>&);

AHA_INSTANTIATE_MOE_EP(float)
AHA_INSTANTIATE_MOE_EP(double)

}  // namespace aha::policy
