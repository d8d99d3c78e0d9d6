#!/usr/bin/env python3
"""Reference cases for LoRA layers (tests/data/lora_cases.json): PEFT's LoRA linear,
y = x W^T + b + s * (dropout(x) A^T) B^T with s = alpha / r (alpha / sqrt(r) with rsLoRA), written
from its definition in PyTorch with autograd in float64, independent of aha's hand-written
gradient (policy/src/linear.h). aha supports dropout 0 only, so every case has p = 0.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_lora.py
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "data", "lora_cases.json")


def case(gen, n, n_in, n_out, r, alpha, rslora, bias):
    x = torch.randn(n, n_in, generator=gen).requires_grad_(True)
    w = torch.randn(n_out, n_in, generator=gen) * 0.5
    b = torch.randn(n_out, generator=gen) if bias else torch.zeros(n_out)
    a = (torch.randn(r, n_in, generator=gen) * 0.4).requires_grad_(True)
    bb = (torch.randn(n_out, r, generator=gen) * 0.4).requires_grad_(True)
    dy = torch.randn(n, n_out, generator=gen)
    s = alpha / math.sqrt(r) if rslora else alpha / r
    drop = torch.nn.Dropout(p=0.0)
    y = x @ w.T + b + s * (drop(x) @ a.T) @ bb.T
    (y * dy).sum().backward()
    flat = lambda t: t.detach().reshape(-1).tolist()
    return {"n": n, "n_in": n_in, "n_out": n_out, "rank": r, "alpha": alpha, "use_rslora": rslora,
            "bias": bias, "x": flat(x), "w": flat(w), "b": flat(b), "a": flat(a), "bb": flat(bb),
            "dy": flat(dy), "y": flat(y), "dx": flat(x.grad), "da": flat(a.grad),
            "dbb": flat(bb.grad)}


def main():
    gen = torch.Generator().manual_seed(2021)
    cases = [case(gen, 5, 7, 6, 2, 4.0, False, False),
             case(gen, 3, 16, 9, 4, 8.0, False, True),
             case(gen, 6, 10, 21, 8, 16.0, True, False),
             case(gen, 1, 33, 17, 1, 1.0, False, True)]
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/reference/gen_lora.py", "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
