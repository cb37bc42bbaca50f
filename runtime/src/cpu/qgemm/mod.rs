//! Integer matrix products for quantized activations: activation codes times weight codes,
//! summed exactly in `i32` per group of input columns, each group's sum then multiplied by its
//! step in `f32`.
//!
//! **Layout.** A linear layer's `n × k` weight codes are repacked once at load ([`Packed`]) into
//! panels of [`PANEL`] = 16 output columns. Inside a panel, input positions come in runs of
//! `kgroup` (4, or 8 for the `smmla` kernel): for each run the 16 columns' codes follow one
//! another, so one vector load holds several columns' next codes and one broadcast activation
//! run multiplies all of them. Every SIMD lane then belongs to one output column: sums never
//! need a horizontal reduction, and a group's step is a plain vector load. `k` is padded with
//! zero codes to a multiple of [`KPAD`]; groups are 16..128 columns (or the whole padded row).
//!
//! **Activations.** `m × kp` codes (`kp` the padded width) in tiles of [`Kernel::tile`] rows:
//! inside a tile the rows' runs of `kgroup` codes alternate (run 0 of every row, then run 1 of
//! every row, ...), so the rows a kernel multiplies together are one contiguous stream; a
//! tile of 1 is plain row-major. [`Kernel::store_tile`] writes this layout.
//!
//! **Product.** With `a[i, t]` the activation code of row `i`, position `t`:
//!
//! `out[i·ldo + 16·(p − p0) + c] = Σ_q s[p, q, c] · (Σ_{t in q} A(a[i, t]) · W[16p + c, t] − r[p, q, c])`
//!
//! where `A` reads a byte as `i8` (signed kernels) or as `u8` (offset kernels, whose
//! activations are stored as `code + 128` because x86's `u8 × i8` instructions need an unsigned
//! side; `r = 128 · Σ W` over the group removes the offset exactly, in integers) and `s` is
//! the activation step × the weight step. `scalar.rs` is the reference and portable fallback;
//! `x86.rs` and `arm.rs` hold one kernel per instruction set; [`kernels`] lists those this CPU
//! can run, best first, and [`Kernel::pick`] is the dispatch.

/// Output columns per panel.
pub const PANEL: usize = 16;
/// Input positions are padded (with zero codes) to a multiple of this.
pub const KPAD: usize = 16;
/// Activation offset of the unsigned-activation kernels.
pub const OFFSET: i32 = 128;
/// The largest [`Kernel::tile`]; every kernel's tile divides it, so row blocks of a multiple of
/// it start on a tile.
pub const MAX_TILE: usize = 8;

mod scalar;
#[cfg(target_arch = "aarch64")]
mod arm;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

/// Weight codes and steps of one linear layer in the layout a kernel reads.
#[derive(Clone, Debug)]
pub struct Packed {
    /// Output columns (`n`) and input positions (`k`) of the matrix.
    pub rows: usize,
    pub cols: usize,
    /// `k` padded to a multiple of [`KPAD`]: the row length of the activation bytes.
    pub kp: usize,
    /// Input positions per step (`kp` for one step per output column).
    pub group: usize,
    /// Groups per output column.
    pub gpr: usize,
    /// Positions per run of one column's codes (4 or 8; 1 for the float kernels).
    pub kgroup: usize,
    /// Panels of 16 output columns (the last one padded with zero codes and steps).
    pub panels: usize,
    /// Whether `r` holds the offset corrections (for offset kernels).
    pub offset: bool,
    codes: Vec<i8>,
    /// `panels × gpr × 16` steps.
    steps: Vec<f32>,
    /// `panels × gpr × 16` offset corrections (zeros for signed kernels).
    corr: Vec<i32>,
}

