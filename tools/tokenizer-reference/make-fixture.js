// Writes tests/Funnel.Tests/Fixtures/tokenizer/hf-encodings.json: what Hugging Face's Rust tokenizer
// (the `tokenizers` npm binding) produces for an edge-case suite and a few hundred real sentences, for
// the shared BERT tokenizers and for variants of their normalizer settings.
//   cd tools/tokenizer-reference && npm ci && node make-fixture.js [path/to/shared]
// Offsets are HF's: code-point (Rust char) offsets into the original text.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Tokenizer } = require('tokenizers');

const repo = path.join(__dirname, '..', '..');
const shared = process.argv[2] || process.env.FUNNEL_SHARED || path.join(repo, '..', 'shared');
const out = path.join(repo, 'tests', 'Funnel.Tests', 'Fixtures', 'tokenizer', 'hf-encodings.json');

// ---------------------------------------------------------------- inputs
const edge = [
  // ASCII
  'Hello, world!', 'The quick brown fox jumps over the lazy dog.', "I can't believe it's not butter!!!",
  'e-mail: john.doe@example.com; URL: https://example.com/a?b=c&d=e#f', '$100.00 + 50% = ???',
  '(parentheses) [brackets] {braces} <angles>', 'a.b.c...d', '--double--dash--', 'C++ and C# and F#',
  'unaffable', 'UNAFFABLE', 'MiXeD CaSe WoRdS', 'How many people live in Berlin?',
  // ASSETS.md sentences
  'This is an example sentence', 'Each sentence is converted.', '', 'Café déjà vu — 東京',
  // accents and scripts
  'Café déjà vu', 'naïve façade coöperate résumé', 'Ångström Øresund Œuvre', 'Straße STRASSE', 'İstanbul ıi',
  'ﬁne ﬂow (ligatures)', 'ǅemal ǈ digraphs', 'Ελληνικά κείμενο ΆΈΉ', 'Привет, мир! Ёлка', 'עברית עִם נִקּוּד',
  'العربية مع التشكيل: كِتَابٌ', 'हिन्दी भाषा', 'ภาษาไทย', 'Tiếng Việt có dấu', 'e\u0301cole n\u0303 a\u0301\u0302\u0303',
  '\u0301leading combining mark', 'ΣΊΣΥΦΟΣ final sigma', 'Ǆ ǅ ǆ', 'ẞ capital sharp s', 'Ⅻ roman numeral', 'µ micro Ω ohm K kelvin Å angstrom',
  // CJK
  '東京は日本の首都です。', '我爱北京天安门', '한국어 텍스트 처리', '日本語とEnglishのmix', '𠀀𠀁 CJK extension B',
  '豈 更 compatibility ideographs', 'ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３', 'カタカナ ひらがな ｶﾀｶﾅ', '〈括弧〉「引用」『二重』',
  // emoji
  'I love it 😀👍🏽', '👨‍👩‍👧‍👦 family', '🥰 newer emoji 🫠', 'flags 🇫🇷🇩🇪', 'keycap 1️⃣ #️⃣', 'a😀b😀c',
  // control characters
  'tab\there', 'new\nline', 'cr\r\nlf', 'null\u0000char', 'bell\u0007char', '\u007f del', 'x\u0085nel', 'vt\u000bff\u000cend',
  '\ufffd replacement', 'soft\u00adhyphen', 'private \ue000 use', 'tag\u{E0001}chars', 'bidi \u202eoverride\u202c end',
  // zero-width and odd whitespace
  'zero\u200bwidth', 'zw\u200cnj\u200dj', 'bom\ufeffhere', 'nbsp\u00a0here', 'thin\u2009space', 'ideographic\u3000space',
  'line\u2028sep para\u2029sep', 'ogham\u1680space', 'narrow\u202fnbsp', 'mongolian\u180evowel', '  leading and trailing  ',
  'multiple     spaces', '   \t\n ', '\u200b', 'word\u2060joiner',
  // long words
  'a'.repeat(100), 'a'.repeat(101), 'x'.repeat(150) + ' end', 'supercalifragilisticexpialidocious',
  '😀'.repeat(60), '😀'.repeat(101), 'é'.repeat(100), 'e\u0301'.repeat(60), 'antidisestablishmentarianism'.repeat(4),
  'pneumonoultramicroscopicsilicovolcanoconiosis and floccinaucinihilipilification',
  // words that go to [UNK]
  'ⓐⓑⓒ circled', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 fraktur', '☃ snowman', 'a\u2e4fb newer punctuation', 'a\u0378b unassigned', '\u{10FFFD} plane 16',
  // punctuation runs and symbols
  '!!!???...,,,;;;', '«quotes» „German“ ‘single’', '…ellipsis…', '—em—dash–en–dash', "@#$%^&*()_+-=[]{}|;':\",./<>?`~",
  '¿Qué? ¡Sí!', '§1 ¶2 †3 ‡4 •5', '→ ← ↑ ↓ ⇒', '© ® ™ ° ±', '¥100 €200 £300 ₹400',
  // numbers
  '3.14159', '1,000,000', '2024-01-15T12:30:00Z', '12:30pm', '١٢٣ ٣٤٥ arabic-indic digits', '1st 2nd 3rd 4th',
  '0x1F600', '1e-10', '½ ¼ ² ³', '९ devanagari nine',
  // added tokens in the raw text
  'hello [SEP] world', '[CLS][SEP][PAD][MASK][UNK]', '[cls] lowercase is not special', 'x[MASK]y', '[[SEP]]', '[SEP', '[UNK] literal',
];

