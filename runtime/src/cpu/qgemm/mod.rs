//! Integer matrix products for quantized activations: activation codes times `i8` weight codes,
//! accumulated exactly in `i32` per group of columns. Steps (activation step × weight step per
//! row or group), bias and activation functions are applied by the caller from the sums.
//!
//! One product, one layout, several instruction sets. With `a` the `m × k` activation bytes and
//! `b` the `n × k` weight codes (a linear layer's rows), both row-major, and `gpr = ⌈k / g⌉`
//! groups of `g` columns per row (`g = k` for one step per row):
//!
//! `out[(i·n + j)·gpr + q] = Σ_{t in group q} A(a[i·k + t]) · b[j·k + t]`
//!
//! where `A` reads the byte as `i8` (signed kernels) or as `u8` (offset kernels, whose
//! activations are stored as `code + 128`: x86's `u8 × i8` instructions need an unsigned side;
//! the caller subtracts `128 · Σ b` of the group, [`Kernel::gemm`] shows how). `scalar.rs` is
//! the reference every other kernel must match bit for bit; `x86.rs` and `arm.rs` hold the kernels
//! per instruction set, and [`kernels`] lists those this CPU can run, best first, so that
//! [`Kernel::pick`] is the dispatch and the tests can run them all.
//!
//! Matrices with a step per group of 16..128 columns would spend more time reducing and storing
//! one sum per group than multiplying; their product applies the steps inside the kernel
//! instead ([`Kernel::run_scaled`]): each group's exact integer sum is converted to `f32` in
//! SIMD lanes and multiplied by its step there, and only the row's float sum is stored.

/// Columns of `b` per pass of the SIMD kernels: each loaded activation vector is used four times
/// (the kernels' loops spell out four weight loads).
const COLS: usize = 4;

/// Activation offset of the unsigned-activation kernels.
pub const OFFSET: i32 = 128;

/// `Σ a·b` of codes the SIMD kernels leave to plain code (group tails), `a` read as `i8`.
#[allow(dead_code)] // on targets without a SIMD kernel
fn tail_i8(a: &[u8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &w)| x as i8 as i32 * w as i32).sum()
}

/// [`tail_i8`] with `a` read as `u8`.
#[allow(dead_code)] // on targets without an offset kernel
fn tail_u8(a: &[u8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &w)| x as i32 * w as i32).sum()
}

/// The innermost loop both tiled loops share: the partial sums of codes `t..end` (whole
/// steps) of `R` activation rows (offsets `rp`) and `COLS` weight rows (offsets `cp`).
#[allow(unused_macros)] // on targets without a SIMD kernel
macro_rules! region {
    ($ap:expr, $bp:expr, $rp:expr, $cp:expr, $t:expr, $end:expr, $R:expr, $step:expr,
     $zero:expr, $load_a:expr, $load_b:expr, $mac:expr) => {{
        let mut part = [[$zero; super::COLS]; $R];
        let mut t = $t;
        while t < $end {
            // The weight vectors (COLS = 4) may differ in type from the sums.
            let w = [
                $load_b($bp.add($cp[0] + t)),
                $load_b($bp.add($cp[1] + t)),
                $load_b($bp.add($cp[2] + t)),
                $load_b($bp.add($cp[3] + t)),
            ];
            for r in 0..$R {
                let x = $load_a($ap.add($rp[r] + t));
                for c in 0..super::COLS {
                    part[r][c] = $mac(part[r][c], x, w[c]);
                }
            }
            t += $step;
        }
        part
    }};
}

