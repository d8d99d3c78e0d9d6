"""Expected draws of numpy's default_rng(seed).integers(low, high, size, dtype=int64), the
generator Engram's demo takes its hash multipliers from; tests/policy/engram_test.cpp checks
aha's C++ reimplementation (policy/src/engram_hash.cpp) against them.

Run with numpy installed: /usr/bin/python3 tests/reference/gen_numpy_rng.py
writes tests/data/numpy_rng.json.
"""
import json
import os

import numpy as np

INT64_MAX = np.iinfo(np.int64).max


def main():
    cases = []
    seeds = [0, 1, 2, 7, 42, 10007, 10007 * 15, 123456789, 2**32 - 1, 2**32, 2**32 + 5,
             2**40 + 3, 987654321987]
    # The demo's half bounds (int64 max // vocab // 2) for a few vocabularies, 32-bit ranges
    # (including ones that reject often: just above 2^31) and small ones.
    highs = [INT64_MAX // v // 2 for v in (37, 512, 129280, 102400)]
    highs += [2**32, 2**32 - 1, 2**31 + 1, 3 * 2**30 + 7, 1000, 7, 2, 2**62 + 1]
    for seed in seeds:
        for high in highs:
            for low in (0, 5):
                if high <= low:
                    continue
                r = np.random.default_rng(seed).integers(low, high, size=6, dtype=np.int64)
                cases.append({"seed": seed, "low": low, "high": int(high),
                              "values": [int(v) for v in r]})
    raw = []
    for seed in (0, 1, 42, 2**33 + 1):
        bg = np.random.default_rng(seed).bit_generator
        raw.append({"seed": seed, "u64": [str(int(v)) for v in bg.random_raw(4)]})
    out = os.path.join(os.path.dirname(__file__), "..", "data", "numpy_rng.json")
    with open(out, "w") as f:
        json.dump({"numpy": np.__version__, "integers": cases, "raw": raw}, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
