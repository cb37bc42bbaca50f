//! The fused kernels' arithmetic on contiguous `f32` slices, written so that the compiler
//! vectorises it (no calls and only selects in the inner loops) and run on rayon's pool in
//! blocks of rows. Rounding is round-half-to-even, as burn's `round` and the runtime's
//! quantizer.
//!
//! Each kernel is one body compiled for AVX2 + FMA and for the baseline target, picked at run
//! time from one feature list; Rust never contracts `a * b + c` into an FMA, so both copies
//! give the same bits.

use rayon::prelude::*;

/// Elements per rayon task: large enough that scheduling costs nothing next to the work.
const BLOCK: usize = 1 << 14;

/// Compiles `body` for the baseline target and for `features`, and calls the widest copy the
/// CPU runs. The enabled and the detected features are the same tokens.
macro_rules! multiversion {
    ([$($feat:tt),*] $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                $(#[target_feature(enable = $feat)])*
                fn wide($($arg: $ty),*) -> $ret { body($($arg),*) }
                if true $(&& std::arch::is_x86_feature_detected!($feat))* {
                    // SAFETY: every feature `wide` was compiled for was detected just now.
                    return unsafe { wide($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

/// `x` rounded to the nearest integer, ties to even, for `|x| < 2^22`: adding and
/// subtracting 1.5 · 2^23 leaves no fraction bits in between.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// `x` clamped to `[lo, hi]` by selects (NaN stays NaN).
#[inline(always)]
fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if x > hi { hi } else { x }
}

/// `Q_N`, `Q_P` of a bit width.
pub(crate) fn range(bits: u32) -> (f32, f32) {
    let qn = (1u32 << (bits - 1)) as f32;
    (qn, qn - 1.0)
}

/// Whole rows of `cols` per rayon task.
fn rows_per_block(cols: usize) -> usize {
    (BLOCK / cols.max(1)).max(1)
}

/// `max |x|` over a row, in 16 lanes.
#[inline(always)]
fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            let a = v.abs();
            *l = if a > *l { a } else { *l };
        }
    }
    let mut m = chunks.remainder().iter().fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
    for l in lanes {
        m = if l > m { l } else { m };
    }
    m
}

/// The per-token step of a row, as `fake_quant_act_per_token` computes it.
#[inline(always)]
fn row_step(x: &[f32], qp: f32) -> f32 {
    let s = max_abs(x) / qp;
    if s < f32::MIN_POSITIVE { f32::MIN_POSITIVE } else { s }
}

multiversion! { ["avx2", "fma"]
fn quant_rows_block(x: &[f32], out: &mut [f32], cols: usize, bits: u32) -> () {
    let (qn, qp) = range(bits);
    for (x, out) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let s = row_step(x, qp);
        let r = 1.0 / s;
        for (o, v) in out.iter_mut().zip(x) {
            *o = round_even(clamp(v * r, -qn, qp)) * s;
        }
    }
}}

multiversion! { ["avx2", "fma"]
fn quant_rows_backward_block(x: &[f32], grad: &[f32], out: &mut [f32], cols: usize, bits: u32) -> () {
    let (qn, qp) = range(bits);
    for ((x, g), out) in x.chunks_exact(cols).zip(grad.chunks_exact(cols)).zip(out.chunks_exact_mut(cols)) {
        let r = 1.0 / row_step(x, qp);
        for ((o, v), g) in out.iter_mut().zip(x).zip(g) {
            let v = v * r;
            *o = if v >= -qn && v <= qp { *g } else { 0.0 };
        }
    }
}}

/// Per-token fake quantization of `x` (rows of `cols`).
pub(crate) fn quant_rows(x: &[f32], cols: usize, bits: u32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let n = rows_per_block(cols) * cols;
    out.par_chunks_mut(n).zip(x.par_chunks(n)).for_each(|(o, x)| quant_rows_block(x, o, cols, bits));
    out
}

/// The gradient of [`quant_rows`]: `grad` where `x / step` is inside the range, else 0.
pub(crate) fn quant_rows_backward(x: &[f32], grad: &[f32], cols: usize, bits: u32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let n = rows_per_block(cols) * cols;
    out.par_chunks_mut(n)
        .zip(x.par_chunks(n).zip(grad.par_chunks(n)))
        .for_each(|(o, (x, g))| quant_rows_backward_block(x, g, o, cols, bits));
    out
}

multiversion! { ["avx2", "fma"]
fn smooth_quant_rows_block(x: &[f32], m: &[f32], out: &mut [f32], bits: u32) -> () {
    let (qn, qp) = range(bits);
    let cols = m.len();
    for (x, out) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        for ((o, v), m) in out.iter_mut().zip(x).zip(m) {
            *o = v * m;
        }
        let s = row_step(out, qp);
        let r = 1.0 / s;
        for o in out.iter_mut() {
            *o = round_even(clamp(*o * r, -qn, qp)) * s;
        }
    }
}}

