#!/usr/bin/env python3
"""The PyTorch peer of `aha bench train`: the same model (torch_model.py, checked against the
independent reference of tests/reference/gen_policy_golden.py, built from the same HF
config.json) timed on the same forward + backward, printed as one JSON line like aha's.

Run with Debian's python3-torch and OpenBLAS (libopenblas0-pthread; without it torch falls back
to the reference BLAS and runs ~50x slower, which the printed torch.mm roof shows):

  /usr/bin/python3 bench/peer/torch_train.py --config DIR/config.json --batch 8 --seq-len 256

The whole batch [batch, seq_len] goes through each matrix product at once and MoE tokens are
grouped per expert, as DeepSeek's inference/model.py does: what a PyTorch user writes for speed.
--check first compares the peer's log-probabilities with the reference's (float64, both printed).
"""
import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import gen_policy_golden as ref  # noqa: E402  (sets float64 as default: undone below)
import torch_model  # noqa: E402

torch.set_default_dtype(torch.float32)
# The reference's RoPE tables are float64 (for the goldens): the peer runs fp32 throughout.
_rope_f64 = ref.rope_cos_sin
ref.rope_cos_sin = lambda c, dim, n: tuple(t.to(torch.float32) for t in _rope_f64(c, dim, n))


def mm_roof(n, dtype, repeats=5):
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = 1e30
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    torch_model.add_common_args(ap)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: torch.autocast on CPU")
    a = ap.parse_args()
    c, p, check, gen = torch_model.load(a, grad=True)
    seqs = torch.randint(0, c["vocab_size"], (a.batch, a.seq_len), generator=gen)
    model = torch_model.Model(c, p, a.seq_len)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            lp = model.forward_logprobs(seqs)
        (-lp.float().mean()).backward()

    step()  # warm-up
    best = 1e30
    for _ in range(a.iters):
        for v in p.values():
            v.grad = None
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    tokens = a.batch * a.seq_len
    print(json.dumps({
        "bench": "train", "peer": "pytorch " + torch.__version__, "batch": a.batch,
        "seq_len": a.seq_len, "threads": torch.get_num_threads(), "precision": a.precision,
        "params": sum(v.numel() for v in p.values()), "tokens_per_s": tokens / best,
        "step_s": best, "mm_roof_gflops": mm_roof(1024, torch.float32),
        "mm_roof_bf16_gflops": mm_roof(1024, torch.bfloat16),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        **({"check_max_abs_logprob_diff": max(check)} if check else {})}))


if __name__ == "__main__":
    main()
