//! Linear layers whose inputs are quantized (A8, or A4 stored as `i8`) on the integer kernels of
//! [`super::qgemm`]: weight codes of any width are unpacked once at load into `i8` rows, the
//! activations are quantized per call exactly as the package defines (smoothing included), and
//! the epilogue turns each group's `i32` sum into floats with one multiply per group, then adds
//! the bias and applies GELU where the block asks for it.
//!
//! `y[i, j] = bias[j] + Σ_q (s_a · s_w[j, q]) · Σ_{t in group q} a[i, t] · w[j, t]`: the
//! package's definition (fake-quantized activations times dequantized weights) with the integer
//! part computed exactly; only the float rounding of the sum differs from the dequantize path.

use super::linear::SendPtr;
use super::ops;
use super::qgemm::{self, Kernel, OFFSET};
use super::team::Team;
use crate::data::ActQuant;
use crate::quant::{q_max, q_min, QuantMatrix};

/// Rows and columns of one block of the product: the `i32` group sums of a block
/// (`ROWS × COLS × groups`) and its weight rows stay in L2.
const ROWS: usize = 16;
const COLS: usize = 128;

/// A quantized matrix ready for the integer kernels.
pub struct IntMatrix {
    pub rows: usize,
    pub cols: usize,
    /// Columns per weight step (`cols` when there is one step per row).
    group: usize,
    /// `rows × cols` weight codes.
    codes: Vec<i8>,
    /// `rows × groups`: activation step × weight step, then 4 zeros (the scaled kernels read
    /// steps four at a time).
    scale: Vec<f32>,
    /// Per-row steps: `rows × 1` sums `128 · Σ codes` of offset kernels, else empty.
    correction: Vec<i32>,
    /// Group steps: `rows` constants `Σ_q scale · 128 · Σ codes of q` that offset kernels leave
    /// in the scaled product, else empty.
    correction_f: Vec<f32>,
    act: ActQuant,
    kernel: Kernel,
}

impl IntMatrix {
    /// Repacks `q` for the integer kernels; `None` when the activations are wider than 8 bits.
    pub fn new(q: &QuantMatrix, act: &ActQuant) -> Option<IntMatrix> {
        Self::with_kernel(q, act, None)
    }

