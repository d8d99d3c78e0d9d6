// The subcommands of the `aha` binary. Each takes its own arguments (after the command name)
// and returns the process exit code; run-ending errors are thrown as aha::Error.
#pragma once

#include <string>
#include <vector>

namespace aha::cli {

using Args = std::vector<std::string>;

int cmd_version(const Args& args);
int cmd_reward(const Args& args);
// `aha bench reward` (dispatched by cmd_bench): math checks/s and code executions/s.
int bench_reward(const Args& args);
int cmd_init(const Args& args);
// `aha convert`: a checkpoint rewritten in another dtype (FP8 included).
int cmd_convert(const Args& args);
int cmd_score(const Args& args);
int cmd_bench(const Args& args);
int cmd_generate(const Args& args);
int cmd_runs(const Args& args);
int cmd_report(const Args& args);
int cmd_train(const Args& args);
int cmd_export_rollouts(const Args& args);
int cmd_pretrain(const Args& args);
int cmd_eval(const Args& args);
int cmd_make_data(const Args& args);
// `aha bench generate` (dispatched by cmd_bench).
int bench_generate(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_tokenizer_train(const Args& args);
// `aha bench tokenize` (dispatched by cmd_bench).
int bench_tokenize(const Args& args);
// `aha distill` (usage), `aha distill sample`, `aha distill train` (cmd_distill.cpp).
int cmd_distill(const Args& args);
int cmd_distill_sample(const Args& args);
int cmd_distill_train(const Args& args);

}  // namespace aha::cli
