#!/usr/bin/env python3
"""Where the bytes of bertling packages go: codes, steps and floats of the embedding tables and
of the encoder, the tokenizer, and the header. Reads only the safetensors header (FORMAT.md).

    python3 benches/quality/bytes.py PACKAGE [PACKAGE ...]
"""
import json
import struct
import sys


def parts(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        f.seek(0, 2)
        total = f.tell()
    out = {"header": 8 + n}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        size = info["data_offsets"][1] - info["data_offsets"][0]
        if name.startswith("tokenizer.json"):
            key = "tokenizer"
        else:
            where = "embeddings" if name.startswith("embeddings.") and not name.startswith("embeddings.ln") else "encoder"
            kind = "codes" if name.endswith(".codes") else "steps" if name.endswith((".scales", ".act_step", ".act_smooth")) else "floats"
            key = f"{where} {kind}"
        out[key] = out.get(key, 0) + size
    assert sum(out.values()) == total, (path, sum(out.values()), total)
    return total, out


def main():
    keys = ["embeddings codes", "embeddings steps", "embeddings floats", "encoder codes", "encoder steps", "encoder floats", "tokenizer", "header"]
    print("| package | MB | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for path in sys.argv[1:]:
        total, p = parts(path)
        cells = [f"{p.get(k, 0) / 1e6:.3f}" for k in keys]
        print(f"| {path} | {total / 1e6:.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