multiversion! { ["avx2", "fma"]
fn smooth_quant_rows_backward_block(
    x: &[f32], m: &[f32], grad: &[f32], dx: &mut [f32], dm: &mut [f32], bits: u32,
) -> () {
    let (qn, qp) = range(bits);
    let cols = m.len();
    let mut xm = vec![0f32; cols];
    for ((x, g), dx) in x.chunks_exact(cols).zip(grad.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        for ((o, v), m) in xm.iter_mut().zip(x).zip(m) {
            *o = v * m;
        }
        let r = 1.0 / row_step(&xm, qp);
        for c in 0..cols {
            let v = xm[c] * r;
            let g = if v >= -qn && v <= qp { g[c] } else { 0.0 };
            dx[c] = g * m[c];
            dm[c] += g * x[c];
        }
    }
}}

/// Per-token fake quantization of `x ⊙ m` (`m` per column: activation smoothing).
pub(crate) fn smooth_quant_rows(x: &[f32], m: &[f32], bits: u32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let n = rows_per_block(m.len()) * m.len();
    out.par_chunks_mut(n).zip(x.par_chunks(n)).for_each(|(o, x)| smooth_quant_rows_block(x, m, o, bits));
    out
}

/// The gradients of [`smooth_quant_rows`]: `(dx, dm)`; `dm` summed over blocks in order.
pub(crate) fn smooth_quant_rows_backward(x: &[f32], m: &[f32], grad: &[f32], bits: u32) -> (Vec<f32>, Vec<f32>) {
    let cols = m.len();
    let mut dx = vec![0f32; x.len()];
    let n = rows_per_block(cols) * cols;
    let parts: Vec<Vec<f32>> = dx
        .par_chunks_mut(n)
        .zip(x.par_chunks(n).zip(grad.par_chunks(n)))
        .map(|(dx, (x, g))| {
            let mut dm = vec![0f32; cols];
            smooth_quant_rows_backward_block(x, m, g, dx, &mut dm, bits);
            dm
        })
        .collect();
    let mut dm = vec![0f32; cols];
    for p in parts {
        dm.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    (dx, dm)
}

multiversion! { ["avx2", "fma"]
fn quant_groups_block(w: &[f32], s: &[f32], out: &mut [f32], cols: usize, group: usize, bits: u32) -> () {
    let (qn, qp) = range(bits);
    let groups = cols.div_ceil(group);
    for ((w, s), out) in w.chunks_exact(cols).zip(s.chunks_exact(groups)).zip(out.chunks_exact_mut(cols)) {
        for ((w, out), s) in w.chunks(group).zip(out.chunks_mut(group)).zip(s) {
            for (o, v) in out.iter_mut().zip(w) {
                *o = round_even(clamp(v / s, -qn, qp)) * s;
            }
        }
    }
}}

multiversion! { ["avx2", "fma"]
fn quant_groups_backward_block(
    w: &[f32], s: &[f32], grad: &[f32], dw: &mut [f32], ds: &mut [f32], cols: usize, group: usize, bits: u32,
) -> () {
    let (qn, qp) = range(bits);
    let groups = cols.div_ceil(group);
    let rows = w.chunks_exact(cols).zip(s.chunks_exact(groups)).zip(grad.chunks_exact(cols));
    for (((w, s), g), (dw, ds)) in rows.zip(dw.chunks_exact_mut(cols).zip(ds.chunks_exact_mut(groups))) {
        let parts = w.chunks(group).zip(g.chunks(group)).zip(dw.chunks_mut(group));
        for ((((w, g), dw), s), ds) in parts.zip(s).zip(ds.iter_mut()) {
            // 16 partial sums so that the loop vectorises.
            let mut acc = [0f32; 16];
            let (mut wc, mut gc, mut dc) = (w.chunks_exact(16), g.chunks_exact(16), dw.chunks_exact_mut(16));
            for ((w, g), d) in (&mut wc).zip(&mut gc).zip(&mut dc) {
                for i in 0..16 {
                    let (di, ai) = step_grad(w[i] / s, g[i], qn, qp);
                    d[i] = di;
                    acc[i] += ai;
                }
            }
            let mut tail = 0f32;
            for ((w, g), d) in wc.remainder().iter().zip(gc.remainder()).zip(dc.into_remainder()) {
                let (di, ai) = step_grad(w / s, *g, qn, qp);
                *d = di;
                tail += ai;
            }
            *ds = acc.iter().sum::<f32>() + tail;
        }
    }
}}

/// For `v = w / s` and its output gradient `g`: `(dw, g · ∂(q·s)/∂s)`.
#[inline(always)]
fn step_grad(v: f32, g: f32, qn: f32, qp: f32) -> (f32, f32) {
    let inside = v >= -qn && v <= qp;
    let dv = if inside { round_even(v) - v } else if v < 0.0 { -qn } else { qp };
    (if inside { g } else { 0.0 }, g * dv)
}

/// Fake quantization of `w` (rows of `cols`) with one step of `s` per `group` columns.
pub(crate) fn quant_groups(w: &[f32], s: &[f32], cols: usize, group: usize, bits: u32) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    let groups = cols.div_ceil(group);
    let rows = rows_per_block(cols);
    out.par_chunks_mut(rows * cols)
        .zip(w.par_chunks(rows * cols).zip(s.par_chunks(rows * groups)))
        .for_each(|(o, (w, s))| quant_groups_block(w, s, o, cols, group, bits));
    out
}

