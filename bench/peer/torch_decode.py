#!/usr/bin/env python3
"""The PyTorch peer of `aha bench generate`: the same model (torch_model.py, checked against
tests/reference) prefills `batch` random prompts together, then decodes `new_tokens` greedy
tokens for all of them one step at a time over an absorbed-MLA cache, as DeepSeek's
inference/model.py does. Prints one JSON line per batch size, like aha's:

  /usr/bin/python3 bench/peer/torch_decode.py --config DIR/config.json --batch 1,16,64
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import torch_model  # noqa: E402


def run(model, c, batch, prompt_len, new_tokens, gen):
    prompts = torch.randint(0, c["vocab_size"], (batch, prompt_len), generator=gen)
    cache = model.new_cache(batch, prompt_len + new_tokens)
    with torch.inference_mode():
        t0 = time.perf_counter()
        nxt = model.step(prompts, cache, 0).argmax(-1, keepdim=True)
        t1 = time.perf_counter()
        for t in range(prompt_len, prompt_len + new_tokens - 1):
            nxt = model.step(nxt, cache, t).argmax(-1, keepdim=True)
        t2 = time.perf_counter()
    # The first token comes from the prefill; decode makes the other new_tokens - 1 per sequence.
    return t1 - t0, t2 - t1, batch * (new_tokens - 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    torch_model.add_common_args(ap)
    ap.add_argument("--batch", default="1,16,64", help="comma-separated batch sizes")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    a = ap.parse_args()
    c, p, check, gen = torch_model.load(a)
    model = torch_model.Model(c, p, a.prompt_len + a.new_tokens)
    run(model, c, 2, a.prompt_len, 4, gen)  # warm-up
    for b in (int(s) for s in a.batch.split(",")):
        prefill_s, decode_s, tokens = run(model, c, b, a.prompt_len, a.new_tokens, gen)
        print(json.dumps({
            "bench": "generate", "peer": "pytorch " + torch.__version__, "batch": b,
            "prompt_len": a.prompt_len, "new_tokens": a.new_tokens,
            "threads": torch.get_num_threads(),
            "prefill_tokens_per_s": b * a.prompt_len / prefill_s,
            "decode_tokens_per_s": tokens / decode_s,
            **({"check_max_abs_logprob_diff": max(check)} if check else {})}), flush=True)


if __name__ == "__main__":
    main()