impl Packed {
    /// Repacks row-major `n × k` codes with `n × ⌈k / g⌉` steps (`group` = `g`, `None` for one
    /// step per row) for a kernel reading runs of `kgroup` positions.
    ///
    /// # Panics
    /// On inconsistent lengths, a group that is not a multiple of [`KPAD`], or `kgroup` not 1,
    /// 4 or 8 (callers pass a kernel's fields and a validated matrix).
    pub fn new(codes: &[i8], n: usize, k: usize, group: Option<usize>, steps: &[f32], offset: bool, kgroup: usize) -> Packed {
        assert!(matches!(kgroup, 1 | 4 | 8), "runs of 1, 4 or 8 codes");
        let kp = k.div_ceil(KPAD).max(1) * KPAD;
        let group = group.filter(|&g| g < k).unwrap_or(kp);
        assert!(group.is_multiple_of(KPAD), "groups of a multiple of {KPAD} columns");
        let gpr = kp.div_ceil(group);
        let steps_per_row = groups(k, group);
        assert!(codes.len() == n * k && steps.len() == n * steps_per_row, "codes and steps for {n} x {k}");
        let panels = n.div_ceil(PANEL);
        let mut p = Packed {
            rows: n,
            cols: k,
            kp,
            group,
            gpr,
            kgroup,
            panels,
            offset,
            codes: vec![0; panels * kp * PANEL],
            steps: vec![0.0; panels * gpr * PANEL],
            corr: vec![0; panels * gpr * PANEL],
        };
        for j in 0..n {
            let (pi, c) = (j / PANEL, j % PANEL);
            for t in 0..k {
                let v = codes[j * k + t];
                let at = p.code_index(pi, t, c);
                p.codes[at] = v;
                if offset {
                    p.corr[(pi * gpr + t / group) * PANEL + c] += OFFSET * v as i32;
                }
            }
            for q in 0..steps_per_row {
                p.steps[(pi * gpr + q) * PANEL + c] = steps[j * steps_per_row + q];
            }
        }
        p
    }

    /// Index in `codes` of column `c` of panel `p` at position `t`.
    fn code_index(&self, p: usize, t: usize, c: usize) -> usize {
        ((p * (self.kp / self.kgroup) + t / self.kgroup) * PANEL + c) * self.kgroup + t % self.kgroup
    }

    /// The codes of panel `p` (`kp × 16` bytes).
    fn panel(&self, p: usize) -> &[i8] {
        &self.codes[p * self.kp * PANEL..(p + 1) * self.kp * PANEL]
    }

    /// The steps and corrections of panel `p`, group `q` (16 each).
    fn group_data(&self, p: usize, q: usize) -> (&[f32], &[i32]) {
        let at = (p * self.gpr + q) * PANEL;
        (&self.steps[at..at + PANEL], &self.corr[at..at + PANEL])
    }

    /// Positions `t0..t1` of group `q`.
    fn group_range(&self, q: usize) -> (usize, usize) {
        (q * self.group, ((q + 1) * self.group).min(self.kp))
    }

    /// The real values (code × step) of output columns `r0..r0 + out.len() / cols`, row-major.
    pub fn dequantize_rows(&self, r0: usize, out: &mut [f32]) {
        let (k, kg) = (self.cols.max(1), self.kgroup);
        let rows = out.len() / k;
        let mut j = r0;
        // Whole panels' worth of columns at a time: each run's codes are read once.
        while j < r0 + rows {
            let (p, c0) = (j / PANEL, j % PANEL);
            let c1 = PANEL.min(c0 + r0 + rows - j);
            let codes = self.panel(p);
            for q in 0..self.gpr {
                let (t0, t1) = (q * self.group, ((q + 1) * self.group).min(self.cols));
                let steps = &self.steps[(p * self.gpr + q) * PANEL..][..PANEL];
                for t in t0..t1 {
                    let run = &codes[(t / kg) * PANEL * kg + t % kg..];
                    for c in c0..c1 {
                        out[(j - r0 + c - c0) * k + t] = run[c * kg] as f32 * steps[c];
                    }
                }
            }
            j += c1 - c0;
        }
    }