// Seeded random strings mixing every kind of character the normalizer and pre-tokenizer treat
// differently, drawn from all planes, to catch table differences no hand-written case reaches.
function fuzzStrings(count, seed) {
  let state = seed >>> 0;
  const next = () => { state = (Math.imul(state, 1664525) + 1013904223) >>> 0; return state / 2 ** 32; };
  const pick = (list) => list[Math.floor(next() * list.length)];
  const pools = [
    () => String.fromCharCode(0x61 + Math.floor(next() * 26)),                       // ascii letters
    () => pick(['the', 'token', 'ization', 'un', 'aff', 'able', 'run', '##', 'ing']), // vocabulary pieces
    () => pick([' ', ' ', '  ', '\t', '\n', '\u00a0', '\u3000', '\u2009', '\u200b', '\u0085', '\u000b']),
    () => pick([...'.,;:!?()[]{}<>"\'`~@#$%^&*-_=+|/\\', '\u2014', '\u2026', '\u00bf', '\u300c', '\u2e4f', '\u2e42']),
    () => pick(['\u0301', '\u0308', '\u0327', '\u20dd', '\u0903', '\u064b']),         // combining marks
    () => String.fromCodePoint(0xc0 + Math.floor(next() * 0x250)),                   // Latin-1 / Extended
    () => String.fromCodePoint(0x370 + Math.floor(next() * 0x1c90)),                  // Greek .. Georgian .. Indic
    () => String.fromCodePoint(0x4e00 + Math.floor(next() * 0x5200)),                 // CJK
    () => String.fromCodePoint(0xac00 + Math.floor(next() * 11172)),                  // Hangul
    () => String.fromCodePoint(0x1f300 + Math.floor(next() * 0x700)),                 // emoji and symbols
    () => { let cp; do { cp = Math.floor(next() * 0x110000); } while (cp >= 0xd800 && cp <= 0xdfff); return String.fromCodePoint(cp); },
    () => pick(['[SEP]', '[CLS]', '[MASK]', '[UNK]', '[PAD]', '[sep]']),
    () => String.fromCharCode(Math.floor(next() * 0x20)),                             // C0 controls
    () => String.fromCodePoint(0x2000 + Math.floor(next() * 0x70)),                   // general punctuation, format chars
    () => String.fromCodePoint(0xff00 + Math.floor(next() * 0xf0)),                   // fullwidth / halfwidth
    () => String.fromCodePoint(0x1d400 + Math.floor(next() * 0x400)),                 // math alphanumerics
  ];
  const out = [];
  for (let i = 0; i < count; i++) {
    let text = '';
    const length = 1 + Math.floor(next() * 40);
    for (let j = 0; j < length; j++) text += pick(pools)();
    out.push(text);
  }
  return out;
}
const fuzz = fuzzStrings(400, 20261125);

