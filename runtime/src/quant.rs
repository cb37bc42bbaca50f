//! Low-bit weight codes: packing, unpacking, round-to-nearest quantization and dequantization.
//!
//! Layout (FORMAT.md, "Quantized matrices"): a `rows × cols` matrix of signed `bits`-bit codes
//! (two's complement, `bits` in 2..=8) is stored row by row. Each row occupies
//! `ceil(cols / codes_per_word(bits))` little-endian `u32` words; code `j` of a row lives in word
//! `j / cpw` at bit offset `(j % cpw) * bits`, with `cpw = 32 / bits` (codes never straddle
//! words, so 3-, 5-, 6- and 7-bit rows leave the top bits of each word zero). Step sizes
//! (LSQ scales) are `f32`, one per row (`group = None`) or one per `group` consecutive columns of
//! a row. The real value of code `c` is `c * step`.

use crate::error::{Error, Result};

/// Bit widths the format accepts for weight codes.
pub const MIN_BITS: u8 = 2;
/// Bit widths the format accepts for weight codes.
pub const MAX_BITS: u8 = 8;
/// Group sizes (columns per step size) the format accepts besides per-row steps.
pub const GROUP_SIZES: [usize; 4] = [16, 32, 64, 128];

/// How many codes of `bits` bits one `u32` word holds.
pub fn codes_per_word(bits: u8) -> usize {
    32 / bits as usize
}

/// Number of `u32` words one row of `cols` codes occupies.
pub fn words_per_row(cols: usize, bits: u8) -> usize {
    cols.div_ceil(codes_per_word(bits))
}

/// The most negative code, `-Q_N = -2^(bits-1)`.
pub fn q_min(bits: u8) -> i32 {
    -(1i32 << (bits - 1))
}

/// The most positive code, `Q_P = 2^(bits-1) - 1`.
pub fn q_max(bits: u8) -> i32 {
    (1i32 << (bits - 1)) - 1
}

/// Checks a bit width for weight codes.
pub fn check_bits(bits: u8) -> Result<()> {
    if (MIN_BITS..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("{bits}-bit codes are not supported; choose a width from {MIN_BITS} to {MAX_BITS}")))
    }
}

/// Checks a group size (`None` = one step per row).
pub fn check_group(group: Option<usize>) -> Result<()> {
    match group {
        None => Ok(()),
        Some(g) if GROUP_SIZES.contains(&g) => Ok(()),
        Some(g) => Err(Error::InvalidArgument(format!("group size {g} is not supported; choose 16, 32, 64 or 128, or per-channel steps"))),
    }
}

/// A matrix of packed signed codes with step sizes per row or per group of columns.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantMatrix {
    pub rows: usize,
    pub cols: usize,
    pub bits: u8,
    /// Columns per step size; `None` = one step per row (per output channel).
    pub group: Option<usize>,
    /// `rows * words_per_row(cols, bits)` words.
    pub codes: Vec<u32>,
    /// `rows * groups_per_row()` step sizes.
    pub scales: Vec<f32>,
}

impl QuantMatrix {
    /// Step sizes per row.
    pub fn groups_per_row(&self) -> usize {
        groups_per_row(self.cols, self.group)
    }

    /// Words per row.
    pub fn words_per_row(&self) -> usize {
        words_per_row(self.cols, self.bits)
    }

    /// Checks that the code and scale buffers match the declared shape.
    pub fn validate(&self, name: &str) -> Result<()> {
        check_bits(self.bits).map_err(|e| Error::tensor(name, e.to_string()))?;
        check_group(self.group).map_err(|e| Error::tensor(name, e.to_string()))?;
        let words = self.rows * self.words_per_row();
        if self.codes.len() != words {
            return Err(Error::tensor(
                name,
                format!("{} code words for a {}x{} {}-bit matrix; expected {words}", self.codes.len(), self.rows, self.cols, self.bits),
            ));
        }
        let steps = self.rows * self.groups_per_row();
        if self.scales.len() != steps {
            return Err(Error::tensor(name, format!("{} step sizes; expected {steps}", self.scales.len())));
        }
        if let Some(bad) = self.scales.iter().find(|s| !s.is_finite()) {
            return Err(Error::tensor(name, format!("step size {bad} is not finite")));
        }
        Ok(())
    }

