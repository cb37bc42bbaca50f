//! Linear layers whose inputs are quantized (A8, or A4 stored as `i8`) on the integer kernels of
//! [`super::qgemm`]: weight codes of any width are unpacked once at load and repacked into the
//! kernels' panel layout with their steps (a per-tensor activation step × weight step), the
//! activations are quantized per call exactly as the package defines (smoothing and per-token
//! steps included), and the epilogue scales each row by its token's step, adds the bias and
//! applies GELU where the block asks for it.
//!
//! `y[i, j] = bias[j] + s_a[i] · Σ_q s_w[j, q] · Σ_{t in group q} a[i, t] · w[j, t]`: the
//! package's definition (fake-quantized activations times dequantized weights) with the integer
//! part computed exactly; only the float rounding of the sum differs from the dequantize path.

use super::linear::SendPtr;
use super::ops;
use super::qgemm::{FloatKernel, Kernel, Packed, PANEL};
use super::team::Team;
use crate::data::{ActQuant, ActStep};
use crate::quant::{inverse_step, q_max, q_min, QuantMatrix};

/// Activation rows per task: their codes (`ROWS × kp` bytes) stay in L1 while a panel's
/// weights pass. A multiple of every kernel's tile, so that each task starts on one.
const ROWS: usize = 32;
const _: () = assert!(ROWS.is_multiple_of(super::qgemm::MAX_TILE));
/// Panels per task when there are enough rows to split by.
const PANELS: usize = 8;

/// A quantized matrix ready for the integer kernels.
pub struct IntMatrix {
    pub rows: usize,
    pub cols: usize,
    packed: Packed,
    act: ActQuant,
    kernel: Kernel,
}

impl IntMatrix {
    /// Repacks `q` for the integer kernels; `None` when the activations are wider than 8 bits
    /// or the matrix has no step per row or per group of a multiple of 16 columns.
    pub fn new(q: &QuantMatrix, act: &ActQuant) -> Option<IntMatrix> {
        Self::with_kernel(q, act, None)
    }

    /// [`IntMatrix::new`] on a given kernel instead of the fastest one (tests, benchmarks); `None`
    /// also when that kernel is not exact for the codes.
    pub fn with_kernel(q: &QuantMatrix, act: &ActQuant, kernel: Option<Kernel>) -> Option<IntMatrix> {
        if act.bits > 8 || q.bits > 8 || q.group.is_some_and(|g| g % super::qgemm::KPAD != 0) {
            return None;
        }
        let (rows, cols) = (q.rows, q.cols);
        let codes = q.codes_i8();
        // The codes' actual range picks the kernel: RTN codes never reach −128 at 8 bits, and
        // narrower codes let more products add up in 16 bits.
        let lo = codes.iter().copied().min().unwrap_or(0);
        let hi = codes.iter().copied().max().unwrap_or(0);
        let kernel = kernel.unwrap_or_else(|| Kernel::pick(lo, hi));
        if !kernel.accepts(lo, hi) {
            return None;
        }
        // A per-tensor step folds into the weight steps; per-token steps scale rows afterwards.
        let a = act.tensor_step().unwrap_or(1.0);
        let steps: Vec<f32> = q.scales.iter().map(|s| a * s).collect();
        let packed = Packed::new(&codes, rows, cols, q.group, &steps, kernel.offset, kernel.kgroup);
        Some(IntMatrix { rows, cols, packed, act: act.clone(), kernel })
    }

    /// The kernel this matrix runs on.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The real values of rows `r0..r0 + out.len() / cols`.
    pub fn dequantize_rows(&self, r0: usize, out: &mut [f32]) {
        self.packed.dequantize_rows(r0, out);
        if let Some(step) = self.act.tensor_step() {
            let inv = 1.0 / step;
            out.iter_mut().for_each(|v| *v *= inv);
        }
    }