/// The loop the SIMD kernels share, expanded inside each `#[target_feature]` function so that
/// its instructions are inlined. Tiles of `rows` activation rows × `COLS` weight rows: each
/// loaded weight vector is used `rows` times and each activation vector `COLS` times, with
/// constant trip counts so that the accumulators stay in registers.
///
/// `load_a(p)` / `load_b(p)` read `step` codes; `mac(part, x, w)` accumulates into a partial
/// sum, which `widen(acc, part)` adds into the `i32` accumulator after at most `flush` steps
/// and at the end of each group (the `u8 × i8` kernels keep partial sums in `i16` lanes;
/// kernels that accumulate in `i32` directly pass a large `flush` and an add); `sum4(accs)`
/// reduces COLS accumulators to their lane sums; `tail` handles the codes after a group's last
/// whole step.
#[allow(unused_macros)] // on targets without a SIMD kernel
macro_rules! tiled_gemm {
    ($a:expr, $b:expr, $m:expr, $n:expr, $k:expr, $g:expr, $out:expr,
     rows: $rows:expr, step: $step:expr, flush: $flush:expr, zero: $zero:expr,
     load_a: $load_a:expr, load_b: $load_b:expr, mac: $mac:expr, widen: $widen:expr,
     sum4: $sum4:expr, tail: $tail:expr) => {{
        const R: usize = $rows;
        const C: usize = super::COLS;
        let (a, b, m, n, k, g, out): (&[u8], &[i8], usize, usize, usize, usize, &mut [i32]) =
            ($a, $b, $m, $n, $k, $g, $out);
        let gpr = k.div_ceil(g);
        let (ap, bp, op) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        // Column tiles outermost: a tile's weight rows stay in L1 while every activation row
        // passes over them.
        let mut j = 0;
        while j < n {
            let cols = C.min(n - j);
            // Offsets of the tile's columns and rows; a short last tile repeats its last column
            // or row (computed, never stored) so that every pass runs whole tiles.
            let mut cp = [0usize; C];
            for c in 0..C {
                cp[c] = (j + c.min(cols - 1)) * k;
            }
            let mut i = 0;
            while i < m {
                let rows = R.min(m - i);
                let mut rp = [0usize; R];
                for r in 0..R {
                    rp[r] = (i + r.min(rows - 1)) * k;
                }
                for q in 0..gpr {
                    let (g0, g1) = (q * g, ((q + 1) * g).min(k));
                    let body = g0 + (g1 - g0) / $step * $step;
                    let mut acc = [[$zero; C]; R];
                    let mut t = g0;
                    while t < body {
                        let end = (t + $flush * $step).min(body);
                        let part = region!(ap, bp, rp, cp, t, end, R, $step, $zero, $load_a, $load_b, $mac);
                        t = end;
                        for r in 0..R {
                            for c in 0..C {
                                acc[r][c] = $widen(acc[r][c], part[r][c]);
                            }
                        }
                    }
                    for r in 0..rows {
                        let sums: [i32; C] = $sum4(acc[r]);
                        for c in 0..cols {
                            let tail = if body < g1 {
                                $tail(&a[rp[r] + body..rp[r] + g1], &b[cp[c] + body..cp[c] + g1])
                            } else {
                                0
                            };
                            // In bounds: `Kernel::run` checked `out` holds m × n × gpr sums.
                            *op.add(((i + r) * n + j + c) * gpr + q) = sums[c] + tail;
                        }
                    }
                }
                i += rows;
            }
            j += cols;
        }
    }};
}

