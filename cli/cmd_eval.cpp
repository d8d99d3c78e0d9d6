// `aha eval`: pass@1 and pass@K of a checkpoint on a dataset.
#include <iostream>

#include "aha/core/gemm_bf16.h"
#include "aha/core/threading.h"
#include "aha/grpo/eval.h"
#include "commands.h"
#include "options.h"
#include "progress.h"
#include "tool_options.h"

namespace aha::cli {

namespace {

// The one problem source of --input, --task or --data, as a data-config string.
std::string problems_source(const std::string& data, const std::string& input,
                            const std::string& task) {
  if (int(!data.empty()) + int(!input.empty()) + int(!task.empty()) != 1) {
    fail("give the problems once: --input F.jsonl, or --task addition|arithmetic|countdown|linear "
         "(--data takes either form)");
  }
  if (!input.empty()) return input;
  if (task.empty()) return data;
  if (task.find(':') != std::string::npos || task.find('.') != std::string::npos) {
    fail("--task takes a synthetic task name (addition | arithmetic | countdown | linear), got '",
         task, "'; a file goes to --input");
  }
  return "synthetic:" + task;
}

// "math,format" -> [{"name": "math"}, {"name": "format"}]
Json reward_list(const std::string& names) {
  Json out = Json::array();
  for (const std::string& name : comma_list(names)) out.push_back(Json{{"name", name}});
  return out;
}

}  // namespace

int cmd_eval(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  grpo::EvalOptions o;
  std::string data, input, task, reward, format, split, precision_name;
  int threads = 0, limit = 0;
  std::vector<int> digits, numbers;
  int max_number = 0;
  double eval_fraction = 0;
  desc.add_options()
      ("model", po::value(&o.model)->required(), "checkpoint directory (with tokenizer.json)")
      ("input", po::value(&input), "the problems: a JSONL file")
      ("task", po::value(&task),
       "the problems: a synthetic task, addition | arithmetic | countdown | linear")
      ("data", po::value(&data), "either of the two: F.jsonl or synthetic:TASK (kept for scripts)")
      ("format", po::value(&format)->default_value("generic"), "generic | gsm8k | math")
      ("split", po::value(&split)->default_value("eval"), "synthetic split: eval | train | all")
      ("digits", po::value(&digits)->multitoken(), "synthetic operand digits: MIN MAX")
      ("numbers", po::value(&numbers)->multitoken(), "countdown: how many numbers, MIN MAX")
      ("max-number", po::value(&max_number)->default_value(0), "countdown: largest number (0: 25)")
      ("eval-fraction", po::value(&eval_fraction)->default_value(0.0, "0"),
       "a JSONL file's hash split: evaluate on this share (as data.eval_fraction)")
      ("limit", po::value(&limit)->default_value(0), "first N problems (0: all)")
      ("reward", po::value(&reward)->default_value("math,format"),
       "rewards (comma list); the first decides pass/fail")
      ("n", po::value(&o.n)->default_value(1), "samples per problem (K)")
      ("temperature", po::value(&o.sampling.temperature)->default_value(1.0, "1"), "0 = greedy")
      ("top-p", po::value(&o.sampling.top_p)->default_value(1.0, "1"), "")
      ("max-new-tokens", po::value(&o.sampling.max_new_tokens)->default_value(256), "")
      ("template", po::value(&o.templ)->default_value("r1_zero"), "prompt template")
      ("seed", po::value(&o.seed)->default_value(0), "sampling seed")
      ("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")
      ("precision", po::value(&precision_name)->default_value("fp32"), "matmul precision: fp32 | bf16")
      ("out", po::value(&o.out_jsonl), "per-problem results (JSONL)")
      ("db", po::value(&o.db_path), "also log into a new run database");
  ToolArgs tool_args;
  add_tool_options(desc, tool_args);
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha eval --model DIR (--input F.jsonl | --task addition)\n"
                     "                [--reward math] [--n K]\n"
                     "Prints {\"pass@1\": .., \"pass@K\": .., \"rewards\": {..}} as one JSON line.")) {
    return 0;
  }
  data = problems_source(data, input, task);
  const grpo::EpisodeConfig episodes = tool_episodes(tool_args);
  o.episodes = episodes.engine_options();
  ThreadLimit tl(threads);
  MatmulPrecisionScope precision(matmul_precision_from(precision_name, "--precision"));
  o.sampling.validate();
  o.data = Json{{"eval", data}, {"split", split}, {"limit", limit},
                {"format", Json{{"kind", format}}}, {"synthetic_size", limit > 0 ? limit : 500}};
  if (!digits.empty()) o.data["digits"] = digits;
  if (!numbers.empty()) o.data["numbers"] = numbers;
  if (max_number > 0) o.data["max_number"] = max_number;
  if (eval_fraction > 0) o.data["eval_fraction"] = eval_fraction;
  o.rewards = reward_list(reward);
  if (o.rewards.empty()) fail("--reward names no reward");
  ProgressLine progress("eval", "tok");
  o.on_progress = [&](const rollout::Progress& p) {
    progress.update(p.done, p.total, double(p.tokens), p.done == p.total);
  };
  const Json result = grpo::evaluate(o);
  progress.finish();
  std::cout << result.dump() << std::endl;
  return 0;
}

}  // namespace aha::cli
