#!/usr/bin/env python3
"""Figures of the tool-use demo from run databases: held-out evaluation (eval/* metrics), and
over the training samples of each step the share of calls whose expression is exactly the
question's (a correct call), the calls per episode and the accuracy."""
import re
import sqlite3
import sys


def steps(db):
    con = sqlite3.connect(db)
    con.text_factory = lambda b: b.decode("utf-8", "replace")
    evals = con.execute(
        "SELECT step, json_extract(metrics, '$.\"eval/pass@1\"'), json_extract(metrics, '$.\"eval/tool_calls_mean\"'),"
        " json_extract(metrics, '$.\"eval/tool_errors\"') FROM steps WHERE json_extract(metrics, '$.\"eval/pass@1\"') IS NOT NULL"
        " ORDER BY step").fetchall()
    rows = con.execute(
        "SELECT r.step, r.id, r.prompt, r.correct, t.text FROM rollouts r LEFT JOIN rollout_turns t"
        " ON t.rollout_id = r.id AND t.role = 'assistant' ORDER BY r.step, r.id, t.turn").fetchall()
    per = {}
    for step, rid, prompt, correct, text in rows:
        s = per.setdefault(step, {"ids": set(), "correct": 0, "calls": 0, "right_calls": 0})
        if rid not in s["ids"]:
            s["ids"].add(rid)
            s["correct"] += correct or 0
        m = re.search(r"What is (\d+) \+ (\d+)\?", prompt)
        for call in re.findall(r"<calc>(.*?)</calc>", text or ""):
            s["calls"] += 1
            s["right_calls"] += bool(m) and call.replace(" ", "") == f"{m.group(1)}+{m.group(2)}"
    return evals, per


for label, db in (("base", sys.argv[1]), ("grpo", sys.argv[2])):
    evals, per = steps(db)
    print(f"== {label}: {db}")
    for step, p1, calls, errors in evals:
        print(f"  held-out eval after step {step}: pass@1 {p1:.3f}, calls/episode {calls:.2f}, tool errors {errors:.3f}")
    for step in sorted(per):
        if label == "grpo" and step not in (1, 2, 3) and step % 10:
            continue
        s = per[step]
        n = len(s["ids"])
        share = s["right_calls"] / s["calls"] if s["calls"] else 0.0
        print(f"  step {step:3d}: train accuracy {s['correct'] / n:.3f}, calls/episode {s['calls'] / n:.2f},"
              f" correct calls {share:.3f}")