/// [`tiled_gemm!`] with the steps applied in the kernel ([`Kernel::run_scaled`]): the partial
/// sums of each region of `span` codes (a whole group or part of one when `g ≥ step`, one
/// step spanning `step / g` groups otherwise) are converted by `to_f32(part)` and multiplied by
/// `scale(p, idx)`, the steps of the region's lanes (`idx` maps lanes to the groups at
/// `p[0..4]`), into float accumulators reduced by `sum4`. Codes after the last whole step go
/// through `tail` per group.
#[allow(unused_macros)] // on targets without a SIMD kernel
macro_rules! tiled_gemm_scaled {
    ($a:expr, $b:expr, $s:expr, $m:expr, $n:expr, $k:expr, $g:expr, $out:expr,
     rows: $rows:expr, step: $step:expr, flush: $flush:expr, zero: $zero:expr,
     fzero: $fzero:expr, idx: $idx:expr, load_a: $load_a:expr, load_b: $load_b:expr,
     mac: $mac:expr, to_f32: $to_f32:expr, scale: $scale:expr, fma: $fma:expr,
     sum4: $sum4:expr, tail: $tail:expr) => {{
        const R: usize = $rows;
        const C: usize = super::COLS;
        let (a, b, s, m, n, k, g, out): (&[u8], &[i8], &[f32], usize, usize, usize, usize, &mut [f32]) =
            ($a, $b, $s, $m, $n, $k, $g, $out);
        let gpr = k.div_ceil(g);
        let span = if g >= $step { (g / $step).min($flush) * $step } else { $step };
        let body = k / $step * $step;
        let idx = $idx(g);
        let (ap, bp, sp, op) = (a.as_ptr(), b.as_ptr(), s.as_ptr(), out.as_mut_ptr());
        let mut j = 0;
        while j < n {
            let cols = C.min(n - j);
            let mut cp = [0usize; C];
            let mut qp = [0usize; C];
            for c in 0..C {
                cp[c] = (j + c.min(cols - 1)) * k;
                qp[c] = (j + c.min(cols - 1)) * gpr;
            }
            let mut i = 0;
            while i < m {
                let rows = R.min(m - i);
                let mut rp = [0usize; R];
                for r in 0..R {
                    rp[r] = (i + r.min(rows - 1)) * k;
                }
                let mut acc = [[$fzero; C]; R];
                let mut t = 0;
                while t < body {
                    let (start, end) = (t, (t + span).min(body));
                    let part = region!(ap, bp, rp, cp, t, end, R, $step, $zero, $load_a, $load_b, $mac);
                    t = end;
                    for c in 0..C {
                        let sv = $scale(sp.add(qp[c] + start / g), idx);
                        for r in 0..R {
                            acc[r][c] = $fma(acc[r][c], $to_f32(part[r][c]), sv);
                        }
                    }
                }
                for r in 0..rows {
                    let sums: [f32; C] = $sum4(acc[r]);
                    for c in 0..cols {
                        let mut tail = 0f32;
                        let mut t = body;
                        while t < k {
                            let e = ((t / g + 1) * g).min(k);
                            let v = $tail(&a[rp[r] + t..rp[r] + e], &b[cp[c] + t..cp[c] + e]);
                            tail += s[qp[c] + t / g] * v as f32;
                            t = e;
                        }
                        // In bounds: `Kernel::run_scaled` checked `out` holds m × n floats.
                        *op.add((i + r) * n + j + c) = sums[c] + tail;
                    }
                }
                i += rows;
            }
            j += cols;
        }
    }};
}

/// Steps of `u8 × i8` pair sums (each at most `2 · 255 · 2^(bits-1)`) that an `i16` lane holds
/// without overflow, for weight codes of `bits` bits: 32 at 2 bits, 8 at 4, 1 at 7.
#[allow(dead_code)] // on targets without such a kernel
pub const fn i16_flush(bits: u8) -> usize {
    32767 / (2 * 255 * (1 << (bits - 1)))
}

mod scalar;
#[cfg(target_arch = "aarch64")]
mod arm;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

/// The product's signature; see the module documentation.
type Run = unsafe fn(a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]);

/// The product with the steps applied ([`Kernel::run_scaled`]).
type RunScaled = unsafe fn(a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]);