    /// Quantizes `x` (`m × cols`) into activation bytes in the kernel's layout (rows of the
    /// padded width with zero codes after the real columns, in whole tiles), and with per-token
    /// steps each row's step.
    fn quantize(&self, x: &[f32], m: usize, team: &Team) -> (Vec<u8>, Option<Vec<f32>>) {
        let (k, kp, kernel) = (self.cols, self.packed.kp, self.kernel);
        let flip = if kernel.offset { 0x80 } else { 0 };
        let tile_bytes = kernel.tile * kp * kernel.abytes;
        let mut out = vec![0u8; kernel.activation_len(m, kp)];
        let dst = SendPtr(out.as_mut_ptr() as *mut f32);
        let per_token = self.act.step == ActStep::Token;
        let mut row_steps = vec![0f32; if per_token { m } else { 0 }];
        let steps_dst = SendPtr(row_steps.as_mut_ptr());
        let tiles = m.div_ceil(kernel.tile);
        let threads = if m * k >= 1 << 15 { team.size() } else { 1 };
        let per = tiles.div_ceil(threads).max(1);
        team.run(tiles.div_ceil(per), &|task| {
            let mut rows = vec![flip; kernel.tile * kp];
            for b in task * per..((task + 1) * per).min(tiles) {
                let (r0, r1) = (b * kernel.tile, ((b + 1) * kernel.tile).min(m));
                let sd = steps_dst;
                let row_steps = match per_token {
                    // SAFETY: each task writes the steps of its own rows.
                    true => Some(unsafe { std::slice::from_raw_parts_mut(sd.0.add(r0), r1 - r0) }),
                    false => None,
                };
                quantize_rows(&x[r0 * k..r1 * k], k, kp, &self.act, flip, &mut rows[..(r1 - r0) * kp], row_steps);
                rows[(r1 - r0) * kp..].fill(flip);
                let d = dst;
                // SAFETY: each task writes its own tiles of `out`.
                let tile = unsafe { std::slice::from_raw_parts_mut((d.0 as *mut u8).add(b * tile_bytes), tile_bytes) };
                kernel.store_tile(&rows, kp, tile);
            }
        });
        (out, per_token.then_some(row_steps))
    }

    /// `y = x · Wᵀ + bias`, then GELU when `gelu`; `x` is `m × cols`, `y` `m × rows`.
    pub fn forward(&self, x: &[f32], m: usize, bias: &[f32], gelu: bool, team: &Team) -> Vec<f32> {
        let (a, row_steps) = self.quantize(x, m, team);
        let kp = self.packed.kp;
        panel_blocks(&self.packed, m, bias, row_steps.as_deref(), gelu, team, &|r0, r1, p0, p1, acc, width| {
            // Row blocks start on a tile (ROWS is a multiple of every tile).
            let row = kp * self.kernel.abytes;
            self.kernel.run(&a[r0 * row..], &self.packed, p0, p1, r1 - r0, acc, width)
        })
    }
}

/// A weight-only quantized matrix (float activations) with its codes unpacked to `i8` panels
/// (runs of 1): few rows are multiplied in registers ([`FloatKernel`]), many rows dequantize
/// panels of 64 rows into the float GEMM.
pub struct CodeMatrix {
    packed: Packed,
    kernel: FloatKernel,
}

/// Rows from which a weight-only product dequantizes panels for the float GEMM instead of
/// multiplying codes in registers (the conversions cost more than the dequantization there).
pub const IN_REGISTER_ROWS: usize = 64;

impl CodeMatrix {
    /// `None` for groups that are not a multiple of 16 columns.
    pub fn new(q: &QuantMatrix) -> Option<CodeMatrix> {
        if q.group.is_some_and(|g| g % super::qgemm::KPAD != 0) {
            return None;
        }
        let packed = Packed::new(&q.codes_i8(), q.rows, q.cols, q.group, &q.scales, false, 1);
        Some(CodeMatrix { packed, kernel: FloatKernel::best() })
    }

    /// Whether `m` rows go through the in-register kernel ([`CodeMatrix::forward`]).
    pub fn in_registers(m: usize) -> bool {
        m < IN_REGISTER_ROWS
    }

    /// The real values of rows `r0..r0 + out.len() / cols`.
    pub fn dequantize_rows(&self, r0: usize, out: &mut [f32]) {
        self.packed.dequantize_rows(r0, out);
    }

    /// The real values of output columns `r0..r0 + rows` (`r0` a multiple of 16), transposed:
    /// `k` rows of `ld` floats (`ld` = `rows` rounded up to whole panels), and `ld`.
    pub fn dequantize_transposed(&self, r0: usize, rows: usize, k: usize) -> (Vec<f32>, usize) {
        let (p0, p1) = (r0 / PANEL, (r0 + rows).div_ceil(PANEL));
        let ld = (p1 - p0) * PANEL;
        let mut out = vec![0f32; k * ld];
        self.packed.dequantize_panels_transposed(p0, p1, &mut out);
        (out, ld)
    }

    /// `y = x · Wᵀ + bias` (then GELU) in registers; for `m` below [`IN_REGISTER_ROWS`].
    pub fn forward(&self, x: &[f32], m: usize, bias: &[f32], gelu: bool, team: &Team) -> Vec<f32> {
        let k = self.packed.cols;
        panel_blocks(&self.packed, m, bias, None, gelu, team, &|r0, r1, p0, p1, acc, width| {
            self.kernel.run(&x[r0 * k..r1 * k], &self.packed, p0, p1, r1 - r0, acc, width)
        })
    }
}

