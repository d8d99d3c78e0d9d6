"""An independent Engram (arXiv 2601.07372) for aha's tests, written after the algorithm of
deepseek-ai/Engram's demo (engram_demo_v1.py): numpy's default_rng multipliers, sympy's
isprime for the repeated next-prime search, the multiplicative-XOR hash of shifted compressed ids,
and the gated value + short dilated convolution in PyTorch (RMSNorm written out: g x rsqrt(mean
x^2 + eps), eps = float32 machine epsilon for the gate norms, 1e-5 for the conv norms).
Imported by gen_engram_hash.py and gen_policy_golden.py.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from sympy import isprime

GATE_EPS = float(np.finfo(np.float32).eps)
CONV_EPS = 1e-5


def compressed_vocab(vocab_size, compression):
    return vocab_size if compression is None else int(max(compression)) + 1


def multipliers(e, vocab_size, compression, layer):
    half = max(1, int(np.iinfo(np.int64).max // compressed_vocab(vocab_size, compression)) // 2)
    g = np.random.default_rng(int(e.get("seed", 0) + 10007 * int(layer)))
    r = g.integers(low=0, high=half, size=(e["max_ngram_size"],), dtype=np.int64)
    return r * 2 + 1


def primes(e):
    """{layer: [(N-1) * H primes]}: per layer, n and head, the next prime above the last one
    (the search for n restarting at engram_vocab_size[n-2] - 1) that no earlier head took."""
    seen, out = set(), {}
    for layer in e["layer_ids"]:
        mods = []
        for n in range(2, e["max_ngram_size"] + 1):
            last = e["engram_vocab_size"][n - 2] - 1
            for _ in range(e["n_head_per_ngram"]):
                cand = last + 1
                while not isprime(cand) or cand in seen:
                    cand += 1
                seen.add(cand)
                mods.append(cand)
                last = cand
        out[layer] = mods
    return out


def compress(ids, compression):
    ids = np.asarray(ids, dtype=np.int64)
    return ids if compression is None else np.asarray(compression, dtype=np.int64)[ids]


def hash_ids(e, vocab_size, compression, layer, ids):
    """ids [B, T] token ids -> [B, T, (N-1) * H] per-head hashes (before the head offsets)."""
    x = compress(ids, compression)
    pad = int(compress([e.get("pad_id", 2)], compression)[0])
    B, T = x.shape
    mult = multipliers(e, vocab_size, compression, layer)
    mods = primes(e)[layer]
    shifted = [x] + [np.concatenate([np.full((B, k), pad, dtype=np.int64), x], 1)[:, :T]
                     for k in range(1, e["max_ngram_size"])]
    out, head = [], 0
    for n in range(2, e["max_ngram_size"] + 1):
        mix = shifted[0] * mult[0]
        for k in range(1, n):
            mix = np.bitwise_xor(mix, shifted[k] * mult[k])
        for _ in range(e["n_head_per_ngram"]):
            out.append(mix % mods[head])
            head += 1
    return np.stack(out, axis=2)


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def make_params(c, p, mat, vec, gen, pre, layer):
    """Adds model.layers.L.engram.* to p (the demo's module names)."""
    e, d = c["engram"], c["hidden_size"]
    m = c.get("hc_mult") or 1
    W = (e["max_ngram_size"] - 1) * e["n_embed_per_ngram"]
    rows = sum(primes(e)[layer])
    en = pre + "engram."
    mat(en + "multi_head_embedding.embedding.weight", rows, e["n_embed_per_ngram"] //
        e["n_head_per_ngram"], 1.0)
    p[en + "short_conv.conv.weight"] = torch.randn(m * d, 1, e["kernel_size"], generator=gen) * 0.5
    for s in range(m):
        vec(en + f"short_conv.norms.{s}.weight", d)
    mat(en + "value_proj.weight", d, W)
    vec(en + "value_proj.bias", d, 0.0, 0.3)
    for s in range(m):
        mat(en + f"key_projs.{s}.weight", d, W)
        vec(en + f"key_projs.{s}.bias", d, 0.0, 0.3)
    for s in range(m):
        vec(en + f"norm1.{s}.weight", d)
        vec(en + f"norm2.{s}.weight", d)


def engram(c, p, pre, X, tokens, layer):
    """The Engram output for one sequence: X [T, m, d] streams, tokens [T] -> [T, m, d]."""
    e, d = c["engram"], c["hidden_size"]
    T, m, _ = X.shape
    en = pre + "engram."
    mods = primes(e)[layer]
    offsets = torch.tensor([sum(mods[:i]) for i in range(len(mods))])
    idx = torch.from_numpy(hash_ids(e, c["vocab_size"], None, layer, np.asarray([tokens])))[0]
    emb = p[en + "multi_head_embedding.embedding.weight"][idx + offsets].flatten(-2)  # [T, W]
    gates = []
    for s in range(m):
        k = rms(F.linear(emb, p[en + f"key_projs.{s}.weight"], p[en + f"key_projs.{s}.bias"]),
                p[en + f"norm1.{s}.weight"], GATE_EPS)
        q = rms(X[:, s], p[en + f"norm2.{s}.weight"], GATE_EPS)
        g = (k * q).sum(-1) / math.sqrt(d)
        gates.append(torch.sigmoid(g.abs().clamp_min(1e-6).sqrt() * g.sign()))
    value = torch.stack(gates, 1).unsqueeze(-1) * F.linear(
        emb, p[en + "value_proj.weight"], p[en + "value_proj.bias"]).unsqueeze(1)
    normed = torch.cat([rms(value[:, s], p[en + f"short_conv.norms.{s}.weight"], CONV_EPS)
                        for s in range(m)], -1)
    K, N = e["kernel_size"], e["max_ngram_size"]
    y = F.conv1d(normed.t().unsqueeze(0), p[en + "short_conv.conv.weight"],
                 padding=(K - 1) * N, dilation=N, groups=m * d)[0, :, :T]
    return value + F.silu(y).t().reshape(T, m, d)