    /// [`IntMatrix::new`] on a given kernel instead of the fastest one (tests, benchmarks).
    pub fn with_kernel(q: &QuantMatrix, act: &ActQuant, kernel: Option<Kernel>) -> Option<IntMatrix> {
        if act.bits > 8 || q.bits > 8 {
            return None;
        }
        let (rows, cols) = (q.rows, q.cols);
        let group = q.group.unwrap_or(cols).clamp(1, cols.max(1));
        let mut codes = vec![0i8; rows * cols];
        let mut row = vec![0f32; cols];
        let wpr = q.words_per_row();
        for (r, dst) in codes.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
            crate::quant::unpack_row(&q.codes[r * wpr..(r + 1) * wpr], q.bits, &mut row);
            for (d, v) in dst.iter_mut().zip(&row) {
                *d = *v as i8;
            }
        }
        // 8-bit codes reach -128 only from trained steps; a kernel for 7-bit weights is exact
        // whenever no code leaves the 7-bit range, so pick by the codes' actual span.
        let span = codes.iter().fold(0u8, |b, &c| b.max(bits_of(c)));
        // One step per row: exact `i32` sums and a float epilogue. Group steps: applied inside
        // the kernel (reducing and storing a sum per group would cost more than the products).
        let grouped = group < cols;
        let kernel = kernel.unwrap_or_else(|| if grouped { Kernel::pick_scaled(span, group) } else { Kernel::pick(span, group) });
        let mut scale: Vec<f32> = q.scales.iter().map(|s| act.step * s).collect();
        let sums = qgemm::group_sums(&codes, rows, cols, group);
        let (mut correction, mut correction_f) = (Vec::new(), Vec::new());
        if kernel.offset && grouped {
            let gpr = qgemm::groups(cols, group);
            correction_f = (0..rows)
                .map(|r| (0..gpr).map(|q| scale[r * gpr + q] as f64 * (OFFSET * sums[r * gpr + q]) as f64).sum::<f64>() as f32)
                .collect();
        } else if kernel.offset {
            correction = sums.into_iter().map(|s| OFFSET * s).collect();
        }
        scale.extend([0.0; 4]);
        Some(IntMatrix { rows, cols, group, codes, scale, correction, correction_f, act: act.clone(), kernel })
    }

    /// The kernel this matrix runs on.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The real values of rows `r0..r0 + out.len() / cols`.
    pub fn dequantize_rows(&self, r0: usize, out: &mut [f32]) {
        let gpr = qgemm::groups(self.cols, self.group);
        for (i, dst) in out.chunks_exact_mut(self.cols).enumerate() {
            let r = r0 + i;
            for (c, d) in dst.iter_mut().enumerate() {
                *d = self.codes[r * self.cols + c] as f32 * (self.scale[r * gpr + c / self.group] / self.act.step);
            }
        }
    }

    /// Quantizes `x` (`m × cols`) into activation bytes as the kernel reads them.
    fn quantize(&self, x: &[f32], m: usize, team: &Team) -> Vec<u8> {
        let k = self.cols;
        let mut out = vec![0u8; m * k];
        let flip = if self.kernel.offset { 0x80 } else { 0 };
        let dst = SendPtr(out.as_mut_ptr() as *mut f32);
        let threads = if m * k >= 1 << 15 { team.size() } else { 1 };
        let per = m.div_ceil(threads).max(1);
        let tasks = m.div_ceil(per);
        team.run(tasks, &|t| {
            let (r0, r1) = (t * per, ((t + 1) * per).min(m));
            let d = dst;
            // SAFETY: tasks write disjoint row ranges of `out`.
            let rows = unsafe { std::slice::from_raw_parts_mut((d.0 as *mut u8).add(r0 * k), (r1 - r0) * k) };
            quantize_rows(&x[r0 * k..r1 * k], k, &self.act, flip, rows);
        });
        out
    }

    /// `y = x · Wᵀ + bias`, then GELU when `gelu`; `x` is `m × cols`, `y` `m × rows`.
    pub fn forward(&self, x: &[f32], m: usize, bias: &[f32], gelu: bool, team: &Team) -> Vec<f32> {
        let n = self.rows;
        let a = self.quantize(x, m, team);
        let mut y = vec![0f32; m * n];
        let dst = SendPtr(y.as_mut_ptr());
        let row_blocks = m.div_ceil(ROWS);
        // About COLS columns per block, in a multiple of the team's size when there are few
        // rows, so that every thread gets the same work.
        let mut col_blocks = n.div_ceil(COLS);
        if row_blocks < 4 * team.size() {
            col_blocks = col_blocks.div_ceil(team.size()) * team.size();
        }
        let per = n.div_ceil(col_blocks).next_multiple_of(4);
        let col_blocks = n.div_ceil(per);
        let run = |task: usize| {
            // Column blocks outermost: a block's weight rows are reused by every row block.
            let (cb, rb) = (task / row_blocks, task % row_blocks);
            let (c0, c1) = (cb * per, ((cb + 1) * per).min(n));
            let (r0, r1) = (rb * ROWS, ((rb + 1) * ROWS).min(m));
            let d = dst;
            // SAFETY: each task writes the rows r0..r1, columns c0..c1 of y, disjoint across
            // tasks; the row stride is n.
            unsafe { self.block(&a, r0, r1, c0, c1, bias, gelu, d.0, n) };
        };
        team.run(col_blocks * row_blocks, &run);
        y
    }

    /// One block of the product and its epilogue.
    ///
    /// # Safety
    /// `y` must be valid for `r1 × n` floats, and no other thread may touch the block.
    #[allow(clippy::too_many_arguments)]
    unsafe fn block(&self, a: &[u8], r0: usize, r1: usize, c0: usize, c1: usize, bias: &[f32], gelu: bool, y: *mut f32, n: usize) {
        let k = self.cols;
        let gpr = qgemm::groups(k, self.group);
        let (m, cols) = (r1 - r0, c1 - c0);
        if self.group < k {
            let mut acc = vec![0f32; m * cols];
            let (a, b) = (&a[r0 * k..r1 * k], &self.codes[c0 * k..c1 * k]);
            self.kernel.run_scaled(a, b, &self.scale[c0 * gpr..], m, cols, k, self.group, &mut acc);
            let correction = if self.correction_f.is_empty() { None } else { Some(&self.correction_f[c0..c1]) };
            for i in 0..m {
                let out = std::slice::from_raw_parts_mut(y.add((r0 + i) * n + c0), cols);
                epilogue_scaled(&acc[i * cols..(i + 1) * cols], correction, bias.get(c0..c1), out);
                if gelu {
                    ops::gelu(out);
                }
            }
            return;
        }
        let mut acc = vec![0i32; m * cols * gpr];
        self.kernel.run(&a[r0 * k..r1 * k], &self.codes[c0 * k..c1 * k], m, cols, k, self.group, &mut acc);
        let scale = &self.scale[c0 * gpr..c1 * gpr];
        let correction = if self.correction.is_empty() { None } else { Some(&self.correction[c0 * gpr..c1 * gpr]) };
        for i in 0..m {
            let out = std::slice::from_raw_parts_mut(y.add((r0 + i) * n + c0), cols);
            epilogue(&acc[i * cols * gpr..(i + 1) * cols * gpr], scale, correction, gpr, bias.get(c0..c1), out);
            if gelu {
                ops::gelu(out);
            }
        }
    }
}

