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

const ctx = await loadModel({
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
})

const results = []
for (const p of probes) {
  const tok = await ctx.tokenize(p.text)
  const ids = Array.from(tok.tokens)
  const np = p.n_predict ?? nPredict
  const t0 = Date.now()
  const res = await ctx.completion({
    prompt: p.text,
    n_predict: np,
    temperature: 0,
    top_k: 1,
    seed: 0,
    n_probs: nProbs,
    ignore_eos: true,
  })
  const steps = (res.completion_probabilities ?? []).map((s) => ({ piece: s.content, probs: s.probs }))
  const r = {
    name: p.name,
    text: p.text,
    tokenize_ids: ids, // ctx.tokenize(): no BOS added here
    ids_match_python: p.ids ? JSON.stringify([p.ids[0], ...ids]) === JSON.stringify(p.ids) : null,
    greedy_text: res.text,
    greedy_pieces: steps.map((s) => s.piece),
    steps,
    tokens_evaluated: res.tokens_evaluated,
    timings: res.timings,
    wall_ms: Date.now() - t0,
  }
  if (p.answer) r.passkey_correct = res.text.startsWith(p.answer)
  results.push(r)
  console.error(`${p.name}: ${ids.length} tokens, ids_match=${r.ids_match_python}, greedy=${JSON.stringify(res.text.slice(0, 60))}` +
    (p.answer ? ` passkey_ok=${r.passkey_correct}` : '') + `, decode ${res.timings?.predicted_per_second?.toFixed(1)} tok/s`)
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
  results,
}, null, 1))
console.error(`wrote ${outPath}`)
