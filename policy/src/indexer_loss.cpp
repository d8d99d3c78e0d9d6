// The indexer loss summed over a model's DSA layers (indexer_loss.h).
#include "aha/policy/indexer_loss.h"

#include "aha/core/error.h"

namespace aha::policy {

template <typename T>
double indexer_loss(Model<T>& m, const Activations<T>& acts, IndexerSupport support,
                    double weight) {
  const ModelConfig& c = m.config();
  AHA_CHECK(static_cast<int>(acts.layers.size()) == c.num_hidden_layers,
            "the indexer loss needs a forward with keep_activations");
  const int64_t n = acts.layout.n_tokens();
  if (n == 0) return 0;
  const double per_token = 1.0 / static_cast<double>(n);
  double total = 0;
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerActs<T>& la = acts.layers[l];
    // The attention's input: the first sublayer's normed input.
    total += m.layers()[l].attn->indexer_loss(m.params().data(), m.grads().data(),
                                              la.sub[0].h.data(), acts.layout, la.attn, support,
                                              weight * per_token);
  }
  return total * per_token;
}

template double indexer_loss(Model<float>&, const Activations<float>&, IndexerSupport, double);
template double indexer_loss(Model<double>&, const Activations<double>&, IndexerSupport, double);

}  // namespace aha::policy
