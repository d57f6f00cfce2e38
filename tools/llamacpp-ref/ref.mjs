// llama.cpp cross-check for our GGUF export, through @fugood/llama.node (prebuilt llama.cpp).
// usage: node ref.mjs --model F.gguf --probes probes.json --out out.json
//                     [--n-predict 16] [--n-probs 10] [--cache-type f16|q8_0|q4_0] [--flash on|off|auto]
//                     [--threads 2] [--passkey]   (--passkey: also run reference.json's passkey prompts)
// probes.json: either an array of {name?, text, ids?} or reference.json ({probes: [...], passkey: {prompts: [...]}}).
// For each probe: llama.cpp's token ids (with BOS, as completion() feeds them), greedy continuation (pieces,
// text), top-n next-token probabilities at each generated step (step 0 = the distribution right after the probe),
// decode speed.
import { loadModel } from '@fugood/llama.node'
import fs from 'node:fs'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf('--' + name)
  return i >= 0 ? args[i + 1] : dflt
}
const flag = (name) => args.includes('--' + name)
const modelPath = opt('model')
const probesPath = opt('probes')
const outPath = opt('out', 'out.json')
const nPredict = parseInt(opt('n-predict', '16'))
const nProbs = parseInt(opt('n-probs', '10'))
const cacheType = opt('cache-type', 'f16')
// quantized V cache needs flash attention in llama.cpp
const flash = opt('flash', cacheType === 'f16' ? 'off' : 'on')
const threads = parseInt(opt('threads', '2'))
const nCtx = parseInt(opt('n-ctx', '2048'))
if (!modelPath || !probesPath) {
  console.error('usage: node ref.mjs --model F.gguf --probes probes.json --out out.json [--n-predict 16] [--cache-type f16|q8_0|q4_0]')
  process.exit(2)
}

const src = JSON.parse(fs.readFileSync(probesPath, 'utf8'))
let probes = Array.isArray(src) ? src : src.probes
probes = probes.map((p, i) => ({ name: p.name ?? `probe${i}`, text: p.text, ids: p.ids }))
if (flag('passkey') && src.passkey && src.passkey.prompts) {
  for (const p of src.passkey.prompts) {
    probes.push({ name: `passkey d${p.depth} k${p.key}`, text: p.text, ids: p.ids, answer: p.key, n_predict: 5 })
  }
}

const loadOpts = {
  model: modelPath,
  n_ctx: nCtx,
  n_batch: 2048,
  n_ubatch: 512,
  n_threads: threads,
  n_gpu_layers: 0,
  cache_type_k: cacheType,
  cache_type_v: cacheType,
  flash_attn_type: flash,
  n_parallel: 1,
  use_mmap: true,
}
let ctx = await loadModel(loadOpts)

// completion_probabilities accumulates across completion() calls in this binding: always take the tail.
const tail = (res, n) => (res.completion_probabilities ?? []).slice(-n)
// raw next-token distribution: temperature 1 and no truncation, so the reported probs are softmax(logits)
const RAW = { temperature: 1, top_k: 0, top_p: 1, min_p: 0, typ_p: 1, penalty_repeat: 1, penalty_last_n: 0,
  penalty_freq: 0, penalty_present: 0, dry_multiplier: 0, xtc_probability: 0, mirostat: 0, seed: 0 }

// the binding resolves completion() slightly before it frees the context: retry while it reports busy
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
let reloads = 0
async function complete(o) {
  for (let i = 0; ; i++) {
    try { return await ctx.completion(o) } catch (e) {
      if (!String(e).includes('Another completion is in progress') || i > 20) throw e
      // a finished completion sometimes stays flagged busy in this binding: start a fresh context
      if (i >= 10) { ctx = await loadModel(loadOpts); reloads++ }
      await sleep(5)
    }
  }
}

const results = []
for (const p of probes) {
  const tok = await ctx.tokenize(p.text)
  const ids = Array.from(tok.tokens)
  const np = p.n_predict ?? nPredict
  // 1. greedy continuation
  const g = await complete({ prompt: p.text, n_predict: np, temperature: 0, top_k: 1, seed: 0, n_probs: 1,
    ignore_eos: true, penalty_repeat: 1, penalty_last_n: 0 })
  const pieces = tail(g, np).map((s) => s.content)
  // 2. top-n raw probabilities at each greedy step (teacher-forced on the greedy text so far)
  const steps = []
  const nSteps = p.answer ? 1 : np
  for (let s = 0; s < nSteps; s++) {
    const prompt = p.text + pieces.slice(0, s).join('')
    const r = await complete({ prompt, n_predict: 1, n_probs: nProbs, ignore_eos: true, ...RAW })
    const last = tail(r, 1)[0]
    const pid = Array.from((await ctx.tokenize(prompt)).tokens)
    steps.push({ step: s, prompt_ids_len: pid.length + 1, prompt_ids_tail: pid.slice(-(s + 1)), probs: last ? last.probs : [] })
  }
  const r = {
    name: p.name,
    text: p.text,
    tokenize_ids: ids, // ctx.tokenize(): without BOS; completion() adds BOS (add_bos_token = true)
    ids_match_python: p.ids ? JSON.stringify([p.ids[0], ...ids]) === JSON.stringify(p.ids) : null,
    greedy_text: g.text,
    greedy_pieces: pieces,
    steps,
    timings: g.timings,
  }
  if (p.answer) r.passkey_correct = g.text.startsWith(p.answer)
  results.push(r)
  console.error(`${p.name}: ${ids.length} tokens, ids_match=${r.ids_match_python}, greedy=${JSON.stringify(g.text.slice(0, 60))}` +
    (p.answer ? ` passkey_ok=${r.passkey_correct}` : ''))
}
// decode speed: 256 greedy tokens after a short prompt
let bench = null
if (!flag('no-bench')) {
  const b = await complete({ prompt: 'And it came to pass', n_predict: 256, temperature: 0, top_k: 1, ignore_eos: true })
  bench = { prompt: 'And it came to pass', n_predict: 256, timings: b.timings }
  console.error(`decode ${b.timings.predicted_per_second.toFixed(1)} tok/s (${cacheType}, flash ${flash}, ${threads} threads)`)
}
await ctx.release()
fs.writeFileSync(outPath, JSON.stringify({
  llama_node: '@fugood/llama.node@1.7.15',
  model: modelPath,
  cache_type_k: cacheType,
  cache_type_v: cacheType,
  flash_attn_type: flash,
  n_threads: threads,
  n_predict: nPredict,
  n_probs: nProbs,
  bench,
  context_reloads: reloads,
  results,
}, null, 1))
console.error(`wrote ${outPath}`)