const readLines = (file) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
const sts = readLines(path.join(shared, 'datasets', 'stsbenchmark', 'sts-test.csv')).map((l) => l.split('\t'));
const stsSentences = sts.slice(0, 300).map((f) => f[5]);
const stsPairs = sts.slice(300, 400).map((f) => [f[5], f[6]]);
const dl19 = JSON.parse(fs.readFileSync(path.join(shared, 'datasets', 'trec-dl-2019-passage', 'retrieve_results_dl19.json'), 'utf8'));
const dlPairs = dl19.slice(0, 25).flatMap((q) => q.hits.slice(0, 2).map((h) => [q.query, h.content]));
const nfcorpus = execFileSync('unzip', ['-p', path.join(shared, 'datasets', 'beir-nfcorpus', 'nfcorpus.zip'), 'nfcorpus/corpus.jsonl'],
  { maxBuffer: 64 << 20 }).toString('utf8').split('\n').filter((l) => l).slice(0, 40).map((l) => JSON.parse(l)).map((d) => `${d.title}. ${d.text}`);

const longA = stsSentences.slice(0, 12).join(' ');
const longB = nfcorpus[0];
const veryLong = nfcorpus.slice(1, 5).join(' ');
const words = (word, n) => Array(n).fill(word).join(' ');
const shortQ = 'how long is life cycle of flea';
const pairSuite = [
  ['How many people live in Berlin?', 'Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.'],
  ['How many people live in Berlin?', 'Berlin is well known for its museums.'],
  ['', ''], ['', 'only the second'], ['only the first', ''], ['[SEP] inside', 'a pair [CLS]'],
  [shortQ, longB], [longB, shortQ], [longA, longB], [longB, longA], [longA, longA], ['one two three four five six seven', 'one two three four five six seven'],
  ['東京は日本の首都です。', 'Café déjà vu 😀'], [veryLong, longB], [longA, veryLong], [veryLong, veryLong],
  // HF stops tokenizing each side at max_length tokens, at a word boundary, before it splits the budget.
  [words('a', 20), words('a', 10)], [words('a', 11), words('a', 10)], [words('unaffable', 7), words('a', 10)],
  [words('a', 10), words('unaffable', 7)], [words('unaffable', 4), words('a', 11)], ['x.x.x.x.x.x.x.x', words('a', 12)],
  ['x x x x x [SEP] x x x x x x', words('a', 12)], ['unaffable one two three four five six seven eight nine', 'a b c d e f g h i j k l m n'],
];

// ---------------------------------------------------------------- reference encodings
// overrides: { section: { field: value } } replacing fields of tokenizer.json sections, or
// { added_tokens: { content: { field: value } } } for the added tokens.
function load(model, overrides) {
  const json = JSON.parse(fs.readFileSync(path.join(shared, 'models', model, 'tokenizer.json'), 'utf8'));
  for (const [section, fields] of Object.entries(overrides ?? {})) {
    if (section === 'added_tokens') { // { content: { field: value } }; a new content is appended
      for (const [content, edits] of Object.entries(fields)) {
        const token = json.added_tokens.find((t) => t.content === content);
        if (token) Object.assign(token, edits);
        else json.added_tokens.push({ content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false, ...edits });
      }
    } else {
      json[section] = { ...json[section], ...fields };
    }
  }
  const tokenizer = Tokenizer.fromString(JSON.stringify(json));
  tokenizer.disablePadding();
  tokenizer.direction = (json.truncation?.direction ?? 'Right').toLowerCase();
  return tokenizer;
}

async function encode(tokenizer, text, pair, maxLength) {
  tokenizer.setTruncation(maxLength, { strategy: 'LongestFirst', direction: tokenizer.direction });
  const e = await tokenizer.encode(text, pair === undefined ? null : pair);
  const c = { text };
  if (pair !== undefined) c.pair = pair;
  c.max_length = maxLength;
  c.ids = Array.from(e.getIds());
  c.type_ids = Array.from(e.getTypeIds());
  c.offsets = e.getOffsets().map(([s, t]) => [s, t]);
  return c;
}

