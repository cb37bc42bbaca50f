// c[t, ch] = GELU(b[ch] + Σ_j w[ch, j] · x[t + j - k/2, ch]), zero outside t's sentence: the
// depthwise half of a separable convolution (the pointwise half is a matmul).
// One workgroup of 64 threads per token; dispatch (tokens, 1, 1).

struct Params {
    tokens: u32,
    width: u32,
    kernel: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> taps: array<f32>; // [width, kernel]
@group(0) @binding(3) var<storage, read> tokens: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wg.x;
    if (t >= p.tokens) {
        return;
    }
    let info = tokens[t];
    let pos = i32(t - info.z);
    let len = i32(info.w);
    let half = i32(p.kernel / 2u);
    for (var ch = li; ch < p.width; ch += 64u) {
        var acc = bias[ch];
        for (var j = 0; j < i32(p.kernel); j++) {
            let s = pos + j - half;
            if (s >= 0 && s < len) {
                acc = fma(taps[ch * p.kernel + u32(j)], x[(info.z + u32(s)) * p.width + ch], acc);
            }
        }
        c[t * p.width + ch] = gelu(acc);
    }
}
