#!/usr/bin/env python3
"""Writes tests/data/grpo_loss_cases.json: GRPO loss values and d loss / d logp from PyTorch
autograd, written after TRL's GRPOTrainer._compute_loss (clipped surrogate, token/sequence
importance level, loss types) plus dual clip, KL estimators and off-policy masking, and the
CISPO (MiniMax-M1), SAPO (soft gate) and GMPO (geometric mean) objectives from their papers.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_grpo_loss.py
"""
import itertools
import json
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "data", "grpo_loss_cases.json")


def policy_loss(logp, old, adv, mask, cfg):
    log_ratio = logp - old
    if cfg["level"] == "sequence":
        log_ratio = ((log_ratio * mask).sum(-1) / mask.sum(-1)).unsqueeze(-1).expand_as(logp)
    r = torch.exp(log_ratio)
    kind = cfg.get("policy", "clip")
    if kind == "cispo":  # the clipped IS weight is a constant; only log pi carries gradient
        w = torch.clamp(r, 1 - cfg["eps_low"], 1 + cfg["eps_high"]).detach()
        return -w * adv * logp
    if kind == "sapo":
        tau = torch.where(adv > 0, torch.full_like(adv, cfg["tau_pos"]),
                          torch.full_like(adv, cfg["tau_neg"]))
        return -(4.0 / tau) * torch.sigmoid(tau * (r - 1)) * adv
    if kind == "gmpo":
        sgn = torch.sign(adv)
        c = torch.clamp(log_ratio, -cfg["eps_low"], cfg["eps_high"])
        chosen = sgn * torch.min(sgn * log_ratio, sgn * c)
        chosen = torch.where(sgn == 0, log_ratio, chosen)
        mean = (chosen * mask).sum(-1) / mask.sum(-1)
        return (-adv[:, 0] * torch.exp(mean)).unsqueeze(-1).expand_as(logp)
    clipped = torch.clamp(r, 1 - cfg["eps_low"], 1 + cfg["eps_high"])
    surr = torch.min(r * adv, clipped * adv)
    if cfg["dual_clip"] > 1:
        surr = torch.where(adv < 0, torch.max(surr, cfg["dual_clip"] * adv), surr)
    return -surr


def loss_fn(logp, old, ref, adv, mask, cfg):
    per_tok = policy_loss(logp, old, adv, mask, cfg)
    if cfg["beta"] > 0:
        delta = ref - logp
        kind = cfg["kl"]
        if kind == "k1":
            kl = -delta
        elif kind == "k2":
            kl = 0.5 * delta ** 2
        elif kind == "k3":
            kl = torch.exp(delta) - delta - 1
        else:
            kl = torch.exp(logp - old) * (torch.exp(delta) - delta - 1)
        per_tok = per_tok + cfg["beta"] * kl
    keep = torch.ones(logp.shape[0])
    if cfg["offpolicy_delta"] > 0:
        seq_kl = ((old - logp) * mask).sum(-1) / mask.sum(-1)
        keep = 1.0 - ((adv[:, 0] < 0) & (seq_kl > cfg["offpolicy_delta"])).double()
    m = mask * keep.unsqueeze(-1)
    n_live = keep.sum()
    agg = cfg["agg"]
    if agg == "seq-mean-token-mean":
        return ((per_tok * m).sum(-1) / mask.sum(-1) * keep).sum() / n_live
    if agg in ("token-mean", "bnpo"):
        return (per_tok * m).sum() / m.sum()
    return (per_tok * m).sum() / (n_live * cfg["max_len"])


def main():
    gen = torch.Generator().manual_seed(7)
    lens = [5, 3, 8, 1]
    T = max(lens)
    cases = []
    combos = itertools.product(["token", "sequence"],
                               ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"],
                               [(0.0, "k3"), (0.04, "k1"), (0.04, "k2"), (0.1, "k3"),
                                (0.1, "k3_ratio")],
                               [0.0, 3.0], [0.0, 0.05])
    configs = [{"level": level, "agg": agg, "beta": beta, "kl": kl, "eps_low": 0.2,
                "eps_high": 0.28, "dual_clip": dual, "max_len": 10, "offpolicy_delta": offp}
               for level, agg, (beta, kl), dual, offp in combos]
    for policy, levels in (("cispo", ["token"]), ("sapo", ["token", "sequence"]),
                           ("gmpo", ["token"])):
        for level, agg, (beta, kl) in itertools.product(
                levels, ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"],
                [(0.0, "k3"), (0.04, "k3")]):
            configs.append({"policy": policy, "level": level, "agg": agg, "beta": beta, "kl": kl,
                            "eps_low": 0.2, "eps_high": 0.28, "dual_clip": 0.0, "max_len": 10,
                            "offpolicy_delta": 0.0, "tau_pos": 1.0, "tau_neg": 1.05})
    for cfg in configs:
        mask = torch.zeros(len(lens), T)
        for i, n in enumerate(lens):
            mask[i, :n] = 1
        old = -torch.rand(len(lens), T, generator=gen) * 3
        logp = (old + torch.randn(len(lens), T, generator=gen) * 0.4).requires_grad_(True)
        ref = old + torch.randn(len(lens), T, generator=gen) * 0.3
        adv = torch.randn(len(lens), 1, generator=gen).expand(len(lens), T).clone()
        loss = loss_fn(logp, old, ref, adv, mask, cfg)
        loss.backward()
        cases.append({
            "config": cfg,
            "logp": [logp[i, :n].tolist() for i, n in enumerate(lens)],
            "old": [old[i, :n].tolist() for i, n in enumerate(lens)],
            "ref": [ref[i, :n].tolist() for i, n in enumerate(lens)],
            "adv": [adv[i, 0].item() for i in range(len(lens))],
            "loss": loss.item(),
            "grad": [logp.grad[i, :n].tolist() for i, n in enumerate(lens)],
        })
    with open(OUT, "w") as f:
        json.dump(cases, f)
    print(len(cases), "cases")


if __name__ == "__main__":
    main()
