//! Matrix products of the CPU backend: float weights on the `gemm` crate in one call, f16 and
//! weight-only quantized matrices dequantized on the fly in row panels that stay in cache, and
//! matrices with quantized activations on the integer kernels ([`super::qlinear`]).

use super::team::Team;
use gemm::Parallelism;
use half::f16;

use super::ops;
use super::qlinear::{CodeMatrix, IntMatrix};
use crate::data::{ActQuant, TensorData};
use crate::quant::QuantMatrix;

/// A raw pointer that may cross threads: every user writes a disjoint region.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Weights as stored in memory.
pub enum Weights {
    /// Row-major `[rows, cols]` floats.
    F32(Vec<f32>),
    /// A linear layer's `[out, inp]` floats in blocks of [`BLOCK`] output columns, each block
    /// transposed (`inp × width` row-major, `width` = 64 but the last): the GEMM reads every
    /// block as one sequential stream in the order its micro-kernel wants, however wide the
    /// layer. (Transposed whole, `[inp, out]`, each step of `k` jumps a row of `out` floats:
    /// half the speed at few tokens; benches/README.md.)
    F32Blocks {
        out: usize,
        data: Vec<f32>,
    },
    F16(Vec<f16>),
    Quant(QuantMatrix),
    /// Codes unpacked for the integer kernels (matrices with quantized activations).
    Int(IntMatrix),
    /// Weight-only codes unpacked for the in-register float kernels.
    Codes(CodeMatrix),
}

impl Weights {
    pub fn from_tensor(t: &TensorData) -> (Weights, Option<ActQuant>) {
        Weights::from_owned(t.clone())
    }

    /// [`Weights::from_tensor`] without a copy: the tensor's buffers become the weights.
    pub fn from_owned(t: TensorData) -> (Weights, Option<ActQuant>) {
        match t {
            TensorData::F32 { data, .. } => (Weights::F32(data), None),
            TensorData::F16 { data, .. } => (Weights::F16(data), None),
            TensorData::Quant { matrix, act } => (Weights::Quant(matrix), act),
        }
    }

    /// Row-major `[out, inp]` floats repacked as [`Weights::F32Blocks`].
    pub fn f32_blocks(w: &[f32], out: usize, inp: usize) -> Weights {
        Weights::F32Blocks { out, data: to_blocks(w, out, inp) }
    }

    /// Writes rows `r0..r0 + out.len() / cols` as floats.
    pub fn rows_f32(&self, r0: usize, cols: usize, out: &mut [f32]) {
        match self {
            Weights::F32(w) => out.copy_from_slice(&w[r0 * cols..r0 * cols + out.len()]),
            Weights::F32Blocks { out: rows, data } => {
                for (i, row) in out.chunks_exact_mut(cols).enumerate() {
                    let (c0, width) = block_of(r0 + i, *rows);
                    let block = &data[c0 * cols..];
                    for (t, v) in row.iter_mut().enumerate() {
                        *v = block[t * width + r0 + i - c0];
                    }
                }
            }
            Weights::F16(w) => {
                for (d, s) in out.iter_mut().zip(&w[r0 * cols..]) {
                    *d = s.to_f32();
                }
            }
            Weights::Quant(q) => q.dequantize_rows(r0, out),
            Weights::Int(q) => q.dequantize_rows(r0, out),
            Weights::Codes(q) => q.dequantize_rows(r0, out),
        }
    }
}

/// `y = x · Wᵀ + b` with `W` of shape `[out, inp]`.
pub struct Linear {
    pub out: usize,
    pub inp: usize,
    pub weights: Weights,
    pub bias: Vec<f32>,
    /// Fake-quantize the input activations first (students trained with quantized activations).
    pub act: Option<ActQuant>,
}

/// Output columns per block of [`Weights::F32Blocks`], and rows of other weights dequantized
/// at a time per task into that layout (64 rows × K floats stay in L2).
pub const BLOCK: usize = 64;