/// The bits a signed code needs.
fn bits_of(c: i8) -> u8 {
    let c = c as i32;
    (1..=8).find(|&b| c >= q_min(b) && c <= q_max(b)).unwrap_or(8).max(2)
}

multiversion! {
    /// `out[j] = bias[j] + Σ_q scale[j, q] · (acc[j, q] − correction[j, q])` for one row.
    fn epilogue(acc: &[i32], scale: &[f32], correction: Option<&[i32]>, gpr: usize, bias: Option<&[f32]>, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            let (a, s) = (&acc[j * gpr..(j + 1) * gpr], &scale[j * gpr..(j + 1) * gpr]);
            let mut v = 0f32;
            match correction {
                Some(c) => {
                    for ((a, s), c) in a.iter().zip(s).zip(&c[j * gpr..(j + 1) * gpr]) {
                        v += s * (a - c) as f32;
                    }
                }
                None => {
                    for (a, s) in a.iter().zip(s) {
                        v += s * *a as f32;
                    }
                }
            }
            *o = v + bias.map_or(0.0, |b| b[j]);
        }
    }
}

multiversion! {
    /// `out[j] = acc[j] − correction[j] + bias[j]` for one row of a scaled product.
    fn epilogue_scaled(acc: &[f32], correction: Option<&[f32]>, bias: Option<&[f32]>, out: &mut [f32]) {
        out.copy_from_slice(acc);
        if let Some(c) = correction {
            for (o, c) in out.iter_mut().zip(c) {
                *o -= c;
            }
        }
        if let Some(b) = bias {
            for (o, b) in out.iter_mut().zip(b) {
                *o += b;
            }
        }
    }
}

