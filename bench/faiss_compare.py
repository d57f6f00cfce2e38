#!/usr/bin/env python3
"""FAISS baselines on the same split and ground truth as `tqbench ann`.

First export the split (base.f32, queries.f32, truth-METRIC.i32):

    go run ./cmd/tqbench ann --data glove100 --export /tmp/ann-glove --metrics ip,cosine --bits 4 --methods mse

then run, single-threaded:

    /usr/bin/python3 bench/faiss_compare.py --dir /tmp/ann-glove [--json faiss.json]

It runs IndexScalarQuantizer (4 and 8 bit), IndexPQ (1, 2, 3 and 4 bits per
dimension), IndexPQFastScan (2 and 4 bits per dimension) and IndexLSH (1, 2
and 4 bits per dimension), and prints the table tqbench prints (recall@1@k,
recall 10@10, train and encode seconds, queries per second, bytes per vector).
`tqbench ann --faiss faiss.json` merges the JSON rows into its table and plot.
If the faiss module is missing (Debian: apt-get install python3-faiss) it says
so and exits 0.
"""
import argparse
import json
import os
import struct
import sys
import time

try:
    import numpy as np
    import faiss
except ImportError as e:  # skip cleanly: FAISS is optional
    print(f"faiss_compare: skipped, {e.name or e} is not installed "
          "(Debian: apt-get install python3-faiss; run with /usr/bin/python3)")
    sys.exit(0)


def read_raw(path):
    """Reads the dataset package's raw float32 format (see dataset/doc.go)."""
    with open(path, "rb") as f:
        h = f.read(28)
        if h[:4] != b"TQVF":
            raise SystemExit(f"{path}: not a TQVF file")
        dim, = struct.unpack_from("<I", h, 8)
        count, = struct.unpack_from("<Q", h, 16)
        data = np.frombuffer(f.read(4 * dim * count), dtype="<f4")
    return np.ascontiguousarray(data.reshape(count, dim).astype(np.float32))


def read_truth(path):
    with open(path, "rb") as f:
        h = f.read(12)
        if h[:4] != b"TQGT":
            raise SystemExit(f"{path}: not a TQGT file")
        nq, k = struct.unpack_from("<II", h, 4)
        return np.frombuffer(f.read(4 * nq * k), dtype="<i4").reshape(nq, k)


def indexes(d, metric):
    """(name, bits per dimension, constructor) for every baseline that fits d."""
    out = [
        ("faiss-sq4", 4, lambda: faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_4bit, metric)),
        ("faiss-sq8", 8, lambda: faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, metric)),
    ]
    # IndexPQ with M sub-quantizers of nbits each: b·d bits per vector.
    for b in (1, 2, 3, 4):
        for nbits in (8, 6, 4):
            if (b * d) % nbits == 0 and d % ((b * d) // nbits) == 0:
                m = (b * d) // nbits
                out.append((f"faiss-pq", b, lambda m=m, nbits=nbits: faiss.IndexPQ(d, m, nbits, metric)))
                break
    for b in (2, 4):  # fast scan: 4-bit sub-quantizers, M = b·d/4
        m = b * d // 4
        if d % m == 0:
            out.append(("faiss-pqfs", b, lambda m=m: faiss.IndexPQFastScan(d, m, 4, metric)))
    for b in (1, 2, 4):
        out.append(("faiss-lsh", b, lambda b=b: faiss.IndexLSH(d, b * d, True, True)))
    return out


def code_size(idx):
    """Bytes per stored vector; fast-scan indexes have no standalone codec."""
    try:
        return int(idx.sa_code_size())
    except RuntimeError:
        return int(idx.pq.code_size)


def recall_rows(name, bits, idx, base, queries, truth, ks, metric_name, dataset):
    t0 = time.perf_counter()
    idx.train(base)
    train = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx.add(base)
    encode = time.perf_counter() - t0
    kmax = max(max(ks), 10)
    t0 = time.perf_counter()
    _, ids = idx.search(queries, kmax)
    el = time.perf_counter() - t0
    nq = len(queries)
    r1 = {str(k): float(np.mean([truth[i, 0] in ids[i, :k] for i in range(nq)])) for k in ks}
    r10 = float(np.mean([len(set(truth[i, :10]) & set(ids[i, :10])) / 10 for i in range(nq)]))
    return {
        "dataset": dataset, "metric": metric_name, "method": name, "bits": bits,
        "bytes_per_vector": code_size(idx), "base": len(base), "queries": nq,
        "encode_seconds": encode, "train_seconds": train, "qps": nq / el,
        "codes_per_second": nq * len(base) / el, "recall_at_1_at_k": r1, "recall_10_at_10": r10,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="folder written by tqbench ann --export")
    ap.add_argument("--k", default="1,2,4,8,16,32,64")
    ap.add_argument("--metrics", default="ip,cosine")
    ap.add_argument("--only", default="", help="comma-separated method names to run (default all)")
    ap.add_argument("--bits", default="", help="comma-separated bits per dimension to run (default all)")
    ap.add_argument("--dataset", default="")
    ap.add_argument("--json", default="", help="also write the rows as JSON here")
    a = ap.parse_args()
    faiss.omp_set_num_threads(1)
    ks = [int(k) for k in a.k.split(",")]
    base = read_raw(os.path.join(a.dir, "base.f32"))
    queries = read_raw(os.path.join(a.dir, "queries.f32"))
    dataset = a.dataset or os.path.basename(os.path.normpath(a.dir))
    only = set(filter(None, a.only.split(",")))
    rows = []
    for metric_name in a.metrics.split(","):
        truth = read_truth(os.path.join(a.dir, f"truth-{metric_name}.i32"))
        b, q = base, queries
        if metric_name == "cosine":
            b, q = base.copy(), queries.copy()
            faiss.normalize_L2(b)
            faiss.normalize_L2(q)
        metric = faiss.METRIC_L2 if metric_name == "l2" else faiss.METRIC_INNER_PRODUCT
        for name, bits, make in indexes(base.shape[1], metric):
            if only and name not in only:
                continue
            if a.bits and str(bits) not in a.bits.split(","):
                continue
            try:
                row = recall_rows(name, bits, make(), b, q, truth, ks, metric_name, dataset)
            except RuntimeError as e:
                print(f"{name} {bits}b {metric_name}: skipped ({e})", file=sys.stderr)
                continue
            rows.append(row)
            print_row(row, ks, header=len(rows) == 1)
            sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


def print_row(r, ks, header):
    if header:
        print(f"{'metric':>7} {'method':>11} {'bits':>4} {'B/vec':>5} "
              + " ".join(f"{'R1@'+str(k):>6}" for k in ks)
              + f" {'R10@10':>6} {'encode s':>8} {'train s':>8} {'QPS':>6} {'Mcodes/s':>8}")
    print(f"{r['metric']:>7} {r['method']:>11} {r['bits']:>4} {r['bytes_per_vector']:>5} "
          + " ".join(f"{r['recall_at_1_at_k'][str(k)]:>6.3f}" for k in ks)
          + f" {r['recall_10_at_10']:>6.3f} {r['encode_seconds']:>8.3f} {r['train_seconds']:>8.3f}"
          f" {r['qps']:>6.0f} {r['codes_per_second']/1e6:>8.1f}")


if __name__ == "__main__":
    main()
