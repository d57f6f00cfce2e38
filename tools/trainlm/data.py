"""Shared data helpers: KJV units (lines) pre-encoded, passkey prompt construction."""
import re
import numpy as np

KEY_TMPL = "The pass key is {k}. Remember it. {k} is the pass key.\n"
QUESTION = "What is the pass key? The pass key is "
ANSWER_TAIL = ".\n"


def split_units(text):
    """Split into lines, each keeping its trailing newline(s): 'verse\\n' or 'verse\\n\\n'.
    Every unit starts with a non-newline character, so encoding unit by unit equals encoding
    the whole text (the qwen2 pre-tokenizer never joins a trailing newline with the next line)."""
    return re.findall(r"[^\n]+\n*|\n+", text)


def encode_units(tok, text):
    return [tok.encode(u) for u in split_units(text)]


def build_passkey(tok, units, start_unit, key, depth, total, bos=True):
    """Prompt ids = [BOS] + prefix units + KEY + suffix units + QUESTION, where the filler units are
    consecutive units from `units` starting at `start_unit` (wrapping), the prefix takes whole units
    while it stays <= round(depth * F) tokens and the suffix continues with whole units while
    prefix + suffix <= F, F = total - (BOS) - len(KEY) - len(QUESTION) - 5 (the answer digits).
    Returns (prompt_ids, answer_ids, key_token_pos)."""
    k_ids = tok.encode(KEY_TMPL.format(k=key))
    q_ids = tok.encode(QUESTION)
    a_ids = tok.encode(key)
    assert len(a_ids) == 5
    F = total - (1 if bos else 0) - len(k_ids) - len(q_ids) - len(a_ids)
    want_prefix = int(round(depth * F))
    prefix, suffix = [], []
    u = start_unit
    while True:
        ids = units[u % len(units)]
        if len(prefix) + len(ids) > want_prefix:
            break
        prefix += ids
        u += 1
    while True:
        ids = units[u % len(units)]
        if len(prefix) + len(suffix) + len(ids) > F:
            break
        suffix += ids
        u += 1
    head = [tok.bos] if bos else []
    prompt = head + prefix + k_ids + suffix + q_ids
    return prompt, a_ids, len(head) + len(prefix)


def random_key(rng):
    return str(int(rng.integers(10000, 100000)))
