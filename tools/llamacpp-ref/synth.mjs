// llama.cpp's answers on the engine's synthetic GGUF models (one per weight
// type, both architectures, both tokenizer kinds), committed as
// llm/testdata/llamacpp_synth.json and compared with the Go engine by
// `go test ./llm/` (TestLlamaCppSynth).
//
//   go run ./tools/synthgguf -out /tmp/synth
//   node tools/llamacpp-ref/synth.mjs --dir /tmp/synth --out llm/testdata/llamacpp_synth.json
//
// For each model and probe text it records llama.cpp's token ids (BOS as the
// model's metadata says), its greedy continuation, and the top next-token
// probabilities at the end of the probe (softmax of the raw logits: sampled
// at temperature 1 with no truncation, so the probabilities are not the
// greedy sampler's 0/1).
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, basename } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadModel } from '@fugood/llama.node'

const arg = (name, def) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : def
}
const dir = arg('--dir', 'synth-models')
const out = arg('--out', 'llamacpp_synth.json')
const nPredict = Number(arg('--n-predict', '8'))

export const probes = [
  'In the beginning God created the heaven and the earth.',
  'And God said, Let there be light',
  'The pass key is 12345. Remember it. What is the pass key?',
  "they'll say we've been there: 3.14, 2024-12-05",
  'Ünïcödé — naïve café',
  'darkness was upon the face of the deep',
]

// complete retries while the binding still reports the previous completion
// as running (it clears that flag asynchronously after resolving).
const complete = async (ctx, opts) => {
  for (let i = 0; ; i++) {
    try {
      return await ctx.completion(opts)
    } catch (e) {
      if (i > 300 || !String(e).includes('in progress')) throw e
      await new Promise((r) => setTimeout(r, 10))
    }
  }
}

// neutral turns off every sampler stage that would change the logits
// (repetition, frequency and presence penalties, DRY, XTC, mirostat, typical
// and top-n-sigma sampling), so that what llama.cpp reports is its model's
// own distribution.
const neutral = {
  penalty_last_n: 0, penalty_repeat: 1, penalty_freq: 0, penalty_present: 0, dry_multiplier: 0,
  xtc_probability: 0, mirostat: 0, typ_p: 1, top_n_sigma: -1,
}

// one measures one probe on one model, in a process of its own: after some
// completions the binding can refuse every further one ("another completion
// is in progress") for good.
const one = async (file, text) => {
  const ctx = await loadModel({ model: file, n_ctx: 256, n_threads: 2, n_gpu_layers: 0 })
  {
    const { tokens } = await ctx.tokenize(text)
    const greedy = await complete(ctx, { ...neutral, prompt: text, n_predict: nPredict, temperature: 0 })
    const next = await complete(ctx, {
      ...neutral,
      prompt: text, n_predict: 1, temperature: 1, top_k: 0, top_p: 1, min_p: 0, n_probs: 8, seed: 1,
    })
    return {
      text,
      ids: Array.from(tokens),
      greedy_text: greedy.text,
      top: next.completion_probabilities[0].probs,
    }
  }
}

if (arg('--one')) { // the binding logs on stdout: the result goes to --out
  writeFileSync(out, JSON.stringify(await one(arg('--one'), probes[Number(arg('--probe'))])))
  process.exit(0)
}
const result = { tool: '@fugood/llama.node 1.7.15 (llama.cpp, CPU)', n_predict: nPredict, models: [] }
for (const file of readdirSync(dir).filter((f) => f.endsWith('.gguf')).sort()) {
  const model = { name: basename(file, '.gguf'), probes: [] }
  for (const k of probes.keys()) {
    const tmp = join(tmpdir(), `llamacpp-synth-${process.pid}.json`)
    execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--one', join(dir, file), '--probe', String(k),
      '--out', tmp, '--n-predict', String(nPredict)], { stdio: 'ignore' })
    model.probes.push(JSON.parse(readFileSync(tmp, 'utf8')))
    unlinkSync(tmp)
  }
  result.models.push(model)
  console.error(`${file}: done`)
}
writeFileSync(out, JSON.stringify(result, null, 1) + '\n')
