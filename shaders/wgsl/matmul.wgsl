// y[m, n] = epilogue(x[m, k] · W[n, k]ᵀ + b[n])  (W decoded by weights.wgsl; parameters,
// bindings and epilogue in matmul_common.wgsl). Float activations; students with quantized
// activations use matmul_int.wgsl.
//
// `main`:   tiled through workgroup memory, 32×32 outputs per workgroup of 8×8 threads
//           (4×4 each), K in steps of 16. Dispatch (ceil(n/32), ceil(m/32)).
//           Tiles hold the element type T: f32, or f16 on adapters with SHADER_F16 (the
//           composition prepends tile_f32.wgsl or tile_f16.wgsl). Products and each K step's
//           16-term sum are in T; the running sum over K is f32.
// `matvec`: one workgroup of 64 threads per 4 outputs of one row; threads split K and reduce
//           (reduce_shared.wgsl or reduce_subgroup.wgsl). For a handful of rows (classifier
//           heads, single tokens). Dispatch (ceil(n/4), m).

var<workgroup> xs: array<T, 512>; // [TM][TK]
var<workgroup> ws: array<T, 512>; // [TN][TK]

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
            var xv = T(0.0);
            if (row0 + r < p.m && kk < p.k) {
                xv = T(x[(row0 + r) * p.k + kk]);
            }
            xs[e] = xv;
            var wv = T(0.0);
            if (col0 + r < p.n && kk < p.k) {
                wv = T(weight(col0 + r, kk, p.k, p.wpr, p.gpr));
            }
            ws[e] = wv;
        }
        workgroupBarrier();
        var part: array<array<T, 4>, 4>;
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<T, 4>;
            var b: array<T, 4>;
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

@compute @workgroup_size(64)
fn matvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.y;
    let c0 = wg.x * 4u;
    var acc = vec4<f32>(0.0);
    for (var kk = li; kk < p.k; kk += 64u) {
        let xv = x[r * p.k + kk];
        for (var j = 0u; j < 4u; j++) {
            if (c0 + j < p.n) {
                acc[j] = fma(xv, weight(c0 + j, kk, p.k, p.wpr, p.gpr), acc[j]);
            }
        }
    }
    for (var j = 0u; j < 4u; j++) {
        let total = wg_sum(acc[j], li);
        if (li == j && c0 + j < p.n) {
            y[r * p.n + c0 + j] = epilogue(total + bias[c0 + j]);
        }
    }
}
