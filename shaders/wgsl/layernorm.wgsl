// x[t, :] = LayerNorm(x[t, :] + r[t, :]) · gamma + beta   (RESIDUAL 0: without r)
// One workgroup of 64 threads per row; mean, then the biased variance, by tree reductions.
// Dispatch (rows, 1, 1).

override RESIDUAL: u32 = 1u;

struct Params {
    rows: u32,
    width: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> r: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;

var<workgroup> red: array<f32, 64>;

fn reduce_sum(v: f32, li: u32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row = wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.width;
    var s = 0.0;
    for (var c = li; c < p.width; c += 64u) {
        var v = x[base + c];
        if (RESIDUAL != 0u) {
            v += r[base + c];
            x[base + c] = v;
        }
        s += v;
    }
    let mean = reduce_sum(s, li) / f32(p.width);
    var q = 0.0;
    for (var c = li; c < p.width; c += 64u) {
        let d = x[base + c] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(reduce_sum(q, li) / f32(p.width) + p.eps);
    for (var c = li; c < p.width; c += 64u) {
        x[base + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c];
    }
}
