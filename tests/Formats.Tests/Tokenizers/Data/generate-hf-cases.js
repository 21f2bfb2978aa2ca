// Regenerates hf-cases.json, the second, independent tokenizer reference (the first is
// tests/data/reference/<model>.tokcases.json). It runs the Hugging Face tokenizers library itself
// (its Rust core, through the npm package's bundled native binding) on:
//   * the five test models' tokenizer.json files, unchanged;
//   * variants of them whose normalizer / pre-tokenizer / model options / added tokens / decoder /
//     post-processor are replaced, covering tokenizer.json features the test models do not use;
// and records ids with and without special tokens, decodes, and for the whole calibration text a
// token count and SHA-256 (too many ids to store).
//
//   cd /tmp/hf && npm install tokenizers@0.23.2
//   NODE_PATH=/tmp/hf/node_modules node tests/Formats.Tests/Tokenizers/Data/generate-hf-cases.js
//
// small-qwen2 is read from ../shared beside the checkout, as the tests do.
'use strict';
const { Tokenizer } = require('tokenizers');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '../../../..');
const tokenizerFiles = {
  'tiny-llama': path.join(root, 'samples/tiny-llama/tokenizer.json'),
  'rand-llama31': path.join(root, 'tests/data/models/rand-llama31/tokenizer.json'),
  'rand-mistral': path.join(root, 'tests/data/models/rand-mistral/tokenizer.json'),
  'rand-qwen3': path.join(root, 'tests/data/models/rand-qwen3/tokenizer.json'),
  'small-qwen2': path.join(root, '../shared/models/small-qwen2/tokenizer.json'),
};
const calibration = fs.readFileSync(path.join(root, 'samples/data/calibration.txt'), 'utf8');

const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const byteLevelNoRegex = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false };
const byteLevelDecoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
const splitThenBytes = (split) => ({ type: 'Sequence', pretokenizers: [split, byteLevelNoRegex] });
const token = (id, content, o) => Object.assign(
  { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false }, o);

