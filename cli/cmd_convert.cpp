// `aha convert`: rewrite a checkpoint in another stored dtype — e.g. a trained F32 checkpoint
// as DeepSeek-V3's FP8 block-quantized layout, or an FP8 release dequantized to BF16.
#include <spdlog/spdlog.h>

#include "aha/policy/checkpoint.h"
#include "commands.h"
#include "options.h"
#include "save_format.h"

namespace aha::cli {

int cmd_convert(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string model_dir, out, dtype, fp8_block, fp8_scale_fmt;
  size_t shard_bytes = 0;
  desc.add_options()
      ("model", po::value(&model_dir)->required(), "checkpoint directory to read")
      ("out", po::value(&out)->required(), "checkpoint directory to write")
      ("dtype", po::value(&dtype)->required(), kDtypeHelp)
      ("fp8-block", po::value(&fp8_block), kFp8BlockHelp)
      ("fp8-scale-fmt", po::value(&fp8_scale_fmt), kFp8ScaleHelp)
      ("max-shard-bytes", po::value(&shard_bytes)->default_value(0),
       "shard above this size (0: one file)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha convert --model DIR --out DIR --dtype F32|BF16|F16|FP8\n"
                     "Loads the checkpoint (FP8 weights dequantized) and writes it with the given\n"
                     "dtype; tokenizer files are copied along.")) {
    return 0;
  }
  auto model = policy::load_model<float>(model_dir);
  policy::SaveOptions opts = save_options_for(dtype, fp8_block, fp8_scale_fmt, model->config().raw);
  opts.max_shard_bytes = shard_bytes;
  opts.copy_tokenizer_from = model_dir;
  policy::save_model(*model, out, opts);
  if (opts.fp8) {
    spdlog::info("wrote {} as FP8 (blocks {}x{}, {} scales) to {}", model_dir, opts.fp8->block_n,
                 opts.fp8->block_k, opts.fp8->ue8m0 ? "ue8m0" : "float", out);
  } else {
    spdlog::info("wrote {} as {} to {}", model_dir, dtype, out);
  }
  return 0;
}

}  // namespace aha::cli
