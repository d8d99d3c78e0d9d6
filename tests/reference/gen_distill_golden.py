#!/usr/bin/env python3
"""Reference logprobs for the distilled students committed in tests/data/golden/distill_<type>/.

Those checkpoints were written by `aha distill train` (scripts in docs/distill.md, "golden
test"): config.json + model.safetensors in the Hugging Face Llama / Qwen2 layout. This script
reads them with nothing from aha -- its own safetensors reader and the independent PyTorch
Llama/Qwen2 forward of gen_policy_golden.py -- and writes reference.json with the per-token
logprobs of fixed sequences, which tests/distill/golden_student_test.cpp compares against aha.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_distill_golden.py
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gen_policy_golden import forward_logprobs  # noqa: E402

torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(__file__), "..", "data", "golden")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32)
        out[name] = t.reshape(info["shape"]).to(torch.float64)
    return out


def main():
    for name in ("distill_llama", "distill_qwen2"):
        d = os.path.join(ROOT, name)
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        c.setdefault("rope_scaling", None)
        p = read_safetensors(os.path.join(d, "model.safetensors"))
        gen = torch.Generator().manual_seed(11)
        seqs = [[int(v) for v in torch.randint(0, c["vocab_size"], (n,), generator=gen)]
                for n in (9, 2, 17)]
        with torch.no_grad():
            logprobs = [forward_logprobs(c, p, torch.tensor(s)).tolist() for s in seqs]
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump({"sequences": seqs, "logprobs": logprobs,
                       "generator": "tests/reference/gen_distill_golden.py"}, f)
        print(name, sum(v.numel() for v in p.values()), "params")


if __name__ == "__main__":
    main()
