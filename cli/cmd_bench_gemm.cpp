// `aha bench gemm`: GFLOP/s of aha's GEMM at square sizes or given shapes, and (--shapes model)
// the three GEMMs of a linear layer at the model's shapes beside one direct call of the linked
// BLAS on its own threads, measured in the same process.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

#include "aha/core/gemm_bf16.h"
#include "aha/core/machine.h"
#include "aha/core/rng.h"
#include "aha/core/tensor.h"
#include "aha/core/threading.h"
#include "bench.h"
#include "options.h"

namespace aha::cli {

namespace {

const char* kernel_name(MatmulPrecision p) {
  return p == MatmulPrecision::bf16 ? bf16_kernel() : gemm_backend();
}

// "fp32,bf16" -> the precisions to run, each checked.
std::vector<MatmulPrecision> parse_precisions(const std::string& list) {
  std::vector<MatmulPrecision> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    out.push_back(matmul_precision_from(item, "--precision"));
  }
  if (out.empty()) fail("--precision: empty list");
  return out;
}

// "MxNxK" -> {m, n, k}.
std::array<int64_t, 3> parse_shape(const std::string& s) {
  std::array<int64_t, 3> d{};
  char x1 = 0, x2 = 0;
  std::stringstream ss(s);
  if (!(ss >> d[0] >> x1 >> d[1] >> x2 >> d[2]) || x1 != 'x' || x2 != 'x' || !ss.eof() ||
      d[0] < 1 || d[1] < 1 || d[2] < 1) {
    fail("--shapes: '", s, "' is not MxNxK with positive sizes (or 'model')");
  }
  return d;
}

// The three GEMMs of a linear layer with n tokens, weight [out, in].
enum class LinearOp { kXwt, kDyw, kDytx };
constexpr std::array<LinearOp, 3> kLinearOps = {LinearOp::kXwt, LinearOp::kDyw, LinearOp::kDytx};
const char* op_name(LinearOp op) {
  return op == LinearOp::kXwt ? "xwt" : op == LinearOp::kDyw ? "dyw" : "dytx";
}

struct ModelShape {
  std::string what;  // which layer of the model has this shape
  int64_t n, in, out;
};

// tokens x d -> d for every d of `dims`; the `small` and `base` presets' dense MLP at `tokens`
// rows; one routed expert's rows (tokens x 4 of 16 experts) of both presets; one attention head
// over a 256-token sequence (scores q k^T with qk width 48, values p v with v width 32).
std::vector<ModelShape> model_shapes(int64_t tokens, const std::vector<int64_t>& dims) {
  std::vector<ModelShape> s;
  for (int64_t d : dims) s.push_back({"linear d=" + std::to_string(d), tokens, d, d});
  s.push_back({"mlp up (small)", tokens, 256, 768});
  s.push_back({"mlp down (small)", tokens, 768, 256});
  s.push_back({"mlp up (base)", tokens, 512, 1536});
  s.push_back({"mlp down (base)", tokens, 1536, 512});
  const int64_t expert_rows = std::max<int64_t>(1, tokens * 4 / 16);
  s.push_back({"expert up (small)", expert_rows, 256, 128});
  s.push_back({"expert down (small)", expert_rows, 128, 256});
  s.push_back({"expert up (base)", expert_rows, 512, 256});
  s.push_back({"expert down (base)", expert_rows, 256, 512});
  s.push_back({"attention scores", 256, 48, 256});
  s.push_back({"attention values", 256, 256, 32});
  return s;
}

// The operands of one op, random, and the two ways to run it.
struct OpCase {
  LinearOp op;
  int64_t n, in, out;
  std::vector<float> a, b, c;  // xwt: x, w, y; dyw: dy, w, dx; dytx: dy, x, dw

