#!/usr/bin/env python3
"""PyTorch eager reference of bertling's training steps (benches/train/run.sh).

The same model, losses and batch as the bertling command the benchmark times, written for this
benchmark (no transformers): BERT with fused q|k|v projections, LayerNorm after each residual,
exact GELU; LSQ fake quantization with straight-through rounding and gradient-scaled steps
(weights per group of 32 columns, f16-rounded steps; per-token activation steps max|x|/Q_P;
SmoothQuant-style factors trained with the rest); looked-up rows of 8-bit embedding tables;
losses: masked hidden-state MSE per paired layer and of the embedding output (through learned
projections where widths differ), attention KL(teacher || student) (head-averaged where head
counts differ), 1 - cosine of the mean-pooled last layers; AdamW. The frozen teacher runs
under no_grad inside every step, as bertling runs it.

  python3 -m pip install torch==2.15.0 numpy
  python3 benches/train/reference.py --case kdlsq|distill --teacher DIR --ids ids.json \
      --steps N --threads T
  python3 benches/train/reference.py --case supernet --drawn supernet.jsonl ...

The supernet case is `bertling search`'s supernet (Supernet below): the candidates each step
trains are the ones bertling's log says it drew (its "drawn" field), so both do the same work;
its weights are random (the speed does not depend on them).

Prints one JSON line: the case, tokens per second over the steps after the first, and the
losses of the first and last step.
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def load_teacher(path):
    from safetensors.torch import load_file

    cfg = json.load(open(f"{path}/config.json"))
    w = {k.removeprefix("bert."): v.float() for k, v in load_file(f"{path}/model.safetensors").items()}
    layers = []
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        qkv_w = torch.cat([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
        qkv_b = torch.cat([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        layers.append({
            "qkv": (qkv_w, qkv_b),
            "out": (w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"]),
            "ln1": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
            "inp": (w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]),
            "ffo": (w[p + "output.dense.weight"], w[p + "output.dense.bias"]),
            "ln2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
        })
    emb = {
        "word": w["embeddings.word_embeddings.weight"],
        "pos": w["embeddings.position_embeddings.weight"],
        "type": w["embeddings.token_type_embeddings.weight"],
        "ln": (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]),
    }
    return cfg, emb, layers


def round_ste(x):
    return x + (x.round() - x).detach()


def grad_scale(x, g):
    y = x * g
    return (x - y).detach() + y


def round_half(x):
    c = x * 8193.0
    return x + ((c - (c - x)) - x).detach()


def fq_weight(w, step, bits, group):
    qn, qp = 2 ** (bits - 1), 2 ** (bits - 1) - 1
    rows, cols = w.shape
    s = round_half(grad_scale(step, 1.0 / math.sqrt(group * qp)).abs().clamp_min(6.1035156e-5))
    s = s.unsqueeze(2).expand(rows, cols // group, group).reshape(rows, cols)
    return round_ste((w / s).clamp(-qn, qp)) * s


def fq_act_token(x, bits):
    qn, qp = 2 ** (bits - 1), 2 ** (bits - 1) - 1
    s = (x.abs().amax(-1, keepdim=True) / qp).clamp_min(1.1754944e-38).detach()
    return round_ste((x * s.reciprocal()).clamp(-qn, qp)) * s


class Dense(torch.nn.Module):
    """y = x·Wᵀ + b; with `bits`, W4-style LSQ of W/m and per-token A8 of x·m."""

    def __init__(self, w, b, bits=None, group=32, act_bits=8):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.b = torch.nn.Parameter(b.clone())
        self.bits, self.group, self.act_bits = bits, group, act_bits
        if bits:
            rows, cols = w.shape
            qp = 2 ** (bits - 1) - 1
            init = 2 * w.abs().reshape(rows, cols // group, group).mean(-1) / math.sqrt(qp)
            self.step = torch.nn.Parameter(init)
            self.m = torch.nn.Parameter(torch.ones(cols))

    def forward(self, x):
        if not self.bits:
            return F.linear(x, self.w, self.b)
        x = fq_act_token(x * self.m, self.act_bits)
        return F.linear(x, fq_weight(self.w / self.m, self.step, self.bits, self.group), self.b)


class Table(torch.nn.Module):
    def __init__(self, t, bits=None, group=32):
        super().__init__()
        self.t = torch.nn.Parameter(t.clone())
        self.bits, self.group = bits, group
        if bits:
            qp = 2 ** (bits - 1) - 1
            rows, cols = t.shape
            self.step = torch.nn.Parameter(2 * t.abs().reshape(rows, cols // group, group).mean(-1) / math.sqrt(qp))

    def rows(self, ids):
        if not self.bits:
            return F.embedding(ids, self.t)
        b, s = ids.shape
        flat = ids.reshape(-1)
        r = fq_weight(self.t[flat], self.step[flat], self.bits, self.group)
        return r.reshape(b, s, -1)


class Bert(torch.nn.Module):
    def __init__(self, cfg, emb, layers, bits=None, emb_bits=None):
        super().__init__()
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]
        self.word = Table(emb["word"], emb_bits)
        self.pos = Table(emb["pos"], emb_bits)
        self.types = Table(emb["type"], emb_bits)
        self.ln = torch.nn.ParameterList([torch.nn.Parameter(t.clone()) for t in emb["ln"]])
        self.layers = torch.nn.ModuleList()
        for l in layers:
            m = torch.nn.Module()
            for name in ("qkv", "out", "inp", "ffo"):
                setattr(m, name, Dense(*l[name], bits=bits))
            m.ln1 = torch.nn.ParameterList([torch.nn.Parameter(t.clone()) for t in l["ln1"]])
            m.ln2 = torch.nn.ParameterList([torch.nn.Parameter(t.clone()) for t in l["ln2"]])
            self.layers.append(m)

    def forward(self, ids, types, mask):
        b, s = ids.shape
        pos = torch.arange(s).unsqueeze(0).expand(b, s)
        x = self.word.rows(ids) + self.pos.rows(pos) + self.types.rows(types)
        x = F.layer_norm(x, x.shape[-1:], self.ln[0], self.ln[1], self.eps)
        hidden, atts = [x], []
        key_bias = ((mask - 1.0) * 1e9).reshape(b, 1, 1, s)
        for m in self.layers:
            qkv = m.qkv(x)
            inner = qkv.shape[-1] // 3
            d = inner // self.heads
            q, k, v = (qkv[..., i * inner:(i + 1) * inner].reshape(b, s, self.heads, d).transpose(1, 2) for i in range(3))
            p = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(d) + key_bias, dim=3)
            ctx = (p @ v).transpose(1, 2).reshape(b, s, inner)
            x = F.layer_norm(x + m.out(ctx), x.shape[-1:], m.ln1[0], m.ln1[1], self.eps)
            x = F.layer_norm(x + m.ffo(F.gelu(m.inp(x))), x.shape[-1:], m.ln2[0], m.ln2[1], self.eps)
            hidden.append(x)
            atts.append(p)
        return hidden, atts


def masked_mse(a, b, mask):
    m = mask.unsqueeze(2)
    return ((a - b) ** 2 * m).sum() / (m.sum() * a.shape[-1])


def attention_kl(t, s, mask):
    if t.shape[1] != s.shape[1]:
        t, s = t.mean(1, keepdim=True), s.mean(1, keepdim=True)
    b, h, q, _ = s.shape
    kl = (t * (t.clamp_min(1e-12).log() - s.clamp_min(1e-12).log())).sum(3, keepdim=True)
    m = mask.reshape(b, 1, q, 1)
    return (kl * m).sum() / (m.sum() * h)


def mean_pool(x, mask):
    m = mask.unsqueeze(2)
    return (x * m).sum(1) / m.sum(1).clamp_min(1e-9)


def shrink(cfg, emb, layers, n_layers, width, heads, inner):
    """A student of the teacher's kind, cut to `width`/`inner` units (random values: speed only)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    e = {"word": r(emb["word"].shape[0], width), "pos": r(emb["pos"].shape[0], width),
         "type": r(emb["type"].shape[0], width), "ln": (torch.ones(width), torch.zeros(width))}
    ls = [{"qkv": (r(3 * width, width), torch.zeros(3 * width)), "out": (r(width, width), torch.zeros(width)),
           "ln1": (torch.ones(width), torch.zeros(width)), "inp": (r(inner, width), torch.zeros(inner)),
           "ffo": (r(width, inner), torch.zeros(width)), "ln2": (torch.ones(width), torch.zeros(width))}
          for _ in range(n_layers)]
    return dict(cfg, num_attention_heads=heads, layer_norm_eps=cfg["layer_norm_eps"]), e, ls


