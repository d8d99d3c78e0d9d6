// `aha score`: per-token logprobs of given sequences under a checkpoint.
#include <filesystem>
#include <iostream>
#include <memory>

#include "aha/core/gemm_bf16.h"
#include "aha/core/threading.h"
#include "aha/policy/checkpoint.h"
#include "aha/tokenizer/tokenizer.h"
#include "commands.h"
#include "jsonl.h"
#include "options.h"

namespace aha::cli {

namespace {

void flush_batch(const policy::Model<float>& model, std::vector<std::vector<int32_t>>& seqs,
                 double temperature) {
  if (seqs.empty()) return;
  policy::Batch batch = policy::Batch::from_sequences(seqs);
  policy::Activations<float> acts;
  policy::ForwardOptions opts;
  opts.keep_activations = false;
  opts.temperature = temperature;
  model.forward(batch, opts, acts);
  for (size_t s = 0; s < seqs.size(); ++s) {
    Json lps = Json::array();
    lps.push_back(nullptr);
    for (int64_t t = batch.seq_starts[s]; t + 1 < batch.seq_starts[s + 1]; ++t) {
      lps.push_back(acts.logprob[t]);
    }
    std::cout << Json{{"token_logprobs", lps}}.dump() << "\n";
  }
  std::cout.flush();
  seqs.clear();
}

}  // namespace

int cmd_score(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string model_dir, input, precision_name;
  double temperature = 1.0;
  int threads = 0;
  int64_t batch_tokens = 8192;
  desc.add_options()
      ("model", po::value(&model_dir)->required(), "checkpoint directory")
      ("input", po::value(&input)->default_value("-"), "JSONL of {\"ids\": [...]} or {\"text\": ...} (- = stdin)")
      ("temperature", po::value(&temperature)->default_value(1.0, "1"), "score softmax(logits / T)")
      ("batch-tokens", po::value(&batch_tokens)->default_value(8192), "tokens per forward")
      ("threads", po::value(&threads)->default_value(0), "worker threads (0 = all cores)")
      ("precision", po::value(&precision_name)->default_value("fp32"), "matmul precision: fp32 | bf16");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha score --model DIR [--input F.jsonl]\n"
                     "Writes {\"token_logprobs\": [null, lp1, ...]} per input line: lp_i is\n"
                     "log p(ids[i] | ids[:i]).")) {
    return 0;
  }
  if (!(temperature > 0)) fail("--temperature must be > 0");
  ThreadLimit limit(threads);
  MatmulPrecisionScope precision(matmul_precision_from(precision_name, "--precision"));
  auto model = policy::load_model<float>(model_dir);
  const auto& cfg = model->config();
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (std::filesystem::exists(std::filesystem::path(model_dir) / "tokenizer.json")) {
    tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(model_dir));
  }
  std::vector<std::vector<int32_t>> seqs;
  int64_t tokens = 0;
  for_each_jsonl(input, [&](const Json& j, int64_t lineno) {
    std::vector<int32_t> ids;
    if (j.contains("text") && j["text"].is_string() && !j.contains("ids")) {
      if (!tok) fail(input, ":", lineno, ": {\"text\"} needs a tokenizer.json in ", model_dir);
      ids = tok->encode(j["text"].get<std::string>(), true);
    } else if (!j.contains("ids") || !j["ids"].is_array()) {
      fail(input, ":", lineno, ": expected {\"ids\": [...]} or {\"text\": \"...\"}");
    }
    for (const Json& v : j.contains("ids") ? j["ids"] : Json::array()) {
      if (!v.is_number_integer()) fail(input, ":", lineno, ": ids must be integers");
      int64_t id = v.get<int64_t>();
      if (id < 0 || id >= cfg.vocab_size) {
        fail(input, ":", lineno, ": id ", id, " outside the vocabulary [0, ", cfg.vocab_size, ")");
      }
      ids.push_back(static_cast<int32_t>(id));
    }
    if (ids.empty()) fail(input, ":", lineno, ": empty ids");
    if (static_cast<int64_t>(ids.size()) > model->rope().max_pos()) {
      fail(input, ":", lineno, ": ", ids.size(), " tokens exceed the context of ",
           model->rope().max_pos());
    }
    tokens += static_cast<int64_t>(ids.size());
    seqs.push_back(std::move(ids));
    if (tokens >= batch_tokens) {
      flush_batch(*model, seqs, temperature);
      tokens = 0;
    }
  });
  flush_batch(*model, seqs, temperature);
  return 0;
}

}  // namespace aha::cli
