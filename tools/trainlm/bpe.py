"""Byte-level BPE in the GPT-2 / llama.cpp `gpt2` style, with llama.cpp's `qwen2` pre-tokenizer.

Vocabulary layout (ids):
  0..255           the 256 single bytes, token string = GPT-2 bytes_to_unicode(byte), byte order
  256..256+M-1     merge results, in merge order (rank r -> id 256+r)
  then specials    <|bos|>, <|eos|> (token_type 3 = CONTROL)
Encoding: split text with the qwen2 regex, map each piece's UTF-8 bytes through bytes_to_unicode,
then repeatedly merge the adjacent pair with the lowest merge rank (leftmost on ties), exactly as
llama.cpp's llm_tokenizer_bpe_session does.
"""
import collections, json, sys
import regex

# llama.cpp src/llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_QWEN2 (the case-insensitive original rewritten)
QWEN2_PAT = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
             r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_pat = regex.compile(QWEN2_PAT)
SPECIALS = ["<|bos|>", "<|eos|>"]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
U2B = {u: b for b, u in B2U.items()}


def pretokenize(text):
    return _pat.findall(text)


def word_symbols(piece):
    return "".join(B2U[b] for b in piece.encode("utf-8"))


def train(text, vocab_size=2048, log=print):
    n_merges = vocab_size - 256 - len(SPECIALS)
    freqs = collections.Counter(word_symbols(p) for p in pretokenize(text))
    words = [list(w) for w in freqs]          # symbol lists, mutated in place
    counts = [freqs[w] for w in freqs]
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)      # pair -> word indices containing it
    for i, w in enumerate(words):
        c = counts[i]
        for a, b in zip(w, w[1:]):
            pair_counts[(a, b)] += c
            where[(a, b)].add(i)
    merges = []
    for r in range(n_merges):
        if not pair_counts:
            break
        # highest count; ties -> lexicographically smallest pair (deterministic)
        best = min(pair_counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        if pair_counts[best] <= 0:
            break
        merges.append(best)
        a, b = best
        ab = a + b
        for i in list(where[best]):
            w = words[i]
            c = counts[i]
            # remove old pairs of this word
            for p in zip(w, w[1:]):
                pair_counts[p] -= c
                if pair_counts[p] <= 0:
                    del pair_counts[p]
            nw = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(ab); j += 2
                else:
                    nw.append(w[j]); j += 1
            words[i] = nw
            for p in zip(nw, nw[1:]):
                pair_counts[p] += c
                where[p].add(i)
        where.pop(best, None)
        if log and (r % 200 == 0 or r == n_merges - 1):
            log(f"merge {r}: {a!r}+{b!r} ")
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.tokens = [B2U[b] for b in range(256)] + [a + b for a, b in self.merges] + SPECIALS
        self.token_type = [1] * (256 + len(self.merges)) + [3] * len(SPECIALS)
        self.id = {t: i for i, t in enumerate(self.tokens)}
        assert len(self.id) == len(self.tokens), "duplicate token strings"
        self.rank = {m: r for r, m in enumerate(self.merges)}
        self.bos = self.id["<|bos|>"]
        self.eos = self.id["<|eos|>"]
        self.cache = {}

    @property
    def vocab_size(self):
        return len(self.tokens)

    def _bpe(self, w):
        syms = list(w)
        while len(syms) > 1:
            best, bi = None, -1
            for i in range(len(syms) - 1):
                r = self.rank.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            syms[bi:bi + 2] = [syms[bi] + syms[bi + 1]]
        return [self.id[s] for s in syms]

    def encode(self, text, bos=False):
        out = [self.bos] if bos else []
        for p in pretokenize(text):
            w = word_symbols(p)
            ids = self.cache.get(w)
            if ids is None:
                ids = self._bpe(w)
                if len(self.cache) < 200000:
                    self.cache[w] = ids
            out.extend(ids)
        return out

    def decode(self, ids):
        bs = bytearray()
        for i in ids:
            if self.token_type[i] != 1:
                continue
            bs.extend(U2B[c] for c in self.tokens[i])
        return bs.decode("utf-8", errors="replace")

    def save(self, path):
        json.dump({"merges": [list(m) for m in self.merges], "specials": SPECIALS}, open(path, "w"), ensure_ascii=False)

    @classmethod
    def load(cls, path):
        return cls(json.load(open(path))["merges"])


if __name__ == "__main__":
    import time
    t0 = time.time()
    text = open(sys.argv[1], encoding="utf-8").read()
    merges = train(text, int(sys.argv[3]) if len(sys.argv) > 3 else 2048)
    tok = Tokenizer(merges)
    tok.save(sys.argv[2])
    ids = tok.encode(text[:200000])
    print(f"vocab {tok.vocab_size}, {time.time()-t0:.1f}s, bytes/token {len(text[:200000].encode())/len(ids):.2f}")
    s = "Ézéchiel — 12,345 ‘quotes’\n\n  spaces and don't"
    assert tok.decode(tok.encode(s)) == s
