// Reference timing for `Funnel.Bench tokenizer`: Hugging Face's Rust tokenizer (npm binding) on the
// same texts, no truncation or padding, one thread (RAYON_NUM_THREADS=1 is set by the caller).
//   node bench.js MODEL_DIR TEXTS_JSON SECONDS   ->  one JSON line on stdout
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [modelDir, textsFile, seconds] = process.argv.slice(2);
  const texts = JSON.parse(fs.readFileSync(textsFile, 'utf8'));
  const tokenizer = Tokenizer.fromFile(path.join(modelDir, 'tokenizer.json'));
  tokenizer.disablePadding();
  tokenizer.disableTruncation();

  let tokens = 0;
  for (const e of await tokenizer.encodeBatch(texts)) tokens += e.getLength(); // warm-up and count
  let passes = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < Number(seconds)) {
    await tokenizer.encodeBatch(texts);
    passes++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  console.log(JSON.stringify({ version: require('tokenizers/package.json').version, tokens, passes, seconds: elapsed }));
}

main().catch((e) => { console.error(e); process.exit(1); });