/// Row-major `[out, inp]` floats in the layout of [`Weights::F32Blocks`] (for `out` ≤
/// [`BLOCK`], simply transposed).
fn to_blocks(w: &[f32], out: usize, inp: usize) -> Vec<f32> {
    let mut data = vec![0f32; w.len()];
    for (o, row) in w.chunks_exact(inp.max(1)).enumerate() {
        let (c0, width) = block_of(o, out);
        for (i, v) in row.iter().enumerate() {
            data[c0 * inp + i * width + (o - c0)] = *v;
        }
    }
    data
}

/// The first column and the width of the block holding output column `o` of `out`.
fn block_of(o: usize, out: usize) -> (usize, usize) {
    let c0 = o / BLOCK * BLOCK;
    (c0, BLOCK.min(out - c0))
}

impl Linear {
    /// A linear layer; float weights are repacked once here for the GEMM, quantized matrices
    /// with quantized activations are unpacked for the integer kernels.
    pub fn new(out: usize, inp: usize, weights: Weights, bias: Vec<f32>, act: Option<ActQuant>) -> Linear {
        let weights = match (weights, &act) {
            (Weights::Quant(q), Some(a)) => match IntMatrix::new(&q, a) {
                Some(im) => Weights::Int(im),
                None => Weights::Quant(q),
            },
            (Weights::Quant(q), None) => match CodeMatrix::new(&q) {
                Some(cm) => Weights::Codes(cm),
                None => Weights::Quant(q),
            },
            (w, _) => w,
        };
        Linear::new_dequantized(out, inp, weights, bias, act)
    }

    /// [`Linear::new`] without the integer kernels: activations fake-quantized in float times
    /// dequantized weights, the package's definition as written (the reference of the tests).
    pub fn new_dequantized(out: usize, inp: usize, weights: Weights, bias: Vec<f32>, act: Option<ActQuant>) -> Linear {
        let weights = match weights {
            Weights::F32(w) => Weights::f32_blocks(&w, out, inp),
            other => other,
        };
        Linear { out, inp, weights, bias, act }
    }

    /// Computes `y[m, out] = x[m, inp] · Wᵀ + b`.
    pub fn forward(&self, x: &[f32], m: usize, team: &Team) -> Vec<f32> {
        self.forward_with(x, m, false, team)
    }

    /// [`Linear::forward`] followed by GELU (fused into the integer kernels' epilogue).
    pub fn forward_gelu(&self, x: &[f32], m: usize, team: &Team) -> Vec<f32> {
        self.forward_with(x, m, true, team)
    }

    fn forward_with(&self, x: &[f32], m: usize, gelu: bool, team: &Team) -> Vec<f32> {
        debug_assert_eq!(x.len(), m * self.inp);
        match &self.weights {
            Weights::Int(im) => return im.forward(x, m, &self.bias, gelu, team),
            Weights::Codes(cm) if CodeMatrix::in_registers(m) => return cm.forward(x, m, &self.bias, gelu, team),
            _ => {}
        }
        let mut y = self.forward_float(x, m, team);
        if gelu {
            super::map_rows(&mut y, self.out, team, ops::gelu);
        }
        y
    }