def parse_arch(text):
    """`e128|256:a4x64,f512,c5,id|...` -> (embedding width, [(width, [op, ...]), ...])."""
    parts = text.split("|")
    stages = []
    for part in parts[1:]:
        w, ops = part.split(":")
        stages.append((int(w), ops.split(",")))
    return int(parts[0][1:]), stages


class Corner(torch.nn.Module):
    """A linear map stored at its largest size; a candidate uses the corner [out, inp]."""

    def __init__(self, rows, cols, g):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(rows, cols, generator=g) * 0.02)
        self.b = torch.nn.Parameter(torch.zeros(rows))

    def forward(self, x, out, inp):
        return F.linear(x, self.w[:out, :inp], self.b[:out])


class Norm(torch.nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.g, self.b, self.eps = torch.nn.Parameter(torch.ones(n)), torch.nn.Parameter(torch.zeros(n)), eps

    def forward(self, x):
        w = x.shape[-1]
        return F.layer_norm(x, (w,), self.g[:w], self.b[:w], self.eps)


class Supernet(torch.nn.Module):
    """bertling's NAS-BERT supernet (compressor/src/search/supernet.rs) at the default space of
    `bertling search`: per slot attention with 32- and 64-wide heads, a feed-forward up to 4x
    the width, separable convolutions k3/k5/k7; maps into and out of the teacher's width per
    stage; the factorised embedding (tables frozen, a LayerNorm and a map back trained)."""

    def __init__(self, cfg, emb, t, big, slots, head_dims=(32, 64), ffn_max_halves=8,
                 kernels=(3, 5, 7)):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        eps = cfg["layer_norm_eps"]
        self.t, self.big, self.slots, self.head_dims = t, big, slots, head_dims
        self.word = emb["word"][:, :big].clone()
        self.pos = emb["pos"][:, :big].clone()
        self.type = emb["type"][:, :big].clone()
        self.e_norm, self.e_proj = Norm(big, eps), Corner(t, big, g)
        self.ffn_max = big * ffn_max_halves // 2
        self.stages = torch.nn.ModuleList()
        for n in slots:
            st = torch.nn.Module()
            st.input, st.output = Corner(big, t, g), Corner(t, big, g)
            st.slots = torch.nn.ModuleList()
            for _ in range(n):
                sl = torch.nn.Module()
                sl.att = torch.nn.ModuleDict()
                for d in head_dims:
                    a = torch.nn.Module()
                    a.q, a.k, a.v = Corner(big, big, g), Corner(big, big, g), Corner(big, big, g)
                    a.out, a.norm = Corner(big, big, g), Norm(big, eps)
                    sl.att[str(d)] = a
                sl.inp, sl.out = Corner(self.ffn_max, big, g), Corner(big, self.ffn_max, g)
                sl.f_norm = Norm(big, eps)
                sl.conv = torch.nn.ModuleDict()
                for k in kernels:
                    c = torch.nn.Module()
                    c.taps = torch.nn.Parameter(torch.randn(big, k, generator=g) / k)
                    c.taps_bias = torch.nn.Parameter(torch.zeros(big))
                    c.pw, c.norm = Corner(big, big, g), Norm(big, eps)
                    sl.conv[str(k)] = c
                st.slots.append(sl)
            self.stages.append(st)

    def largest(self, k):
        start = sum(self.slots[:k])
        d = min(h for h in self.head_dims if self.big % h == 0)
        return self.big, [f"a{self.big // d}x{d}" if (start + j) % 2 == 0 else f"f{self.ffn_max}"
                          for j in range(self.slots[k])]

    def embed(self, ids, types, e):
        s = ids.shape[1]
        x = F.embedding(ids, self.word[:, :e]) + F.embedding(types, self.type[:, :e]) + self.pos[:s, :e]
        return self.e_proj(self.e_norm(x), self.t, e)

    def stage(self, k, path, x, mask, key_bias):
        st, (w, ops) = self.stages[k], path
        h = st.input(x, w, self.t)
        b, s, _ = h.shape
        for sl, op in zip(st.slots, ops):
            if op == "id":
                continue
            if op[0] == "a":
                heads, d = map(int, op[1:].split("x"))
                a, inner = sl.att[str(d)], heads * d
                q, kk, v = (m(h, inner, w).reshape(b, s, heads, d).transpose(1, 2) for m in (a.q, a.k, a.v))
                p = torch.softmax(q @ kk.transpose(2, 3) / math.sqrt(d) + key_bias, dim=3)
                ctx = (p @ v).transpose(1, 2).reshape(b, s, inner)
                h = a.norm(h + a.out(ctx, w, inner))
            elif op[0] == "f":
                inner = int(op[1:])
                h = sl.f_norm(h + sl.out(F.gelu(sl.inp(h, inner, w)), w, inner))
            else:
                c = sl.conv[op[1:]]
                kern = c.taps.shape[1]
                xm = (h * mask.unsqueeze(2)).transpose(1, 2)
                acc = F.conv1d(xm, c.taps[:w].unsqueeze(1), c.taps_bias[:w], padding=kern // 2, groups=w)
                h = c.norm(h + c.pw(F.gelu(acc.transpose(1, 2)), w, w))
        return st.output(h, self.t, w)


def supernet_loss(net, drawn, bounds, th, ids, types, mask):
    """bertling's supernet step (compressor/src/search/train.rs): the embedding at the drawn
    width and the largest, each stage on its drawn candidate and its largest, masked MSE to the
    teacher's states at the stage boundaries (`th` per layer; a boundary b is layer b / 2)."""
    e, stages = parse_arch(drawn)
    key_bias = ((mask - 1.0) * 1e9).reshape(mask.shape[0], 1, 1, mask.shape[1])
    losses = [masked_mse(net.embed(ids, types, w), th[0], mask) for w in dict.fromkeys([e, net.big])]
    for k, path in enumerate(stages):
        x, y = th[bounds[k] // 2], th[bounds[k + 1] // 2]
        for p in (path, net.largest(k)):
            losses.append(masked_mse(net.stage(k, p, x, mask, key_bias), y, mask))
    return sum(losses)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True, choices=["kdlsq", "distill", "supernet"])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--ids", required=True, help="JSON: a list of token-id lists (the batches' texts)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--width", type=int, default=192)
    ap.add_argument("--drawn", help="supernet: bertling's supernet.jsonl (each step's drawn candidates)")
    ap.add_argument("--stages", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg, emb, layers = load_teacher(args.teacher)
    teacher = Bert(cfg, emb, layers).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    t_width = emb["word"].shape[1]
    drawn = []
    if args.case == "supernet":
        drawn = [json.loads(l)["drawn"] for l in open(args.drawn) if '"drawn"' in l]
        blocks = 2 * len(layers)
        slots = [blocks // args.stages + (s < blocks % args.stages) for s in range(args.stages)]
        bounds = [sum(slots[:k]) for k in range(args.stages + 1)]
        assert all(b % 2 == 0 for b in bounds), "stage boundaries between layers only"
        student = Supernet(cfg, emb, t_width, t_width, slots)
        proj = torch.nn.ModuleList()
        pairs = []
    elif args.case == "kdlsq":
        student = Bert(cfg, emb, layers, bits=4, emb_bits=8)
        pairs = [(j, j) for j in range(len(layers))]
        proj = torch.nn.ModuleList()
    else:
        heads = max(1, cfg["num_attention_heads"] * args.width // t_width)
        inner = cfg["intermediate_size"] * args.width // t_width
        student = Bert(*shrink(cfg, emb, layers, args.layers, args.width, heads, inner))
        tl = len(layers)
        pairs = [(j, -(-(j + 1) * tl // args.layers) - 1) for j in range(args.layers)]
        # One projection per pair, then the embedding output's (bertling's Trainee.proj).
        proj = torch.nn.ModuleList([torch.nn.Linear(args.width, t_width) for _ in range(len(pairs) + 1)])
    params = list(student.parameters()) + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    ids_all = json.load(open(args.ids))

    def project(k, h):
        return proj[k](h) if len(proj) else h

    def step(i):
        rows = [ids_all[(i * args.batch + r) % len(ids_all)] for r in range(args.batch)]
        s = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (s - len(r)) for r in rows])
        mask = torch.tensor([[1.0] * len(r) + [0.0] * (s - len(r)) for r in rows])
        types = torch.zeros_like(ids)
        with torch.no_grad():
            th, ta = teacher(ids, types, mask)
        if args.case == "supernet":
            loss = supernet_loss(student, drawn[i], bounds, th, ids, types, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return float(loss.detach()), int(mask.sum())
        sh, sa = student(ids, types, mask)
        hidden = sum(masked_mse(project(k, sh[js + 1]), th[jt + 1], mask) for k, (js, jt) in enumerate(pairs))
        att = sum(attention_kl(ta[jt], sa[js], mask) for js, jt in pairs)
        embl = masked_mse(project(len(pairs), sh[0]), th[0], mask)
        a = mean_pool(project(len(pairs) - 1, sh[-1]), mask)
        b = mean_pool(th[-1], mask)
        sent = (1 - F.cosine_similarity(a, b, dim=1, eps=1e-12)).mean()
        loss = hidden + att + embl + sent
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach()), int(mask.sum())

    first, _ = step(0)
    start, tokens = time.perf_counter(), 0
    last = first
    for i in range(1, args.steps):
        last, n = step(i)
        tokens += n
    elapsed = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch", "case": args.case, "tokens_per_s": tokens / elapsed,
                      "steps_timed": args.steps - 1, "first_loss": first, "last_loss": last,
                      "torch": torch.__version__, "threads": args.threads}))


if __name__ == "__main__":
    main()
