// `--dtype` of the commands that write checkpoints (init, convert): F32 | BF16 | F16 | FP8, and
// the FP8 block format (--fp8-block, --fp8-scale-fmt).
#pragma once

#include <string>

#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/quantization.h"
#include "options.h"

namespace aha::cli {

inline constexpr const char* kDtypeHelp =
    "stored dtype: F32 | BF16 | F16 | FP8 (DeepSeek-V3 layout: linear weights F8_E4M3 with F32 "
    "block scales, the rest BF16)";
inline constexpr const char* kFp8BlockHelp =
    "FP8 block rows,cols (default: the config's quantization_config, else 128,128)";
inline constexpr const char* kFp8ScaleHelp =
    "FP8 scales: float | ue8m0 (powers of two; default: the config's, else float)";

// `config` is the model's config.json: an FP8 save keeps the format it declares unless
// --fp8-block / --fp8-scale-fmt say otherwise.
inline policy::SaveOptions save_options_for(const std::string& dtype, const std::string& block,
                                            const std::string& scale_fmt, const Json& config) {
  policy::SaveOptions opts;
  const bool fp8 = dtype == "FP8" || dtype == "F8_E4M3";
  if (!fp8 && (!block.empty() || !scale_fmt.empty())) {
    fail("--fp8-block and --fp8-scale-fmt need --dtype FP8");
  }
  if (!fp8) {
    if (dtype != "F32" && dtype != "BF16" && dtype != "F16") {
      fail("--dtype must be F32, BF16, F16 or FP8, got '", dtype, "'");
    }
    opts.dtype = dtype_from_name(dtype);
    return opts;
  }
  opts.dtype = DType::kBF16;
  opts.fp8 = policy::fp8_format_of(config).value_or(Fp8BlockFormat{});
  if (!block.empty()) {
    std::vector<int64_t> b = parse_int_list(block, "--fp8-block");
    if (b.size() != 2 || b[0] > (1 << 20) || b[1] > (1 << 20)) {
      fail("--fp8-block: expected rows,cols (e.g. 128,128), got '", block, "'");
    }
    opts.fp8->block_n = static_cast<int>(b[0]);
    opts.fp8->block_k = static_cast<int>(b[1]);
  }
  if (!scale_fmt.empty()) {
    if (scale_fmt != "float" && scale_fmt != "ue8m0") {
      fail("--fp8-scale-fmt must be float or ue8m0, got '", scale_fmt, "'");
    }
    opts.fp8->ue8m0 = scale_fmt == "ue8m0";
  }
  return opts;
}

}  // namespace aha::cli
