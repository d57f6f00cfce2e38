"""Reference outputs computed from the EXPORTED GGUF weights (read back from the file, fp32 compute).
  python3 reference.py --gguf ../../models/kjv/kjv-llama.gguf --outdir ../../models/kjv
Writes reference.json (probes, held-out PPL, passkey prompts + accuracy) and reference_logits.bin.
"""
import argparse, hashlib, json, math, os, sys, time
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer
from data import encode_units, build_passkey, random_key, KEY_TMPL, QUESTION
from export import BLOCK_MAP
from gguf_writer import read_gguf
from model import Config, LlamaLM

PROBES = [
    ("kjv_genesis", "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void; "
                    "and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.\n"),
    ("kjv_john", "And Jesus answered and said unto them, Verily, verily, I say unto you, "),
    ("unicode_digits", "Ézéchiel — 12,345 ‘quotes’\n\n  spaces\tand tabs; don't WE'LL 3.14159 naïve café 日本語 🙂\r\nend"),
    ("code_punct", "def f(x):\n    return x*2  # comment\n\n\n{\"a\": [1, 2], 'b': None}   \n"),
]


def tokenizer_from_gguf(meta):
    merges = [m.split(" ", 1) for m in meta["tokenizer.ggml.merges"]]
    tok = Tokenizer(merges)
    assert tok.tokens == meta["tokenizer.ggml.tokens"], "tokenizer mismatch"
    return tok


def model_from_gguf(meta, T):
    cfg = Config(vocab_size=meta["llama.vocab_size"], d_model=meta["llama.embedding_length"],
                 n_layers=meta["llama.block_count"], n_heads=meta["llama.attention.head_count"],
                 n_kv_heads=meta["llama.attention.head_count_kv"], ffn_dim=meta["llama.feed_forward_length"],
                 ctx=meta["llama.context_length"], rope_base=meta["llama.rope.freq_base"],
                 eps=meta["llama.attention.layer_norm_rms_epsilon"])
    sd = {"tok_emb.weight": T["token_embd.weight"], "norm.weight": T["output_norm.weight"]}
    for i in range(cfg.n_layers):
        for k, g in BLOCK_MAP.items():
            sd[f"blocks.{i}.{k}"] = T[f"blk.{i}.{g}"]
    m = LlamaLM(cfg)
    m.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)).float() for k, v in sd.items()})
    m.eval()
    return m, cfg


