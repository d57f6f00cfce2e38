"""Model-level KV-codec simulator: mean KLD of the committed model's predictions with simulated K/V codecs.

A research tool for trying codec designs before building them in Go. It is not the engine: `tqbench lm` measures
the real presets. On the committed model the two agree to about 10% in KLD, and they rank the codecs alike
(tq4 3.5e-5 in the engine against 3.1e-5 here; kivi4 1.1e-5 against 1.06e-5).

    /usr/bin/python3 tools/trainlm/kvsim.py 'tq:4|tq:4' 'tq:4|tq:3.5' 'kivi:3|kivi:3' 'pb32/tq:5|pb32/tq:4.5'

Each argument is KEYS|VALUES, each side one of:
    exact           no quantization
    tq:B            random Hadamard rotation, one norm (fp16) and Lloyd–Max codes of B bits per coordinate;
                    a fractional B (4.5) gives that share of the rotated coordinates B+1 bits (turboquant.Split)
    kivi:B          KIVI-like: keys per channel over groups of 32 tokens, values per token over groups of 32
                    channels, B-bit min/max codes with fp16 scale and zero
    pbG/tq:B        tq:B centred on the mean of the previous G-token block's *reconstructions* (causal: a decoder
                    can compute it); the first block uses the prefill mean. Costs no stored bytes here, but a
                    cache that keeps the means instead of recomputing them pays for them.
    pbGqM/tq:B      the same with each block's mean itself stored as an M-bit tq code (its cost in bits per
                    element is (M·d + 16) / (G·d); count it in B).
tq codecs centre on the prefill mean, as the presets' Center does.

Like `tqbench lm`: windows of 1,024 tokens of the held-out text, the second half scored; 4 sink tokens and a
128-token window stay exact; KLD against the exact cache.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as M  # noqa: E402
from gguf_writer import read_gguf  # noqa: E402
from reference import model_from_gguf, tokenizer_from_gguf  # noqa: E402

ROOT = os.path.join(HERE, "..", "..")
SINKS, WINDOW, CTX = 4, 128, 1024


def lloyd_max(bits, samples=1_000_000, iters=200):
    """Unit-Gaussian Lloyd–Max centroids (the rotated coordinates of a d≥64 unit vector are near Gaussian)."""
    s = np.random.RandomState(0).randn(samples)
    c = np.quantile(s, (np.arange(2 ** bits) + 0.5) / 2 ** bits)
    for _ in range(iters):
        edges = (c[1:] + c[:-1]) / 2
        i = np.searchsorted(edges, s)
        c = np.bincount(i, s, 2 ** bits) / np.bincount(i, None, 2 ** bits)
    return torch.tensor(c, dtype=torch.float32)


class Codecs:
    def __init__(self, hd):
        self.hd = hd
        h = torch.ones(1, 1)
        while h.shape[0] < hd:
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
        self.H = h / math.sqrt(hd)
        self.signs = torch.tensor(np.random.RandomState(1).choice([-1.0, 1.0], hd), dtype=torch.float32)
        self.books = {}

    def book(self, b):
        if b not in self.books:
            self.books[b] = lloyd_max(b)
        return self.books[b]

    def tq(self, x, mu, bits):
        """Rows of x quantized around mu at `bits` per coordinate (fractional: a rotated-domain split)."""
        lo = int(bits)
        n_hi = round(self.hd * (bits - lo))
        y = ((x - mu) * self.signs) @ self.H
        n = y.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        u = y / n * math.sqrt(self.hd)
        uq = torch.empty_like(u)
        for b, sl in ((lo, slice(0, self.hd - n_hi)), (lo + 1, slice(self.hd - n_hi, self.hd))):
            if sl.start == sl.stop:
                continue
            c = self.book(b)
            uq[:, sl] = c[(u[:, sl, None] - c).abs().argmin(-1)]
        return ((uq * n.half().float() / math.sqrt(self.hd)) @ self.H.T) * self.signs + mu

    def apply(self, spec, x, per_channel):
        """x: [T, hd] of one KV head; returns its reconstruction."""
        T = x.shape[0]
        if spec == "exact":
            return x
        kind, _, bits = spec.partition(":")
        if kind == "kivi":
            return kivi(x, int(bits), per_channel)
        prefill_mean = x[: T // 2].mean(0)
        if kind == "tq":
            return self.tq(x, prefill_mean, float(bits))
        if kind.startswith("pb") and kind.endswith("/tq"):
            G, _, mbits = kind[2:-3].partition("q")
            G = int(G)
            out, mu = torch.empty_like(x), prefill_mean
            for s in range(0, T, G):
                out[s:s + G] = self.tq(x[s:s + G], mu, float(bits))
                mu = out[s:s + G].mean(0)
                if mbits:
                    mu = self.tq(mu[None], torch.zeros_like(mu), float(mbits))[0]
            return out
        raise SystemExit(f"unknown codec {spec!r}")


def kivi(x, bits, per_channel, G=32):
    T, d = x.shape
    if per_channel:
        Tg = T // G * G
        g = x[:Tg].reshape(-1, G, d)
        lo, hi = g.amin(1, keepdim=True), g.amax(1, keepdim=True)
    else:
        g = x.reshape(T, d // G, G)
        lo, hi = g.amin(2, keepdim=True), g.amax(2, keepdim=True)
    lo = lo.half().float()
    step = ((hi - lo) / (2 ** bits - 1)).half().float()
    step[step == 0] = 1
    q = torch.round((g - lo) / step).clamp(0, 2 ** bits - 1) * step + lo
    if per_channel:
        return torch.cat([q.reshape(Tg, d), x[Tg:]], 0)  # a partial group stays exact, as in the engine's window
    return q.reshape(T, d)


def run(model, cfg, windows, codecs, spec):
    """Log-probabilities of every window's second half with K/V through spec ('keys|values'; None: exact)."""
    hd, rep = cfg.head_dim, cfg.n_heads // cfg.n_kv_heads

    def block_forward(blk):
        def fwd(x, cos, sin, mask):
            B, T, _ = x.shape
            h = blk.attn_norm(x)
            q = M.apply_rope(blk.wq(h).view(B, T, cfg.n_heads, hd).transpose(1, 2), cos, sin)[0]
            k = M.apply_rope(blk.wk(h).view(B, T, cfg.n_kv_heads, hd).transpose(1, 2), cos, sin)[0]
            v = blk.wv(h).view(B, T, cfg.n_kv_heads, hd).transpose(1, 2)[0]
            kq, vq = k.clone(), v.clone()
            if spec:
                ks, vs = spec.split("|")
                for g in range(cfg.n_kv_heads):
                    kq[g], vq[g] = codecs.apply(ks, k[g], True), codecs.apply(vs, v[g], False)
            t = torch.arange(T)
            exact = (t[:, None] - t[None, :] < WINDOW) | (t[None, :] < SINKS)
            outs = []
            for qh in range(cfg.n_heads):
                g = qh // rep
                logits = torch.where(exact, q[qh] @ k[g].T, q[qh] @ kq[g].T) / math.sqrt(hd) + mask
                p = torch.softmax(logits, -1)
                outs.append((p * exact) @ v[g] + (p * ~exact) @ vq[g])
            o = torch.stack(outs, 0).transpose(0, 1).reshape(1, T, -1)
            x = x + blk.wo(o)
            h = blk.ffn_norm(x)
            return x + blk.w_down(F.silu(blk.w_gate(h)) * blk.w_up(h))
        return fwd

    for blk in model.blocks:
        blk.forward = block_forward(blk)
    with torch.no_grad():
        return torch.cat([F.log_softmax(model(torch.tensor([w]))[0, CTX // 2:], -1) for w in windows], 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("codecs", nargs="+", help="KEYS|VALUES, e.g. 'tq:4|tq:3.5'")
    ap.add_argument("--model", default=os.path.join(ROOT, "models/kjv/kjv-llama.gguf"))
    ap.add_argument("--text", default=os.path.join(ROOT, "models/kjv/heldout.txt"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    meta, tensors = read_gguf(a.model)
    model, cfg = model_from_gguf(meta, tensors)
    ids = tokenizer_from_gguf(meta).encode(open(a.text).read(), bos=False)
    windows = [ids[s:s + CTX] for s in range(0, len(ids) - CTX + 1, CTX)]
    codecs = Codecs(cfg.head_dim)
    ref = run(model, cfg, windows, codecs, None)
    print(f"{len(windows)} windows of {CTX} tokens, {len(windows) * CTX // 2} scored; KLD against the exact cache")
    for spec in a.codecs:
        lp = run(model, cfg, windows, codecs, spec)
        kld = (ref.exp() * (ref - lp)).sum(-1)
        agree = (lp.argmax(-1) == ref.argmax(-1)).float().mean()
        print(f"{spec:28s} KLD mean {kld.mean().item():.3e}  top-1 agree {agree.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