thread_local! {
    /// Each thread's block accumulators, grown to the largest block it has computed.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A block's product: `(r0, r1, p0, p1, acc, width)` → rows `r0..r1` × panels `p0..p1` into
/// `acc` (row stride `width`).
type BlockProduct<'a> = dyn Fn(usize, usize, usize, usize, &mut [f32], usize) + Sync + 'a;

/// Runs `product(r0, r1, p0, p1, acc, width)` over blocks of rows and panels on the team (each
/// block into its own `(r1 − r0) × width` buffer), then scales row `i` by `row_scale[i]` (when
/// given), adds the bias and applies GELU into `y` (`m × rows`).
fn panel_blocks(w: &Packed, m: usize, bias: &[f32], row_scale: Option<&[f32]>, gelu: bool, team: &Team, product: &BlockProduct<'_>) -> Vec<f32> {
    let n = w.rows;
    let mut y = vec![0f32; m * n];
    let dst = SendPtr(y.as_mut_ptr());
    let panels = w.panels;
    let row_blocks = m.div_ceil(ROWS);
    // Few rows: split the panels so that every thread gets the same share.
    let mut blocks = panels.div_ceil(PANELS);
    if row_blocks < 4 * team.size() {
        blocks = blocks.div_ceil(team.size()) * team.size();
    }
    let per = panels.div_ceil(blocks.min(panels).max(1));
    let blocks = panels.div_ceil(per);
    let run = |task: usize| {
        let (pb, rb) = (task / row_blocks, task % row_blocks);
        let (p0, p1) = (pb * per, ((pb + 1) * per).min(panels));
        let (r0, r1) = (rb * ROWS, ((rb + 1) * ROWS).min(m));
        let width = (p1 - p0) * PANEL;
        SCRATCH.with_borrow_mut(|acc| {
            // Every element is written by the product before it is read: no zeroing per call.
            if acc.len() < (r1 - r0) * width {
                acc.resize((r1 - r0) * width, 0.0);
            }
            let acc = &mut acc[..(r1 - r0) * width];
            product(r0, r1, p0, p1, acc, width);
            let (c0, c1) = (p0 * PANEL, (p1 * PANEL).min(n));
            for i in 0..r1 - r0 {
                let d = dst;
                // SAFETY: each task writes rows r0..r1, columns c0..c1 of y (row stride n),
                // disjoint across tasks.
                let out = unsafe { std::slice::from_raw_parts_mut(d.0.add((r0 + i) * n + c0), c1 - c0) };
                let scale = row_scale.map_or(1.0, |s| s[r0 + i]);
                epilogue(&acc[i * width..i * width + (c1 - c0)], scale, bias.get(c0..c1), out);
                if gelu {
                    ops::gelu(out);
                }
            }
        });
    };
    team.run(blocks * row_blocks, &run);
    y
}

/// The nearest integer to `x`, ties to even, as a byte (`i8`), for `|x| <= 128`
/// ([`super::ops::ROUNDING`]). (A NaN activation gives some code, where the float path
/// propagates it: garbage either way.)
#[inline(always)]
fn code_of(x: f32) -> u8 {
    use super::ops::ROUNDING;
    ((x + ROUNDING).to_bits() as i32).wrapping_sub(ROUNDING.to_bits() as i32) as i8 as u8
}

multiversion! {
    /// `out = acc · scale + bias` for one row (`scale` is 1 but for per-token steps).
    fn epilogue(acc: &[f32], scale: f32, bias: Option<&[f32]>, out: &mut [f32]) {
        match (bias, scale == 1.0) {
            (Some(b), true) => {
                for ((o, a), b) in out.iter_mut().zip(acc).zip(b) {
                    *o = a + b;
                }
            }
            (Some(b), false) => {
                for ((o, a), b) in out.iter_mut().zip(acc).zip(b) {
                    *o = a * scale + b;
                }
            }
            (None, true) => out.copy_from_slice(acc),
            (None, false) => {
                for (o, a) in out.iter_mut().zip(acc) {
                    *o = a * scale;
                }
            }
        }
    }
}

multiversion! {
    /// Activation codes of rows of `x` (row length `k`) as the package defines them
    /// ([`crate::quant::fake_quantize_row`]: the same float operations, so the same codes),
    /// stored as bytes XOR `flip` (0x80 turns `i8` codes into `code + 128`) in rows of `kp`
    /// (zero codes after the `k` real ones); with per-token steps each row's step goes to
    /// `row_steps`.
    fn quantize_rows(x: &[f32], k: usize, kp: usize, act: &ActQuant, flip: u8, out: &mut [u8], row_steps: Option<&mut [f32]>) {
        let mut row_steps = row_steps;
        let (lo, hi) = (q_min(act.bits) as f32, q_max(act.bits) as f32);
        // Clamping to integer bounds before rounding gives the same code as after; `code_of`
        // rounds and converts without a float-to-int conversion (which does not vectorise).
        let code = |v: f32| code_of(v.clamp(lo, hi)) ^ flip;
        for (i, (orow, xrow)) in out.chunks_exact_mut(kp).zip(x.chunks_exact(k.max(1))).enumerate() {
            let step = act.row_step(xrow);
            if let Some(s) = row_steps.as_deref_mut() {
                s[i] = step;
            }
            let inv = inverse_step(step);
            match &act.smooth {
                None => {
                    for (o, v) in orow.iter_mut().zip(xrow) {
                        *o = code(*v * inv);
                    }
                }
                Some(sm) => {
                    for ((o, v), s) in orow.iter_mut().zip(xrow).zip(sm) {
                        *o = code(*v * s * inv);
                    }
                }
            }
            orow[k.min(kp)..].fill(flip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::linear::{Linear, Weights};
    use crate::rng::XorShift;

    /// Every multiple of 1/64 in [-128, 128] (ties included) rounds as `round_ties_even`.
    #[test]
    fn code_of_rounds_half_to_even() {
        for i in -128 * 64..=128 * 64 {
            let x = i as f32 / 64.0;
            let want = x.round_ties_even().clamp(-128.0, 127.0) as i32 as i8 as u8;
            assert_eq!(code_of(x.clamp(-128.0, 127.0)), want, "{x}");
        }
    }

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
                    for (abits, smooth, per_token) in [(8u8, false, false), (4, false, false), (8, true, false), (8, false, true), (4, true, true)] {
                        // An odd step keeps inputs off rounding ties.
                        let step = match (per_token, abits) {
                            (true, _) => ActStep::Token,
                            (false, 8) => ActStep::Tensor(0.015_71),
                            (false, _) => ActStep::Tensor(0.2731),
                        };
                        let smooth = smooth.then(|| uniform(&mut rng, k, 0.7).iter().map(|v| 1.0 + v).collect());
                        let act = ActQuant { bits: abits, step, smooth };
                        let reference = Linear::new_dequantized(n, k, Weights::Quant(q.clone()), bias.clone(), Some(act.clone()));
                        let want = reference.forward(&x, m, &team);
                        for kernel in super::super::qgemm::kernels() {
                            let Some(im) = IntMatrix::with_kernel(&q, &act, Some(kernel)) else { continue };
                            let got = im.forward(&x, m, &bias, false, &team);
                            let scale = want.iter().fold(1f32, |s, v| s.max(v.abs()));
                            for (g, e) in got.iter().zip(&want) {
                                assert!((g - e).abs() <= 2e-5 * scale, "{} w{bits} {group:?} a{abits} {step:?}: {g} vs {e}", kernel.name);
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
        let smooth = Some(uniform(&mut rng, k, 1.5));
        for act in [
            ActQuant::new(8, 0.013),
            ActQuant::new(4, 0.31),
            ActQuant { bits: 8, step: ActStep::Tensor(0.02), smooth: smooth.clone() },
            ActQuant::per_token(8),
            ActQuant { bits: 4, step: ActStep::Token, smooth },
        ] {
            let mut fake = x.clone();
            act.apply(&mut fake, k);
            for flip in [0u8, 0x80] {
                let mut codes = vec![0u8; x.len()];
                let mut steps = vec![0f32; 3];
                quantize_rows(&x, k, k, &act, flip, &mut codes, Some(&mut steps));
                for (i, (c, f)) in codes.iter().zip(&fake).enumerate() {
                    let step = act.tensor_step().unwrap_or(steps[i / k]);
                    assert_eq!(((c ^ flip) as i8) as f32 * step, *f);
                }
                if act.step == ActStep::Token {
                    // The largest |x · m| of each row gets the largest code.
                    for row in codes.chunks(k) {
                        let top = row.iter().map(|c| ((c ^ flip) as i8 as i32).abs()).max();
                        assert_eq!(top, Some(q_max(act.bits)));
                    }
                }
            }
        }
    }

    #[test]
    fn kernel_choice_follows_the_codes() {
        // RTN 8-bit codes stay within ±127 but use the full width: a kernel exact for 8 bits.
        let w: Vec<f32> = (0..64 * 32).map(|i| ((i * 7919) % 255) as f32 - 127.0).collect();
        let q = QuantMatrix::quantize_rtn(&w, 64, 32, 8, None).unwrap();
        let im = IntMatrix::new(&q, &ActQuant::new(8, 0.1)).unwrap();
        assert!(im.kernel().accepts(-127, 127));
        // 4-bit codes: a kernel for 4 bits (the narrowest that accepts them).
        let q = QuantMatrix::quantize_rtn(&w, 64, 32, 4, None).unwrap();
        let im = IntMatrix::new(&q, &ActQuant::new(8, 0.1)).unwrap();
        assert!(im.kernel().accepts(-8, 7));
    }
}
