// Multi-head self-attention of ragged sentences, fused: for query token t and head h,
// ctx[t, h] = softmax(q_t · K_sᵀ / sqrt(d)) · V_s over the keys of t's own sentence s only
// (the padding mask, without padding). qkv rows are [queries | keys | values], head h at
// columns h·d of each part. One workgroup of 64 threads per (t, h); dispatch (tokens, heads).
// Sentences up to MAX_KEYS tokens. Reductions: reduce_shared.wgsl or reduce_subgroup.wgsl.

const MAX_KEYS: u32 = 512u;

struct Params {
    tokens: u32,
    heads: u32,
    head_dim: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> ctx: array<f32>;

var<workgroup> scores: array<f32, MAX_KEYS>;
var<workgroup> q: array<f32, 256>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wg.x;
    let h = wg.y;
    if (t >= p.tokens) {
        return;
    }
    let info = tokens[t];
    let start = info.z;
    let len = min(info.w, MAX_KEYS);
    let d = p.head_dim;
    let inner = p.heads * d;
    let stride = 3u * inner;
    for (var i = li; i < d; i += 64u) {
        q[i] = qkv[t * stride + h * d + i];
    }
    workgroupBarrier();
    // Scores and their maximum.
    var m = -3.4e38;
    for (var j = li; j < len; j += 64u) {
        let kb = (start + j) * stride + inner + h * d;
        var s = 0.0;
        for (var i = 0u; i < d; i++) {
            s = fma(q[i], qkv[kb + i], s);
        }
        s *= p.scale;
        scores[j] = s;
        m = max(m, s);
    }
    let mx = wg_max(m, li);
    var sum = 0.0;
    for (var j = li; j < len; j += 64u) {
        let e = exp(scores[j] - mx);
        scores[j] = e;
        sum += e;
    }
    let inv = 1.0 / wg_sum(sum, li);
    // Weighted sum of values: threads take output dimensions.
    for (var i = li; i < d; i += 64u) {
        var acc = 0.0;
        for (var j = 0u; j < len; j++) {
            acc = fma(scores[j], qkv[(start + j) * stride + 2u * inner + h * d + i], acc);
        }
        ctx[t * inner + h * d + i] = acc * inv;
    }
}
