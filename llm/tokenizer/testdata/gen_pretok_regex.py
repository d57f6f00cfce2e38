#!/usr/bin/env python3
"""Writes pretok_regex.json: random strings split by the pre-tokenizer
regexes as llama.cpp lists them, using Python's `regex` module (the module
llama.cpp's Unicode tables are generated with), which supports the (?!\\S)
lookahead that Go's regexp lacks. TestPreTokenizerGolden compares the
hand-written splitters with these splits.

    python3 gen_pretok_regex.py > pretok_regex.json
"""
import json
import random

import regex

PATTERNS = {
    "gpt-2": r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
    # llama.cpp's adaptation of Llama 3's (?i:...) contractions to ASCII.
    "llama3": r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}

GPT2 = PATTERNS["gpt-2"]

# llama.cpp applies a list of regexes in turn, each splitting the pieces the
# previous one left into its matches and the gaps between them.
CHAINS = {
    "smollm": [r"\p{N}", GPT2],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    "bloom": [r" ?[^(\s|.,!?…。，、।۔،)]+"],
    "viking": [r" ?[^(\s|.,!?…。，、।۔،)]+", r"\p{N}"],
}


def chain(patterns, s):
    pieces = [s]
    for pat in patterns:
        out = []
        for p in pieces:
            pos = 0
            for m in regex.finditer(pat, p):
                if m.start() > pos:
                    out.append(p[pos:m.start()])
                out.append(m.group())
                pos = m.end()
            if pos < len(p):
                out.append(p[pos:])
        pieces = out
    return pieces


# Characters assigned by Unicode 15.0 (Go's tables), chosen to hit every
# branch: letters of several scripts, numbers of every kind, marks,
# punctuation, symbols, emoji, controls, and all White_Space characters.
ALPHABET = list("abzSTLEDMRVſİK'\".,!?-_$+<=>^~|`()[]{}@#%&*/\\:;") + ["…", "。", "，", "、", "।", "۔", "،",
    "é", "ß", "中", "東", "ا", "ж", "Ω", "ǅ", "ー",
    "0", "1", "9", "٣", "७", "Ⅷ", "½", "²", "①",
    "\u0301", "\u0903", "😀", "👍🏽", "€", "©", "\u200d", "\u00ad", "\ufeff",
    "\x00", "\x1c", "\x1f", "\x7f", "\ue000",
    " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", "\v", "\f",
    "\u0085", "\u00a0", "\u1680", "\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
]


def main():
    rng = random.Random(20261205)
    cases = []
    for i in range(400):
        n = rng.randint(1, 24)
        s = "".join(rng.choice(ALPHABET) for _ in range(n))
        case = {"in": s}
        for name, pat in PATTERNS.items():
            case[name] = regex.findall(pat, s)
            assert "".join(case[name]) == s
        for name, pats in CHAINS.items():
            case[name] = chain(pats, s)
            assert "".join(case[name]) == s
        cases.append(case)
    # one case per line, so a diff shows which strings changed
    print("[")
    print(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
    print("]")


if __name__ == "__main__":
    main()