multiversion! {
    /// Activation codes of rows of `x` (row length `k`) as the package defines them
    /// ([`crate::quant::fake_quantize_smoothed`]: the same float operations, so the same codes),
    /// stored as bytes XOR `flip` (0x80 turns `i8` codes into `code + 128`).
    fn quantize_rows(x: &[f32], k: usize, act: &ActQuant, flip: u8, out: &mut [u8]) {
        let (lo, hi) = (q_min(act.bits) as f32, q_max(act.bits) as f32);
        let inv = 1.0 / act.step;
        match &act.smooth {
            None => {
                for (o, v) in out.iter_mut().zip(x) {
                    *o = ((*v * inv).round_ties_even().clamp(lo, hi) as i32 as i8 as u8) ^ flip;
                }
            }
            Some(sm) => {
                for (orow, xrow) in out.chunks_exact_mut(k).zip(x.chunks_exact(k)) {
                    for ((o, v), s) in orow.iter_mut().zip(xrow).zip(sm) {
                        *o = ((*v * s * inv).round_ties_even().clamp(lo, hi) as i32 as i8 as u8) ^ flip;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::linear::{Linear, Weights};
    use crate::rng::XorShift;

    fn uniform(rng: &mut XorShift, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale).collect()
    }

    /// Every kernel, width, group and activation layout gives the dequantize path's result
    /// (fake-quantized activations times dequantized weights, in float) within float rounding.
    #[test]
    fn integer_path_matches_the_dequantize_path() {
        let mut rng = XorShift::new(3);
        let team = Team::new(2).unwrap();
        for &(m, n, k) in &[(1, 5, 37), (3, 130, 64), (17, 200, 384), (40, 129, 100)] {
            let x = uniform(&mut rng, m * k, 2.0);
            let w = uniform(&mut rng, n * k, 0.3);
            let bias = uniform(&mut rng, n, 1.0);
            for bits in [2u8, 3, 4, 6, 8] {
                for group in [None, Some(16), Some(32), Some(128)] {
                    let q = QuantMatrix::quantize_rtn(&w, n, k, bits, group).unwrap();
                    for (abits, smooth) in [(8u8, false), (4, false), (8, true)] {
                        // An odd step keeps inputs off rounding ties.
                        let step = if abits == 8 { 0.015_71 } else { 0.2731 };
                        let smooth = smooth.then(|| uniform(&mut rng, k, 0.7).iter().map(|v| 1.0 + v).collect());
                        let act = ActQuant { bits: abits, step, smooth };
                        let reference = Linear::new_dequantized(n, k, Weights::Quant(q.clone()), bias.clone(), Some(act.clone()));
                        let want = reference.forward(&x, m, &team);
                        let grouped = group.is_some_and(|g| g < k);
                        let usable = |kn: &qgemm::Kernel| bits <= kn.max_bits && (!grouped || kn.scaled_form());
                        for kernel in qgemm::kernels().into_iter().filter(usable) {
                            let im = IntMatrix::with_kernel(&q, &act, Some(kernel)).unwrap();
                            let got = im.forward(&x, m, &bias, false, &team);
                            let scale = want.iter().fold(1f32, |s, v| s.max(v.abs()));
                            for (g, e) in got.iter().zip(&want) {
                                assert!((g - e).abs() <= 2e-5 * scale, "{} w{bits} {group:?} a{abits}: {g} vs {e}", kernel.name);
                            }
                            let mut fused = want.clone();
                            ops::gelu(&mut fused);
                            let got = im.forward(&x, m, &bias, true, &team);
                            for (g, e) in got.iter().zip(&fused) {
                                assert!((g - e).abs() <= 2e-5 * scale, "gelu {}: {g} vs {e}", kernel.name);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The activation codes are the package's: dequantizing them gives the fake-quantized
    /// activations bit for bit, in both byte layouts.
    #[test]
    fn activation_codes_are_the_packages() {
        let mut rng = XorShift::new(5);
        let k = 50;
        let x = uniform(&mut rng, 3 * k, 3.0);
        for act in [ActQuant::new(8, 0.013), ActQuant::new(4, 0.31), ActQuant { bits: 8, step: 0.02, smooth: Some(uniform(&mut rng, k, 1.5)) }] {
            let mut fake = x.clone();
            act.apply(&mut fake);
            for flip in [0u8, 0x80] {
                let mut codes = vec![0u8; x.len()];
                quantize_rows(&x, k, &act, flip, &mut codes);
                for (c, f) in codes.iter().zip(&fake) {
                    assert_eq!(((c ^ flip) as i8) as f32 * act.step, *f);
                }
            }
        }
    }

    #[test]
    fn kernel_choice_follows_the_codes() {
        assert_eq!(bits_of(-128), 8);
        assert_eq!(bits_of(-64), 7);
        assert_eq!(bits_of(64), 8);
        assert_eq!(bits_of(0), 2);
        // RTN 8-bit codes stay within ±127 but use the full width: a kernel exact for 8 bits.
        let w: Vec<f32> = (0..64 * 32).map(|i| ((i * 7919) % 255) as f32 - 127.0).collect();
        let q = QuantMatrix::quantize_rtn(&w, 64, 32, 8, None).unwrap();
        let im = IntMatrix::new(&q, &ActQuant::new(8, 0.1)).unwrap();
        assert!(im.kernel().max_bits == 8);
    }
}