    fn forward_float(&self, x: &[f32], m: usize, team: &Team) -> Vec<f32> {
        let quantized_input;
        let x = match &self.act {
            Some(a) => {
                let mut q = x.to_vec();
                a.apply(&mut q, self.inp);
                quantized_input = q;
                &quantized_input[..]
            }
            None => x,
        };
        let (n, k) = (self.out, self.inp);
        let mut y = vec![0f32; m * n];
        if !self.bias.is_empty() {
            for row in y.chunks_exact_mut(n) {
                row.copy_from_slice(&self.bias);
            }
        }
        match &self.weights {
            Weights::F32Blocks { data, .. } => {
                let (dst, w, xp) = (SendPtr(y.as_mut_ptr()), data.as_ptr() as usize, x.as_ptr() as usize);
                let blocks = n.div_ceil(BLOCK);
                // Each task computes a range of rows (many tokens) or of blocks (few tokens).
                let run = |r0: usize, r1: usize, b0: usize, b1: usize| {
                    for b in b0..b1 {
                        let (c0, width) = block_of(b * BLOCK, n);
                        let d = dst;
                        // SAFETY: x is m×k, block b is k×width at offset c0·k of the weights, y
                        // is m×n (row stride n); tasks write disjoint rows or blocks of y.
                        unsafe {
                            gemm_strided(
                                r1 - r0,
                                width,
                                k,
                                (xp as *const f32).add(r0 * k),
                                k as isize,
                                (w as *const f32).add(c0 * k),
                                width as isize,
                                1,
                                d.0.add(r0 * n + c0),
                                n as isize,
                                1.0,
                                Parallelism::None,
                            )
                        };
                    }
                };
                if m >= ROW_SPLIT * team.size() {
                    split_ranges(m, 1, team, m * n * k, |r0, r1| run(r0, r1, 0, blocks));
                } else {
                    split_ranges(blocks, 1, team, m * n * k, |b0, b1| run(0, m, b0, b1));
                }
            }
            weights => {
                let dst = SendPtr(y.as_mut_ptr());
                let panels = n.div_ceil(BLOCK);
                let run = |p: usize| {
                    let (r0, rows) = block_of(p * BLOCK, n);
                    // Transposed (k × rows, row stride `ld`), the layout of
                    // `Weights::F32Blocks`: the GEMM then streams it instead of striding.
                    let (bt, ld) = match weights {
                        Weights::Codes(cm) => cm.dequantize_transposed(r0, rows, k),
                        _ => {
                            let mut buf = vec![0f32; rows * k];
                            weights.rows_f32(r0, k, &mut buf);
                            (to_blocks(&buf, rows, k), rows)
                        }
                    };
                    let d = dst;
                    // SAFETY: bt is k×ld (ld ≥ rows); each panel writes columns r0..r0+rows of
                    // y (row stride n), disjoint across panels.
                    unsafe { gemm_strided(m, rows, k, x.as_ptr(), k as isize, bt.as_ptr(), ld as isize, 1, d.0.add(r0), n as isize, 1.0, Parallelism::None) };
                };
                team.run(panels, &run);
            }
        }
        y
    }
}

/// Rows per thread from which a product is split by rows (tokens) rather than by columns.
const ROW_SPLIT: usize = 128;

/// Runs `f(a, b)` over blocks of `0..n` (multiples of `align`), one per thread when the product
/// has enough multiply-adds (`work`) to be worth splitting.
pub(crate) fn split_ranges(n: usize, align: usize, team: &Team, work: usize, f: impl Fn(usize, usize) + Sync) {
    let tasks = if work >= 1 << 15 { team.size().min(n.div_ceil(align)) } else { 1 };
    if tasks <= 1 {
        return f(0, n);
    }
    let per = n.div_ceil(tasks).next_multiple_of(align);
    team.run(tasks, &|t| {
        let (c0, c1) = (t * per, ((t + 1) * per).min(n));
        if c0 < c1 {
            f(c0, c1)
        }
    });
}