/// One implementation of the product. Obtained only from [`kernels`] or [`Kernel::pick`], which
/// check that this CPU has the instructions it uses.
#[derive(Clone, Copy)]
pub struct Kernel {
    /// E.g. `avx2`, `avx512bw-u8`, `neon-dotprod`, `scalar`.
    pub name: &'static str,
    /// Activations are stored as `code + 128` (`u8`) rather than as the `i8` code.
    pub offset: bool,
    /// The widest weight codes the kernel is exact for (`u8 × i8` pair sums saturate `i16`
    /// beyond 7-bit weights).
    pub max_bits: u8,
    /// Codes per SIMD step: groups narrower than this would run entirely in the scalar tail.
    pub step: usize,
    /// # Safety
    /// Only for CPUs with the instruction set of `name` (what [`kernels`] checked), and with the
    /// slice lengths [`Kernel::run`] checks.
    run: Run,
    /// The same kernel with the steps applied, where written. Same safety conditions, with the
    /// lengths [`Kernel::run_scaled`] checks.
    scaled: Option<RunScaled>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Groups per row of `k` columns in groups of `g`.
pub fn groups(k: usize, g: usize) -> usize {
    k.div_ceil(g.max(1))
}

impl Kernel {
    /// The raw product of the module documentation: `a` holds activation bytes as this kernel
    /// reads them (`i8` codes, or `code + 128` when [`Kernel::offset`]), `g` is the group width
    /// (`k` for one group per row), `out` is `m × n × ⌈k / g⌉`.
    ///
    /// # Panics
    /// When a slice is shorter than its shape says, or `g` is 0 (a bug in the caller, never
    /// user input).
    pub fn run(&self, a: &[u8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
        assert!(g > 0 && a.len() >= m * k && b.len() >= n * k, "qgemm shapes");
        assert!(out.len() >= m * n * groups(k, g), "qgemm output");
        // SAFETY: `kernels` listed this kernel only after detecting its instruction set, and
        // the lengths were checked above.
        unsafe { (self.run)(a, b, m, n, k, g, out) }
    }

    /// `out[i·n + j] = Σ_q s[j·gpr + q] · Σ_{t in group q} A(a[i·k + t]) · b[j·k + t]`: the
    /// grouped product with the steps `s` (`n × gpr`, then at least 4 more floats: kernels read
    /// the steps four at a time) applied in the kernel, summed in `f32`. Offset kernels leave
    /// `128 · Σ_q s[j, q] · Σ_{t in q} b[j, t]` in the result for the caller to subtract.
    ///
    /// # Panics
    /// As [`Kernel::run`], and for a kernel without a scaled form ([`Kernel::pick_scaled`]
    /// gives one that has it).
    #[allow(clippy::too_many_arguments)]
    pub fn run_scaled(&self, a: &[u8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize, out: &mut [f32]) {
        assert!(g > 0 && a.len() >= m * k && b.len() >= n * k, "qgemm shapes");
        assert!(s.len() >= n * groups(k, g) + 4 && out.len() >= m * n, "qgemm steps and output");
        let f = self.scaled.expect("a kernel with a scaled form");
        // SAFETY: as in `run`; the step and output lengths were checked above.
        unsafe { f(a, b, s, m, n, k, g, out) }
    }

    /// `out[(i·n + j)·gpr + q] = Σ_{t in group q} a[i·k + t] · b[j·k + t]` for signed codes,
    /// whatever the kernel's activation layout (tests and tools; [`Kernel::run`] avoids the
    /// conversion and correction in the forward pass).
    pub fn gemm(&self, a: &[i8], b: &[i8], m: usize, n: usize, k: usize, g: usize, out: &mut [i32]) {
        let gpr = groups(k, g);
        if !self.offset {
            let bytes: Vec<u8> = a[..m * k].iter().map(|&v| v as u8).collect();
            return self.run(&bytes, b, m, n, k, g, out);
        }
        let bytes: Vec<u8> = a[..m * k].iter().map(|&v| (v as u8) ^ 0x80).collect();
        self.run(&bytes, b, m, n, k, g, out);
        let sums = group_sums(b, n, k, g);
        for row in out[..m * n * gpr].chunks_exact_mut(n * gpr) {
            for (v, s) in row.iter_mut().zip(&sums) {
                *v -= OFFSET * s;
            }
        }
    }

    /// The fastest kernel this CPU can run that is exact for `bits`-bit weight codes and
    /// vectorises groups of `g` columns.
    pub fn pick(bits: u8, g: usize) -> Kernel {
        static LIST: OnceLock<Vec<Kernel>> = OnceLock::new();
        let list = LIST.get_or_init(kernels);
        list.iter().copied().find(|kn| bits <= kn.max_bits && kn.step <= g).unwrap_or(SCALAR)
    }

    /// Whether [`Kernel::run_scaled`] is written for this kernel.
    pub fn scaled_form(&self) -> bool {
        self.scaled.is_some()
    }

    /// The fastest kernel with a scaled form ([`Kernel::run_scaled`]) exact for `bits`-bit
    /// weights; a SIMD step may span up to four groups of `g` columns.
    pub fn pick_scaled(bits: u8, g: usize) -> Kernel {
        static LIST: OnceLock<Vec<Kernel>> = OnceLock::new();
        let list = LIST.get_or_init(kernels);
        list.iter().copied().find(|kn| kn.scaled.is_some() && bits <= kn.max_bits && kn.step <= 4 * g).unwrap_or(SCALAR)
    }
}

/// `Σ b` over each group of each row of `b` (`n × ⌈k / g⌉`): the correction of offset kernels.
pub fn group_sums(b: &[i8], n: usize, k: usize, g: usize) -> Vec<i32> {
    let mut sums = Vec::with_capacity(n * groups(k, g));
    for row in b.chunks_exact(k.max(1)).take(n) {
        sums.extend(row.chunks(g.max(1)).map(|c| c.iter().map(|&v| v as i32).sum::<i32>()));
    }
    sums
}

const SCALAR: Kernel =
    Kernel { name: "scalar", offset: false, max_bits: 8, step: 1, run: scalar::gemm, scaled: Some(scalar::gemm_scaled) };

/// The kernels this CPU can run, fastest first; the portable one is always last.
pub fn kernels() -> Vec<Kernel> {
    let mut list = Vec::new();
    #[cfg(target_arch = "x86_64")]
    list.extend(x86::kernels());
    #[cfg(target_arch = "aarch64")]
    list.extend(arm::kernels());
    list.push(SCALAR);
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    fn reference(a: &[i8], b: &[i8], m: usize, n: usize, k: usize, g: usize) -> Vec<i32> {
        let gpr = groups(k, g);
        let mut out = vec![0; m * n * gpr];
        for i in 0..m {
            for j in 0..n {
                for t in 0..k {
                    out[(i * n + j) * gpr + t / g] += a[i * k + t] as i32 * b[j * k + t] as i32;
                }
            }
        }
        out
    }

    /// Random codes of `bits` bits.
    fn codes(rng: &mut XorShift, len: usize, bits: u8) -> Vec<i8> {
        (0..len).map(|_| (((rng.next_u64() & 0xff) as u8 as i8) as i32 >> (8 - bits)) as i8).collect()
    }

    #[test]
    fn every_kernel_matches_the_reference_bit_for_bit() {
        let mut rng = XorShift::new(7);
        let ks = kernels();
        assert_eq!(ks.last().map(|k| k.name), Some("scalar"));
        eprintln!("qgemm kernels on this CPU: {ks:?}");
        for &k in &[1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 384, 1536] {
            for g in [k, 16, 32, 64, 128] {
                for &(m, n) in &[(1, 1), (1, 4), (2, 7), (3, 9), (5, 16), (4, 33)] {
                    for bits in [2, 4, 7, 8] {
                        let a = codes(&mut rng, m * k, 8);
                        let b = codes(&mut rng, n * k, bits);
                        let want = reference(&a, &b, m, n, k, g);
                        for kernel in ks.iter().filter(|kn| bits <= kn.max_bits) {
                            let mut out = vec![i32::MIN; want.len()];
                            kernel.gemm(&a, &b, m, n, k, g, &mut out);
                            assert_eq!(out, want, "{} m{m} n{n} k{k} g{g} w{bits}", kernel.name);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_codes_do_not_saturate() {
        // Extreme codes of each kernel's widest weights summed 1,536 times: the pairwise and
        // fourfold sums, and the `i16` sums of the offset kernels, must stay exact (a 16-bit
        // saturating sum would clip at 32,767).
        let k = 1536;
        for kernel in kernels() {
            let (lo, hi) = (crate::quant::q_min(kernel.max_bits) as i8, crate::quant::q_max(kernel.max_bits) as i8);
            for (x, y) in [(-128i8, lo), (-128, hi), (127, hi), (127, lo), (-1, lo), (0, lo), (-128, -1)] {
                let (a, b) = (vec![x; 3 * k], vec![y; 5 * k]);
                let want = x as i32 * y as i32 * k as i32;
                let mut out = vec![0; 15];
                kernel.gemm(&a, &b, 3, 5, k, k, &mut out);
                assert!(out.iter().all(|&v| v == want), "{} {x}·{y}: {out:?}", kernel.name);
            }
        }
    }

    #[test]
    fn only_the_given_outputs_are_written() {
        let (m, n, k) = (2, 3, 20);
        let (a, b) = (vec![1u8; m * k + 5], vec![2i8; n * k + 7]);
        for kernel in kernels() {
            let mut out = vec![-7; m * n + 4];
            kernel.run(&a, &b, m, n, k, k, &mut out);
            // Byte 1 reads as 1 in both activation layouts.
            assert_eq!(&out[..m * n], &[40; 6][..], "{}", kernel.name);
            assert_eq!(&out[m * n..], &[-7; 4][..], "{}", kernel.name);
        }
    }

    /// The scaled product against the exact group sums of the reference, scaled in f64.
    #[test]
    fn scaled_kernels_match_the_reference() {
        let mut rng = XorShift::new(9);
        for &k in &[16, 37, 64, 100, 128, 384, 1536] {
            for g in [16, 32, 64, 128] {
                for &(m, n) in &[(1, 1), (2, 7), (3, 9), (5, 16), (4, 33)] {
                    for bits in [2, 4, 7, 8] {
                        let a = codes(&mut rng, m * k, 8);
                        let b = codes(&mut rng, n * k, bits);
                        let gpr = groups(k, g);
                        let mut steps: Vec<f32> = (0..n * gpr).map(|_| (rng.next_u64() % 1000) as f32 / 997.0 + 0.01).collect();
                        let sums = reference(&a, &b, m, n, k, g);
                        let bsums = group_sums(&b, n, k, g);
                        steps.extend([f32::NAN; 4]); // padding the kernels may read, never use
                        for kernel in kernels().iter().filter(|kn| kn.scaled.is_some() && bits <= kn.max_bits && kn.step <= 4 * g) {
                            let bytes: Vec<u8> = a.iter().map(|&v| v as u8 ^ if kernel.offset { 0x80 } else { 0 }).collect();
                            let mut out = vec![f32::NAN; m * n];
                            kernel.run_scaled(&bytes, &b, &steps, m, n, k, g, &mut out);
                            for i in 0..m {
                                for j in 0..n {
                                    let (mut want, mut off) = (0f64, 0f64);
                                    for q in 0..gpr {
                                        let s = steps[j * gpr + q] as f64;
                                        want += s * sums[(i * n + j) * gpr + q] as f64;
                                        off += s * OFFSET as f64 * bsums[j * gpr + q] as f64;
                                    }
                                    // The size of what the kernel sums, for the f32 rounding.
                                    let mag: f64 = (0..k)
                                        .map(|t| steps[j * gpr + t / g] as f64 * (if kernel.offset { bytes[i * k + t] as f64 } else { bytes[i * k + t] as i8 as f64 }).abs() * (b[j * k + t] as f64).abs())
                                        .sum();
                                    let got = out[i * n + j] as f64 - if kernel.offset { off } else { 0.0 };
                                    assert!((got - want).abs() <= 1e-6 * mag.max(1.0), "{} m{m} n{n} k{k} g{g} w{bits}: {got} vs {want}", kernel.name);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pick_respects_width_and_group() {
        for bits in 2..=8 {
            for g in [16, 32, 64, 128, 384] {
                let kn = Kernel::pick(bits, g);
                assert!(bits <= kn.max_bits && kn.step <= g, "{kn:?} for w{bits} g{g}");
            }
        }
    }
}
