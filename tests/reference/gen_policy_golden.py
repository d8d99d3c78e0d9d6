#!/usr/bin/env python3
"""Writes tests/data/golden/<model>/: a tiny random checkpoint plus reference logprobs and
gradients from an independent PyTorch implementation written after the Hugging Face modeling
code of DeepSeek-V2/V3 (de-interleaving rotate-half RoPE, YaRN, MoE gate with torch.topk),
Llama and Qwen2, DeepSeek-V4's manifold-constrained hyper-connections (written after the
mHC paper and HF's DeepSeek-V4 modeling code: streams [seq, m, d], comb applied transposed by a
matmul), Engram (engram_ref.py, after deepseek-ai/Engram's demo) and DeepSeek-V3.2's sparse
attention (dsa_ref.py, after DeepSeek's fixed V3.2 inference code). Gradients come from autograd in float64.

Run with Debian's python3-torch:  /usr/bin/python3 tests/reference/gen_policy_golden.py [NAME...]
(no names: every model)
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

import dsa_ref
import engram_ref

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "data", "golden")

CONFIGS = {
    "deepseek_v3": {
        "model_type": "deepseek_v3", "vocab_size": 37, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 24, "moe_intermediate_size": 8,
        "q_lora_rank": 12, "kv_lora_rank": 8, "qk_nope_head_dim": 6, "qk_rope_head_dim": 4,
        "v_head_dim": 5, "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 3,
        "first_k_dense_replace": 1, "n_group": 4, "topk_group": 2, "scoring_func": "sigmoid",
        "topk_method": "noaux_tc", "norm_topk_prob": True, "routed_scaling_factor": 2.5,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "rope_scaling": {"type": "yarn", "factor": 4.0, "beta_fast": 32, "beta_slow": 1,
                         "mscale": 1.0, "mscale_all_dim": 0.8,
                         "original_max_position_embeddings": 16},
        "tie_word_embeddings": False, "hidden_act": "silu",
    },
    "deepseek_v2": {
        "model_type": "deepseek_v2", "vocab_size": 41, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 3, "intermediate_size": 20, "moe_intermediate_size": 6,
        "q_lora_rank": None, "kv_lora_rank": 10, "qk_nope_head_dim": 4, "qk_rope_head_dim": 6,
        "v_head_dim": 4, "n_routed_experts": 6, "n_shared_experts": 2, "num_experts_per_tok": 2,
        "first_k_dense_replace": 0, "n_group": 3, "topk_group": 2, "scoring_func": "softmax",
        "topk_method": "group_limited_greedy", "norm_topk_prob": False,
        "routed_scaling_factor": 1.5, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": False,
        "hidden_act": "silu",
    },
    "llama": {
        "model_type": "llama", "vocab_size": 33, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 24,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True, "hidden_act": "silu",
    },
    "qwen2": {
        "model_type": "qwen2", "vocab_size": 35, "hidden_size": 12, "num_hidden_layers": 2,
        "num_attention_heads": 3, "num_key_value_heads": 1, "intermediate_size": 20,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": False, "hidden_act": "silu",
    },
}
# DeepSeek-V3 with its multi-token prediction module (an MoE block, as V3's layer 61).
CONFIGS["deepseek_v3_mtp"] = dict(CONFIGS["deepseek_v3"], num_nextn_predict_layers=1)
MTP_WEIGHT = 0.3
CONFIGS["deepseek_v3_mhc"] = dict(CONFIGS["deepseek_v3"], hc_mult=4, hc_sinkhorn_iters=20,
                                  hc_eps=1e-6)
CONFIGS["llama_nsa"] = dict(CONFIGS["llama"], num_hidden_layers=2, nsa={
    "block_size": 2, "block_counts": 3, "window_size": 3})
CONFIGS["llama_mhc"] = dict(CONFIGS["llama"], hc_mult=2, hc_sinkhorn_iters=5, hc_eps=1e-6)
# Engram (engram_ref.py) on one stream, and with four hyper-connection streams as in V4.1.
CONFIGS["llama_engram"] = dict(CONFIGS["llama"], engram={
    "max_ngram_size": 3, "n_head_per_ngram": 2, "n_embed_per_ngram": 8, "layer_ids": [0, 1],
    "engram_vocab_size": [11, 13], "seed": 3, "kernel_size": 4, "pad_id": 2})
CONFIGS["deepseek_v3_mhc_engram"] = dict(CONFIGS["deepseek_v3_mhc"], engram={
    "max_ngram_size": 2, "n_head_per_ngram": 3, "n_embed_per_ngram": 6, "layer_ids": [1],
    "engram_vocab_size": [17], "seed": 0, "kernel_size": 3, "pad_id": 1})


def write_safetensors(path, tensors):
    write_entries(path, {name: ("F32", t.shape, t.detach().to(torch.float32).contiguous()
                                .numpy().tobytes()) for name, t in tensors.items()})


def write_entries(path, entries):
    """entries: name -> (safetensors dtype, shape, bytes as stored)."""
    header, offset = {}, 0
    for name, (dtype, shape, data) in entries.items():
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for _, _, data in entries.values():
            f.write(data)


def is_mla(c):
    return c["model_type"].startswith("deepseek")


def make_params(c, gen):
    """HF tensor names -> float64 tensors with requires_grad (weights stored as fp32)."""
    d, H = c["hidden_size"], c["num_attention_heads"]
    p = {}

    def mat(name, rows, cols, std=0.3):
        p[name] = torch.randn(rows, cols, generator=gen) * std

    def vec(name, n, base=1.0, std=0.2):
        p[name] = base + torch.randn(n, generator=gen) * std

    mat("model.embed_tokens.weight", c["vocab_size"], d, 1.0)
    # An MTP module (DeepSeek-V3 §2.2) is layer num_hidden_layers: a full block plus the
    # tensors added below.
    for l in range(c["num_hidden_layers"] + c.get("num_nextn_predict_layers", 0)):
        pre = f"model.layers.{l}."
        if l in c.get("engram", {}).get("layer_ids", []):
            engram_ref.make_params(c, p, mat, vec, gen, pre, l)
        vec(pre + "input_layernorm.weight", d)
        vec(pre + "post_attention_layernorm.weight", d)
        a = pre + "self_attn."
        if is_mla(c):
            qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
            if c["q_lora_rank"]:
                mat(a + "q_a_proj.weight", c["q_lora_rank"], d)
                vec(a + "q_a_layernorm.weight", c["q_lora_rank"])
                mat(a + "q_b_proj.weight", H * qk, c["q_lora_rank"])
            else:
                mat(a + "q_proj.weight", H * qk, d)
            mat(a + "kv_a_proj_with_mqa.weight", c["kv_lora_rank"] + c["qk_rope_head_dim"], d)
            vec(a + "kv_a_layernorm.weight", c["kv_lora_rank"])
            mat(a + "kv_b_proj.weight", H * (c["qk_nope_head_dim"] + c["v_head_dim"]),
                c["kv_lora_rank"])
            mat(a + "o_proj.weight", d, H * c["v_head_dim"])
        else:
            hd = d // H
            kv = c["num_key_value_heads"]
            mat(a + "q_proj.weight", H * hd, d)
            mat(a + "k_proj.weight", kv * hd, d)
            mat(a + "v_proj.weight", kv * hd, d)
            mat(a + "o_proj.weight", d, H * hd)
            if c.get("nsa"):
                mat(a + "g_proj.weight", 3 * H, d)
            if c["model_type"] == "qwen2":
                vec(a + "q_proj.bias", H * hd, 0.0, 0.3)
                vec(a + "k_proj.bias", kv * hd, 0.0, 0.3)
                vec(a + "v_proj.bias", kv * hd, 0.0, 0.3)
        m = pre + "mlp."
        moe = is_mla(c) and c["n_routed_experts"] and l >= c["first_k_dense_replace"]
        if moe:
            E, I = c["n_routed_experts"], c["moe_intermediate_size"]
            mat(m + "gate.weight", E, d)
            if c["topk_method"] == "noaux_tc":
                vec(m + "gate.e_score_correction_bias", E, 0.0, 0.1)
            for e in range(E):
                mat(m + f"experts.{e}.gate_proj.weight", I, d)
                mat(m + f"experts.{e}.up_proj.weight", I, d)
                mat(m + f"experts.{e}.down_proj.weight", d, I)
            Is = I * c["n_shared_experts"]
            mat(m + "shared_experts.gate_proj.weight", Is, d)
            mat(m + "shared_experts.up_proj.weight", Is, d)
            mat(m + "shared_experts.down_proj.weight", d, Is)
        else:
            I = c["intermediate_size"]
            mat(m + "gate_proj.weight", I, d)
            mat(m + "up_proj.weight", I, d)
            mat(m + "down_proj.weight", d, I)
        if c.get("hc_mult"):
            m = c["hc_mult"]
            for site in ("attn_hc.", "ffn_hc."):
                mat(pre + site + "fn", (m + 2) * m, m * d)
                vec(pre + site + "base", (m + 2) * m, 0.0, 0.5)
                vec(pre + site + "scale", 3)
    vec("model.norm.weight", d)
    if c.get("hc_mult"):
        m = c["hc_mult"]
        mat("model.hc_head.hc_fn", m, m * d)
        vec("model.hc_head.hc_base", m, 0.0, 0.5)
        vec("model.hc_head.hc_scale", 1)
    if not c["tie_word_embeddings"]:
        mat("lm_head.weight", c["vocab_size"], d)
    if c.get("num_nextn_predict_layers"):
        pre = f"model.layers.{c['num_hidden_layers']}."
        mat(pre + "embed_tokens.weight", c["vocab_size"], d, 1.0)
        vec(pre + "enorm.weight", d)
        vec(pre + "hnorm.weight", d)
        mat(pre + "eh_proj.weight", d, 2 * d)
        vec(pre + "shared_head.norm.weight", d)
        mat(pre + "shared_head.head.weight", c["vocab_size"], d)
    # Round to fp32 (what the checkpoint stores), then track gradients in float64.
    for k in p:
        p[k] = p[k].to(torch.float32).to(torch.float64).requires_grad_(
            not k.endswith("e_score_correction_bias"))
    return p


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def yarn_mscale(scale, mscale):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_cos_sin(c, dim, seq_len):
    base = c["rope_theta"]
    rs = c.get("rope_scaling")
    idx = torch.arange(0, dim, 2, dtype=torch.float32) / dim
    inv_freq = 1.0 / (base ** idx)
    mscale = 1.0
    if rs and rs["type"] == "yarn":
        factor = rs["factor"]
        orig = rs["original_max_position_embeddings"]

        def corr(rot):
            return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

        low = max(math.floor(corr(rs["beta_fast"])), 0)
        high = min(math.ceil(corr(rs["beta_slow"])), dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
        mask = 1.0 - ramp
        inv_freq = inv_freq / factor * (1 - mask) + inv_freq * mask
        mscale = yarn_mscale(factor, rs["mscale"]) / yarn_mscale(factor, rs["mscale_all_dim"])
    t = torch.arange(seq_len, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * mscale).to(torch.float64), (emb.sin() * mscale).to(torch.float64)


def apply_rope(x, cos, sin, deinterleave):
    # x: [heads, seq, dim]
    if deinterleave:
        h, s, d = x.shape
        x = x.view(h, s, d // 2, 2).transpose(3, 2).reshape(h, s, d)
    return x * cos + rotate_half(x) * sin


def attention(q, k, v, scale):
    # q [H, s, dq], k [H, s, dq], v [H, s, dv]
    s = q.shape[1]
    scores = q @ k.transpose(1, 2) * scale
    mask = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def mlp(p, pre, x):
    return F.linear(F.silu(F.linear(x, p[pre + "gate_proj.weight"])) *
                    F.linear(x, p[pre + "up_proj.weight"]), p[pre + "down_proj.weight"])


def mla_attention(c, p, pre, x):
    s = x.shape[0]
    H, dn, dr, dv = (c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"],
                     c["v_head_dim"])
    if c["q_lora_rank"]:
        q = F.linear(rms_norm(F.linear(x, p[pre + "q_a_proj.weight"]),
                              p[pre + "q_a_layernorm.weight"], c["rms_norm_eps"]),
                     p[pre + "q_b_proj.weight"])
    else:
        q = F.linear(x, p[pre + "q_proj.weight"])
    q = q.view(s, H, dn + dr).transpose(0, 1)
    q_nope, q_pe = q[..., :dn], q[..., dn:]
    ckv = F.linear(x, p[pre + "kv_a_proj_with_mqa.weight"])
    latent, k_pe = ckv[:, :c["kv_lora_rank"]], ckv[:, c["kv_lora_rank"]:]
    kv = F.linear(rms_norm(latent, p[pre + "kv_a_layernorm.weight"], c["rms_norm_eps"]),
                  p[pre + "kv_b_proj.weight"]).view(s, H, dn + dv).transpose(0, 1)
    k_nope, v = kv[..., :dn], kv[..., dn:]
    cos, sin = rope_cos_sin(c, dr, s)
    q_pe = apply_rope(q_pe, cos, sin, True)
    k_pe = apply_rope(k_pe.view(1, s, dr), cos, sin, True).expand(H, s, dr)
    qf = torch.cat([q_nope, q_pe], -1)
    kf = torch.cat([k_nope, k_pe], -1)
    scale = (dn + dr) ** -0.5
    rs = c.get("rope_scaling")
    if rs and rs.get("mscale_all_dim"):
        m = yarn_mscale(rs["factor"], rs["mscale_all_dim"])
        scale = scale * m * m
    o = attention(qf, kf, v, scale).transpose(0, 1).reshape(s, H * dv)
    return F.linear(o, p[pre + "o_proj.weight"])


def gqa_attention(c, p, pre, x):
    s = x.shape[0]
    H, kvh = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c["hidden_size"] // H

    def proj(name, heads):
        b = p.get(pre + name + ".bias")
        return F.linear(x, p[pre + name + ".weight"], b).view(s, heads, hd).transpose(0, 1)

    q, k, v = proj("q_proj", H), proj("k_proj", kvh), proj("v_proj", kvh)
    cos, sin = rope_cos_sin(c, hd, s)
    q, k = apply_rope(q, cos, sin, False), apply_rope(k, cos, sin, False)
    k = k.repeat_interleave(H // kvh, 0)
    v = v.repeat_interleave(H // kvh, 0)
    o = attention(q, k, v, hd ** -0.5).transpose(0, 1).reshape(s, H * hd)
    return F.linear(o, p[pre + "o_proj.weight"])


def nsa_attention(c, p, pre, x):
    """NSA as fla-org's naive reference on shared GQA keys: mean-pooled complete blocks, the
    first and the query's own block always selected plus the best-scored ones per group (summed
    compressed probabilities, ties to the lower block), a causal window; sigmoid gates."""
    s = x.shape[0]
    H, kvh = c["num_attention_heads"], c["num_key_value_heads"]
    hd, G = c["hidden_size"] // H, H // kvh
    bs, count, win = (c["nsa"]["block_size"], c["nsa"]["block_counts"],
                      c["nsa"]["window_size"])
    q = F.linear(x, p[pre + "q_proj.weight"]).view(s, H, hd).transpose(0, 1)
    k = F.linear(x, p[pre + "k_proj.weight"]).view(s, kvh, hd).transpose(0, 1)
    v = F.linear(x, p[pre + "v_proj.weight"]).view(s, kvh, hd).transpose(0, 1)
    cos, sin = rope_cos_sin(c, hd, s)
    q, k = apply_rope(q, cos, sin, False), apply_rope(k, cos, sin, False)
    gates = torch.sigmoid(F.linear(x, p[pre + "g_proj.weight"])).view(s, H, 3)
    nblk = s // bs
    kc = k[:, :nblk * bs].reshape(kvh, nblk, bs, hd).mean(2)
    vc = v[:, :nblk * bs].reshape(kvh, nblk, bs, hd).mean(2)
    scale = hd ** -0.5
    rows = []
    for t in range(s):
        nv, own = (t + 1) // bs, t // bs
        heads = [None] * H
        for kh in range(kvh):
            score = torch.zeros(max(nv, 1))
            o_cmp = []
            for h in range(kh * G, kh * G + G):
                if nv > 0:
                    pc = torch.softmax(kc[kh, :nv] @ q[h, t] * scale, 0)
                    o_cmp.append(pc @ vc[kh, :nv])
                    score[:nv] += pc.detach()
                else:
                    o_cmp.append(torch.zeros(hd))
            def rank(b):
                if b in (0, own):
                    return math.inf
                return float(score[b]) if b < nv else -math.inf
            chosen = sorted(sorted(range(own + 1), key=lambda b: -rank(b))[:count])
            keys = [j for b in chosen for j in range(b * bs, min((b + 1) * bs, t + 1))]
            wkeys = list(range(max(0, t - win + 1), t + 1))
            for g, h in enumerate(range(kh * G, kh * G + G)):
                ps = torch.softmax(k[kh, keys] @ q[h, t] * scale, 0)
                o = gates[t, h, 0] * o_cmp[g] + gates[t, h, 1] * (ps @ v[kh, keys])
                if win > 0:
                    pw = torch.softmax(k[kh, wkeys] @ q[h, t] * scale, 0)
                    o = o + gates[t, h, 2] * (pw @ v[kh, wkeys])
                heads[h] = o
        rows.append(torch.cat(heads))
    return F.linear(torch.stack(rows), p[pre + "o_proj.weight"])


def route(c, x, gate_w, bias=None):
    """Expert ids and weights [n, K] of rows x; bias: noaux_tc's e_score_correction_bias."""
    E, K = c["n_routed_experts"], c["num_experts_per_tok"]
    logits = F.linear(x, gate_w)
    scores = logits.softmax(-1) if c["scoring_func"] == "softmax" else logits.sigmoid()
    n = x.shape[0]
    G = c["n_group"]
    if c["topk_method"] == "noaux_tc":
        choice = scores.detach() + bias.unsqueeze(0)
        gscores = choice.view(n, G, -1).topk(2, dim=-1)[0].sum(-1)
    elif c["topk_method"] == "group_limited_greedy":
        choice = scores.detach()
        gscores = choice.view(n, G, -1).max(dim=-1).values
    else:
        choice, gscores = scores.detach(), None
    if gscores is not None:
        gidx = torch.topk(gscores, k=c["topk_group"], dim=-1)[1]
        gmask = torch.zeros_like(gscores).scatter_(1, gidx, 1)
        smask = gmask.unsqueeze(-1).expand(n, G, E // G).reshape(n, -1)
        choice = choice.masked_fill(~smask.bool(), float("-inf"))
    idx = torch.topk(choice, k=K, dim=-1)[1]
    w = scores.gather(1, idx)
    norm = K > 1 and c["norm_topk_prob"]
    if norm:
        w = w / (w.sum(-1, keepdim=True) + 1e-20)
    if c["model_type"] == "deepseek_v3" or not norm:
        w = w * c["routed_scaling_factor"]
    return idx, w


def moe(c, p, pre, x):
    K = c["num_experts_per_tok"]
    n = x.shape[0]
    idx, w = route(c, x, p[pre + "gate.weight"], p.get(pre + "gate.e_score_correction_bias"))
    y = torch.zeros_like(x)
    for t in range(n):
        for k in range(K):
            e = int(idx[t, k])
            y[t] = y[t] + w[t, k] * mlp(p, pre + f"experts.{e}.", x[t:t + 1])[0]
    if c.get("n_shared_experts"):
        y = y + mlp(p, pre + "shared_experts.", x)
    return y


def hc_mixes(c, fn, X):
    """The weights' logits from the streams X [s, m, d]: unweighted RMS norm, then fn."""
    flat = X.reshape(X.shape[0], -1)
    flat = flat * torch.rsqrt(flat.pow(2).mean(-1, keepdim=True) + c["rms_norm_eps"])
    return F.linear(flat, fn)


def hc_around(c, p, pre, X, norm_w, sublayer):
    """One sublayer with hyper-connections: collapse, norm, sublayer, expand and mix."""
    m, eps = c["hc_mult"], c["hc_eps"]
    base, scale = p[pre + "base"], p[pre + "scale"]
    mix = hc_mixes(c, p[pre + "fn"], X)
    w_pre = torch.sigmoid(mix[:, :m] * scale[0] + base[:m]) + eps
    w_post = 2 * torch.sigmoid(mix[:, m:2 * m] * scale[1] + base[m:2 * m])
    comb = (mix[:, 2 * m:] * scale[2] + base[2 * m:]).view(-1, m, m).softmax(-1) + eps
    comb = comb / (comb.sum(-2, keepdim=True) + eps)
    for _ in range(c["hc_sinkhorn_iters"] - 1):
        comb = comb / (comb.sum(-1, keepdim=True) + eps)
        comb = comb / (comb.sum(-2, keepdim=True) + eps)
    u = (w_pre.unsqueeze(-1) * X).sum(1)
    y = sublayer(rms_norm(u, norm_w, c["rms_norm_eps"]))
    return w_post.unsqueeze(-1) * y.unsqueeze(1) + torch.matmul(comb.transpose(-1, -2), X)


def forward_logprobs_hc(c, p, tokens):
    X = p["model.embed_tokens.weight"][tokens].unsqueeze(1).expand(-1, c["hc_mult"], -1)
    for l in range(c["num_hidden_layers"]):
        pre = f"model.layers.{l}."
        if l in c.get("engram", {}).get("layer_ids", []):
            X = X + engram_ref.engram(c, p, pre, X, tokens.tolist(), l)
        attn = mla_attention if is_mla(c) else gqa_attention
        X = hc_around(c, p, pre + "attn_hc.", X, p[pre + "input_layernorm.weight"],
                      lambda h: attn(c, p, pre + "self_attn.", h))
        is_moe = is_mla(c) and c["n_routed_experts"] and l >= c["first_k_dense_replace"]
        X = hc_around(c, p, pre + "ffn_hc.", X, p[pre + "post_attention_layernorm.weight"],
                      lambda h: moe(c, p, pre + "mlp.", h) if is_moe else mlp(p, pre + "mlp.", h))
    mix = hc_mixes(c, p["model.hc_head.hc_fn"], X)
    w = torch.sigmoid(mix * p["model.hc_head.hc_scale"] + p["model.hc_head.hc_base"])
    x = ((w + c["hc_eps"]).unsqueeze(-1) * X).sum(1)
    h = rms_norm(x, p["model.norm.weight"], c["rms_norm_eps"])
    head = p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]
    logp = F.log_softmax(F.linear(h, head), dim=-1)
    return logp[:-1].gather(1, tokens[1:].unsqueeze(1)).squeeze(1)