    /// The real values of panels `p0..p1` transposed, for weights packed with runs of 1: row
    /// `t < cols` of `out` holds the panels' 16 columns each (`16 · (p1 − p0)` floats). Every
    /// position's 16 codes are contiguous here, so this is a vector convert and multiply.
    ///
    /// # Panics
    /// When the weights are not packed with runs of 1 or `out` is too short.
    pub fn dequantize_panels_transposed(&self, p0: usize, p1: usize, out: &mut [f32]) {
        assert!(self.kgroup == 1 && p0 <= p1 && p1 <= self.panels, "panels of runs of 1");
        let w = PANEL * (p1 - p0);
        assert!(out.len() >= self.cols * w, "output for {} x {w}", self.cols);
        for p in p0..p1 {
            let codes = self.panel(p);
            for q in 0..self.gpr {
                let (t0, t1) = (q * self.group, ((q + 1) * self.group).min(self.cols));
                let (steps, _) = self.group_data(p, q);
                if t0 < t1 {
                    scale_codes(&codes[t0 * PANEL..t1 * PANEL], steps, &mut out[t0 * w + (p - p0) * PANEL..], w);
                }
            }
        }
    }
}

multiversion! {
    /// Rows of 16 codes times 16 steps, into the first 16 floats of rows of `out` (stride `w`).
    fn scale_codes(codes: &[i8], steps: &[f32], out: &mut [f32], w: usize) {
        for (src, dst) in codes.chunks_exact(PANEL).zip(out.chunks_mut(w)) {
            for ((d, &c), &s) in dst[..PANEL].iter_mut().zip(src).zip(steps) {
                *d = c as f32 * s;
            }
        }
    }
}

/// Pointers to the activation rows of a tile of `R` rows from row `i` (rows of `kp` bytes or
/// floats); a short last tile repeats its last row, computed but never stored.
#[allow(dead_code)] // on targets without a SIMD kernel
fn tile_rows<T, const R: usize>(a: &[T], kp: usize, i: usize, rows: usize) -> [*const T; R] {
    std::array::from_fn(|r| a[(i + r.min(rows - 1)) * kp..].as_ptr())
}

/// Groups per row of `k` columns in groups of `g`.
pub fn groups(k: usize, g: usize) -> usize {
    k.div_ceil(g.max(1))
}

/// The product's signature; see the module documentation.
type Run = unsafe fn(a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize);

