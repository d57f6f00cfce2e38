"""Turn `bible 'gen1:1-rev22:21'` output into plain KJV prose and split train / held-out.

Format of the input: "Book N" chapter headers, verses "  N text" wrapped at ~80 columns.
Output: one verse per line (verse numbers stripped, wrapped lines re-joined), chapters
separated by a blank line.  Held-out: a contiguous span of whole chapters (~40 KB) taken
from the middle of the text (default: starting at Proverbs 1), never trained on.
"""
import re, subprocess, sys, os

def kjv_text():
    raw = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    chapters = []   # list of (header, [verses])
    cur = None
    for line in raw.split("\n"):
        if not line.strip():
            continue
        m = re.match(r"^  ?(\d+) (.*)$", line)
        if re.match(r"^\S.* \d+$", line) and not line.startswith(" "):
            cur = (line.strip(), [])
            chapters.append(cur)
        elif m:
            cur[1].append(m.group(2).strip())
        else:
            cur[1][-1] += " " + line.strip()
    return chapters

def main(outdir, heldout_path, start_header="Proverbs 1", target=40000):
    chapters = kjv_text()
    idx = [h for h, _ in chapters].index(start_header)
    held = []
    n = 0
    j = idx
    while n < target:
        t = "\n".join(chapters[j][1])
        held.append(t); n += len(t.encode()) + 2; j += 1
    train_ch = chapters[:idx] + chapters[j:]
    train = "\n\n".join("\n".join(v) for _, v in train_ch) + "\n"
    heldout = "\n\n".join(held) + "\n"
    os.makedirs(outdir, exist_ok=True)
    open(os.path.join(outdir, "kjv_train.txt"), "w").write(train)
    open(heldout_path, "w").write(heldout)
    print(f"chapters {len(chapters)}; held-out {chapters[idx][0]} .. {chapters[j-1][0]} "
          f"({len(heldout.encode())} bytes); train {len(train.encode())} bytes")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
