// Entry point of the `aha` binary: dispatches subcommands and turns every escaping error into one
// `error: ...` line on stderr and a non-zero exit.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/core/log.h"
#include "aha/core/dist.h"
#include "commands.h"
#include "process_memory.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const aha::cli::Args&);
  const char* summary;
};

constexpr Command kCommands[] = {
    {"version", aha::cli::cmd_version, "print the aha version"},
    {"reward", aha::cli::cmd_reward, "score completions with math/code/format/plugin rewards"},
    {"init", aha::cli::cmd_init, "write a random-initialised checkpoint from a config.json"},
    {"convert", aha::cli::cmd_convert, "rewrite a checkpoint as F32/BF16/F16 or FP8 (DeepSeek-V3)"},
    {"score", aha::cli::cmd_score, "per-token logprobs of given sequences (JSONL in/out)"},
    {"generate", aha::cli::cmd_generate, "grouped completions with logprobs (JSONL in/out)"},
    {"train", aha::cli::cmd_train, "GRPO training from a JSON config (--set overrides)"},
    {"export-rollouts", aha::cli::cmd_export_rollouts, "a logged step as a rollout file (replay)"},
    {"pretrain", aha::cli::cmd_pretrain, "next-token training (how the demo gets its base)"},
    {"eval", aha::cli::cmd_eval, "pass@1 / pass@k of a checkpoint on a dataset"},
    {"make-data", aha::cli::cmd_make_data, "synthetic datasets as JSONL (addition)"},
    {"runs", aha::cli::cmd_runs, "a short summary of a run database"},
    {"report", aha::cli::cmd_report, "self-contained HTML report of run databases"},
    {"bench", aha::cli::cmd_bench, "throughput figures as JSON lines (gemm, train, ...)"},
    {"tokenize", aha::cli::cmd_tokenize, "JSONL text -> token ids (--decode: back)"},
    {"tokenizer train", aha::cli::cmd_tokenizer_train, "train a byte-level BPE tokenizer"},
    {"distill", aha::cli::cmd_distill, "distillation: see distill sample / distill train"},
    {"distill sample", aha::cli::cmd_distill_sample, "rejection-sample a teacher into SFT JSONL"},
    {"distill train", aha::cli::cmd_distill_train, "SFT / logit-KD of a student, ESFT of an MoE"},
};

void print_usage() {
  std::cout << "aha: GRPO post-training for MLA + DeepSeekMoE language models\n\n"
               "usage: aha <command> [options]    (aha <command> --help for details)\n\n"
               "commands:\n";
  for (const auto& c : kCommands) std::printf("  %-16s %s\n", c.name, c.summary);
}

// The text of an escaping error as the user sees it: one line, at most a few hundred
// characters, without the internal "[function]" tags (they help in logs and tests, not here).
std::string user_message(std::string m) {
  for (size_t at = 0; (at = m.find('[', at)) != std::string::npos;) {
    const size_t end = m.find("] ", at);
    const bool tag = end != std::string::npos && end - at < 48 &&
                     m.find_first_of(" \n", at) > end;  // one word: [read_file], [json.exception.x.1]
    if (tag && (at == 0 || m[at - 1] == ' ' || m[at - 1] == '(')) {
      m.erase(at, end + 2 - at);
    } else {
      ++at;
    }
  }
  for (char& c : m) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (m.size() > 1000) m = m.substr(0, 1000) + "... (" + std::to_string(m.size()) + " chars)";
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  aha::cli::heap_on_huge_pages(argv);
  aha::cli::keep_freed_memory();
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "-V")) {
    return aha::cli::cmd_version({});
  }
  // Under mpirun every rank runs the same command; a failing rank takes the job down with it.
  aha::dist::init(&argc, &argv);
  struct Finalize {
    ~Finalize() { aha::dist::finalize(); }
  } finalize_at_exit;
  std::string name = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  // Two-word commands ("aha tokenizer train") are looked up as "tokenizer train" first.
  if (argc >= 3) {
    std::string two = name + " " + argv[2];
    for (const auto& c : kCommands) {
      if (two == c.name) {
        name = two;
        args.erase(args.begin());
        break;
      }
    }
  }
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      const char* level = std::getenv("AHA_LOG_LEVEL");
      // Other ranks say only what goes wrong; rank 0 speaks for the job.
      aha::setup_logging(level != nullptr ? level : (aha::dist::rank() == 0 ? "info" : "warn"));
      return c.run(args);
    } catch (const std::exception& e) {
      std::cout.flush();
      if (aha::dist::active()) aha::dist::abort_job(e.what());
      std::cerr << "error: " << user_message(e.what()) << std::endl;
      return 1;
    }
  }
  // A group of two-word commands ("aha tokenizer"): list its subcommands.
  bool group = false;
  for (const auto& c : kCommands) {
    if (std::string(c.name).rfind(name + " ", 0) == 0) {
      if (!group) std::cout << "usage: aha " << name << " <subcommand> [options]\n\nsubcommands:\n";
      group = true;
      std::printf("  %-16s %s\n", c.name, c.summary);
    }
  }
  if (group) {
    const bool help = args.empty() || args[0] == "--help" || args[0] == "-h";
    if (!help) std::cerr << "error: unknown subcommand '" << name << " " << args[0] << "'\n";
    return help ? 0 : 2;
  }
  std::vector<std::string> names;
  for (const auto& c : kCommands) names.emplace_back(c.name);
  std::cerr << "error: unknown command '" << name << "'" << aha::did_you_mean(name, names)
            << " (see aha --help)" << std::endl;
  return 2;
}