/// One implementation of the product. Obtained only from [`kernels`] or [`Kernel::pick`], which
/// check that this CPU has the instructions it uses.
#[derive(Clone, Copy)]
pub struct Kernel {
    /// E.g. `avx512bw-u8w4`, `neon-dotprod`, `scalar`.
    pub name: &'static str,
    /// Activations are stored as `code + 128` (`u8`) rather than as the `i8` code.
    pub offset: bool,
    /// The widest weight codes the kernel is exact for, the most negative included (`u8 × i8`
    /// pair sums saturate `i16` beyond 7-bit weights).
    pub max_bits: u8,
    /// Positions per run in the packed layout the kernel reads (4 or 8).
    pub kgroup: usize,
    /// Bytes per activation code: 1, or 2 for kernels that read codes stored as `i16`
    /// (little-endian; see [`Kernel::store_tile`]).
    pub abytes: usize,
    /// Activation rows per tile of the interleaved layout (module documentation): the rows the
    /// kernel multiplies at once, 1 for plain rows.
    pub tile: usize,
    run: Run,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Kernel {
    /// The product of the module documentation over panels `p0..p1`, into `out` with row
    /// stride `ldo` (`16 · (p1 − p0)` columns per row are written; padding columns of the last
    /// panel get zeros). `a` holds `m` rows of `w.kp` activation codes as this kernel reads
    /// them ([`Kernel::offset`], [`Kernel::abytes`], [`Kernel::tile`]), the last tile whole.
    ///
    /// # Panics
    /// When a slice is shorter than its shape says or `w` was packed for another kernel (a bug
    /// in the caller, never user input).
    #[allow(clippy::too_many_arguments)]
    pub fn run(&self, a: &[u8], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
        assert!(w.kgroup == self.kgroup && w.offset == self.offset, "weights packed for {}", self.name);
        assert!(p0 <= p1 && p1 <= w.panels && a.len() >= self.activation_len(m, w.kp), "qgemm shapes");
        let width = (p1 - p0) * PANEL;
        assert!(m == 0 || (ldo >= width && out.len() >= (m - 1) * ldo + width), "qgemm output");
        // SAFETY: `kernels` listed this kernel only after detecting its instruction set, and
        // the lengths were checked above.
        unsafe { (self.run)(a, w, p0, p1, m, out, ldo) }
    }

    /// The fastest kernel this CPU can run that is exact for codes within `lo..=hi`.
    pub fn pick(lo: i8, hi: i8) -> Kernel {
        static LIST: OnceLock<Vec<Kernel>> = OnceLock::new();
        LIST.get_or_init(kernels).iter().copied().find(|kn| kn.accepts(lo, hi)).unwrap_or(SCALAR)
    }

    /// Whether the kernel is exact for codes within `lo..=hi`.
    pub fn accepts(&self, lo: i8, hi: i8) -> bool {
        lo as i32 >= crate::quant::q_min(self.max_bits) && hi as i32 <= crate::quant::q_max(self.max_bits)
    }

    /// Bytes of `m` rows of `kp` activation codes in this kernel's layout (whole tiles).
    pub fn activation_len(&self, m: usize, kp: usize) -> usize {
        m.next_multiple_of(self.tile) * kp * self.abytes
    }

    /// Writes one tile of activation bytes (`tile` rows of `kp` codes, row-major, already
    /// offset for offset kernels) into `out` (the tile's `tile · kp · abytes` bytes) in this
    /// kernel's layout: runs of rows interleaved, each code as a little-endian `i16` for
    /// `abytes` 2.
    ///
    /// # Panics
    /// When the lengths do not match a tile.
    pub fn store_tile(&self, rows: &[u8], kp: usize, out: &mut [u8]) {
        let (tile, kg, ab) = (self.tile, self.kgroup, self.abytes);
        assert!(rows.len() == tile * kp && out.len() == tile * kp * ab && kp.is_multiple_of(kg), "one tile");
        debug_assert!(ab == 1 || !self.offset, "wide kernels read signed codes");
        match (kg, ab) {
            (4, 1) => store_runs::<4, 4>(rows, kp, tile, out, |b| b),
            (4, 2) => store_runs::<4, 8>(rows, kp, tile, out, widen::<4, 8>),
            (8, 1) => store_runs::<8, 8>(rows, kp, tile, out, |b| b),
            _ => unreachable!("runs of 4 or 8 codes, 1 or 2 bytes each"),
        }
    }

    /// Activation bytes of `x` codes for this kernel: `m` rows of `k` codes, zero codes after
    /// them up to `kp` and in the last tile's missing rows.
    pub fn activation_layout(&self, codes: &[i8], m: usize, k: usize, kp: usize) -> Vec<u8> {
        let flip = if self.offset { 0x80 } else { 0 };
        let mut out = vec![0; self.activation_len(m, kp)];
        let mut rows = vec![flip; self.tile * kp];
        for (b, dst) in out.chunks_exact_mut(self.tile * kp * self.abytes).enumerate() {
            rows.fill(flip);
            for r in 0..self.tile.min(m - b * self.tile) {
                let src = &codes[(b * self.tile + r) * k..][..k];
                for (d, s) in rows[r * kp..].iter_mut().zip(src) {
                    *d = *s as u8 ^ flip;
                }
            }
            self.store_tile(&rows, kp, dst);
        }
        out
    }
}

/// Moves runs of `KG` codes of `tile` rows into their interleaved places (runs of `B` bytes
/// after `conv`); fixed-size runs, so that each is a register move rather than a `memcpy` call.
fn store_runs<const KG: usize, const B: usize>(rows: &[u8], kp: usize, tile: usize, out: &mut [u8], conv: impl Fn([u8; KG]) -> [u8; B]) {
    for (r, row) in rows.chunks_exact(kp).enumerate() {
        // `kp` is a multiple of `KG` (the padded depth), so there is no remainder.
        for (j, run) in row.as_chunks::<KG>().0.iter().enumerate() {
            let at = (j * tile + r) * B;
            out[at..at + B].copy_from_slice(&conv(*run));
        }
    }
}

/// Codes (`i8`) as little-endian `i16`s.
fn widen<const KG: usize, const B: usize>(run: [u8; KG]) -> [u8; B] {
    std::array::from_fn(|i| (run[i / 2] as i8 as i16).to_le_bytes()[i % 2])
}

/// The float product's signature; see [`FloatKernel::run`].
type RunFloat = unsafe fn(x: &[f32], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize);

/// A product of float activations by packed weight codes (runs of 1), dequantizing in
/// registers: `out[i·ldo + 16·(p − p0) + c] = Σ_q s[p, q, c] · Σ_{t in q, t < k} x[i·k + t] · W[16p + c, t]`.
/// For weight-only packages at few tokens, where reading the codes beats reading floats.
#[derive(Clone, Copy)]
pub struct FloatKernel {
    pub name: &'static str,
    run: RunFloat,
}

impl std::fmt::Debug for FloatKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl FloatKernel {
    /// The product over panels `p0..p1` of `w` (packed with runs of 1, no offset) for `m` rows
    /// of `x` (`w.cols` floats each), into `out` with row stride `ldo`.
    ///
    /// # Panics
    /// As [`Kernel::run`].
    #[allow(clippy::too_many_arguments)]
    pub fn run(&self, x: &[f32], w: &Packed, p0: usize, p1: usize, m: usize, out: &mut [f32], ldo: usize) {
        assert!(w.kgroup == 1 && !w.offset, "weights packed for {}", self.name);
        assert!(p0 <= p1 && p1 <= w.panels && x.len() >= m * w.cols, "float qgemm shapes");
        let width = (p1 - p0) * PANEL;
        assert!(m == 0 || (ldo >= width && out.len() >= (m - 1) * ldo + width), "float qgemm output");
        // SAFETY: as in `Kernel::run`.
        unsafe { (self.run)(x, w, p0, p1, m, out, ldo) }
    }