    /// Quantizes a row-major `rows × cols` float matrix by round-to-nearest with absmax steps:
    /// `step = max|w| / Q_P` over each row or group, `code = clamp(round(w / step), -Q_N, Q_P)`.
    pub fn quantize_rtn(weights: &[f32], rows: usize, cols: usize, bits: u8, group: Option<usize>) -> Result<Self> {
        check_bits(bits)?;
        check_group(group)?;
        if weights.len() != rows * cols {
            return Err(Error::InvalidArgument(format!("{} weights for a {rows}x{cols} matrix", weights.len())));
        }
        let g = group.unwrap_or(cols).max(1);
        let gpr = groups_per_row(cols, group);
        let mut scales = Vec::with_capacity(rows * gpr);
        for row in weights.chunks(cols.max(1)).take(rows) {
            for chunk in row.chunks(g) {
                let absmax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
                scales.push(absmax / q_max(bits) as f32);
            }
        }
        Self::from_steps(weights, rows, cols, bits, group, scales)
    }

    /// Quantizes with given step sizes: `code = clamp(round_half_even(w / step), -Q_N, Q_P)`
    /// (a zero step gives code 0).
    pub fn from_steps(weights: &[f32], rows: usize, cols: usize, bits: u8, group: Option<usize>, scales: Vec<f32>) -> Result<Self> {
        check_bits(bits)?;
        check_group(group)?;
        let gpr = groups_per_row(cols, group);
        if weights.len() != rows * cols || scales.len() != rows * gpr {
            return Err(Error::InvalidArgument(format!(
                "{} weights and {} steps for a {rows}x{cols} matrix with {gpr} steps per row",
                weights.len(),
                scales.len()
            )));
        }
        let g = group.unwrap_or(cols).max(1);
        let (lo, hi) = (q_min(bits) as f32, q_max(bits) as f32);
        let wpr = words_per_row(cols, bits);
        let mut codes = vec![0u32; rows * wpr];
        let mut row_codes = vec![0i32; cols];
        for r in 0..rows {
            for (c, code) in row_codes.iter_mut().enumerate() {
                let s = scales[r * gpr + c / g];
                *code = if s > 0.0 { (weights[r * cols + c] / s).round_ties_even().clamp(lo, hi) as i32 } else { 0 };
            }
            pack_row(&row_codes, bits, &mut codes[r * wpr..(r + 1) * wpr]);
        }
        Ok(QuantMatrix { rows, cols, bits, group, codes, scales })
    }

    /// Writes the real values of rows `r0..r0 + out.len() / cols` into `out` (row-major).
    pub fn dequantize_rows(&self, r0: usize, out: &mut [f32]) {
        let (cols, wpr, gpr) = (self.cols, self.words_per_row(), self.groups_per_row());
        let g = self.group.unwrap_or(cols).max(1);
        for (i, dst) in out.chunks_exact_mut(cols).enumerate() {
            let r = r0 + i;
            unpack_row(&self.codes[r * wpr..(r + 1) * wpr], self.bits, dst);
            scale_groups(dst, g, &self.scales[r * gpr..(r + 1) * gpr]);
        }
    }

    /// All codes as `i8`, row-major `rows × cols` (the integer kernels repack them).
    pub fn codes_i8(&self) -> Vec<i8> {
        let mut codes = vec![0i8; self.rows * self.cols];
        let mut row = vec![0f32; self.cols];
        let wpr = self.words_per_row();
        for (r, dst) in codes.chunks_exact_mut(self.cols.max(1)).enumerate().take(self.rows) {
            unpack_row(&self.codes[r * wpr..(r + 1) * wpr], self.bits, &mut row);
            for (d, v) in dst.iter_mut().zip(&row) {
                *d = *v as i8;
            }
        }
        codes
    }

    /// The whole matrix as floats (row-major).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        self.dequantize_rows(0, &mut out);
        out
    }
}

/// Step sizes per row for `cols` columns.
pub fn groups_per_row(cols: usize, group: Option<usize>) -> usize {
    match group {
        None => 1,
        Some(g) => cols.div_ceil(g),
    }
}

/// Packs signed codes (each within the `bits`-bit range) into `out` words.
pub fn pack_row(codes: &[i32], bits: u8, out: &mut [u32]) {
    let cpw = codes_per_word(bits);
    let mask = (1u32 << bits) - 1;
    for (w, chunk) in out.iter_mut().zip(codes.chunks(cpw)) {
        let mut word = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            word |= ((c as u32) & mask) << (i * bits as usize);
        }
        *w = word;
    }
}