@torch.no_grad()
def logits_of(model, ids):
    return model(torch.tensor([ids]))[0].float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default="../../models/kjv/kjv-llama.gguf")
    ap.add_argument("--heldout", default="../../models/kjv/heldout.txt")
    ap.add_argument("--outdir", default="../../models/kjv")
    ap.add_argument("--passkey-per-depth", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    meta, T = read_gguf(a.gguf)
    tok = tokenizer_from_gguf(meta)
    model, cfg = model_from_gguf(meta, T)
    ctx = cfg.ctx
    sha = hashlib.sha256(open(a.gguf, "rb").read()).hexdigest()

    # ---- probes: all positions' logits
    held_text = open(a.heldout, encoding="utf-8").read()
    held_units = encode_units(tok, held_text)
    pk_prompt, pk_ans, _ = build_passkey(tok, held_units, 40, "73918", 0.5, 160)
    probes = list(PROBES) + [("passkey_short", tok.decode(pk_prompt[1:]))]
    probes.insert(2, ("kjv_heldout_proverbs", held_text[:700]))
    out_probes, blobs, off = [], [], 0
    for name, text in probes:
        ids = tok.encode(text, bos=True)
        assert tok.decode(ids) == text
        lg = logits_of(model, ids).numpy().astype("<f4")
        blobs.append(lg.tobytes())
        p = torch.softmax(torch.from_numpy(lg[-1]).double(), -1)
        top = torch.topk(p, 10)
        out_probes.append({"name": name, "text": text, "ids": ids, "positions": len(ids), "logits_offset": off,
                           "greedy_next": int(lg[-1].argmax()),
                           "top10_next": [[int(i), float(v)] for v, i in zip(top.values, top.indices)]})
        off += lg.size
        print(f"probe {name}: {len(ids)} tokens")
    with open(os.path.join(a.outdir, "reference_logits.bin"), "wb") as f:
        for b in blobs:
            f.write(b)

    # ---- held-out perplexity
    htoks = tok.encode(held_text)
    n = ctx - 1
    nwin = len(htoks) // n
    half = ctx // 2
    win_nll = []
    tot, cnt = 0.0, 0
    for w in range(nwin):
        ids = [tok.bos] + htoks[w * n:(w + 1) * n]
        lg = logits_of(model, ids).double()
        lp = torch.log_softmax(lg, -1)
        tgt = torch.tensor(ids[half:])                     # targets at positions half..ctx-1
        nll = -lp[half - 1:ctx - 1].gather(1, tgt[:, None]).squeeze(1)   # predicted from positions half-1..ctx-2
        win_nll.append(float(nll.mean()))
        tot += float(nll.sum()); cnt += len(tgt)
    ppl = math.exp(tot / cnt)
    print(f"held-out: {len(htoks)} tokens, {nwin} windows, mean NLL {tot/cnt:.4f}, PPL {ppl:.3f}")

    # ---- passkey prompts
    rng = np.random.default_rng(2024)
    depths = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    prompts, acc = [], {}
    for d in depths:
        ok = 0
        for j in range(a.passkey_per_depth):
            key = random_key(rng)
            start = int(rng.integers(0, len(held_units)))
            prompt, ans, kpos = build_passkey(tok, held_units, start, key, d, ctx)
            lg = logits_of(model, prompt + ans[:-1])
            pred = lg[len(prompt) - 1:].argmax(-1).tolist()   # teacher-forced; all 5 right <=> greedy gets all 5
            good = pred == ans
            ok += int(good)
            prompts.append({"depth": d, "key": key, "start_unit": start, "key_token_pos": kpos,
                            "text": tok.decode(prompt[1:]), "ids": prompt, "answer_ids": ans,
                            "greedy_correct": good, "pred_ids": pred})
        acc[str(d)] = ok / a.passkey_per_depth
        print(f"passkey depth {d}: {acc[str(d)]:.2f}")

    ref = {
        "model": os.path.basename(a.gguf), "gguf_sha256": sha,
        "vocab_size": cfg.vocab_size, "ctx": ctx, "bos": tok.bos, "eos": tok.eos,
        "logits_file": "reference_logits.bin",
        "logits_layout": "float32 little-endian; for each probe in order, [positions][vocab_size] row-major; "
                         "probe i starts at float index logits_offset (row r = logits after consuming ids[0..r])",
        "compute": "fp32 torch on the weights read back from the GGUF (F16 -> fp32), full causal forward",
        "probes": out_probes,
        "heldout": {
            "file": "heldout.txt", "tokens": len(htoks), "windows": nwin, "ctx": ctx,
            "method": "tokenize the whole heldout.txt without BOS -> T; window w (w = 0..floor(len(T)/(ctx-1))-1) "
                      "= [BOS] + T[w*(ctx-1) : (w+1)*(ctx-1)] (ctx tokens, positions 0..ctx-1, fresh cache per window, "
                      "incomplete tail dropped); NLL over the second half of each window: targets at positions "
                      "ctx/2..ctx-1 (512 per window), each predicted from the logits at the previous position; "
                      "PPL = exp(total NLL / total scored tokens)",
            "scored_tokens": cnt, "mean_nll": tot / cnt, "ppl": ppl, "window_mean_nll": win_nll,
        },
        "passkey": {
            "method": "prompt ids = [BOS] + prefix + encode(KEY) + suffix + encode(QUESTION); prefix/suffix are whole "
                      "consecutive lines ('units', each line with its trailing newline(s)) of heldout.txt starting at "
                      "start_unit (wrapping around); F = ctx - 1 - len(encode(KEY)) - len(encode(QUESTION)) - 5; the "
                      "prefix takes whole units while its length stays <= round(depth*F), the suffix continues while "
                      "prefix+suffix <= F. The answer is the 5 digit tokens of the key (qwen2 splits digits); "
                      "correct = greedy decoding of the next 5 tokens equals answer_ids. text = the prompt without "
                      "BOS (encode(text) with BOS == ids).",
            "key_template": KEY_TMPL, "question": QUESTION, "ctx": ctx,
            "accuracy_by_depth": acc, "prompts": prompts,
        },
        "seconds": time.time() - t0,
    }
    json.dump(ref, open(os.path.join(a.outdir, "reference.json"), "w"), ensure_ascii=False, indent=1)
    print(f"wrote reference.json ({time.time()-t0:.0f}s)")


if __name__ == "__main__":
    main()
