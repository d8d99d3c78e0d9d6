"""The PyTorch peer's model: DeepSeek-V2/V3 (MLA attention, DeepSeekMoE) written as a PyTorch user
would write it for speed, the way DeepSeek's own inference/model.py does: a whole batch [B, S]
per matrix product, MoE tokens grouped per expert, and decode over an absorbed-MLA cache of the
normalised latent and the rotated shared key.

It reads the parameter dictionary of tests/reference/gen_policy_golden.py (HF names), and
`check()` compares its log-probabilities (full forward and prefill + decode) with that
reference's, so the peer computes the same model as aha. Dense Llama/Qwen layouts,
hyper-connections, Engram and sparse attention are not covered (the benchmark presets need none).
"""
import json

import torch
import torch.nn.functional as F

import gen_policy_golden as ref


def supported(c):
    return (ref.is_mla(c) and not c.get("hc_mult") and not c.get("engram")
            and not c.get("nsa") and "index_n_heads" not in c)


rms_norm = ref.rms_norm


class Rope:
    """cos/sin tables [max_len, dim] in the parameters' dtype, and the reference's rotation."""

    def __init__(self, c, dim, max_len, dtype):
        cos, sin = ref.rope_cos_sin(c, dim, max_len)
        self.cos, self.sin = cos.to(dtype), sin.to(dtype)

    def apply(self, x, pos):
        # x [..., S, heads, dim] de-interleaved as in the reference; pos [S] or [B, 1]
        s = x.shape
        x = x.reshape(*s[:-1], s[-1] // 2, 2).transpose(-1, -2).reshape(s)
        cos, sin = self.cos[pos], self.sin[pos]  # [S, dim] or [B, 1, dim]
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
        return x * cos + ref.rotate_half(x) * sin


def softmax_scale(c):
    scale = (c["qk_nope_head_dim"] + c["qk_rope_head_dim"]) ** -0.5
    rs = c.get("rope_scaling")
    if rs and rs.get("mscale_all_dim"):
        m = ref.yarn_mscale(rs["factor"], rs["mscale_all_dim"])
        scale = scale * m * m
    return scale


class Model:
    def __init__(self, c, p, max_len):
        assert supported(c), "the peer covers MLA (deepseek_v2/v3) without hc/engram/sparse"
        self.c, self.p = c, p
        self.eps = c["rms_norm_eps"]
        dtype = p["model.embed_tokens.weight"].dtype
        self.rope = Rope(c, c["qk_rope_head_dim"], max_len, dtype)
        self.scale = softmax_scale(c)

    def w(self, name):
        return self.p[name]

    def query(self, a, x):
        if self.c["q_lora_rank"]:
            qa = rms_norm(F.linear(x, self.w(a + "q_a_proj.weight")),
                          self.w(a + "q_a_layernorm.weight"), self.eps)
            return F.linear(qa, self.w(a + "q_b_proj.weight"))
        return F.linear(x, self.w(a + "q_proj.weight"))

    def attention(self, l, x):
        """Causal MLA over a batch x [B, S, d] (the training forward)."""
        c, a = self.c, f"model.layers.{l}.self_attn."
        B, S, _ = x.shape
        H, dn, dr, dv = (c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"],
                         c["v_head_dim"])
        q = self.query(a, x).view(B, S, H, dn + dr)
        pos = torch.arange(S)
        q = torch.cat([q[..., :dn], self.rope.apply(q[..., dn:], pos)], -1)
        ckv = F.linear(x, self.w(a + "kv_a_proj_with_mqa.weight"))
        latent = rms_norm(ckv[..., :c["kv_lora_rank"]], self.w(a + "kv_a_layernorm.weight"),
                          self.eps)
        k_pe = self.rope.apply(ckv[..., c["kv_lora_rank"]:].unsqueeze(2), pos)
        kv = F.linear(latent, self.w(a + "kv_b_proj.weight")).view(B, S, H, dn + dv)
        k = torch.cat([kv[..., :dn], k_pe.expand(B, S, H, dr)], -1)
        scores = torch.einsum("bshd,bthd->bhst", q, k) * self.scale
        mask = torch.triu(torch.full((S, S), float("-inf")), 1)
        o = torch.einsum("bhst,bthd->bshd", (scores + mask).softmax(-1), kv[..., dn:])
        return F.linear(o.reshape(B, S, H * dv), self.w(a + "o_proj.weight"))

    def mlp(self, m, x):
        return ref.mlp(self.p, m, x)

    def route(self, m, x):
        """The reference's routing, on all rows at once: expert ids and weights [n, K]."""
        bias = m + "gate.e_score_correction_bias"
        return ref.route(self.c, x, self.w(m + "gate.weight"),
                         self.w(bias) if self.c["topk_method"] == "noaux_tc" else None)

    def moe(self, l, x):
        """DeepSeekMoE with the tokens of each expert gathered into one batch, as model.py."""
        m = f"model.layers.{l}.mlp."
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        idx, w = self.route(m, x)
        y = torch.zeros_like(x)
        for e in torch.unique(idx).tolist():
            rows, slot = torch.where(idx == e)
            out = self.mlp(m + f"experts.{e}.", x[rows]) * w[rows, slot, None]
            y = y.index_add(0, rows, out)
        if self.c.get("n_shared_experts"):
            y = y + self.mlp(m + "shared_experts.", x)
        return y.view(shape)

    def ffn(self, l, x):
        c = self.c
        if c["n_routed_experts"] and l >= c["first_k_dense_replace"]:
            return self.moe(l, x)
        return self.mlp(f"model.layers.{l}.mlp.", x)

    def logits(self, x):
        h = rms_norm(x, self.w("model.norm.weight"), self.eps)
        head = "model.embed_tokens.weight" if self.c["tie_word_embeddings"] else "lm_head.weight"
        return F.linear(h, self.w(head))

    def forward_logprobs(self, tokens):
        """tokens [B, S] -> log p(token t+1 | ..t) [B, S - 1] (the training forward)."""
        x = self.w("model.embed_tokens.weight")[tokens]
        for l in range(self.c["num_hidden_layers"]):
            pre = f"model.layers.{l}."
            x = x + self.attention(l, rms_norm(x, self.w(pre + "input_layernorm.weight"), self.eps))
            x = x + self.ffn(l, rms_norm(x, self.w(pre + "post_attention_layernorm.weight"),
                                         self.eps))
        logp = F.log_softmax(self.logits(x), dim=-1)
        return logp[:, :-1].gather(2, tokens[:, 1:].unsqueeze(2)).squeeze(2)

    # ---- decode over an absorbed-MLA cache ----

    def new_cache(self, B, max_len):
        c, L = self.c, self.c["num_hidden_layers"]
        dt = self.p["model.embed_tokens.weight"].dtype
        return {"kv": [torch.zeros(B, max_len, c["kv_lora_rank"], dtype=dt) for _ in range(L)],
                "pe": [torch.zeros(B, max_len, c["qk_rope_head_dim"], dtype=dt) for _ in range(L)]}

    def attention_cached(self, l, x, cache, start):
        """x [B, S, d] at positions start..start+S-1 of every sequence; absorbed as model.py."""
        c, a = self.c, f"model.layers.{l}.self_attn."
        B, S, _ = x.shape
        H, dn, dr, dv, r = (c["num_attention_heads"], c["qk_nope_head_dim"],
                            c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"])
        end = start + S
        pos = torch.arange(start, end)
        q = self.query(a, x).view(B, S, H, dn + dr)
        q_pe = self.rope.apply(q[..., dn:], pos)
        ckv = F.linear(x, self.w(a + "kv_a_proj_with_mqa.weight"))
        cache["kv"][l][:, start:end] = rms_norm(ckv[..., :r], self.w(a + "kv_a_layernorm.weight"),
                                               self.eps)
        cache["pe"][l][:, start:end] = self.rope.apply(ckv[..., r:].unsqueeze(2), pos).squeeze(2)
        wkv_b = self.w(a + "kv_b_proj.weight").view(H, dn + dv, r)
        q_nope = torch.einsum("bshd,hdc->bshc", q[..., :dn], wkv_b[:, :dn])
        kv, pe = cache["kv"][l][:, :end], cache["pe"][l][:, :end]
        scores = (torch.einsum("bshc,btc->bsht", q_nope, kv) +
                  torch.einsum("bshr,btr->bsht", q_pe, pe)) * self.scale
        if S > 1:
            mask = torch.full((S, end), float("-inf")).triu(start + 1)
            scores = scores + mask.unsqueeze(1)
        o = torch.einsum("bsht,btc->bshc", scores.softmax(-1), kv)
        o = torch.einsum("bshc,hdc->bshd", o, wkv_b[:, -dv:])
        return F.linear(o.reshape(B, S, H * dv), self.w(a + "o_proj.weight"))

    def step(self, tokens, cache, start):
        """tokens [B, S] at positions start.. -> the last position's logits [B, vocab]."""
        x = self.w("model.embed_tokens.weight")[tokens]
        for l in range(self.c["num_hidden_layers"]):
            pre = f"model.layers.{l}."
            h = rms_norm(x, self.w(pre + "input_layernorm.weight"), self.eps)
            x = x + self.attention_cached(l, h, cache, start)
            h = rms_norm(x, self.w(pre + "post_attention_layernorm.weight"), self.eps)
            x = x + self.ffn(l, h)
        return self.logits(x[:, -1])


def check(c, p, seq_len=12, prompt=5):
    """Max |log p| differences from the reference: (batched forward, prefill + decode)."""
    gen = torch.Generator().manual_seed(1)
    seqs = torch.randint(0, c["vocab_size"], (2, seq_len), generator=gen)
    with torch.no_grad():
        want = torch.stack([ref.forward_logprobs(c, p, s) for s in seqs])
        model = Model(c, p, seq_len)
        full = (model.forward_logprobs(seqs) - want).abs().max().item()
        cache = model.new_cache(2, seq_len)
        got = [F.log_softmax(model.step(seqs[:, :prompt], cache, 0), -1)]
        for t in range(prompt, seq_len - 1):
            got.append(F.log_softmax(model.step(seqs[:, t:t + 1], cache, t), -1))
        lp = torch.stack([g.gather(1, seqs[:, prompt + i:prompt + i + 1]).squeeze(1)
                          for i, g in enumerate(got)], 1)
        dec = (lp - want[:, prompt - 1:]).abs().max().item()
    return full, dec



def add_common_args(ap):
    """The peers' shared options: the model's config, torch's threads, --check."""
    ap.add_argument("--config", required=True, help="HF config.json (aha init --preset ... --out)")
    ap.add_argument("--threads", type=int, default=0, help="0: torch's default")
    ap.add_argument("--check", action="store_true",
                    help="first compare the model with the reference (float64, 2 x 12 tokens)")


def load(a, grad=False):
    """The config, the reference's seeded weights in fp32 (trainable ones requiring grad when
    `grad`), check()'s differences when --check, and the generator for the inputs."""
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    with open(a.config) as f:
        c = json.load(f)
    gen = torch.Generator().manual_seed(0)
    torch.set_default_dtype(torch.float64)
    p = ref.make_params(c, gen)
    diffs = check(c, p) if a.check else None
    torch.set_default_dtype(torch.float32)
    p = {k: v.detach().to(torch.float32).requires_grad_(grad and v.requires_grad)
         for k, v in p.items()}
    return c, p, diffs, gen