/// Unpacks `out.len()` signed codes of `bits` bits, as floats.
pub fn unpack_row(words: &[u32], bits: u8, out: &mut [f32]) {
    match bits {
        2 => unpack_b2(words, out),
        3 => unpack_b3(words, out),
        4 => unpack_b4(words, out),
        5 => unpack_b5(words, out),
        6 => unpack_b6(words, out),
        7 => unpack_b7(words, out),
        _ => unpack_b8(words, out),
    }
}

/// The unpacking loop for a compile-time width: the shifts are constants, so each word's codes
/// become one vector shift, convert and store.
#[inline(always)]
fn unpack_const<const B: u32>(words: &[u32], out: &mut [f32]) {
    let cpw = (32 / B) as usize;
    let done = out.len() / cpw;
    let mut chunks = out.chunks_exact_mut(cpw);
    for (dst, &word) in (&mut chunks).zip(words) {
        for (i, v) in dst.iter_mut().enumerate() {
            // Move the code to the top of the word, then shift back arithmetically: sign extension.
            *v = (((word << (32 - B - i as u32 * B)) as i32) >> (32 - B)) as f32;
        }
    }
    let rest = chunks.into_remainder();
    if let Some(&word) = words.get(done) {
        for (i, v) in rest.iter_mut().enumerate() {
            *v = (((word << (32 - B - i as u32 * B)) as i32) >> (32 - B)) as f32;
        }
    }
}

multiversion! { fn unpack_b2(words: &[u32], out: &mut [f32]) { unpack_const::<2>(words, out) } }
multiversion! { fn unpack_b3(words: &[u32], out: &mut [f32]) { unpack_const::<3>(words, out) } }
multiversion! { fn unpack_b4(words: &[u32], out: &mut [f32]) { unpack_const::<4>(words, out) } }
multiversion! { fn unpack_b5(words: &[u32], out: &mut [f32]) { unpack_const::<5>(words, out) } }
multiversion! { fn unpack_b6(words: &[u32], out: &mut [f32]) { unpack_const::<6>(words, out) } }
multiversion! { fn unpack_b7(words: &[u32], out: &mut [f32]) { unpack_const::<7>(words, out) } }
multiversion! { fn unpack_b8(words: &[u32], out: &mut [f32]) { unpack_const::<8>(words, out) } }

multiversion! {
    /// Multiplies each `group`-long run of `x` by its step.
    fn scale_groups(x: &mut [f32], group: usize, steps: &[f32]) {
        for (chunk, s) in x.chunks_mut(group).zip(steps) {
            for v in chunk {
                *v *= s;
            }
        }
    }
}

/// Unpacks signed codes as integers (tests, tools).
pub fn unpack_codes(words: &[u32], bits: u8, n: usize) -> Vec<i32> {
    let mut f = vec![0f32; n];
    unpack_row(words, bits, &mut f);
    f.into_iter().map(|v| v as i32).collect()
}

/// LSQ fake quantization of one activation row after multiplying column `j` by `smooth[j]`:
/// `x <- clamp(round_half_even((x · m) · (1 / step)), -Q_N, Q_P) * step` (the reciprocal is
/// rounded to f32 first; every backend computes it this way so that codes agree bit for bit).
/// A zero step (a per-token step of an all-zero row) gives zeros.
pub fn fake_quantize_row(x: &mut [f32], smooth: Option<&[f32]>, step: f32, bits: u8) {
    let (lo, hi) = (q_min(bits) as f32, q_max(bits) as f32);
    let inv = inverse_step(step);
    match smooth {
        None => x.iter_mut().for_each(|v| *v = (*v * inv).round_ties_even().clamp(lo, hi) * step),
        Some(m) => {
            for (v, m) in x.iter_mut().zip(m) {
                *v = (*v * m * inv).round_ties_even().clamp(lo, hi) * step;
            }
        }
    }
}

/// `1 / step`, or 0 for a zero step (so that an all-zero row's codes are zeros, not NaN).
#[inline]
pub fn inverse_step(step: f32) -> f32 {
    if step > 0.0 {
        1.0 / step
    } else {
        0.0
    }
}

