#!/usr/bin/env python3
"""Reference cases for policy/kd_loss.h (tests/data/kd_loss_cases.json): the sparse KL of a
student LM head against a teacher's top-k, written from its definition in PyTorch (bucket
masses, log-softmax, autograd in float64), independent of aha's hand-written gradient.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_kd_loss.py
"""
import json
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "data", "kd_loss_cases.json")


def case(gen, n, dim, vocab, k, direction, tail):
    h = torch.randn(n, dim, generator=gen).requires_grad_(True)
    w = (torch.randn(vocab, dim, generator=gen) * 0.7).requires_grad_(True)
    t_logp = torch.log_softmax(2.0 * torch.randn(n, vocab, generator=gen), -1)
    top = torch.topk(t_logp, k, dim=-1)
    ids, lps = top.indices, top.values.to(torch.float32).to(torch.float64)  # stored as float
    weight = torch.rand(n, generator=gen).to(torch.float32).to(torch.float64)
    lq = torch.log_softmax(h @ w.T, -1)
    use_tail = (tail or direction == "reverse") and k < vocab
    total = 0.0
    for r in range(n):
        p = lps[r].exp()
        q = lq[r, ids[r]].exp()
        if use_tail:
            mask = torch.ones(vocab, dtype=torch.bool)
            mask[ids[r]] = False
            q_rest = lq[r][mask].exp().sum()
            p_rest = torch.clamp(1 - p.sum(), min=1e-8 if direction == "reverse" else 0.0)
            p = torch.cat([p, p_rest.view(1)])
            q = torch.cat([q, q_rest.view(1)])
        else:
            p = p / p.sum()
        if direction == "forward":
            kl = (p * (p.log() - q.log())).sum()
        else:
            kl = (q * (q.log() - p.log())).sum()
        total = total + weight[r] * kl
    total.backward()
    return {"n": n, "dim": dim, "vocab": vocab, "k": k, "direction": direction, "tail": tail,
            "h": h.detach().flatten().tolist(), "w": w.detach().flatten().tolist(),
            "ids": ids.flatten().tolist(), "logprobs": lps.flatten().tolist(),
            "weight": weight.tolist(), "loss": float(total),
            "dh": h.grad.flatten().tolist(), "dw": w.grad.flatten().tolist()}


def main():
    gen = torch.Generator().manual_seed(5)
    cases = [case(gen, 6, 8, 13, 5, "forward", True), case(gen, 6, 8, 13, 5, "forward", False),
             case(gen, 4, 8, 13, 3, "reverse", True), case(gen, 3, 5, 9, 9, "forward", True)]
    with open(OUT, "w") as f:
        json.dump({"generator": "tests/reference/gen_kd_loss.py", "cases": cases}, f)
    print(len(cases), "cases")


if __name__ == "__main__":
    main()
