#!/usr/bin/env python3
"""Renders hand-written Jinja templates that exercise every feature of aha's Jinja subset with
Python's jinja2, set up as HF transformers sets it up for chat templates (ImmutableSandboxed-
Environment, trim_blocks, lstrip_blocks, loopcontrols, HF's tojson / raise_exception); writes
tests/data/jinja_cases.json, the golden file of tests/tokenizer/jinja_test.cpp.

usage: tests/reference/gen_jinja_golden.py > tests/data/jinja_cases.json
"""
import json
import sys

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


class AssistantTracker(Extension):
    """HF's {% generation %} block, reduced to what renders (its body, as is)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, "jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


MSGS = [{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "  Hi 😀 \n"},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHello", "tool_calls": [
            {"type": "function", "function": {"name": "add", "arguments": {"b": 2, "a": 1}}}]},
        {"role": "tool", "content": "3"}]
TOOLS = [{"type": "function", "function": {"name": "add", "description": "Adds \"two\" ints\n",
          "parameters": {"type": "object", "properties": {"b": {"type": "integer"},
                                                          "a": {"type": "number"}},
                         "required": ["b", "a"]}}}]

CASES = [
    # whitespace control: trim_blocks, lstrip_blocks, -, +, comments, the final newline
    ("ws_blocks", "start\n  {% if true %}\n    yes\n  {% endif %}\nend\n", {}),
    ("ws_minus", "a  \n {%- if true -%}  \n  b  \n  {%- endif -%} \n c", {}),
    ("ws_expr_minus", "x = {{- ' 1 ' -}} ;\n{{ 'k' }}\n\n", {}),
    ("ws_plus", "a\n  {%+ if true %}\nb\n  {% endif +%}\nc", {}),
    ("ws_comment", "a\n  {# note #}\nb {#- x -#}   c\n{# multi\nline #}d", {}),
    ("ws_inline_tags", "x {% if true %}y{% endif %} z\n{% for i in [1,2] %}{{ i }} {% endfor %}\n", {}),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("ws_keep_tabs", "\t{{ 'v' }}\t\n\t{% set x = 1 %}\n{{ x }}", {}),
    # loops
    ("for_loop_vars", "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/"
     "{{ loop.revindex0 }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }} {{ m.role }}\n{% endfor %}",
     {"messages": MSGS}),
    ("for_else", "{% for x in [] %}never{% else %}empty{% endfor %}|{% for x in xs %}{{ x }}{% else %}no{% endfor %}",
     {"xs": [1, 2]}),
    ("for_filter", "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }} {% endfor %}",
     {"messages": MSGS}),
    ("for_break_continue", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}"
     "{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("for_nested", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.first }} {% endfor %}"
     "{{ loop.last }};{% endfor %}", {}),
    ("for_items_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}"
     "{% for k, v in d|items %}[{{ k }}]{% endfor %}{% for k in d %}<{{ k }}>{% endfor %}",
     {"d": {"z": 1, "a": [1, "x"], "m": None}}),
    ("for_prev_next", "{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }} {% endfor %}", {}),
    ("for_reversed_slice", "{% for m in messages[::-1] %}{{ (messages|length - 1) - loop.index0 }}{{ m.role[0] }} {% endfor %}",
     {"messages": MSGS}),
    # set, scoping, namespace, block set
    ("set_scoping", "{% set a = 0 %}{% for i in [1, 2] %}[{{ a }}]{% set a = i %}[{{ a }}]{% endfor %}{{ a }}", {}),
    ("namespace", "{% set ns = namespace(n=0, found=false, s='') %}{% for i in [3, 4, 5] %}"
     "{% set ns.n = ns.n + i %}{% if i == 4 %}{% set ns.found = true %}{% endif %}"
     "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.found }} {{ ns.s }} {{ ns.missing is defined }}", {}),
    ("set_block", "{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting | upper }}]", {"name": "Ann"}),
    # macros
    ("macro", "{% macro tag(name, body='-', close=true) %}<{{ name }}>{{ body }}{% if close %}</{{ name }}>"
     "{% endif %}{% endmacro %}{{ tag('a') }}|{{ tag('b', 'x') }}|{{ tag('c', close=false) }}|{{ tag(body='k', name='d') }}", {}),
    ("macro_recursion", "{% macro count(n) %}{{ n }}{% if n > 0 %},{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(5) }}", {}),
    ("macro_sees_later_set", "{% macro f(x) %}{{ x }}{{ y }}{% endmacro %}{% set y = 3 %}{{ f(1) }}", {}),
    # filters
    ("filter_trim_length", "[{{ s | trim }}] {{ s | length }} {{ messages | length }} {{ d | length }} "
     "[{{ 'xxhixx' | trim('x') }}]", {"s": "  héllo 😀 \n", "messages": MSGS, "d": {"a": 1}}),
    ("filter_tojson", "{{ tools | tojson }}\n{{ tools[0] | tojson(indent=2) }}\n{{ s | tojson }}\n"
     "{{ [1, 2.5, none, true, 'é'] | tojson }}\n{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}\n"
     "{{ 7 | tojson }}{{ {} | tojson }}{{ [] | tojson }}",
     {"tools": TOOLS, "s": "q\"uote\\ \n\t\u0001 <tag> & 'x' é 😀"}),
    ("filter_case_default", "{{ 'ab Cd' | upper }} {{ 'AB' | lower }} {{ 'hello world' | title }} "
     "{{ 'hELLO' | capitalize }} {{ missing | default('dflt') }} {{ '' | default('e', true) }} "
     "{{ none | default('n') }} {{ x | d('k') }}", {"x": 5}),
    ("filter_lists", "{{ xs | first }} {{ xs | last }} {{ xs | join(', ') }} {{ xs | reverse | list }} "
     "{{ 'abc' | list }} {{ 'abc' | reverse }} {{ xs | unique | list }} {{ [] | first is defined }}",
     {"xs": [3, 1, 3, 2]}),
    ("filter_map_select", "{{ messages | map(attribute='role') | join(',') }} "
     "{{ messages | selectattr('role', 'equalto', 'user') | list | length }} "
     "{{ messages | rejectattr('tool_calls', 'defined') | map(attribute='role') | list }} "
     "{{ [0, 1, '', 'a'] | select | list }}",
     {"messages": MSGS}),
    ("filter_numbers_strings", "{{ '42' | int + 1 }} {{ 3.7 | int }} {{ '2.5' | float }} {{ -3 | abs }} "
     "{{ 'a-b-c' | replace('-', '+') }} {{ 42 | string ~ '!' }} {{ 'x\ny' | indent(2) }}", {}),
    # methods
    ("str_methods", "{{ s.startswith('<think>') }} {{ s.endswith('Hello') }} {{ s.startswith(('x', '<t')) }} "
     "[{{ s.split('</think>')[-1].lstrip('\n') }}] [{{ s.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}] "
     "{{ ' a  b \t c '.split() }} {{ 'a,b,c'.split(',', 1) }} [{{ '\n\nx\n'.strip('\n') }}] [{{ '  y '.strip() }}] "
     "{{ 'Hi'.upper() }}{{ 'Hi'.lower() }} {{ 'aXbX'.replace('X', '-') }} {{ 'abcabc'.find('c') }} "
     "{{ 'abcabc'.count('bc') }} {{ '-'.join(['a', 'b']) }} {{ 'hello'.title() }}",
     {"s": "<think>\nhmm\n</think>\n\nHello"}),
    ("dict_methods", "{{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ d.keys() | list }} "
     "{{ d.values() | list }} {{ d['a'] }} {{ d.a }} {{ d.nope is defined }}", {"d": {"b": 2, "a": 1}}),
    ("slicing", "{{ xs[1:] }} {{ xs[:2] }} {{ xs[::2] }} {{ xs[::-1] }} {{ xs[-2:] }} {{ xs[1:-1] }} "
     "{{ s[1:3] }} {{ s[::-1] }} {{ s[-1] }} {{ xs[10] is defined }} {{ xs[-1] }} {{ xs.0 }}",
     {"xs": [1, 2, 3, 4, 5], "s": "a😀é🎉z"}),
    # tests
    ("tests", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ n is none }} {{ n is not none }} "
     "{{ s is string }} {{ 1 is number }} {{ 1.5 is float }} {{ 1 is integer }} {{ d is mapping }} "
     "{{ xs is iterable }} {{ xs is sequence }} {{ f is false }} {{ t is true }} {{ t is boolean }} "
     "{{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 'a' is in 'abc' }} {{ 3 is eq 3 }} "
     "{{ 2 is lt(3) }} {{ not x is defined }}",
     {"x": 1, "n": None, "s": "s", "d": {}, "xs": [1], "f": False, "t": True}),
    # operators and expressions
    ("operators", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} "
     "{{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.5 + 1 }} {{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ [1] + [2] }} "
     "{{ 1 ~ 2 ~ none ~ true }} {{ - 3 }} {{ 3 - -2 }}", {}),
    ("comparisons", "{{ 1 < 2 }} {{ 2 <= 1 }} {{ 'a' < 'b' }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} "
     "{{ 'ell' in 'hello' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }} {{ none == none }} "
     "{{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}", {}),
    ("logic", "{{ true and 'x' }} {{ 0 or 'y' }} {{ none or [] }} {{ not '' }} {{ 'a' if x else 'b' }} "
     "{{ 'a' if not x else 'b' }} [{{ 'a' if false }}] {{ x and y or 'z' }}", {"x": 1, "y": 0}),
    ("precedence", "{{ messages | length - 1 }} {{ 'a' ~ (1 + 2) }} {{ not true or true }} "
     "{{ 2 * 3 ** 2 }} {{ -2 ** 2 }} {{ messages[0]['role'] | upper ~ '!' }}", {"messages": MSGS}),
    ("literals", "{{ [1, 'two', none, true, 1.0, 2.50, {'k': [none]}] }} {{ {'a': 'x', 'b': none} }} "
     "{{ (1, 2) | list }} {{ ('a', 'b') | join }} {{ 'it''s' }} {{ \"q'\" }} {{ 'a' 'b' }} {{ 1_000 }} {{ 'tab\\tnl\\nuni\\u00e9' }}", {}),
    ("str_of_values", "{{ none }} {{ true }} {{ 1.0 }} {{ 0.1 }} {{ 1e3 }} {{ 2.5e-3 }} {{ undefined_var }}|"
     "{{ xs }} {{ d }}", {"xs": ["a'b", 'q"', 1], "d": {"k": None}}),
    ("if_elif_else", "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}"
     "three{% else %}many{% endif %} {% endfor %}", {}),
    ("generation_block", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}"
     "{{ m.content }}{% endgeneration %}{% else %}{{ m.role }}{% endif %}|{% endfor %}", {"messages": MSGS[:3]}),
    ("context_types", "{{ n }} {{ f }} {{ big }} {{ neg }} {{ b }} {{ u }}",
     {"n": 3, "f": 2.25, "big": 12345678901234, "neg": -5, "b": False, "u": "ü"}),
    # errors: both jinja2 and aha must refuse these
    ("err_raise", "{% if x %}{{ raise_exception('bad role: ' ~ x) }}{% endif %}", {"x": "robot"}),
    ("err_unclosed_if", "a\n{% if x %}\nb\n", {}),
    ("err_unknown_tag", "a\n\n{% frobnicate %}", {}),
    ("err_bad_expr", "{{ 1 + }}", {}),
    ("err_unclosed_tag", "line1\n{{ x ", {}),
    ("err_undefined_attr", "{{ nothing.attr }}", {}),
    ("err_none_plus_str", "{{ 'a' + none }}", {}),
    ("err_endfor_mismatch", "{% for x in xs %}\n{% endif %}", {}),
    ("err_unterminated_string", "{{ 'abc }}", {}),
    ("err_set_attr_on_dict", "{% set d = {} %}{% set d.x = 1 %}", {}),
    ("err_unknown_filter", "{{ 1 | no_such_filter }}", {}),
    ("err_call_undefined", "{{ no_such_function(1) }}", {}),
]


def main():
    env = environment()
    out = []
    for name, template, context in CASES:
        case = {"name": name, "template": template, "context": context}
        try:
            case["expected"] = env.from_string(template).render(**context)
        except jinja2.exceptions.TemplateSyntaxError as e:
            case["error"] = "syntax"
            case["error_line"] = e.lineno
        except Exception as e:  # noqa: BLE001 - any runtime refusal is an expected error
            case["error"] = type(e).__name__
        out.append(case)
    json.dump({"generator": "tests/reference/gen_jinja_golden.py", "jinja2": jinja2.__version__,
               "cases": out}, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