/// The per-token activation step of one row (FORMAT.md): `max_j |x_j · m_j| / Q_P`, so that the
/// row's largest value gets the largest positive code.
pub fn token_step(x: &[f32], smooth: Option<&[f32]>, bits: u8) -> f32 {
    // Eight independent running maxima: one serial chain of `max` would wait on each comparison
    // (the maximum is exact, so the order does not change it).
    let mut acc = [0f32; 8];
    match smooth {
        None => {
            for c in x.chunks(8) {
                for (a, v) in acc.iter_mut().zip(c) {
                    *a = a.max(v.abs());
                }
            }
        }
        Some(m) => {
            for (c, mc) in x.chunks(8).zip(m.chunks(8)) {
                for ((a, v), s) in acc.iter_mut().zip(c).zip(mc) {
                    *a = a.max((v * s).abs());
                }
            }
        }
    }
    acc.into_iter().fold(0f32, f32::max) / q_max(bits) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of every width survives a pack/unpack round trip, at ragged lengths.
    #[test]
    fn pack_unpack_round_trip_every_width() {
        for bits in MIN_BITS..=MAX_BITS {
            for n in [1usize, 3, 7, 16, 31, 33, 100] {
                let codes: Vec<i32> = (0..n).map(|i| q_min(bits) + (i as i32 * 7 + 3) % (1 << bits)).collect();
                assert!(codes.iter().all(|&c| c >= q_min(bits) && c <= q_max(bits)));
                let mut words = vec![0u32; words_per_row(n, bits)];
                pack_row(&codes, bits, &mut words);
                assert_eq!(unpack_codes(&words, bits, n), codes, "bits={bits} n={n}");
            }
        }
    }

    /// The bit layout is the documented one (closed form for a few words).
    #[test]
    fn pack_layout_is_documented_one() {
        let mut w = [0u32; 1];
        pack_row(&[1, -1, -2, 0], 2, &mut w);
        // codes 01, 11, 10, 00 at offsets 0, 2, 4, 6
        assert_eq!(w[0], 0b00_10_11_01);
        let mut w = [0u32; 2];
        // 3 bits: 10 codes per word; the 11th starts the next word.
        let codes = [3, -4, 0, 0, 0, 0, 0, 0, 0, 1, -1];
        pack_row(&codes, 3, &mut w);
        assert_eq!(w[0], 0b011 | (0b100 << 3) | (0b001 << 27));
        assert_eq!(w[1], 0b111);
        assert_eq!(codes_per_word(5), 6);
        assert_eq!(words_per_row(13, 5), 3);
    }

    #[test]
    fn rtn_hits_grid_points_exactly_and_bounds_error() {
        for bits in MIN_BITS..=MAX_BITS {
            for group in [None, Some(16), Some(32), Some(64), Some(128)] {
                let (rows, cols) = (5, 150);
                let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
                let q = QuantMatrix::quantize_rtn(&w, rows, cols, bits, group).unwrap();
                q.validate("w").unwrap();
                let d = q.dequantize();
                let g = group.unwrap_or(cols);
                for r in 0..rows {
                    for c in 0..cols {
                        let s = q.scales[r * q.groups_per_row() + c / g];
                        let err = (d[r * cols + c] - w[r * cols + c]).abs();
                        // Inside the clipping range the error is at most half a step.
                        assert!(err <= s * 0.5 + 1e-6, "bits={bits} err={err} step={s}");
                    }
                }
                // The absmax element is representable exactly (code Q_P).
                let q2 = QuantMatrix::quantize_rtn(&[0.0, 0.5, -1.5, 3.0], 1, 4, bits, None).unwrap();
                let d2 = q2.dequantize();
                assert!((d2[3] - 3.0).abs() < 1e-6);
                assert_eq!(d2[0], 0.0);
            }
        }
    }

    #[test]
    fn rounding_is_half_to_even_and_clamped() {
        // step 1, 4 bits: range -8..7
        let q = QuantMatrix::from_steps(&[0.5, 1.5, 2.5, -0.5, 100.0, -100.0], 1, 6, 4, None, vec![1.0]).unwrap();
        assert_eq!(unpack_codes(&q.codes, 4, 6), vec![0, 2, 2, 0, 7, -8]);
        let mut x = [0.26f32, -3.0, 9.0];
        fake_quantize_row(&mut x, None, 0.5, 4);
        assert_eq!(x, [0.5, -3.0, 3.5]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(check_bits(1).is_err());
        assert!(check_bits(9).is_err());
        assert!(check_group(Some(48)).is_err());
        assert!(QuantMatrix::quantize_rtn(&[1.0; 3], 2, 2, 4, None).is_err());
        let mut q = QuantMatrix::quantize_rtn(&[1.0; 4], 2, 2, 4, None).unwrap();
        q.codes.pop();
        assert!(q.validate("x").is_err());
    }
}