// name -> [base model, function editing a copy of its tokenizer.json]
const variants = {
  'llama3-split': ['rand-llama31', (t) => {
    t.pre_tokenizer = splitThenBytes({ type: 'Split', pattern: { Regex: LLAMA3 }, behavior: 'Isolated', invert: false });
  }],
  'qwen2-split-nfc': ['rand-qwen3', (t) => {
    t.normalizer = { type: 'NFC' };
    t.pre_tokenizer = splitThenBytes({ type: 'Split', pattern: { Regex: QWEN2 }, behavior: 'Isolated', invert: false });
  }],
  'bytelevel-prefix-space': ['tiny-llama', (t) => {
    t.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
    t.post_processor = { type: 'Sequence', processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }, t.post_processor] };
  }],
  'added-tokens': ['tiny-llama', (t) => {
    t.added_tokens.push(
      token(4096, '<|tool|>', { special: true, lstrip: true }),
      token(4097, '[MASK]', { lstrip: true, rstrip: true }),
      token(4098, 'dog', { single_word: true, normalized: true }),
      token(4099, '<|bos|>x', {}),
      token(4100, ' two words', { normalized: true }));
  }],
  'added-tokens-normalized': ['rand-mistral', (t) => {
    // normalized added tokens match the normalized text ("▁" for spaces) and decode through the decoder
    t.added_tokens.push(token(2048, 'brown fox', { normalized: true }), token(2049, 'quick', { normalized: true, special: true }));
  }],
  'metaspace-first': ['rand-mistral', (t) => {
    t.normalizer = null;
    t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  }],
  'metaspace-always-split': ['rand-mistral', (t) => {
    t.normalizer = null;
    t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
    t.decoder = { type: 'Sequence', decoders: [
      { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }, { type: 'ByteFallback' }, { type: 'Fuse' }] };
  }],
  'metaspace-never-digits': ['rand-mistral', (t) => {
    t.normalizer = null;
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true }, { type: 'Digits', individual_digits: true }] };
    t.decoder = { type: 'Sequence', decoders: [
      { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true }, { type: 'ByteFallback' }, { type: 'Fuse' }] };
  }],
  'metaspace-legacy-add-prefix-space': ['rand-mistral', (t) => {
    t.normalizer = null;
    t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', add_prefix_space: true };
    t.decoder = { type: 'Metaspace', replacement: '▁', add_prefix_space: true };
  }],
  'unk-fused-string-merges': ['rand-mistral', (t) => {
    t.model.byte_fallback = false;
    t.model.fuse_unk = true;
    t.model.merges = t.model.merges.map((m) => m.join(' '));
    t.normalizer = { type: 'Sequence', normalizers: [
      { type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { Regex: ' +' }, content: '▁' }] };
  }],
  'unk-unfused': ['rand-mistral', (t) => {
    t.model.byte_fallback = false;
    t.model.fuse_unk = false;
  }],
  'no-unk-no-fallback': ['rand-mistral', (t) => {
    t.model.byte_fallback = false;
    t.model.unk_token = null;
  }],
  'ignore-merges': ['rand-llama31', (t) => { t.model.ignore_merges = true; }],
  'whitespace-punct-digits': ['tiny-llama', (t) => {
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'WhitespaceSplit' }, { type: 'Punctuation', behavior: 'Isolated' },
      { type: 'Digits', individual_digits: false }, byteLevelNoRegex] };
  }],
  'whitespace': ['tiny-llama', (t) => {
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, byteLevelNoRegex] };
  }],
  'split-removed': ['tiny-llama', (t) => {
    t.pre_tokenizer = splitThenBytes({ type: 'Split', pattern: { String: ' ' }, behavior: 'Removed', invert: false });
  }],
  'split-merged-previous': ['tiny-llama', (t) => {
    t.pre_tokenizer = splitThenBytes({ type: 'Split', pattern: { Regex: '[,.!?]' }, behavior: 'MergedWithPrevious', invert: false });
  }],
  'split-merged-next': ['tiny-llama', (t) => {
    t.pre_tokenizer = splitThenBytes({ type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'MergedWithNext', invert: false });
  }],
  'split-contiguous': ['tiny-llama', (t) => {
    t.pre_tokenizer = splitThenBytes({ type: 'Split', pattern: { Regex: '\\p{N}' }, behavior: 'Contiguous', invert: false });
  }],
  'split-invert': ['tiny-llama', (t) => {
    t.pre_tokenizer = splitThenBytes({ type: 'Split', pattern: { Regex: '\\p{L}+' }, behavior: 'Removed', invert: true });
  }],
  'normalizers-misc': ['tiny-llama', (t) => {
    t.normalizer = { type: 'Sequence', normalizers: [
      { type: 'Strip', strip_left: true, strip_right: true }, { type: 'NFKC' }, { type: 'Lowercase' }] };
  }],
  'nfd-bytelevel-normalizer': ['tiny-llama', (t) => {
    t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'ByteLevel' }] };
    t.pre_tokenizer = null;
  }],
  'template-bos-eos-no-decoder': ['tiny-llama', (t) => {
    t.decoder = null;
    t.post_processor = { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|eos|>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: {
        '<|bos|>': { id: '<|bos|>', ids: [0], tokens: ['<|bos|>'] },
        '<|eos|>': { id: '<|eos|>', ids: [1], tokens: ['<|eos|>'] } } };
  }],
  'no-post-processor': ['rand-qwen3', (t) => { t.post_processor = null; }],
};

