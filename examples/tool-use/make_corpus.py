#!/usr/bin/env python3
"""Pretraining documents for the tool-use demo: addition of 5-6 digit numbers, where the
calculator is sometimes used correctly, sometimes with a mistyped operand, and sometimes not
at all (a guessed, mostly wrong answer). Reads `aha make-data` rows (JSONL) on stdin, writes
{"text": ...} documents on stdout. The observation is written exactly as the engine writes it
for rollout.tool_stop {"open": "<calc>", "close": "</calc>"}: "\n<output>\n" + value + "\n</output>\n".
"""
import json
import random
import sys

TEMPLATE = "User: {prompt} Assistant:"


def typo(number: str, rng: random.Random) -> str:
    i = rng.randrange(len(number))
    d = rng.choice([c for c in "0123456789" if c != number[i] and not (i == 0 and c == "0")])
    return number[:i] + d + number[i + 1:]


def main() -> None:
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    p_right, p_typo = 0.4, 0.3  # the rest: no call
    for line in sys.stdin:
        row = json.loads(line)
        a, b = row["prompt"].removeprefix("What is ").removesuffix("?").split(" + ")
        head = TEMPLATE.format(prompt=row["prompt"])
        u = rng.random()
        if u < p_right + p_typo:
            if u >= p_right:  # a mistyped operand: the tool answers the wrong question
                if rng.random() < 0.5:
                    a = typo(a, rng)
                else:
                    b = typo(b, rng)
            value = str(int(a) + int(b))
            text = f"{head} <calc>{a}+{b}</calc>\n<output>\n{value}\n</output>\n<answer> {value} </answer>"
        else:
            guess = typo(row["answer"], rng) if rng.random() < 0.9 else row["answer"]
            text = f"{head} <answer> {guess} </answer>"
        print(json.dumps({"text": text}))


if __name__ == "__main__":
    main()
