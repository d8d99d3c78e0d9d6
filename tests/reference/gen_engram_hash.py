"""Expected Engram hash indices, primes and multipliers for tests/policy/engram_test.cpp, from
engram_ref.py (numpy + sympy, the demo's algorithm): random ids with pads and sequences shorter
than N, identity and non-identity compression tables.

Run: /usr/bin/python3 tests/reference/gen_engram_hash.py  -> tests/data/engram_hash.json
"""
import json
import os

import numpy as np

import engram_ref

CASES = [
    ("demo_shape", 200, None, {"max_ngram_size": 3, "n_head_per_ngram": 8,
                               "n_embed_per_ngram": 512, "layer_ids": [1, 15],
                               "engram_vocab_size": [1000, 1000], "seed": 0, "pad_id": 2}),
    ("four_gram", 37, None, {"max_ngram_size": 4, "n_head_per_ngram": 3, "n_embed_per_ngram": 12,
                            "layer_ids": [0, 2, 1], "engram_vocab_size": [50, 97, 50],
                            "seed": 7, "pad_id": 5}),
    ("compressed", 64, "random", {"max_ngram_size": 3, "n_head_per_ngram": 2,
                                  "n_embed_per_ngram": 8, "layer_ids": [3],
                                  "engram_vocab_size": [3000, 20], "seed": 123456789,
                                  "pad_id": 0}),
    ("big_tables", 129280, None, {"max_ngram_size": 3, "n_head_per_ngram": 8,
                                  "n_embed_per_ngram": 512, "layer_ids": [1, 15],
                                  "engram_vocab_size": [646400, 646400], "seed": 0,
                                  "pad_id": 2}),
]


def main():
    rng = np.random.default_rng(2026)
    out = []
    for name, vocab, comp, e in CASES:
        compression = None
        if comp == "random":  # many-to-one, canonical ids dense from 0
            compression = [int(v) for v in rng.integers(0, vocab // 3, size=vocab)]
            used = sorted(set(compression))
            compression = [used.index(v) for v in compression]
        seqs = []
        for T in (1, 2, e["max_ngram_size"] - 1, 9):
            ids = rng.integers(0, vocab, size=T)
            ids[rng.random(T) < 0.2] = e["pad_id"]  # pads inside the text too
            seqs.append([int(v) for v in ids])
        layers = []
        for layer in e["layer_ids"]:
            hashes = [engram_ref.hash_ids(e, vocab, compression, layer,
                                          np.asarray([s]))[0].tolist() for s in seqs]
            layers.append({"layer": layer,
                           "multipliers": [int(v) for v in engram_ref.multipliers(
                               e, vocab, compression, layer)],
                           "primes": engram_ref.primes(e)[layer], "hashes": hashes})
        out.append({"name": name, "vocab_size": vocab, "engram": e,
                    "compression": compression, "sequences": seqs, "layers": layers})
    path = os.path.join(os.path.dirname(__file__), "..", "data", "engram_hash.json")
    with open(path, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