/// The gradients of [`quant_groups`]: `(dw, ds)`.
pub(crate) fn quant_groups_backward(
    w: &[f32],
    s: &[f32],
    grad: &[f32],
    cols: usize,
    group: usize,
    bits: u32,
) -> (Vec<f32>, Vec<f32>) {
    let groups = cols.div_ceil(group);
    let mut dw = vec![0f32; w.len()];
    let mut ds = vec![0f32; s.len()];
    let rows = rows_per_block(cols);
    dw.par_chunks_mut(rows * cols)
        .zip(ds.par_chunks_mut(rows * groups))
        .zip(w.par_chunks(rows * cols).zip(s.par_chunks(rows * groups)).zip(grad.par_chunks(rows * cols)))
        .for_each(|((dw, ds), ((w, s), g))| quant_groups_backward_block(w, s, g, dw, ds, cols, group, bits));
    (dw, ds)
}

/// `e^a` for `a ≤ 0` (Cephes' `expf` polynomial on `a − k · ln 2`, `|a − k ln 2| ≤ ln 2 / 2`;
/// a few ulp), flushed to 0 below `e^-87`.
#[inline(always)]
fn exp_neg(a: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let a = if a < -87.0 { -87.0 } else { a };
    let k = round_even(a * LOG2E);
    let r = a - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits((((k as i32) + 127) as u32) << 23)
}

/// `(Φ(x), e^(−x²/2))`: the normal CDF by Abramowitz & Stegun 7.1.26 for `erfc` (absolute
/// error ≤ 1.5e-7 on `erf`), and the exponential it shares with the normal density.
#[inline(always)]
fn cdf_and_gauss(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152, 1.061_405_4];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let poly = ((((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let e = exp_neg(-z * z);
    let tail = 0.5 * poly * e; // Φ(−|x|)
    (if x >= 0.0 { 1.0 - tail } else { tail }, e)
}

multiversion! { ["avx2", "fma"]
fn gelu_block(x: &[f32], out: &mut [f32]) -> () {
    for (o, v) in out.iter_mut().zip(x) {
        *o = v * cdf_and_gauss(*v).0;
    }
}}

multiversion! { ["avx2", "fma"]
fn gelu_backward_block(x: &[f32], grad: &[f32], out: &mut [f32]) -> () {
    // 1 / sqrt(2π)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((o, v), g) in out.iter_mut().zip(x).zip(grad) {
        let (cdf, e) = cdf_and_gauss(*v);
        *o = g * (cdf + v * e * INV_SQRT_2PI);
    }
}}

/// The exact GELU `x · Φ(x)` of every element.
pub(crate) fn gelu(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(BLOCK).zip(x.par_chunks(BLOCK)).for_each(|(o, x)| gelu_block(x, o));
    out
}

/// `grad · GELU'(x)` of every element.
pub(crate) fn gelu_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(BLOCK)
        .zip(x.par_chunks(BLOCK).zip(grad.par_chunks(BLOCK)))
        .for_each(|(o, (x, g))| gelu_backward_block(x, g, o));
    out
}

multiversion! { ["avx2", "fma"]
fn softmax_block(x: &[f32], out: &mut [f32], cols: usize) -> () {
    for (x, out) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let m = x.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        let mut sum = 0f32;
        for (o, v) in out.iter_mut().zip(x) {
            *o = exp_neg(v - m);
            sum += *o;
        }
        let r = 1.0 / sum;
        out.iter_mut().for_each(|o| *o *= r);
    }
}}

