// Decode kernels: the batch-invariant GEMM (vs the plain one) and one decode step of the `small`
// preset at a fixed context, so a profiler sees decode alone (no prefill).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cmath>
#include <memory>
#include <vector>

#include "aha/core/error.h"
#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "aha/core/tensor.h"
#include "aha/core/weight_cache.h"
#include "aha/policy/presets.h"
#include "aha/rollout/decoder.h"

namespace {

std::vector<float> random_vec(int64_t n, uint64_t seed) {
  aha::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// Args: n rows, in, out.
template <bool kStable>
void BM_Gemm(benchmark::State& state) {
  const int64_t n = state.range(0), in = state.range(1), out = state.range(2);
  auto x = random_vec(n * in, 1), w = random_vec(out * in, 2);
  std::vector<float> y(n * out), ref(n * out);
  const float* none = nullptr;
  aha::gemm_xwt(x.data(), w.data(), none, ref.data(), n, in, out);
  const aha::WeightCache weights(w.data(), out * in);  // as in decode: the weight packed once
  auto run = [&] {
    if (kStable) {
      aha::gemm_xwt_rowstable(x.data(), w.data(), none, y.data(), n, in, out);
    } else {
      aha::gemm_xwt(x.data(), w.data(), none, y.data(), n, in, out);
    }
  };
  run();
  for (int64_t i = 0; i < n * out; ++i) {
    AHA_CHECK(std::abs(y[i] - ref[i]) <= 1e-3f * (1 + std::abs(ref[i])), "gemm mismatch at ", i);
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * in * out * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["flop"] = 2.0 * n * in * out;  // per iteration: flop / CPU time = per-core rate
}

void gemm_args(benchmark::internal::Benchmark* b) {
  // The decode shapes of `small`: lm head, dense MLP, expert MLP, o_proj, absorbed q.
  for (int64_t n : {1, 16, 64}) {
    b->Args({n, 256, 2048})->Args({n, 256, 768})->Args({n, 768, 256})->Args({n, 256, 128});
    b->Args({n, 128, 256})->Args({n, 32, 128});
  }
}
BENCHMARK(BM_Gemm<true>)
    ->Name("rowstable")
    ->Apply(gemm_args)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK(BM_Gemm<false>)
    ->Name("gemm_xwt")
    ->Apply(gemm_args)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// Args: batch, context length, absorbed, bf16 (precision: bf16; 0 for fp32). One decode step per
// iteration; the caches are cut back to the context length each time, so the context stays fixed.
void BM_DecodeStep(benchmark::State& state) {
  const int64_t B = state.range(0), L = state.range(1);
  const aha::MatmulPrecisionScope precision(state.range(3) != 0 ? aha::MatmulPrecision::bf16
                                                                : aha::MatmulPrecision::fp32);
  static std::unique_ptr<aha::policy::Model<float>> model;
  if (!model) {
    model = std::make_unique<aha::policy::Model<float>>(
        aha::policy::ModelConfig::from_json(aha::policy::preset_config("small")));
    model->init_random(0);
  }
  aha::rollout::Decoder dec(*model, state.range(2) != 0);
  // As Engine::generate: each weight packed once.
  const aha::WeightCache weights(model->params().data(),
                                 static_cast<int64_t>(model->params().size()));
  const int V = model->config().vocab_size;
  aha::Rng rng(3);
  std::vector<int32_t> prompt(L);
  for (auto& t : prompt) t = static_cast<int32_t>(rng.below(V));
  aha::rollout::SeqCache first;
  std::vector<float> logits;
  dec.prefill(prompt, first, logits);
  std::vector<aha::rollout::SeqCache> caches(B, first);
  std::vector<aha::rollout::SeqCache*> ptrs;
  for (int64_t b = 0; b < B; ++b) ptrs.push_back(&caches[b]);
  // Fresh tokens every step, as in generation, so that the steps do not all route to the same
  // experts (whose weights would then be the only ones read).
  constexpr int kTokenSets = 64;
  std::vector<std::vector<int32_t>> tokens(kTokenSets, std::vector<int32_t>(B));
  for (auto& set : tokens) {
    for (auto& t : set) t = static_cast<int32_t>(rng.below(V));
  }
  dec.decode(tokens[0], ptrs, logits);  // grows each cache once, outside the timing
  int64_t step = 0;
  for (auto _ : state) {
    for (auto& c : caches) c.len = L;
    dec.decode(tokens[step++ % kTokenSets], ptrs, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tok/s"] =
      benchmark::Counter(double(B) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeStep)
    ->ArgsProduct({{1, 16, 64}, {64, 256, 1024}, {1}, {0}})
    ->Args({64, 512, 0, 0})
    ->Args({64, 1024, 0, 0})
    ->Args({64, 512, 1, 0})
    ->ArgsProduct({{1, 16, 64}, {32, 256, 1024}, {1}, {1}})  // bf16: the peer table's context, longer ones
    ->MeasureProcessCPUTime()  // CPU column: all threads, a steadier figure on a shared machine
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

// As the aha binary does (cli/main.cpp): freed memory stays in the heap, so a decode step's
// buffers are not fresh pages (page faults) on every step, which would dominate the profile.
int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
