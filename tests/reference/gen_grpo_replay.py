#!/usr/bin/env python3
"""Writes tests/data/grpo_replay/: a hand-made rollout file for the tiny DeepSeek-V3 golden model
and the weights after one plain SGD step on the GRPO loss, computed with autograd in float64 on
the independent PyTorch forward of gen_policy_golden.py.

The loss mirrors what `aha train --rollouts` is configured to do in tests/grpo/replay_test.cpp:
group-normalised advantages (r - mean) / (std + 1e-4) with the unbiased std, token-level ratio
clipped to [1 - 0.2, 1 + 0.28], k3 KL to the reference with beta = 0.04, per-sequence token mean
then mean over sequences, one SGD step with lr = 0.5 and no gradient clipping.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_grpo_replay.py
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import gen_policy_golden as ref  # noqa: E402
from gen_distill_golden import read_safetensors  # noqa: E402

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(__file__)
GOLDEN = os.path.join(HERE, "..", "data", "golden", "deepseek_v3")
OUT = os.path.join(HERE, "..", "data", "grpo_replay")
LR, BETA, EPS_LOW, EPS_HIGH, ADV_EPS = 0.5, 0.04, 0.2, 0.28, 1e-4


def f32(x):
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def main():
    with open(os.path.join(GOLDEN, "config.json")) as f:
        c = json.load(f)
    p = {k: v.clone().requires_grad_(True) for k, v in read_safetensors(os.path.join(GOLDEN, "model.safetensors")).items()}
    gen = torch.Generator().manual_seed(7)
    V = c["vocab_size"]

    def ids(n):
        return [int(v) for v in torch.randint(0, V, (n,), generator=gen)]

    # Two groups of three completions; group "a" carries old logprobs off the current policy
    # (ratios leave the clip range both ways) and reference logprobs, group "b" neither.
    lines = []
    for pid, plen, clens, rewards in (("a", 5, (4, 3, 6), (1.0, 0.0, 0.5)), ("b", 3, (5, 2, 4), (0.0, 0.0, 1.0))):
        prompt = ids(plen)
        for k, (n, r) in enumerate(zip(clens, rewards)):
            line = {"prompt_id": pid, "prompt_ids": prompt, "completion_ids": ids(n), "reward": r}
            if pid == "a":
                with torch.no_grad():
                    lp = ref.forward_logprobs(c, p, torch.tensor(prompt + line["completion_ids"]))[plen - 1:]
                shift = torch.tensor([0.35, -0.3, 0.05, -0.02, 0.25, -0.4])[:n]
                line["old_logprobs"] = [f32(v) for v in (lp + shift).tolist()]
                line["ref_logprobs"] = [f32(v) for v in (lp - shift.flip(0) * 0.5).tolist()]
            lines.append(line)

    with torch.no_grad():
        base = {k: v.detach().clone() for k, v in p.items()}
    # Advantages per group.
    adv = []
    for pid in ("a", "b"):
        rs = torch.tensor([l["reward"] for l in lines if l["prompt_id"] == pid])
        adv += ((rs - rs.mean()) / (rs.std(unbiased=True) + ADV_EPS)).tolist()
    total = 0.0
    for line, a in zip(lines, adv):
        plen = len(line["prompt_ids"])
        toks = torch.tensor(line["prompt_ids"] + line["completion_ids"])
        logp = ref.forward_logprobs(c, p, toks)[plen - 1:]
        if "old_logprobs" in line:
            old = torch.tensor(line["old_logprobs"])
        else:
            old = logp.detach()
        if "ref_logprobs" in line:
            rlp = torch.tensor(line["ref_logprobs"])
        else:
            with torch.no_grad():
                rlp = ref.forward_logprobs(c, base, toks)[plen - 1:]
        ratio = torch.exp(logp - old)
        surrogate = torch.minimum(ratio * a, torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * a)
        k3 = torch.exp(rlp - logp) - (rlp - logp) - 1
        total = total + (-surrogate + BETA * k3).mean()
    loss = total / len(lines)
    loss.backward()
    updated = {k: (v - LR * v.grad if v.grad is not None else v).detach() for k, v in p.items()}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "rollouts.jsonl"), "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    ref.write_safetensors(os.path.join(OUT, "expected.safetensors"), updated)
    delta = max(float((updated[k] - base[k]).abs().max()) for k in updated)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"loss": float(loss), "max_update": delta, "lr": LR, "beta": BETA,
                   "eps_low": EPS_LOW, "eps_high": EPS_HIGH}, f, indent=1)
    print("loss", float(loss), "max |update|", delta)


if __name__ == "__main__":
    main()