/// `y = y + beta · a · b` with `a` `[m, k]` (row stride `a_rs`, unit column stride) and `b`
/// `[k, n]` given by its row and column strides; `y` row-major with row stride `y_rs`.
///
/// # Safety
/// The pointers must be valid for the extents implied by the sizes and strides.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    a_rs: isize,
    b: *const f32,
    b_rs: isize,
    b_cs: isize,
    y: *mut f32,
    y_rs: isize,
    beta: f32,
    parallelism: Parallelism,
) {
    gemm::gemm(m, n, k, y, 1, y_rs, true, a, 1, a_rs, b, b_cs, b_rs, 1.0, beta, false, false, false, parallelism);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ActStep;

    fn naive(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = b[j] + (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum::<f32>();
            }
        }
        y
    }

    /// Every storage gives the naive product of the weights it represents, at few rows (codes
    /// multiplied in registers) and many (dequantized panels).
    #[test]
    fn linear_matches_naive_for_every_storage() {
        for (m, n, k) in [(7, 130, 67), (130, 40, 64), (300, 150, 50)] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 13 % 23) as f32 - 11.0) / 7.0).collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 / 10.0).collect();
            let q = QuantMatrix::quantize_rtn(&w, n, k, 5, Some(32)).unwrap();
            let wq = q.dequantize();
            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w16f: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            for threads in [1, 2, 3] {
                let team = Team::new(threads).unwrap();
                for (weights, reference) in
                    [(Weights::F32(w.clone()), &w), (Weights::f32_blocks(&w, n, k), &w), (Weights::F16(w16.clone()), &w16f), (Weights::Quant(q.clone()), &wq)]
                {
                    let lin = Linear::new(n, k, weights, b.clone(), None);
                    let y = lin.forward(&x, m, &team);
                    let want = naive(&x, reference, &b, m, n, k);
                    for (a, e) in y.iter().zip(&want) {
                        assert!((a - e).abs() < 1e-4, "{a} vs {e}");
                    }
                }
            }
        }
    }

    /// Blocks of 64 columns and a narrower last one give back the rows they were made from.
    #[test]
    fn f32_blocks_round_trip() {
        for (n, k) in [(130, 3), (64, 5), (7, 1)] {
            let w: Vec<f32> = (0..n * k).map(|i| i as f32).collect();
            let b = Weights::f32_blocks(&w, n, k);
            let mut back = vec![0f32; n * k];
            b.rows_f32(0, k, &mut back);
            assert_eq!(back, w);
            let mut tail = vec![0f32; 2 * k];
            b.rows_f32(n - 2, k, &mut tail);
            assert_eq!(tail, w[(n - 2) * k..]);
        }
    }

    #[test]
    fn activation_quantization_applies_to_input() {
        let x = [0.3f32, -0.74, 1.0];
        let lin = Linear::new(1, 3, Weights::F32(vec![1.0, 10.0, 100.0]), vec![0.0], Some(ActQuant::new(8, 0.5)));
        // x quantized to [0.5, -0.5, 1.0]
        assert_eq!(lin.forward(&x, 1, &Team::new(1).unwrap()), vec![0.5 - 5.0 + 100.0]);
    }

    /// Smoothing: the input is multiplied by m before quantization, the stored weights are
    /// W ⊙ (1/m). x ⊙ m = [0.6, -0.37, 1.0] quantizes to [0.5, -0.5, 1.0]; stored weights
    /// [1/2, 10/0.5, 100/1].
    #[test]
    fn smoothed_activation_quantization() {
        let x = [0.3f32, -0.74, 1.0, 0.3, -0.74, 1.0];
        let act = ActQuant { bits: 8, step: ActStep::Tensor(0.5), smooth: Some(vec![2.0, 0.5, 1.0]) };
        let lin = Linear::new(1, 3, Weights::F32(vec![0.5, 20.0, 100.0]), vec![0.0], Some(act));
        let want = 0.5 * 0.5 - 0.5 * 20.0 + 100.0;
        assert_eq!(lin.forward(&x, 2, &Team::new(1).unwrap()), vec![want, want]);
    }

    /// Per-token steps: each row's own `max|x| / Q_P`. Row 1: max 3.5 → step 0.5 at 4 bits,
    /// [0.7, −3.5, 1.2] quantizes to [0.5, −3.5, 1.0]; row 2 (all zero) gives zero codes, not
    /// NaN; row 3 is row 1 ⊙ 100: the same codes at a step 100× larger.
    #[test]
    fn per_token_activation_steps() {
        let x = [0.7f32, -3.5, 1.2, 0.0, 0.0, 0.0, 70.0, -350.0, 120.0];
        let lin = Linear::new(1, 3, Weights::F32(vec![1.0, 10.0, 100.0]), vec![0.25], Some(ActQuant::per_token(4)));
        let want = 0.5 - 35.0 + 100.0 + 0.25;
        assert_eq!(lin.forward(&x, 3, &Team::new(1).unwrap()), vec![want, 0.25, (want - 0.25) * 100.0 + 0.25]);
    }
}
