#!/usr/bin/env python3
"""Writes the seed corpus of the `package` fuzz target: tiny bertling packages (a few KB each)
with every block kind, f32/f16/quantized storage, activation quantization with and without
smoothing and with per-token steps (version 4), a classification head, the tokenizer deflated
(versions 3 and 4) and plain (one version-2 and one version-1 package). Written from FORMAT.md alone (no
bertling build needed), so it also checks that the format is specified completely.

    python3 fuzz/make_corpus.py fuzz/corpus/package
"""
import hashlib
import json
import os
import random
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER = os.path.join(HERE, "..", "runtime", "tests", "fixtures", "tiny_cls", "tokenizer.json")
W, VOCAB, POS = 16, 44, 16
BLOCKS = [
    {"kind": "attention", "width": W, "heads": 2, "head_dim": 4},
    {"kind": "feed_forward", "width": W, "inner": 24},
    {"kind": "sep_conv", "width": W, "kernel": 3},
    {"kind": "projection", "input": W, "output": 8},
    {"kind": "identity", "width": 8},
]


def expected(head):
    """(name, shape, role) of every tensor, as FORMAT.md lists them."""
    t = [("embeddings.word", [VOCAB, W], "emb"), ("embeddings.position", [POS, W], "emb"),
         ("embeddings.token_type", [2, W], "emb"), ("embeddings.ln.weight", [W], "ln"), ("embeddings.ln.bias", [W], "")]
    for i, b in enumerate(BLOCKS):
        p = f"blocks.{i}."
        ln = [(p + "ln.weight", [b.get("width", 0)], "ln"), (p + "ln.bias", [b.get("width", 0)], "")]
        if b["kind"] == "attention":
            inner = b["heads"] * b["head_dim"]
            t += [(p + "attn.qkv.weight", [3 * inner, W], "mat"), (p + "attn.qkv.bias", [3 * inner], ""),
                  (p + "attn.out.weight", [W, inner], "mat"), (p + "attn.out.bias", [W], "")] + ln
        elif b["kind"] == "feed_forward":
            t += [(p + "ffn.in.weight", [b["inner"], W], "mat"), (p + "ffn.in.bias", [b["inner"]], ""),
                  (p + "ffn.out.weight", [W, b["inner"]], "mat"), (p + "ffn.out.bias", [W], "")] + ln
        elif b["kind"] == "sep_conv":
            t += [(p + "conv.depthwise.weight", [W, b["kernel"]], ""), (p + "conv.depthwise.bias", [W], ""),
                  (p + "conv.pointwise.weight", [W, W], "mat"), (p + "conv.pointwise.bias", [W], "")] + ln
        elif b["kind"] == "projection":
            t += [(p + "proj.weight", [b["output"], b["input"]], "mat"), (p + "proj.bias", [b["output"]], "")]
    if head:
        t += [("head.pooler.weight", [8, 8], ""), ("head.pooler.bias", [8], ""),
              ("head.classifier.weight", [2, 8], ""), ("head.classifier.bias", [2], "")]
    return t


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def quantize(values, rows, cols, bits, group):
    """Round-to-nearest with absmax steps; codes packed as FORMAT.md says."""
    qp, qn = 2 ** (bits - 1) - 1, 2 ** (bits - 1)
    g = group or cols
    cpw = 32 // bits
    words, steps = [], []
    for r in range(rows):
        row = values[r * cols:(r + 1) * cols]
        codes = []
        for s in range(0, cols, g):
            part = row[s:s + g]
            step = f32(max(abs(x) for x in part) / qp) or 1.0
            steps.append(step)
            codes += [max(-qn, min(qp, round(x / step))) for x in part]
        for w in range(0, cols, cpw):
            word = 0
            for j, c in enumerate(codes[w:w + cpw]):
                word |= (c & ((1 << bits) - 1)) << (j * bits)
            words.append(word)
    return words, steps