multiversion! { ["avx2", "fma"]
fn softmax_backward_block(y: &[f32], grad: &[f32], out: &mut [f32], cols: usize) -> () {
    for ((y, g), out) in y.chunks_exact(cols).zip(grad.chunks_exact(cols)).zip(out.chunks_exact_mut(cols)) {
        let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
        for ((o, y), g) in out.iter_mut().zip(y).zip(g) {
            *o = y * (g - dot);
        }
    }
}}

/// Softmax over rows of `cols` (a row of `-inf` only gives NaN, as burn's).
pub(crate) fn softmax(x: &[f32], cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let n = rows_per_block(cols) * cols;
    out.par_chunks_mut(n).zip(x.par_chunks(n)).for_each(|(o, x)| softmax_block(x, o, cols));
    out
}

/// The gradient of [`softmax`] from its output `y`: `y · (g − Σ g·y)` per row.
pub(crate) fn softmax_backward(y: &[f32], grad: &[f32], cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; y.len()];
    let n = rows_per_block(cols) * cols;
    out.par_chunks_mut(n)
        .zip(y.par_chunks(n).zip(grad.par_chunks(n)))
        .for_each(|(o, (y, g))| softmax_backward_block(y, g, o, cols));
    out
}

/// `(mean, 1 / sqrt(var + eps))` of a row, the biased variance.
#[inline(always)]
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

multiversion! { ["avx2", "fma"]
fn layer_norm_block(x: &[f32], gamma: &[f32], beta: &[f32], out: &mut [f32], eps: f32) -> () {
    let cols = gamma.len();
    for (x, out) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let (mean, rstd) = moments(x, eps);
        for (((o, v), g), b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
            *o = (v - mean) * rstd * g + b;
        }
    }
}}

multiversion! { ["avx2", "fma"]
fn layer_norm_backward_block(
    x: &[f32], gamma: &[f32], grad: &[f32], dx: &mut [f32], dgamma: &mut [f32], dbeta: &mut [f32], eps: f32,
) -> () {
    let cols = gamma.len();
    let n = cols as f32;
    for ((x, g), dx) in x.chunks_exact(cols).zip(grad.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        let (mean, rstd) = moments(x, eps);
        let (mut sum_gh, mut sum_ghx) = (0f32, 0f32);
        for i in 0..cols {
            let xn = (x[i] - mean) * rstd;
            let gh = g[i] * gamma[i];
            sum_gh += gh;
            sum_ghx += gh * xn;
            dgamma[i] += g[i] * xn;
            dbeta[i] += g[i];
        }
        let (mean_gh, mean_ghx) = (sum_gh / n, sum_ghx / n);
        for i in 0..cols {
            let xn = (x[i] - mean) * rstd;
            dx[i] = rstd * (g[i] * gamma[i] - mean_gh - xn * mean_ghx);
        }
    }
}}

/// LayerNorm over rows of `gamma.len()`: `(x − mean) / sqrt(var + eps) · gamma + beta`.
pub(crate) fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let n = rows_per_block(gamma.len()) * gamma.len();
    out.par_chunks_mut(n).zip(x.par_chunks(n)).for_each(|(o, x)| layer_norm_block(x, gamma, beta, o, eps));
    out
}

/// The gradients of [`layer_norm`]: `(dx, dgamma, dbeta)`.
pub(crate) fn layer_norm_backward(x: &[f32], gamma: &[f32], grad: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let cols = gamma.len();
    let mut dx = vec![0f32; x.len()];
    let n = rows_per_block(cols) * cols;
    // Per-block partial sums, added in block order: the same bits whatever the threads did.
    let parts: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(n)
        .zip(x.par_chunks(n).zip(grad.par_chunks(n)))
        .map(|(dx, (x, g))| {
            let (mut dg, mut db) = (vec![0f32; cols], vec![0f32; cols]);
            layer_norm_backward_block(x, gamma, g, dx, &mut dg, &mut db, eps);
            (dg, db)
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0f32; cols], vec![0f32; cols]);
    for (dg, db) in parts {
        dgamma.iter_mut().zip(dg).for_each(|(a, b)| *a += b);
        dbeta.iter_mut().zip(db).for_each(|(a, b)| *a += b);
    }
    (dx, dgamma, dbeta)
}
