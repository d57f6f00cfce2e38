"""Export a training checkpoint (any: latest.pt or final.pt) to GGUF (llama arch, gpt2/qwen2 BPE tokenizer).
  python3 export.py --ckpt work/ckpt/latest.pt --tokenizer work/tokenizer.json --out ../../models/kjv/kjv-llama.gguf [--q8 path] [--f32 path]
"""
import argparse, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import Tokenizer
from gguf_writer import GGUFWriter, GGML_F32, GGML_F16, GGML_Q8_0, STRING, INT32
from model import Config

# torch state-dict name -> GGUF name (per block i)
BLOCK_MAP = {
    "attn_norm.weight": "attn_norm.weight",
    "wq.weight": "attn_q.weight",
    "wk.weight": "attn_k.weight",
    "wv.weight": "attn_v.weight",
    "wo.weight": "attn_output.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "w_gate.weight": "ffn_gate.weight",
    "w_up.weight": "ffn_up.weight",
    "w_down.weight": "ffn_down.weight",
}


def gguf_tensors(sd, cfg):
    """Yields (gguf_name, float32 numpy array [torch shape]) in llama.cpp order."""
    yield "token_embd.weight", sd["tok_emb.weight"]
    for i in range(cfg.n_layers):
        for k, g in BLOCK_MAP.items():
            yield f"blk.{i}.{g}", sd[f"blocks.{i}.{k}"]
    yield "output_norm.weight", sd["norm.weight"]


def export(ckpt_path, tok_path, out, qtype="f16", name="kjv-llama"):
    ck = torch.load(ckpt_path, map_location="cpu")
    cfg = Config(**ck["cfg"])
    sd = {k: v.float().numpy() for k, v in ck["model"].items()}
    tok = Tokenizer.load(tok_path)
    assert tok.vocab_size == cfg.vocab_size
    w = GGUFWriter()
    w.add_string("general.architecture", "llama")
    w.add_string("general.name", name)
    w.add_u32("general.alignment", 32)
    w.add_string("general.license", "public-domain text (KJV); model weights produced by tq tools/trainlm")
    w.add_u32("llama.context_length", cfg.ctx)
    w.add_u32("llama.embedding_length", cfg.d_model)
    w.add_u32("llama.block_count", cfg.n_layers)
    w.add_u32("llama.feed_forward_length", cfg.ffn_dim)
    w.add_u32("llama.attention.head_count", cfg.n_heads)
    w.add_u32("llama.attention.head_count_kv", cfg.n_kv_heads)
    w.add_f32("llama.rope.freq_base", cfg.rope_base)
    w.add_f32("llama.attention.layer_norm_rms_epsilon", cfg.eps)
    w.add_u32("llama.rope.dimension_count", cfg.head_dim)
    w.add_u32("llama.vocab_size", cfg.vocab_size)
    w.add_u32("general.file_type", {"f32": 0, "f16": 1, "q8_0": 7}[qtype])
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "qwen2")
    w.add_array("tokenizer.ggml.tokens", STRING, tok.tokens)
    w.add_array("tokenizer.ggml.token_type", INT32, tok.token_type)
    w.add_array("tokenizer.ggml.merges", STRING, [f"{a} {b}" for a, b in tok.merges])
    w.add_u32("tokenizer.ggml.bos_token_id", tok.bos)
    w.add_u32("tokenizer.ggml.eos_token_id", tok.eos)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    for gname, arr in gguf_tensors(sd, cfg):
        if arr.ndim == 1:
            w.add_tensor(gname, arr, GGML_F32)
        else:
            w.add_tensor(gname, arr, {"f32": GGML_F32, "f16": GGML_F16, "q8_0": GGML_Q8_0}[qtype])
    n = w.write(out)
    print(f"wrote {out}: {n} bytes, {qtype}, step {ck.get('step')}, tokens {ck.get('tokens')}")
    return ck


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="work/ckpt/latest.pt")
    ap.add_argument("--tokenizer", default="work/tokenizer.json")
    ap.add_argument("--out", default="../../models/kjv/kjv-llama.gguf")
    ap.add_argument("--q8", default="", help="also write a Q8_0 GGUF here")
    ap.add_argument("--f32", default="", help="also write an F32 GGUF here (llama.cpp cross-check without f16 rounding)")
    a = ap.parse_args()
    export(a.ckpt, a.tokenizer, a.out, "f16")
    if a.q8:
        export(a.ckpt, a.tokenizer, a.q8, "q8_0")
    if a.f32:
        export(a.ckpt, a.tokenizer, a.f32, "f32")