async function main() {
  const variants = [];
  const unicodeSubset = edge.slice(13, 110); // accents, CJK, emoji, control, whitespace, long words, [UNK]
  const plan = [
    { name: 'all-MiniLM-L6-v2', model: 'all-MiniLM-L6-v2', full: true },
    { name: 'ms-marco-MiniLM-L-6-v2', model: 'ms-marco-MiniLM-L-6-v2', pairsOnly: true },
    { name: 'truncation.direction=Left', model: 'all-MiniLM-L6-v2', overrides: { truncation: { direction: 'Left' } }, pairsOnly: true },
    { name: 'added_tokens lstrip/rstrip', model: 'all-MiniLM-L6-v2', overrides: { added_tokens: { '[MASK]': { lstrip: true, rstrip: true }, '[SEP]': { rstrip: true } } }, addedTokens: true },
    {
      name: 'normalized added tokens', model: 'all-MiniLM-L6-v2', addedTokens: true,
      overrides: { added_tokens: { '[MASK]': { normalized: true }, covid19: { id: 30522 }, 'Dr.Who': { id: 30523 }, 'Ünïcödé': { id: 30524 }, 'C++': { id: 30525, normalized: false }, 'e-mail': { id: 30526, lstrip: true } } },
    },
    { name: 'strip_accents=false', model: 'all-MiniLM-L6-v2', overrides: { normalizer: { strip_accents: false } } },
    { name: 'lowercase=false', model: 'all-MiniLM-L6-v2', overrides: { normalizer: { lowercase: false, strip_accents: null } } },
    { name: 'strip_accents=true,lowercase=false', model: 'all-MiniLM-L6-v2', overrides: { normalizer: { lowercase: false, strip_accents: true } } },
    { name: 'clean_text=false', model: 'all-MiniLM-L6-v2', overrides: { normalizer: { clean_text: false } } },
    { name: 'handle_chinese_chars=false', model: 'all-MiniLM-L6-v2', overrides: { normalizer: { handle_chinese_chars: false } } },
  ];
  for (const v of plan) {
    const tokenizer = load(v.model, v.overrides);
    const cases = [];
    if (v.full) {
      for (const t of edge) cases.push(await encode(tokenizer, t, undefined, 512));
      for (const t of edge.filter((t) => t.length > 20)) cases.push(await encode(tokenizer, t, undefined, 8));
      for (const t of stsSentences) cases.push(await encode(tokenizer, t, undefined, 512));
      for (const t of nfcorpus) for (const n of [16, 128, 512]) cases.push(await encode(tokenizer, t, undefined, n));
      for (const [a, b] of stsPairs) cases.push(await encode(tokenizer, a, b, 512));
    } else if (!v.pairsOnly) {
      for (const t of unicodeSubset) cases.push(await encode(tokenizer, t, undefined, 512));
    }
    if (v.addedTokens) {
      for (const t of [...edge.slice(-7), 'a [MASK] b', 'a  [MASK]\t\nb', '[MASK]   ', '   [MASK]', 'x [SEP]  y [SEP]', 'x\u3000[MASK]\u00a0y', '[MASK][MASK] [MASK]',
        'the [mask] and [MASK] COVID19 covid19s dr.who Dr.Who! C++ c++ unicode ÜNÏCÖDÉ e-mail x e-mail', 'DR.WHO covid19covid19 ﬁ Dr. Who', 'send an  e-mail'])
        cases.push(await encode(tokenizer, t, undefined, 512));
      for (const t of fuzz.slice(0, 100)) cases.push(await encode(tokenizer, t, undefined, 512));
    } else if (!v.pairsOnly) for (const t of v.full ? fuzz : fuzz.slice(0, 100)) cases.push(await encode(tokenizer, t, undefined, 512));
    if (v.full) for (let i = 0; i + 1 < 100; i += 2) cases.push(await encode(tokenizer, fuzz[i], fuzz[i + 1], 24));
    if (v.full || v.pairsOnly) {
      const lengths = v.full ? [3, 8, 9, 16, 17, 32, 128, 512] : [9, 16, 128, 512];
      for (const [a, b] of pairSuite) for (const n of lengths) cases.push(await encode(tokenizer, a, b, n));
      if (v.full) for (const [a, b] of dlPairs) for (const n of [32, 128, 512]) cases.push(await encode(tokenizer, a, b, n));
      for (const t of [longA, longB, veryLong]) for (const n of [2, 3, 8, 16, 512]) cases.push(await encode(tokenizer, t, undefined, n));
    }
    variants.push({ name: v.name, model: v.model, overrides: v.overrides ?? null, cases });
  }
  const fixture = {
    generator: `tools/tokenizer-reference/make-fixture.js, Hugging Face tokenizers ${require('tokenizers/package.json').version} (npm, Rust core)`,
    offsets: 'code points (Rust chars) into the original text',
    variants,
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(fixture));
  console.log(`wrote ${variants.reduce((n, v) => n + v.cases.length, 0)} cases to ${out} (${fs.statSync(out).size} bytes)`);
}

main().catch((e) => { console.error(e); process.exit(1); });
