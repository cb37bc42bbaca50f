// The tiled dequant-matmul of matmul.wgsl with f16 arithmetic, for adapters with SHADER_F16:
// activations and decoded weights are staged in workgroup memory as f16 (half the traffic),
// products and the 16-term sum of each K step are f16, the running sum over K stays f32.
// Same bindings, parameters and dispatch as matmul.wgsl `main`. Opt-in (GpuOptions::f16):
// results differ from f32 by f16 rounding (about 1e-3 relative).

override EPILOGUE: u32 = 0u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    wpr: u32,
    gpr: u32,
    act_step: f32,
    act_inv: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

fn epilogue(v: f32) -> f32 {
    if (EPILOGUE == 1u) {
        return gelu(v);
    }
    if (EPILOGUE == 2u) {
        return tanh(v);
    }
    return v;
}

const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 16u;

var<workgroup> xs: array<f16, 512>; // [TM][TK]
var<workgroup> ws: array<f16, 512>; // [TN][TK]

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var e = li; e < TM * TK; e += 64u) {
            let r = e / TK;
            let kk = k0 + e % TK;
            var xv = 0.0h;
            if (row0 + r < p.m && kk < p.k) {
                xv = f16(x[(row0 + r) * p.k + kk]);
            }
            xs[e] = xv;
            var wv = 0.0h;
            if (col0 + r < p.n && kk < p.k) {
                wv = f16(weight(col0 + r, kk, p.k, p.wpr, p.gpr));
            }
            ws[e] = wv;
        }
        workgroupBarrier();
        // Products and the sum over one K step in f16; the running sum in f32.
        var part: array<array<f16, 4>, 4>;
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<f16, 4>;
            var b: array<f16, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[(lid.y * 4u + i) * TK + kk];
                b[i] = ws[(lid.x * 4u + i) * TK + kk];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    part[i][j] = fma(a[i], b[j], part[i][j]);
                }
            }
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i][j] += f32(part[i][j]);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x * 4u + j;
            if (r < p.m && c < p.n) {
                y[r * p.n + c] = epilogue(acc[i][j] + bias[c]);
            }
        }
    }
}

