// Speculative decoding with the MTP module as the draft (one drafted token per sequence and
// step, kept by exact speculative sampling).
#include <tbb/parallel_for.h>

#include <algorithm>
#include <vector>

#include "generate_run.h"

namespace aha::rollout::detail {

void GenerateRun::step_speculative() {
  std::vector<Live*> active;
  for (auto& s : live_) {
    if (!s->done) active.push_back(s.get());
  }
  const size_t A = active.size();
  const int V = c_.vocab_size;
  std::vector<SeqCache*> caches(A);
  std::vector<std::vector<int32_t>> pending(A);
  for (size_t b = 0; b < A; ++b) {
    Live& s = *active[b];
    caches[b] = &s.cache;
    pending[b].assign(s.history.begin() + s.cache.draft.len + 1,
                      s.history.begin() + s.cache.len + 1);
  }
  decoder_.draft(caches, pending, draft_logits_);
  std::vector<int32_t> draft(A, -1);
  std::vector<std::vector<double>> q(A);
  tbb::parallel_for(size_t{0}, A, [&](size_t b) {
    Live& s = *active[b];
    // Only where the token after the draft could still be taken.
    if (s.out.n() + 1 >= s.params->max_new_tokens || s.cache.len + 2 >= max_pos_) return;
    thread_local std::vector<float> buf;
    SamplingDist qd;
    sampling_dist(draft_logits_.data() + b * V, V, *s.params, s.history, buf, qd);
    draft[b] = s.params->greedy()
                   ? static_cast<int32_t>(std::max_element(qd.prob.begin(), qd.prob.end()) -
                                          qd.prob.begin())
                   : draw(qd.prob, s.rng);
    q[b] = std::move(qd.prob);
  });
  std::vector<int32_t> tokens;
  std::vector<SeqCache*> rows;
  std::vector<int64_t> first(A);
  for (size_t b = 0; b < A; ++b) {
    first[b] = static_cast<int64_t>(tokens.size());
    tokens.push_back(active[b]->next);
    rows.push_back(caches[b]);
    if (draft[b] >= 0) {
      tokens.push_back(draft[b]);
      rows.push_back(caches[b]);
    }
  }
  Routing step_routing;
  decoder_.decode(tokens, rows, logits_, opts_.record_routing ? &step_routing : nullptr);
  std::vector<char> accepted(A, 0), second_row(A, 0);
  tbb::parallel_for(size_t{0}, A, [&](size_t b) {
    Live& s = *active[b];
    const float* row = logits_.data() + first[b] * V;
    thread_local std::vector<float> buf;
    if (draft[b] < 0) {
      advance(s, row, buf);
      return;
    }
    SamplingDist p;
    sampling_dist(row, V, *s.params, s.history, buf, p);
    bool kept = false;
    const int32_t tok = speculative_pick(p, q[b], draft[b], s.rng, kept);
    // As plain decoding would see it: `next` fed, the draft not yet.
    take(s, sample_of(p, row, tok), opts_.record_kept_ids ? p.kept_ids : std::vector<int32_t>{},
         s.cache.len - 1);
    accepted[b] = kept;
    if (!kept) {
      decoder_.truncate(s.cache, s.cache.len - 1);
    } else if (!s.done) {
      second_row[b] = 1;
      advance(s, row + V, buf);
    }
  });
  const int64_t n_rows = static_cast<int64_t>(tokens.size());
  for (size_t b = 0; b < A; ++b) {
    progress_.drafted += draft[b] >= 0;
    progress_.accepted += accepted[b];
    if (!opts_.record_routing) continue;
    append_routing(active[b]->out.routing, step_routing, first[b], n_rows);
    if (second_row[b]) append_routing(active[b]->out.routing, step_routing, first[b] + 1, n_rows);
  }
}

}  // namespace aha::rollout::detail