  OpCase(LinearOp o, const ModelShape& s) : op(o), n(s.n), in(s.in), out(s.out) {
    const int64_t a_size = op == LinearOp::kXwt ? n * in : n * out;
    const int64_t b_size = op == LinearOp::kDytx ? n * in : out * in;
    const int64_t c_size = op == LinearOp::kXwt ? n * out : op == LinearOp::kDyw ? n * in
                                                                                  : out * in;
    Rng rng(11);
    a.resize(a_size), b.resize(b_size), c.assign(c_size, 0.0f);
    for (auto& v : a) v = static_cast<float>(rng.normal());
    for (auto& v : b) v = static_cast<float>(rng.normal());
  }
  double flops() const { return 2.0 * double(n) * double(in) * double(out); }
  void run_aha() {
    const float* none = nullptr;
    if (op == LinearOp::kXwt) gemm_xwt(a.data(), b.data(), none, c.data(), n, in, out);
    if (op == LinearOp::kDyw) gemm_dyw(a.data(), b.data(), c.data(), n, in, out);
    float* no_bias = nullptr;
    if (op == LinearOp::kDytx) gemm_dytx(a.data(), b.data(), c.data(), no_bias, n, in, out);
  }
  bool run_blas(int threads) {
    if (op == LinearOp::kXwt) {
      return gemm_blas_direct(false, true, n, out, in, a.data(), in, b.data(), in, 0.0f, c.data(),
                              out, threads);
    }
    if (op == LinearOp::kDyw) {
      return gemm_blas_direct(false, false, n, in, out, a.data(), out, b.data(), in, 1.0f,
                              c.data(), in, threads);
    }
    return gemm_blas_direct(true, false, out, in, n, a.data(), out, b.data(), in, 1.0f, c.data(),
                            in, threads);
  }
};

// Best seconds of f over at least one call and about min_time seconds.
template <typename F>
double best_seconds(F&& f, double min_time) {
  double best = 1e30, total = 0;
  for (int r = 0; r < 200 && (r < 1 || total < min_time); ++r) {
    const auto t0 = BenchClock::now();
    f();
    const double s = seconds_since(t0);
    best = std::min(best, s), total += s;
  }
  return best;
}

// aha's tiles and the direct BLAS give the same product (up to summation order): checked once
// per op before timing.
void check_same(OpCase& k, int threads) {
  std::fill(k.c.begin(), k.c.end(), 0.0f);
  k.run_aha();
  const std::vector<float> ours = k.c;
  std::fill(k.c.begin(), k.c.end(), 0.0f);
  if (!k.run_blas(threads)) return;
  for (size_t i = 0; i < ours.size(); ++i) {
    if (!(std::abs(ours[i] - k.c[i]) <= 1e-3f * (1.0f + std::abs(k.c[i])))) {
      fail("bench gemm: aha and the direct BLAS differ at ", i, " of ", op_name(k.op));
    }
  }
}

struct ModelPoint {
  double aha_s = 1e30, blas_s = 1e30;  // best over the rounds
  bool has_blas = false;
};

// Alternates short turns of aha's tiles and of the direct BLAS, `rounds` of each, so load from
// other processes (seconds long on a shared machine) falls on both alike; each side's best call
// counts.
ModelPoint model_point(OpCase& k, int threads, int rounds, double min_time) {
  using std::chrono::milliseconds;
  ModelPoint p;
  check_same(k, threads);
  for (int r = 0; r < rounds; ++r) {
    // The direct BLAS's threads spin for a while after its calls (OpenBLAS: 2^28 time-stamp
    // ticks, 0.13 s at this machine's 2.1 GHz counter; 100 ms left them spinning through aha's
    // whole turn, which then ran on one core), and TBB's briefly after aha's: let them go to
    // sleep before the other side runs.
    if (threads > 1) std::this_thread::sleep_for(milliseconds(300));
    p.aha_s = std::min(p.aha_s, best_seconds([&] { k.run_aha(); }, min_time));
    if (threads > 1) std::this_thread::sleep_for(milliseconds(20));
    p.has_blas = k.run_blas(threads);
    if (p.has_blas) {
      p.blas_s = std::min(p.blas_s, best_seconds([&] { k.run_blas(threads); }, min_time));
    }
  }
  return p;
}

// --shapes model: one JSON line per (shape, op), then a summary line.
void bench_model_shapes(int64_t tokens, const std::vector<int64_t>& dims, int rounds,
                        double min_time) {
  const int threads = max_threads();
  std::fprintf(stderr, "  %-22s %-5s %6s %6s %6s %10s %10s %6s\n", "shape", "op", "n", "in", "out",
               "aha GF/s", "blas GF/s", "ratio");
  double log_sum = 0, min_ratio = 1e30, aha_total = 0, blas_total = 0;
  int points = 0;
  for (const ModelShape& s : model_shapes(tokens, dims)) {
    for (LinearOp op : kLinearOps) {
      OpCase k(op, s);
      const ModelPoint p = model_point(k, threads, rounds, min_time);
      const double aha = k.flops() / p.aha_s / 1e9;
      Json j = {{"bench", "gemm"}, {"shape", s.what}, {"op", op_name(op)}, {"n", s.n},
                {"in", s.in}, {"out", s.out}, {"threads", threads}, {"kernel", gemm_backend()},
                {"blas_core", gemm_blas_core()}, {"aha_gflops", aha}, {"blas_gflops", nullptr},
                {"ratio", nullptr}};
      double blas = 0;
      if (p.has_blas) {
        blas = k.flops() / p.blas_s / 1e9;
        j["blas_gflops"] = blas, j["ratio"] = aha / blas;
        log_sum += std::log(aha / blas), min_ratio = std::min(min_ratio, aha / blas);
        aha_total += p.aha_s, blas_total += p.blas_s, ++points;
      }
      std::fprintf(stderr, "  %-22s %-5s %6lld %6lld %6lld %10.1f %10.1f %6.2f\n", s.what.c_str(),
                   op_name(op), static_cast<long long>(s.n), static_cast<long long>(s.in),
                   static_cast<long long>(s.out), aha, blas, blas > 0 ? aha / blas : 0.0);
      std::cout << j.dump() << std::endl;
    }
  }
  if (points == 0) return;  // no BLAS linked: nothing to compare with
  // geomean: the typical shape; time_ratio: all shapes run once each, as a whole.
  Json sum = {{"bench", "gemm"}, {"summary", "model shapes"}, {"points", points},
              {"threads", threads}, {"geomean_ratio", std::exp(log_sum / points)},
              {"min_ratio", min_ratio}, {"time_ratio", blas_total / aha_total}};
  std::cout << sum.dump() << std::endl;
}

// --sizes / --shapes MxNxK: aha's gemm_xwt alone at each precision.
void bench_plain_shapes(const std::vector<std::array<int64_t, 3>>& dims,
                        const std::string& precisions, int repeats) {
  for (const auto& d : dims) {
    for (MatmulPrecision p : parse_precisions(precisions)) {
      MatmulPrecisionScope scope(p);
      Json j = {{"bench", "gemm"}, {"m", d[0]}, {"n", d[1]}, {"k", d[2]},
                {"precision", matmul_precision_name(p)}, {"kernel", kernel_name(p)},
                {"threads", max_threads()}, {"gflops", gemm_gflops(d[0], d[1], d[2], repeats)},
                {"amx_bf16", cpu_has_amx_bf16()}, {"blas_core", gemm_blas_core()}};
      std::cout << j.dump() << std::endl;
    }
  }
}

}  // namespace

