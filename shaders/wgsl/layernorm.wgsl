// x[t, :] = LayerNorm(x[t, :] + r[t, :]) · gamma + beta   (RESIDUAL 0: without r)
// One workgroup of 64 threads per row; mean, then the biased variance, by workgroup
// reductions (reduce_shared.wgsl or reduce_subgroup.wgsl, prepended).
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
    let mean = wg_sum(s, li) / f32(p.width);
    var q = 0.0;
    for (var c = li; c < p.width; c += 64u) {
        let d = x[base + c] - mean;
        q += d * d;
    }
    let inv = inverseSqrt(wg_sum(q, li) / f32(p.width) + p.eps);
    for (var c = li; c < p.width; c += 64u) {
        x[base + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c];
    }
}
