// Integer dequant-matmul for students with quantized activations (W2..W8 with A4 or A8):
//   y[m, n] = s[m] · Σ_groups step_w(n, g) · Σ_{k in g} a[m, k] · c[n, k] + b[n]
// where a = clamp(round_half_even((x · m) · (1 / s[m])), -2^(A-1), 2^(A-1)-1) are the activation codes
// (m = 1, or per-column smoothing factors with SMOOTH), s[m] = act_step (per tensor) or, with
// PER_TOKEN, row m's own max_k |x[m, k] · m_k| / (2^(A-1) - 1)
// and c the weight codes (weights.wgsl, WFORMAT 2). Codes are packed four to a word as 8-bit
// lanes and multiplied with dot4 (dot4I8Packed where available, an exact fallback otherwise);
// integer sums are exact. Tiled like matmul.wgsl: 32×32 outputs per workgroup of 8×8 threads,
// K in steps of 16 (every group size is a multiple of 16, so a K step never spans two groups).
// Dispatch (ceil(n/32), ceil(m/32)). Parameters, bindings, epilogue: matmul_common.wgsl.

override ACT_BITS: u32 = 8u;
// 1: input column k is multiplied by scales[n · gpr + k] before quantization (smoothing; the
// weights were divided by the same factors when the package was made).
override SMOOTH: u32 = 0u;
// 1: each row's step is computed from the row (per-token steps, format version 4).
override PER_TOKEN: u32 = 0u;

fn smoothed(v: f32, col: u32) -> f32 {
    if (SMOOTH != 0u) {
        return v * scales[p.n * p.gpr + col];
    }
    return v;
}

fn act_code(v: f32, col: u32, inv: f32) -> i32 {
    let qn = f32(1u << ((ACT_BITS - 1u) & 31u));
    return i32(clamp(round(smoothed(v, col) * inv), -qn, qn - 1.0));
}

const TKW: u32 = 4u; // TK / 4 packed words

var<workgroup> xs: array<u32, 128>; // [TM][TKW]
var<workgroup> ws: array<u32, 128>; // [TN][TKW]
var<workgroup> steps: array<f32, 32>; // [TN] for this K step
var<workgroup> row_max: array<f32, 64>; // two partial maxima per row (PER_TOKEN)
var<workgroup> row_step: array<f32, 32>; // [TM] (PER_TOKEN)
var<workgroup> row_inv: array<f32, 32>; // [TM] (PER_TOKEN)

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    var acc: array<array<f32, 4>, 4>;
    if (PER_TOKEN != 0u) {
        // Two threads per row, each over every other column, then the larger of the pair; the
        // step and its reciprocal as the CPU computes them (max / Q_P, then 1 / step).
        let r = li / 2u;
        var mx = 0.0;
        if (row0 + r < p.m) {
            for (var k = li % 2u; k < p.k; k += 2u) {
                mx = max(mx, abs(smoothed(x[(row0 + r) * p.k + k], k)));
            }
        }
        row_max[li] = mx;
        workgroupBarrier();
        if (li < TM) {
            let qp = f32((1u << ((ACT_BITS - 1u) & 31u)) - 1u);
            let s = max(row_max[2u * li], row_max[2u * li + 1u]) / qp;
            row_step[li] = s;
            row_inv[li] = select(0.0, 1.0 / s, s > 0.0);
        }
        workgroupBarrier();
    }
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // 64 threads pack 128 words of activations and 128 of weights: two each.
        for (var e = li; e < TM * TKW; e += 64u) {
            let r = e / TKW;
            let kk = k0 + (e % TKW) * 4u;
            var xa = vec4<i32>(0);
            var wa = vec4<i32>(0);
            for (var j = 0u; j < 4u; j++) {
                if (kk + j < p.k) {
                    if (row0 + r < p.m) {
                        var inv = p.act_inv;
                        if (PER_TOKEN != 0u) {
                            inv = row_inv[r];
                        }
                        xa[j] = act_code(x[(row0 + r) * p.k + kk + j], kk + j, inv);
                    }
                    if (col0 + r < p.n) {
                        wa[j] = weight_code(col0 + r, kk + j, p.wpr);
                    }
                }
            }
            xs[e] = pack4(xa);
            ws[e] = pack4(wa);
        }
        if (li < TN) {
            var s = 0.0;
            if (col0 + li < p.n) {
                s = weight_step(col0 + li, k0, p.gpr);
            }
            steps[li] = s;
        }
        workgroupBarrier();
        var isum: array<array<i32, 4>, 4>;
        for (var q = 0u; q < TKW; q++) {
            for (var i = 0u; i < 4u; i++) {
                let a = xs[(lid.y * 4u + i) * TKW + q];
                for (var j = 0u; j < 4u; j++) {
                    isum[i][j] += dot4(a, ws[(lid.x * 4u + j) * TKW + q]);
                }
            }
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i][j] = fma(f32(isum[i][j]), steps[lid.x * 4u + j], acc[i][j]);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        var s = p.act_step;
        if (PER_TOKEN != 0u) {
            s = row_step[lid.y * 4u + i];
        }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x * 4u + j;
            if (r < p.m && c < p.n) {
                y[r * p.n + c] = epilogue(acc[i][j] * s + bias[c]);
            }
        }
    }
}
