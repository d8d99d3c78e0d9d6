"""DeepSeek-V3.2's sparse attention (DSA) for gen_policy_golden.py: an independent PyTorch
implementation written after DeepSeek's fixed V3.2 inference code (the lightning indexer with
non-interleaved RoPE on the first qk_rope_head_dim values, LayerNorm'd shared keys, head weights
scaled by H_I^-1/2 d_I^-1/2, top-k over the causally masked scores with the causal mask added
back; MLA with interleaved RoPE restricted to the selected keys), FP8 and the Hadamard rotation
off (q.k is invariant under an orthonormal rotation). Dense SwiGLU layers, no MoE.

The case is written only for a seed whose every row with more causal keys than index_topk has
a gap > GAP between its k-th and (k+1)-th index scores, so that rounding cannot change a
selection and the selected sets can be compared exactly.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

GAP = 1e-4
LENGTHS = (48, 6)
CONFIG = {
    "model_type": "deepseek_v32", "architectures": ["DeepseekV32ForCausalLM"],
    "vocab_size": 37, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 32, "q_lora_rank": 64, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
    "qk_rope_head_dim": 16, "v_head_dim": 16, "index_n_heads": 4, "index_head_dim": 32,
    "index_topk": 8, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "beta_fast": 32, "beta_slow": 1,
                     "mscale": 1.0, "mscale_all_dim": 1.0,
                     "original_max_position_embeddings": 16},
    "tie_word_embeddings": False, "hidden_act": "silu",
}


def make_params(c, gen):
    d, H = c["hidden_size"], c["num_attention_heads"]
    dn, dr, dv = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    HI, dI = c["index_n_heads"], c["index_head_dim"]
    p = {}

    def mat(name, rows, cols, std=None):
        p[name] = torch.randn(rows, cols, generator=gen) * (std or cols ** -0.5)

    def vec(name, n, base=1.0, std=0.2):
        p[name] = base + torch.randn(n, generator=gen) * std

    mat("model.embed_tokens.weight", c["vocab_size"], d, 1.0)
    for l in range(c["num_hidden_layers"]):
        pre = f"model.layers.{l}."
        a = pre + "self_attn."
        vec(pre + "input_layernorm.weight", d)
        vec(pre + "post_attention_layernorm.weight", d)
        mat(a + "q_a_proj.weight", c["q_lora_rank"], d)
        vec(a + "q_a_layernorm.weight", c["q_lora_rank"])
        mat(a + "q_b_proj.weight", H * (dn + dr), c["q_lora_rank"])
        mat(a + "kv_a_proj_with_mqa.weight", c["kv_lora_rank"] + dr, d)
        vec(a + "kv_a_layernorm.weight", c["kv_lora_rank"])
        mat(a + "kv_b_proj.weight", H * (dn + dv), c["kv_lora_rank"])
        mat(a + "o_proj.weight", d, H * dv)
        mat(a + "indexer.wq_b.weight", HI * dI, c["q_lora_rank"])
        mat(a + "indexer.wk.weight", dI, d)
        vec(a + "indexer.k_norm.weight", dI)
        vec(a + "indexer.k_norm.bias", dI, 0.0, 0.2)
        mat(a + "indexer.weights_proj.weight", HI, d)
        I = c["intermediate_size"]
        mat(pre + "mlp.gate_proj.weight", I, d)
        mat(pre + "mlp.up_proj.weight", I, d)
        mat(pre + "mlp.down_proj.weight", d, I)
    vec("model.norm.weight", d)
    mat("lm_head.weight", c["vocab_size"], d)
    return {k: v.to(torch.float32).to(torch.float64) for k, v in p.items()}


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def freqs(c, s):
    """DeepSeek's precompute_freqs_cis angles (YaRN), in float32 as there; cos/sin of each fp32
    angle rounded to fp32."""
    dim, base, rs = c["qk_rope_head_dim"], c["rope_theta"], c["rope_scaling"]
    f = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    orig = rs["original_max_position_embeddings"]

    def corr(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(corr(rs["beta_fast"])), 0)
    high = min(math.ceil(corr(rs["beta_slow"])), dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    smooth = 1 - ramp
    f = f / rs["factor"] * (1 - smooth) + f * smooth
    ang = torch.outer(torch.arange(s, dtype=torch.float32), f).to(torch.float64)
    return ang.cos().float().double(), ang.sin().float().double()  # [s, dim/2]


def rope(x, cos, sin, interleaved):
    """x [s, heads, dim]: pairs (2i, 2i+1) (MLA) or (i, i + dim/2) (the indexer)."""
    h = x.shape[-1] // 2
    a, b = (x[..., 0::2], x[..., 1::2]) if interleaved else (x[..., :h], x[..., h:])
    cos, sin = cos[:, None, :], sin[:, None, :]
    ra, rb = a * cos - b * sin, a * sin + b * cos
    return torch.stack([ra, rb], -1).flatten(-2) if interleaved else torch.cat([ra, rb], -1)


def indexer(c, p, a, x, qr, cos, sin):
    """The index scores I [s, s] (causal mask added) of one sequence."""
    s, dr = x.shape[0], c["qk_rope_head_dim"]
    HI, dI = c["index_n_heads"], c["index_head_dim"]
    q = F.linear(qr, p[a + "indexer.wq_b.weight"]).view(s, HI, dI)
    q = torch.cat([rope(q[..., :dr], cos, sin, False), q[..., dr:]], -1)
    k = layer_norm(F.linear(x, p[a + "indexer.wk.weight"]), p[a + "indexer.k_norm.weight"],
                   p[a + "indexer.k_norm.bias"], 1e-6).view(s, 1, dI)
    k = torch.cat([rope(k[..., :dr], cos, sin, False), k[..., dr:]], -1)[:, 0]
    w = F.linear(x, p[a + "indexer.weights_proj.weight"]) * HI ** -0.5 * dI ** -0.5
    score = (torch.einsum("thd,sd->ths", q, k).relu() * w[:, :, None]).sum(1)
    return score + torch.full((s, s), float("-inf")).triu(1)


def mla(c, p, a, x, rec):
    s = x.shape[0]
    H, dn, dr, dv = (c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"],
                     c["v_head_dim"])
    eps, K = c["rms_norm_eps"], c["index_topk"]
    cos, sin = freqs(c, s)
    qr = rms_norm(F.linear(x, p[a + "q_a_proj.weight"]), p[a + "q_a_layernorm.weight"], eps)
    q = F.linear(qr, p[a + "q_b_proj.weight"]).view(s, H, dn + dr)
    q = torch.cat([q[..., :dn], rope(q[..., dn:], cos, sin, True)], -1)
    kv = F.linear(x, p[a + "kv_a_proj_with_mqa.weight"])
    latent = rms_norm(kv[:, :c["kv_lora_rank"]], p[a + "kv_a_layernorm.weight"], eps)
    k_pe = rope(kv[:, None, c["kv_lora_rank"]:], cos, sin, True)
    kvb = F.linear(latent, p[a + "kv_b_proj.weight"]).view(s, H, dn + dv)
    k = torch.cat([kvb[..., :dn], k_pe.expand(s, H, dr)], -1)
    m = 0.1 * c["rope_scaling"]["mscale_all_dim"] * math.log(c["rope_scaling"]["factor"]) + 1
    scores = torch.einsum("shd,thd->sht", q, k) * ((dn + dr) ** -0.5 * m * m)
    score = indexer(c, p, a, x, qr, cos, sin)
    top = score.topk(min(K, s), dim=-1).indices
    mask = torch.full((s, s), float("-inf")).scatter(-1, top, 0.0)
    mask = mask + torch.full((s, s), float("-inf")).triu(1)
    o = torch.einsum("sht,thd->shd", (scores + mask[:, None, :]).softmax(-1), kvb[..., dn:])
    rec["selected"].append([sorted(int(j) for j in top[t] if j <= t) for t in range(s)])
    for t in range(K, s):  # rows with more than K causal keys: the k-th vs (k+1)-th score
        v = score[t, :t + 1].sort(descending=True).values
        rec["gap"] = min(rec["gap"], float(v[K - 1] - v[K]))
    return F.linear(o.reshape(s, H * dv), p[a + "o_proj.weight"])


def logprobs(c, p, tokens, rec):
    eps = c["rms_norm_eps"]
    x = p["model.embed_tokens.weight"][tokens]
    for l in range(c["num_hidden_layers"]):
        pre = f"model.layers.{l}."
        x = x + mla(c, p, pre + "self_attn.", rms_norm(x, p[pre + "input_layernorm.weight"], eps),
                    rec)
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        x = x + F.linear(F.silu(F.linear(h, p[pre + "mlp.gate_proj.weight"])) *
                         F.linear(h, p[pre + "mlp.up_proj.weight"]), p[pre + "mlp.down_proj.weight"])
    h = rms_norm(x, p["model.norm.weight"], eps)
    logp = F.log_softmax(F.linear(h, p["lm_head.weight"]), dim=-1)
    return logp[:-1].gather(1, tokens[1:].unsqueeze(1)).squeeze(1)


def write_case(out_dir, write_safetensors):
    c = CONFIG
    for seed in range(1000):
        gen = torch.Generator().manual_seed(seed)
        p = make_params(c, gen)
        seqs = [[int(v) for v in torch.randint(0, c["vocab_size"], (n,), generator=gen)]
                for n in LENGTHS]
        recs = [{"selected": [], "gap": float("inf")} for _ in seqs]
        lps = [logprobs(c, p, torch.tensor(s), r).tolist() for s, r in zip(seqs, recs)]
        gap = min(r["gap"] for r in recs)
        if gap > GAP:
            break
    else:
        raise SystemExit("no seed below 1000 separates every k-th and (k+1)-th index score")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), p)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump({"seed": seed, "min_index_gap": gap, "sequences": seqs, "logprobs": lps,
                   "selected": [r["selected"] for r in recs],
                   "selected_layout": "[sequence][layer][token]: ascending key positions"}, f)
    print("deepseek_v32 seed", seed, "min gap", gap, sum(v.numel() for v in p.values()), "params")