    /// The fastest float kernel this CPU can run.
    pub fn best() -> FloatKernel {
        static BEST: OnceLock<FloatKernel> = OnceLock::new();
        *BEST.get_or_init(|| float_kernels()[0])
    }
}

/// The float kernels this CPU can run, fastest first; the portable one is always last.
pub fn float_kernels() -> Vec<FloatKernel> {
    let mut list = Vec::new();
    #[cfg(target_arch = "x86_64")]
    list.extend(x86::float_kernels());
    #[cfg(target_arch = "aarch64")]
    list.extend(arm::float_kernels());
    list.push(FloatKernel { name: "scalar", run: scalar::gemm_float });
    list
}

const SCALAR: Kernel = Kernel { name: "scalar", offset: false, max_bits: 8, kgroup: 4, abytes: 1, tile: 1, run: scalar::gemm };

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

/// Steps of `u8 × i8` pair sums (each at most `2 · 255 · 2^(bits-1)`) that an `i16` lane holds
/// without overflow, for weight codes of `bits` bits: 32 at 2 bits, 8 at 4, 1 at 7.
#[allow(dead_code)] // on targets without such a kernel
pub const fn i16_flush(bits: u8) -> usize {
    32767 / (2 * 255 * (1 << (bits - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    /// Random codes of `bits` bits.
    fn codes(rng: &mut XorShift, len: usize, bits: u8) -> Vec<i8> {
        (0..len).map(|_| (((rng.next_u64() & 0xff) as u8 as i8) as i32 >> (8 - bits)) as i8).collect()
    }

    /// The product in f64 from the row-major codes and steps, independent of the packing.
    fn reference(a: &[i8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, g: usize) -> Vec<f64> {
        let gpr = groups(k, g);
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut sums = vec![0i64; gpr];
                for t in 0..k {
                    sums[t / g] += a[i * k + t] as i64 * b[j * k + t] as i64;
                }
                out[i * n + j] = sums.iter().enumerate().map(|(q, &v)| s[j * gpr + q] as f64 * v as f64).sum();
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn run(kernel: &Kernel, a: &[i8], b: &[i8], s: &[f32], m: usize, n: usize, k: usize, group: Option<usize>) -> Vec<f32> {
        let w = Packed::new(b, n, k, group, s, kernel.offset, kernel.kgroup);
        let bytes = kernel.activation_layout(a, m, k, w.kp);
        let ldo = w.panels * PANEL + 3;
        let mut out = vec![f32::NAN; m * ldo];
        kernel.run(&bytes, &w, 0, w.panels, m, &mut out, ldo);
        for row in out.chunks(ldo) {
            assert!(row[w.panels * PANEL..].iter().all(|v| v.is_nan()), "{} wrote past its columns", kernel.name);
        }
        (0..m * n).map(|x| out[(x / n) * ldo + x % n]).collect()
    }

    /// With unit steps every sum is an integer below 2^24: the kernels must give the exact
    /// sums (the integer accumulators and the f32 group sums are exact), for every shape,
    /// group and weight width each kernel accepts.
    #[test]
    fn every_kernel_gives_the_exact_sums() {
        let mut rng = XorShift::new(7);
        let ks = kernels();
        assert_eq!(ks.last().map(|k| k.name), Some("scalar"));
        eprintln!("qgemm kernels on this CPU: {ks:?}");
        for &k in &[1, 3, 15, 16, 17, 33, 64, 100, 128, 384, 1000] {
            for group in [None, Some(16), Some(32), Some(64), Some(128)] {
                let g = group.filter(|&g| g < k).unwrap_or(k);
                for &(m, n) in &[(1, 1), (2, 7), (3, 17), (5, 16), (6, 33), (19, 18)] {
                    for bits in [2, 4, 7, 8] {
                        let a = codes(&mut rng, m * k, 8);
                        let b = codes(&mut rng, n * k, bits);
                        let (lo, hi) = (b.iter().copied().min().unwrap_or(0), b.iter().copied().max().unwrap_or(0));
                        let s = vec![1.0f32; n * groups(k, g)];
                        let want = reference(&a, &b, &s, m, n, k, g);
                        for kernel in ks.iter().filter(|kn| kn.accepts(lo, hi)) {
                            let got = run(kernel, &a, &b, &s, m, n, k, group);
                            for (x, (v, e)) in got.iter().zip(&want).enumerate() {
                                assert_eq!(*v as f64, *e, "{} m{m} n{n} k{k} {group:?} w{bits} at {x}", kernel.name);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Steps per column and group, against the f64 reference within f32 rounding.
    #[test]
    fn every_kernel_applies_the_steps() {
        let mut rng = XorShift::new(9);
        for &k in &[37, 128, 384] {
            for group in [None, Some(16), Some(32), Some(128)] {
                let g = group.filter(|&g| g < k).unwrap_or(k);
                let (m, n) = (5, 35);
                for bits in [4, 8] {
                    let a = codes(&mut rng, m * k, 8);
                    let b = codes(&mut rng, n * k, bits);
                    let (lo, hi) = (b.iter().copied().min().unwrap_or(0), b.iter().copied().max().unwrap_or(0));
                    let s: Vec<f32> = (0..n * groups(k, g)).map(|_| (rng.next_u64() % 1000) as f32 / 997.0 + 0.01).collect();
                    let want = reference(&a, &b, &s, m, n, k, g);
                    for kernel in kernels().iter().filter(|kn| kn.accepts(lo, hi)) {
                        let got = run(kernel, &a, &b, &s, m, n, k, group);
                        for (x, (v, e)) in got.iter().zip(&want).enumerate() {
                            let (i, j) = (x / n, x % n);
                            // The size of what is summed in f32: the group sums times steps.
                            let mag: f64 = (0..k).map(|t| (s[j * groups(k, g) + t / g] as f64 * a[i * k + t] as f64 * b[j * k + t] as f64).abs()).sum::<f64>() + 1.0;
                            assert!((*v as f64 - e).abs() <= 1e-6 * mag, "{} k{k} {group:?} w{bits}: {v} vs {e}", kernel.name);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_codes_do_not_saturate() {
        // Extreme codes of each kernel's widest weights summed 1,024 times (up to 2^24, still
        // exact in f32): the pairwise and fourfold sums, and the `i16` sums of the offset
        // kernels, must stay exact (a 16-bit saturating sum would clip at 32,767).
        let k = 1024;
        for kernel in kernels() {
            let lo = crate::quant::q_min(kernel.max_bits) as i8;
            let hi = crate::quant::q_max(kernel.max_bits) as i8;
            for (x, y) in [(-128i8, lo), (-128, hi), (127, hi), (127, lo), (-1, lo), (0, lo), (-128, -1)] {
                let (a, b) = (vec![x; 3 * k], vec![y; 18 * k]);
                let want = x as f32 * y as f32 * k as f32;
                for group in [None, Some(32)] {
                    let s = vec![1.0f32; 18 * groups(k, group.unwrap_or(k))];
                    let got = run(&kernel, &a, &b, &s, 3, 18, k, group);
                    assert!(got.iter().all(|&v| v == want), "{} {x}·{y} {group:?}: {got:?}", kernel.name);
                }
            }
        }
    }

    /// The float kernels against the f64 reference, every width, group and ragged shape.
    #[test]
    fn float_kernels_match_the_reference() {
        let mut rng = XorShift::new(13);
        for &k in &[1, 17, 64, 100, 384] {
            for group in [None, Some(16), Some(32), Some(128)] {
                let g = group.filter(|&g| g < k).unwrap_or(k);
                for &(m, n) in &[(1, 1), (3, 17), (9, 33)] {
                    let x: Vec<f32> = (0..m * k).map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0).collect();
                    let b = codes(&mut rng, n * k, 8);
                    let s: Vec<f32> = (0..n * groups(k, g)).map(|_| (rng.next_u64() % 1000) as f32 / 997.0 + 0.01).collect();
                    let w = Packed::new(&b, n, k, group, &s, false, 1);
                    for kernel in float_kernels() {
                        let ldo = w.panels * PANEL + 1;
                        let mut out = vec![f32::NAN; m * ldo];
                        kernel.run(&x, &w, 0, w.panels, m, &mut out, ldo);
                        for i in 0..m {
                            for j in 0..n {
                                let terms = (0..k).map(|t| s[j * groups(k, g) + t / g] as f64 * x[i * k + t] as f64 * b[j * k + t] as f64);
                                let (want, mag) = terms.fold((0f64, 0f64), |(a, m), v| (a + v, m + v.abs()));
                                let got = out[i * ldo + j] as f64;
                                assert!((got - want).abs() <= 1e-6 * (mag + 1.0), "{} k{k} {group:?} m{m} n{n}: {got} vs {want}", kernel.name);
                            }
                            assert!(out[i * ldo + w.panels * PANEL].is_nan(), "{} wrote past its columns", kernel.name);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tiles_divide_the_largest() {
        for kernel in kernels() {
            assert!(MAX_TILE.is_multiple_of(kernel.tile), "{}: tile {}", kernel.name, kernel.tile);
        }
    }

    #[test]
    fn pick_follows_the_code_range() {
        assert!(Kernel::pick(-8, 7).accepts(-8, 7));
        assert!(Kernel::pick(-128, 127).accepts(-128, 127));
        assert!(Kernel::pick(-127, 127).accepts(-127, 127));
        assert!(SCALAR.accepts(-128, 127));
    }
}