def package(version, half, head, quant, pooling):
    rng = random.Random(7)
    tensors = []  # (name, dtype, shape, bytes)
    quantized = {}
    for name, shape, role in expected(head):
        n = 1
        for d in shape:
            n *= d
        values = [f32((1.0 if role == "ln" else 0.0) + rng.uniform(-0.5, 0.5)) for _ in range(n)]
        q = quant.get(name) or (quant.get("*") if role in ("mat", "emb") else None)
        if q:
            bits, group, act = q
            words, steps = quantize(values, shape[0], shape[1], bits, group)
            tensors.append((name + ".codes", "U32", [shape[0], len(words) // shape[0]], struct.pack(f"<{len(words)}I", *words)))
            tensors.append((name + ".scales", "F32", [shape[0], len(steps) // shape[0]], struct.pack(f"<{len(steps)}f", *steps)))
            entry = {"bits": bits}
            if group:
                entry["group"] = group
            if act:
                abits, smooth, per_token = act
                entry["act_bits"] = abits
                if per_token:
                    entry["act_per_token"] = True
                else:
                    tensors.append((name + ".act_step", "F32", [1], struct.pack("<f", 0.05)))
                if smooth:
                    entry["act_smooth"] = True
                    factors = [f32(rng.uniform(0.5, 2.0)) for _ in range(shape[1])]
                    tensors.append((name + ".act_smooth", "F32", [shape[1]], struct.pack(f"<{shape[1]}f", *factors)))
            quantized[name] = entry
        elif half and role != "":
            tensors.append((name, "F16", shape, struct.pack(f"<{n}e", *values)))
        else:
            tensors.append((name, "F32", shape, struct.pack(f"<{n}f", *values)))
    with open(TOKENIZER, "rb") as f:
        tok = f.read()
    if version >= 3:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: no zlib header or trailer
        tok = z.compress(tok) + z.flush()
        tensors.append(("tokenizer.json.deflate", "U8", [len(tok)], tok))
    else:
        tensors.append(("tokenizer.json", "U8", [len(tok)], tok))
    desc = {"format_version": version, "embeddings": {"vocab_size": VOCAB, "max_positions": POS, "type_vocab_size": 2, "width": W},
            "blocks": BLOCKS, "layer_norm_eps": 1e-12, "max_seq_len": POS, "pooling": {"mode": pooling, "normalize": True},
            "quantized": quantized, "provenance": {"source": "fuzz/make_corpus.py"}}
    if head:
        desc["head"] = {"pooler": True, "labels": ["no", "yes"]}
    meta = {}
    if version >= 2:
        meta["bertling_sha256"] = "0" * 64
    meta["bertling"] = json.dumps(desc, separators=(",", ":"))
    header, data = {"__metadata__": meta}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    out = struct.pack("<Q", len(h)) + h + data
    if version >= 2:
        i = out.index(b'"bertling_sha256":"') + len(b'"bertling_sha256":"')
        out = out[:i] + hashlib.sha256(out).hexdigest().encode() + out[i + 64:]
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "package")
    os.makedirs(out, exist_ok=True)
    acts = {"blocks.1.ffn.in.weight": (5, 16, (8, False, False)), "blocks.1.ffn.out.weight": (5, 16, (4, True, False))}
    tokens = {"blocks.0.attn.qkv.weight": (4, 16, (8, True, True)), "blocks.1.ffn.in.weight": (6, None, (8, False, True))}
    seeds = {
        "mixed": package(4, False, True, acts, "mean"),
        "f16-cls": package(4, True, False, {}, "cls"),
        "q4-g16": package(4, False, True, {"*": (4, 16, None)}, "mean"),
        "q2-per-row": package(4, False, False, {"*": (2, None, None)}, "mean"),
        "q3-act": package(4, True, True, dict(acts, **{"*": (3, 32, None)}), "cls"),
        "per-token": package(4, False, True, tokens, "mean"),
        "mixed-v3": package(3, False, True, acts, "mean"),
        "mixed-v2": package(2, False, True, acts, "mean"),
        "mixed-v1": package(1, False, True, acts, "mean"),
    }
    for name, b in seeds.items():
        with open(os.path.join(out, name + ".bertling"), "wb") as f:
            f.write(b)
        print(f"{name}: {len(b)} bytes")


if __name__ == "__main__":
    main()
