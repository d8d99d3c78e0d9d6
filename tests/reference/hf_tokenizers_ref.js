// Second reference: Hugging Face's own Rust `tokenizers` (npm package `tokenizers`, native
// binding) reading a tokenizer.json. The ids it gives are the ones models were trained with.
//   node hf_tokenizers_ref.js HF_PKG_DIR TOKENIZER_JSON encode < texts.jsonl  ({"ids":[..]} lines)
//   node hf_tokenizers_ref.js HF_PKG_DIR TOKENIZER_JSON bench FILE [SECONDS]  (MB/s, one thread)
'use strict';
const fs = require('fs');

const [pkg, tokenizerJson, mode, benchFile, benchSeconds] = process.argv.slice(2);
const { Tokenizer } = require(require('path').resolve(pkg));
const tokenizer = Tokenizer.fromFile(tokenizerJson);
const encode = async (text) => (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();

(async () => {
  if (mode === 'bench') {
    const text = fs.readFileSync(benchFile, 'utf8');
    const bytes = Buffer.byteLength(text, 'utf8');
    await encode(text);  // warm-up
    const seconds = Number(benchSeconds || 3);
    let n = 0, tokens = 0, elapsed = 0;
    const t0 = process.hrtime.bigint();
    while (elapsed < seconds) {
      tokens = (await encode(text)).length;
      ++n;
      elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    }
    console.log(JSON.stringify({ encoder: 'hf-tokenizers (Rust)', bytes: bytes * n,
                                 tokens: tokens * n, seconds: elapsed,
                                 mb_per_s: bytes * n / elapsed / 1e6 }));
    return;
  }
  const out = [];
  for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    out.push(JSON.stringify({ ids: Array.from(await encode(JSON.parse(line).text)) }));
  }
  process.stdout.write(out.join('\n') + '\n');
})();