def block(c, p, l, x, tokens):
    pre = f"model.layers.{l}."
    eps = c["rms_norm_eps"]
    if l in c.get("engram", {}).get("layer_ids", []):
        x = x + engram_ref.engram(c, p, pre, x.unsqueeze(1), tokens.tolist(), l)[:, 0]
    h = rms_norm(x, p[pre + "input_layernorm.weight"], eps)
    attn = mla_attention if is_mla(c) else (nsa_attention if c.get("nsa") else gqa_attention)
    x = x + attn(c, p, pre + "self_attn.", h)
    h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
    is_moe = is_mla(c) and c["n_routed_experts"] and l >= c["first_k_dense_replace"]
    return x + (moe(c, p, pre + "mlp.", h) if is_moe else mlp(p, pre + "mlp.", h))


def forward_logprobs(c, p, tokens, final_hidden=None):
    """final_hidden (a list): receives the normed final hidden states, what MTP reads."""
    if c.get("hc_mult"):
        return forward_logprobs_hc(c, p, tokens)
    x = p["model.embed_tokens.weight"][tokens]
    for l in range(c["num_hidden_layers"]):
        x = block(c, p, l, x, tokens)
    h = rms_norm(x, p["model.norm.weight"], c["rms_norm_eps"])
    if final_hidden is not None:
        final_hidden.append(h)
    head = p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]
    logp = F.log_softmax(F.linear(h, head), dim=-1)
    return logp[:-1].gather(1, tokens[1:].unsqueeze(1)).squeeze(1)


