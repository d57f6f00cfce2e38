"""Train the KJV Llama model on 2 CPU cores.  Usage (see run.sh):
  python3 train.py --work work --log ../../models/kjv/train.log [--max-steps N] [--time-budget S]
LR schedule: linear warmup, then cosine decay to 10% over progress p = max(step/max_steps, elapsed/time_budget),
so a wall-clock budget always finishes its decay; with --time-budget 0 it is purely step-based (reproducible).
"""
import argparse, json, math, os, sys, time
from dataclasses import asdict
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer
from data import encode_units, build_passkey, random_key, ANSWER_TAIL, QUESTION
from model import Config, LlamaLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="work")
    ap.add_argument("--heldout", default="../../models/kjv/heldout.txt")
    ap.add_argument("--log", default="../../models/kjv/train.log")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=704)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--passkey-frac", type=float, default=0.3)
    ap.add_argument("--answer-weight", type=float, default=0.5)
    ap.add_argument("--repeat-questions", type=int, default=0, help="1: ask the question again later in the filler")
    ap.add_argument("--stop-step", type=int, default=0, help="save latest.pt and exit at this step (phased runs)")
    ap.add_argument("--repeat-frac", type=float, default=0.0, help="share of repeated-span sequences")
    ap.add_argument("--random-span-frac", type=float, default=0.0, help="share of repeat sequences with random tokens")
    ap.add_argument("--span-tokens", default="uniform", choices=["uniform", "unigram"],
                    help="random spans: uniform over the vocabulary, or drawn from the corpus' unigram distribution")
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--time-budget", type=float, default=0, help="seconds; 0 = step-based only")
    ap.add_argument("--ckpt-every", type=float, default=180, help="seconds")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--log-every", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init-gguf", default="", help="start from the weights of this GGUF (fine-tuning phase)")
    ap.add_argument("--seq-len", type=int, default=0, help="training sequence length (0 = ctx); eval stays at ctx")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    logf = open(a.log, "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n"); logf.flush()

    tok = Tokenizer.load(os.path.join(a.work, "tokenizer.json"))
    text = open(os.path.join(a.work, "kjv_train.txt"), encoding="utf-8").read()
    t0 = time.time()
    units = encode_units(tok, text)
    stream = np.array([i for u in units for i in u], dtype=np.int64)
    held_units = encode_units(tok, open(a.heldout, encoding="utf-8").read())
    log(f"# tokenizer vocab {tok.vocab_size}; train tokens {len(stream)} ({len(units)} units), encoded in {time.time()-t0:.1f}s")

    cfg = Config(vocab_size=tok.vocab_size, d_model=a.d_model, n_layers=a.layers, n_heads=a.heads,
                 n_kv_heads=a.kv_heads, ffn_dim=a.ffn, ctx=a.ctx)
    model = LlamaLM(cfg)
    if a.init_gguf and not a.resume:
        from gguf_writer import read_gguf
        from reference import model_from_gguf
        meta, tensors = read_gguf(a.init_gguf)
        src, src_cfg = model_from_gguf(meta, tensors)
        same = {k: v for k, v in asdict(src_cfg).items() if k != "eps"} == {k: v for k, v in asdict(cfg).items() if k != "eps"}
        assert same and abs(src_cfg.eps - cfg.eps) < 1e-9, f"--init-gguf config {asdict(src_cfg)} != {asdict(cfg)}"
        model.load_state_dict(src.state_dict())
        log(f"# initialised from {a.init_gguf}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    ckdir = os.path.join(a.work, "ckpt")
    os.makedirs(ckdir, exist_ok=True)
    step, tokens_seen, elapsed0 = 0, 0, 0.0
    if a.resume and os.path.exists(os.path.join(ckdir, "latest.pt")):
        ck = torch.load(os.path.join(ckdir, "latest.pt"))
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"])
        step, tokens_seen, elapsed0 = ck["step"], ck["tokens"], ck["elapsed"]
        rng = np.random.default_rng(a.seed + step)
        torch.manual_seed(a.seed + step)
        log(f"# resumed at step {step}")
    log(f"# config {json.dumps(asdict(cfg))} params {model.n_params()} args {json.dumps(vars(a))}")

    T = a.seq_len or a.ctx

    def lm_seq():
        off = int(rng.integers(0, len(stream) - T))
        return np.concatenate([[tok.bos], stream[off:off + T]]), None

    def passkey_seq():
        total = int(rng.integers(96, T + 1))        # prompt + answer length, includes BOS
        depth = float(rng.random())
        key = random_key(rng)
        start = int(rng.integers(0, len(units)))
        prompt, ans, _ = build_passkey(tok, units, start, key, depth, total)
        seq = prompt + ans + tok.encode(ANSWER_TAIL)
        spans = [(len(prompt), len(prompt) + 5)]      # answer token positions in seq
        u = start + 7919
        qa = tok.encode(QUESTION)
        while len(seq) < T + 1:                        # continue with ordinary text ...
            if a.repeat_questions and rng.random() < 0.15 and len(seq) + len(qa) + 5 <= T + 1:
                seq += qa                              # ... and ask again (more supervised copies per sequence)
                spans.append((len(seq), len(seq) + 5))
                seq += ans + tok.encode(ANSWER_TAIL)
            else:
                seq += units[u % len(units)]; u += 1
        seq = np.array(seq[:T + 1], dtype=np.int64)
        return seq, spans

    def repeat_seq():
        # induction-head curriculum: a KJV span, then the same span again (every token of the copy is predictable)
        if rng.random() < a.random_span_frac:
            # random tokens: the copy is predictable only by looking back (cleanest induction signal)
            L = int(rng.integers(8, max(9, min(120, T // 3))))   # three copies fit in short curriculum sequences
            if a.span_tokens == "unigram":   # corpus frequencies: the embeddings copied are trained ones
                span = list(stream[rng.integers(0, len(stream), L)])
            else:
                span = list(rng.integers(0, tok.bos, L))
            seq = [tok.bos] + span + span + span
            copies = (1 + L, 1 + 3 * L)
        else:
            L = int(rng.integers(min(32, T // 4), max(min(32, T // 4) + 1, min(400, T // 2))))
            off = int(rng.integers(0, len(stream) - T))
            span = list(stream[off:off + L])
            seq = [tok.bos] + span + span
            copies = (1 + L, 1 + 2 * L)
        off2 = int(rng.integers(0, len(stream) - T))
        seq += list(stream[off2:off2 + T + 1 - len(seq)])
        return np.array(seq[:T + 1], dtype=np.int64), (min(copies[0], T + 1), min(copies[1], T + 1))

    def batch():
        xs, ws, cs = [], torch.zeros(a.batch, T), torch.zeros(a.batch, T)
        for b in range(a.batch):
            r = rng.random()
            if a.repeat_frac > 0 and r >= 1 - a.repeat_frac:
                s, (c0, c1) = repeat_seq()
                cs[b, c0 - 1:c1 - 1] = 1.0             # copied positions: predictable only by looking back
            elif r < a.passkey_frac:
                s, spans = passkey_seq()
                for s0, s1 in spans:
                    ws[b, s0 - 1:s1 - 1] = 1.0         # target index = position - 1
            else:
                s, span = lm_seq()
            xs.append(s)
        x = torch.from_numpy(np.stack(xs))
        return x[:, :-1], x[:, 1:], ws, cs

    # fixed eval prompts: held-out filler, depths x keys
    erng = np.random.default_rng(999)
    depths = [0.0, 0.25, 0.5, 0.75, 1.0]
    evals = []
    for d in depths:
        for j in range(4):
            key = random_key(erng)
            p, ans, _ = build_passkey(tok, held_units, int(erng.integers(0, len(held_units))), key, d, a.ctx)
            evals.append((d, p, ans))

    @torch.no_grad()
    def passkey_eval():
        model.eval()
        res = {}
        for d in depths:
            seqs = [p + ans for dd, p, ans in evals if dd == d]
            L = max(len(s) for s in seqs)
            ok = 0
            for s in seqs:   # one at a time (lengths differ slightly), teacher-forced == greedy when all correct
                x = torch.tensor([s[:-1]])
                pred = model(x)[0, -5:].argmax(-1).tolist()
                ok += int(pred == s[-5:])
            res[d] = ok / len(seqs)
        model.train()
        return res

    def lr_at(step, elapsed):
        p = step / a.max_steps
        if a.time_budget > 0:
            p = max(p, elapsed / a.time_budget)
        p = min(p, 1.0)
        w = min(1.0, (step + 1) / a.warmup)
        return a.lr * w * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p))), p

    def save(name):
        tmp = os.path.join(ckdir, name + ".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "cfg": asdict(cfg), "step": step,
                    "tokens": tokens_seen, "elapsed": elapsed, "loss": ema}, tmp)
        os.replace(tmp, os.path.join(ckdir, name))

    start = time.time()
    last_ck = time.time()
    ema = None
    win_t, win_tok = time.time(), 0
    ans_hits, ans_n, copy_hits, copy_n = 0.0, 0.0, 0.0, 0.0
    model.train()
    while True:
        elapsed = elapsed0 + time.time() - start
        lr, p = lr_at(step, elapsed)
        if p >= 1.0:
            break
        if a.stop_step and step >= a.stop_step:
            save("latest.pt")
            log(f"# stop-step {step}: saved latest.pt, exiting")
            return
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, w, c = batch()
        logits = model(x)
        ce = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1), reduction="none").view_as(w)
        loss_lm = ce.mean()
        hit = (logits.argmax(-1) == y).float()   # teacher-forced accuracy: passkey answer digits, repeated spans
        ans_hits += (hit * w).sum().item(); ans_n += w.sum().item()
        copy_hits += (hit * c).sum().item(); copy_n += c.sum().item()
        loss = loss_lm
        if w.sum() > 0:
            loss = loss + a.answer_weight * (ce * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.numel(); win_tok += x.numel()
        l = loss_lm.item()
        ema = l if ema is None else 0.9 * ema + 0.1 * l
        if step % a.log_every == 0:
            now = time.time()
            log(f"step {step} loss {l:.4f} ema {ema:.4f} lr {lr:.2e} tok/s {win_tok/(now-win_t):.0f} "
                f"tokens {tokens_seen} elapsed {elapsed0 + now - start:.0f}s"
                + (f" answer-acc {ans_hits/ans_n:.2f}" if ans_n else "")
                + (f" copy-acc {copy_hits/copy_n:.2f}" if copy_n else ""))
            win_t, win_tok = now, 0
            ans_hits, ans_n, copy_hits, copy_n = 0.0, 0.0, 0.0, 0.0
        if step % a.eval_every == 0:
            te = time.time()
            r = passkey_eval()
            log(f"eval step {step} passkey " + " ".join(f"d{d:.2f}={v:.2f}" for d, v in r.items())
                + f" ({time.time()-te:.0f}s)")
        if time.time() - last_ck > a.ckpt_every:
            elapsed = elapsed0 + time.time() - start
            save("latest.pt"); last_ck = time.time()
    elapsed = elapsed0 + time.time() - start
    r = passkey_eval()
    log(f"eval step {step} passkey " + " ".join(f"d{d:.2f}={v:.2f}" for d, v in r.items()))
    save("latest.pt"); save("final.pt")
    log(f"# done: steps {step} tokens {tokens_seen} elapsed {elapsed:.0f}s ema loss {ema:.4f}")


if __name__ == "__main__":
    main()
