#!/usr/bin/env python3
"""Writes tests/data/golden/deepseek_v3_fp8{,_ue8m0}/: the tiny DeepSeek-V3 of
gen_policy_golden.py (same seed, same fp32 weights) stored as DeepSeek-V3 publishes its weights —
linear weights F8_E4M3 with F32 `weight_scale_inv` block scales (ragged blocks), embeddings,
norms, lm_head and the router gate BF16, the routing bias F32 — and reference logprobs of the
dequantized model from gen_policy_golden.py's independent forward.

torch 1.13 has no float8 dtype, so E4M3 is emulated here, written from the format's definition
rather than from aha's code: rounding in the value domain (quantum 2^(floor(log2|y|) - 3), at
least the subnormal step 2^-9, torch.round = half to even), bytes by lookup in a table of all
256 code values.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_fp8_golden.py
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import gen_policy_golden as ref  # noqa: E402

VARIANTS = {
    # name: (weight_block_size, scale_fmt)
    "deepseek_v3_fp8": ([8, 5], None),
    "deepseek_v3_fp8_ue8m0": ([16, 8], "ue8m0"),
}


def e4m3_value(code):
    s, e, m = code >> 7, (code >> 3) & 15, code & 7
    if e == 15 and m == 7:
        return math.nan
    v = (m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
    return -v if s else v


CODE_OF = {}
for c in range(256):
    v = e4m3_value(c)
    if not math.isnan(v):
        CODE_OF[(v, math.copysign(1.0, v) < 0)] = c


def e4m3_round(y):
    """y (float64 tensor holding float32 values, |y| <= 464) -> nearest E4M3 value, ties even."""
    a = y.abs()
    e = torch.floor(torch.log2(torch.where(a > 0, a, torch.ones_like(a))))
    e = torch.clamp(e, min=-6)
    quantum = torch.pow(2.0, e - 3)
    q = torch.round(y / quantum) * quantum  # exact: y / quantum is a power-of-two scaling
    assert bool((q.abs() <= 448).all())
    return q


def quantize(w, block, ue8m0):
    """w [N, K] float32 values -> (codes bytes, scales float32 [ceil(N/bn), ceil(K/bk)])."""
    n, k = w.shape
    bn, bk = block
    sr, sc = -(-n // bn), -(-k // bk)
    w32 = w.to(torch.float32)
    scales = torch.zeros(sr, sc, dtype=torch.float32)
    deq_codes = torch.zeros(n, k, dtype=torch.float64)
    for i in range(sr):
        for j in range(sc):
            blk = w32[i * bn:(i + 1) * bn, j * bk:(j + 1) * bk]
            amax = blk.abs().max()
            if ue8m0:
                # smallest power of two 2^e with amax <= 464 * 2^e (amax rounds to <= 448)
                s = 2.0 ** -126
                while float(amax) > 464.0 * s:
                    s *= 2.0
                s = torch.tensor(s, dtype=torch.float32)
            else:
                s = torch.maximum(amax / torch.tensor(448.0, dtype=torch.float32),
                                  torch.tensor(2.0 ** -126, dtype=torch.float32))
            scales[i, j] = s
            y = (blk / s).to(torch.float64)  # the float32 quotient
            deq_codes[i * bn:(i + 1) * bn, j * bk:(j + 1) * bk] = e4m3_round(y)
    codes = bytes(CODE_OF[(float(v), math.copysign(1.0, float(v)) < 0)]
                  for v in deq_codes.flatten())
    return codes, scales, deq_codes


def is_fp8(name, t):
    return (t.dim() == 2 and name.endswith(".weight") and "embed_tokens" not in name
            and name != "lm_head.weight" and not name.endswith(".mlp.gate.weight"))


def main():
    c = dict(ref.CONFIGS["deepseek_v3"])
    for name, (block, scale_fmt) in VARIANTS.items():
        gen = torch.Generator().manual_seed(1234)
        p = ref.make_params(c, gen)  # the same draws as golden/deepseek_v3
        seqs = [[int(v) for v in torch.randint(0, c["vocab_size"], (n,), generator=gen)]
                for n in (7, 1, 12)]
        entries, deq = {}, {}
        for k, v in p.items():
            v = v.detach()
            if is_fp8(k, v):
                codes, scales, qv = quantize(v, block, scale_fmt == "ue8m0")
                entries[k] = ("F8_E4M3", v.shape, codes)
                entries[k + "_scale_inv"] = ("F32", scales.shape, scales.numpy().tobytes())
                n, kk = v.shape
                s_full = scales.to(torch.float64).repeat_interleave(block[0], 0)[:n]
                s_full = s_full.repeat_interleave(block[1], 1)[:, :kk]
                deq[k] = qv * s_full  # exact in float64
            elif k.endswith("e_score_correction_bias"):
                entries[k] = ("F32", v.shape, v.to(torch.float32).numpy().tobytes())
                deq[k] = v
            else:
                b = v.to(torch.float32).to(torch.bfloat16)
                entries[k] = ("BF16", v.shape, b.view(torch.int16).numpy().tobytes())
                deq[k] = b.to(torch.float64)
        logprobs = [ref.forward_logprobs(c, deq, torch.tensor(s)).tolist() if len(s) > 1 else []
                    for s in seqs]
        cfg = dict(c)
        q = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
             "weight_block_size": block}
        if scale_fmt:
            q["scale_fmt"] = scale_fmt
        cfg["quantization_config"] = q
        cfg["torch_dtype"] = "bfloat16"
        d = os.path.join(ref.OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        ref.write_entries(os.path.join(d, "model.safetensors"), entries)
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump({"sequences": seqs, "logprobs": logprobs,
                       "note": "logprobs of the dequantized weights, float64"}, f)
        print(name, len(entries), "tensors")


if __name__ == "__main__":
    main()