def mtp_logprobs(c, p, tokens, h):
    """DeepSeek-V3 §2.2, depth 1: row i combines RMSNorm(Emb(t_{i+1})) and RMSNorm(h_i) through
    eh_proj, runs one block over rows 0..n-2 (positions from 0) and predicts t_{i+2}."""
    L, eps = c["num_hidden_layers"], c["rms_norm_eps"]
    pre = f"model.layers.{L}."
    e = p[pre + "embed_tokens.weight"][tokens[1:]]
    a = torch.cat([rms_norm(e, p[pre + "enorm.weight"], eps),
                   rms_norm(h[:-1], p[pre + "hnorm.weight"], eps)], dim=-1)
    x = block(c, p, L, F.linear(a, p[pre + "eh_proj.weight"]), tokens[1:])
    hn = rms_norm(x, p[pre + "shared_head.norm.weight"], eps)
    logp = F.log_softmax(F.linear(hn, p[pre + "shared_head.head.weight"]), dim=-1)
    return logp[:-1].gather(1, tokens[2:].unsqueeze(1)).squeeze(1)


def main():
    names = sys.argv[1:] or list(CONFIGS) + ["deepseek_v32"]
    for name in names:
        if name == "deepseek_v32":  # DeepSeek Sparse Attention: logprobs and selections
            dsa_ref.write_case(os.path.join(OUT, name), write_safetensors)
            continue
        c = CONFIGS[name]
        gen = torch.Generator().manual_seed(1234)
        p = make_params(c, gen)
        seqs = [[int(v) for v in torch.randint(0, c["vocab_size"], (n,), generator=gen)]
                for n in (7, 1, 12)]
        coefs, logprobs, total = [], [], 0.0
        mtp_lps = []
        for s in seqs:
            toks = torch.tensor(s)
            coef = torch.randn(len(s) - 1, generator=gen) if len(s) > 1 else torch.zeros(0)
            hidden = []
            lp = forward_logprobs(c, p, toks, hidden) if len(s) > 1 else torch.zeros(0)
            total = total + (lp * coef).sum()
            coefs.append(coef.tolist())
            logprobs.append(lp.tolist())
            if c.get("num_nextn_predict_layers"):
                mtp_lps.append(mtp_logprobs(c, p, toks, hidden[0]) if len(s) > 2
                               else torch.zeros(0))
        extra = {}
        if mtp_lps:  # plus MTP_WEIGHT times the MTP loss: the mean -log p(t_{i+2}) over all rows
            rows = torch.cat(mtp_lps)
            total = total - MTP_WEIGHT * rows.sum() / rows.numel()
            extra = {"mtp_weight": MTP_WEIGHT, "mtp_logprobs": [m.tolist() for m in mtp_lps]}
        total.backward()
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=1)
        write_safetensors(os.path.join(d, "model.safetensors"), p)
        grads = {k: v.grad for k, v in p.items() if v.grad is not None}
        write_safetensors(os.path.join(d, "grads.safetensors"), grads)
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump(dict({"sequences": seqs, "coef": coefs, "logprobs": logprobs,
                            "objective": "sum over sequences and positions of coef * logprob"
                                         + (" + mtp_weight * mean MTP loss" if extra else "")},
                           **extra), f)
        print(name, sum(v.numel() for v in p.values()), "params")


if __name__ == "__main__":
    main()
