#!/usr/bin/env python3
"""Example aha reward as an external command speaking JSON lines.

Reads one request per line on stdin: {"prompt", "completion", "row", "n_completion_tokens"},
writes one reply per line on stdout: {"reward": x, "details": {...}} or {"error": "..."}.
Parameters arrive as JSON in the AHA_REWARD_PARAMS environment variable.
Use: aha reward --reward command --params '{"command": {"command": ["python3", "keyword_reward.py"],
     "params": {"keywords": ["because"]}}}' --input F.jsonl
"""
import json
import os
import sys

params = json.loads(os.environ.get("AHA_REWARD_PARAMS", "{}"))
keywords = params.get("keywords", ["therefore"])

for line in sys.stdin:
    try:
        sample = json.loads(line)
        row = sample.get("row", {})
        if row.get("crash"):  # lets the tests check restart after a crash
            sys.exit(3)
        if row.get("hang"):  # lets the tests check the timeout
            import time
            time.sleep(3600)
        text = sample["completion"]
        found = sum(1 for k in keywords if k in text)
        reply = {"reward": 1.0 if found == len(keywords) else 0.0, "details": {"found": found}}
    except Exception as e:  # a bad request is this sample's problem, not the process's
        reply = {"error": str(e)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