int bench_gemm(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string sizes, shapes, precisions, dims;
  int threads = 0, repeats = 5, rounds = 8, tokens = 2048;
  double min_time = 0.02;
  desc.add_options()
      ("sizes", po::value(&sizes)->default_value("256,512,1024,2048"), "square sizes n")
      ("shapes", po::value(&shapes),
       "MxNxK list instead (y[M,N] = x[M,K] w[N,K]^T), or 'model': the model's shapes, each of\n"
       "a linear layer's three GEMMs beside one direct call of the linked BLAS")
      ("tokens", po::value(&tokens)->default_value(2048), "--shapes model: tokens (rows)")
      ("dims", po::value(&dims)->default_value("64,128,256,512,1024,2048,4096"),
       "--shapes model: the d of the tokens x d -> d linear layers")
      ("rounds", po::value(&rounds)->default_value(8), "--shapes model: turns of each side")
      ("min-time", po::value(&min_time)->default_value(0.02),
       "--shapes model: seconds of calls per turn (at least one; the best call counts)")
      ("precision", po::value(&precisions)->default_value("fp32"), "fp32, bf16 or fp32,bf16")
      ("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")
      ("repeats", po::value(&repeats)->default_value(5), "timed repeats (best is reported)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha bench gemm [--sizes 512,1024 | --shapes 256x4096x1024]\n"
                     "       [--precision fp32,bf16] [--threads N]\n"
                     "       aha bench gemm --shapes model [--tokens 2048] [--dims 64,256]\n"
                     "--shapes model prints per shape and op aha_gflops, blas_gflops (one call of\n"
                     "the linked BLAS on its own threads) and their ratio, then a summary line.")) {
    return 0;
  }
  ThreadLimit limit(threads);
  if (shapes == "model") {
    if (tokens < 1 || rounds < 1) fail("--tokens and --rounds must be >= 1");
    bench_model_shapes(tokens, parse_int_list(dims, "--dims"), rounds, min_time);
    return 0;
  }
  std::vector<std::array<int64_t, 3>> list;
  if (vm.count("shapes")) {
    std::stringstream ss(shapes);
    for (std::string item; std::getline(ss, item, ',');) list.push_back(parse_shape(item));
  } else {
    for (int64_t n : parse_int_list(sizes, "--sizes")) list.push_back({n, n, n});
  }
  bench_plain_shapes(list, precisions, repeats);
  return 0;
}

}  // namespace aha::cli