const texts = [
  'Hello world',
  ' leading space',
  'The quick brown fox jumps over the lazy dog.',
  'naïve café — “quotes” 日本語 🙂',
  'Numbers 12345 and 3.14159!',
  'line one\nline two\n\n  indented',
  '<|bos|>special inside<|eos|>',
  '',
  "I'm sure you'LL see, they'd've DONE it's.",
  'tabs\tand\r\nCRLF  lines\n\n\n   end  ',
  '1234567890 12 345',
  '𝐀𝐁𝐂 bold 🙂hello 😀😀 a🙂b x𝐀y',
  'cafe\u0301 vs café, ﬁne Ångström',
  '<|bos|>mid<|eos|> and <|pad|>',
  '  <|tool|>  x [MASK] y [MASK]z dog dogs hotdog dog. <|bos|>xy two words',
  'Ünïcödé ÀÉÎÕÜ Straße',
  '<0x41> literal <s> tokens </s>',
  '   ',
  '\n',
  ' ',
  'a',
  '▁already▁metaspace ▁',
  'the quick brown fox, the quick brown fox!',
  calibration.slice(0, 1500),
];

function sha256Ids(ids) {
  const buf = Buffer.alloc(ids.length * 4);
  ids.forEach((id, i) => buf.writeInt32LE(id, i * 4));
  return crypto.createHash('sha256').update(buf).digest('hex');
}

async function describe(tok) {
  const cases = [];
  for (const text of texts) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: true })).getIds();
    const noSpecial = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    cases.push({
      text, ids, ids_no_special: noSpecial,
      decoded: await tok.decode(ids, false),
      decoded_skip_special: await tok.decode(ids, true),
      // one token short: cuts multi-byte characters apart, exercising lossy UTF-8 decoding
      decoded_truncated: await tok.decode(noSpecial.slice(0, -1), false),
    });
  }
  const calIds = (await tok.encode(calibration, null, { addSpecialTokens: false })).getIds();
  const calibrationRef = { count: calIds.length, sha256: sha256Ids(calIds) };
  return { cases, calibration: calibrationRef };
}

(async () => {
  const out = { generator: 'Hugging Face tokenizers 0.23.2 (npm package "tokenizers")', tokenizers: [] };
  for (const [name, file] of Object.entries(tokenizerFiles)) {
    if (!fs.existsSync(file)) throw new Error(`missing ${file}`);
    out.tokenizers.push(Object.assign({ name, base: name, override: null }, await describe(Tokenizer.fromFile(file))));
  }
  for (const [name, [base, edit]] of Object.entries(variants)) {
    const json = JSON.parse(fs.readFileSync(tokenizerFiles[base], 'utf8'));
    const edited = JSON.parse(JSON.stringify(json));
    edit(edited);
    // Store only what the variant changed: top-level members replace the base's, except "model",
    // whose changed members replace the base model's one by one.
    const override = {};
    for (const key of Object.keys(edited)) {
      if (JSON.stringify(edited[key]) === JSON.stringify(json[key])) continue;
      if (key !== 'model') { override[key] = edited[key]; continue; }
      override.model = {};
      for (const m of Object.keys(edited.model)) {
        if (JSON.stringify(edited.model[m]) !== JSON.stringify(json.model[m])) override.model[m] = edited.model[m];
      }
    }
    out.tokenizers.push(Object.assign({ name, base, override }, await describe(Tokenizer.fromString(JSON.stringify(edited)))));
    process.stderr.write(`${name} done\n`);
  }
  // One line per case and per override keeps the file small yet diffable.
  const lines = ['{', `"generator": ${JSON.stringify(out.generator)},`, '"tokenizers": ['];
  out.tokenizers.forEach((t, i) => {
    lines.push('{', `"name": ${JSON.stringify(t.name)}, "base": ${JSON.stringify(t.base)},`,
      `"override": ${JSON.stringify(t.override)},`, `"calibration": ${JSON.stringify(t.calibration)},`, '"cases": [');
    t.cases.forEach((c, j) => lines.push(JSON.stringify(c) + (j + 1 < t.cases.length ? ',' : '')));
    lines.push(']', i + 1 < out.tokenizers.length ? '},' : '}');
  });
  lines.push(']', '}');
  fs.writeFileSync(path.join(__dirname, 'hf-cases.json'), lines.join('\n') + '\n');
})().catch((e) => { console.error(e); process.exit(1); });
