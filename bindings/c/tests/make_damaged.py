"""Writes damaged copies of a package for the C error tests: truncated, corrupt (one data byte
flipped), future (format_version 99, header rewritten consistently) and garbage (not a
package).  Usage: make_damaged.py PACKAGE OUT_DIR"""
import json
import os
import random
import struct
import sys

src, out = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "truncated.bertling"), "wb").write(data[: len(data) // 2])
(n,) = struct.unpack("<Q", data[:8])
flipped = bytearray(data)
flipped[8 + n + (len(data) - 8 - n) // 2] ^= 0x10
open(os.path.join(out, "corrupt.bertling"), "wb").write(bytes(flipped))
header = json.loads(data[8 : 8 + n])
desc = json.loads(header["__metadata__"]["bertling"])
desc["format_version"] = 99
header["__metadata__"]["bertling"] = json.dumps(desc)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(os.path.join(out, "future.bertling"), "wb").write(struct.pack("<Q", len(h)) + h + data[8 + n :])
rng = random.Random(7)
open(os.path.join(out, "garbage.bertling"), "wb").write(bytes(rng.randrange(256) for _ in range(4096)))
