#!/usr/bin/env python3
"""Builds the corpora of the quality benchmark (benches/quality/run.sh) from ../shared/data.

train.txt: the sentences of WikiText-2 valid plus every GLUE train split on this machine
(SST-2, MRPC, STS-B, RTE; labels ignored), one per line, shuffled with a fixed seed.
eval.txt:  1,000 sentences of WikiText-2 *test* (never trained on), for embedding agreement.

WikiText's tokenisation artefacts (` @-@ `, ` @,@ `, ` @.@ `) are undone, headings dropped and
paragraphs split into sentences at ` . `; sentences of fewer than 4 words are dropped.
Standard library only.  Usage: make_corpus.py SHARED_DATA_DIR OUT_DIR
"""
import csv
import os
import random
import sys


def wikitext_sentences(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("="):
                continue
            line = line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
            for s in line.split(" . "):
                s = s.strip()
                if len(s.split()) >= 4:
                    out.append(s if s.endswith(".") else s + " .")
    return out


def tsv_columns(path, columns, skip_header=True):
    out = []
    with open(path, encoding="utf-8-sig") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for i, row in enumerate(rows):
            if skip_header and i == 0:
                continue
            for c in columns:
                if c < len(row):
                    s = row[c].strip()
                    if len(s.split()) >= 4:
                        out.append(s)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_corpus.py SHARED_DATA_DIR OUT_DIR")
    data, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    glue = os.path.join(data, "glue")
    train = wikitext_sentences(os.path.join(data, "wikitext2", "valid.txt"))
    counts = {"wikitext2-valid": len(train)}
    for name, cols in [("SST-2", [0]), ("MRPC", [3, 4]), ("STS-B", [7, 8]), ("RTE", [1, 2])]:
        path = os.path.join(glue, name, "train.tsv")
        if os.path.isfile(path):
            s = tsv_columns(path, cols)
            counts[name + "-train"] = len(s)
            train += s
    random.Random(0).shuffle(train)
    test = wikitext_sentences(os.path.join(data, "wikitext2", "test.txt"))
    random.Random(1).shuffle(test)
    with open(os.path.join(out, "train.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(s.replace("\n", " ") for s in train) + "\n")
    with open(os.path.join(out, "eval.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(test[:1000]) + "\n")
    print(f"train.txt: {len(train)} sentences {counts}; eval.txt: 1000 WikiText-2 test sentences", file=sys.stderr)


if __name__ == "__main__":
    main()
