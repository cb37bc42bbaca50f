//! Element-wise and row-wise kernels of the CPU backend.
//!
//! Each kernel is written once as plain loops (lane-wise accumulators for reductions, no calls
//! in inner loops) and compiled several times by [`multiversion!`]: for AVX-512, for AVX2+FMA
//! and for the baseline target, with the best variant picked at run time. The compiler
//! vectorises each copy for its instruction set.

const LANES: usize = 16;

/// Sum with 16 independent accumulators (vectorisable, unlike a sequential float sum).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// Sum of squared deviations from `mean`, lane-wise.
#[inline(always)]
fn sum_sq_dev(x: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - mean;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()
}

/// Maximum, lane-wise.
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().chain(tail).fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

multiversion! {
    /// Applies layer normalisation to each row of `x` (`width` columns) in place:
    /// `y = (x - mean) / sqrt(var + eps) * gamma + beta`, with the biased variance.
    fn layer_norm(x: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
        for row in x.chunks_exact_mut(width) {
            let mean = sum(row) / width as f32;
            let var = sum_sq_dev(row, mean) / width as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

multiversion! {
    /// `x += y` element-wise.
    fn add_in_place(x: &mut [f32], y: &[f32]) {
        for (a, b) in x.iter_mut().zip(y) {
            *a += b;
        }
    }
}

/// The error function, as a rational approximation in `x²` on `[-4, 4]` (outside, `erf` is
/// ±1 in single precision). Absolute error below 1e-6 (tested against `libm::erf`).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_1e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_2e-3;
    q = q * x2 + -1.426_474e-2;
    let r = x * p / q;
    // Beyond ±4 erf is ±1 to single precision; return it exactly so that GELU's tails vanish.
    if x.abs() >= 4.0 {
        x.signum()
    } else {
        r
    }
}

multiversion! {
    /// GELU with the exact error function, in place: `x · (1 + erf(x / √2)) / 2`.
    fn gelu(x: &mut [f32]) {
        for v in x {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// 1.5 · 2^23: added to an f32 of magnitude below 2^22 it leaves no fraction bits, so the sum
/// is rounded to the nearest integer (ties to even) and that integer is in its low mantissa
/// bits (read by subtracting this constant's bits). Used wherever floats become integers in a
/// vectorised loop (`as i32` is a scalar conversion with NaN checks per lane).
pub(crate) const ROUNDING: f32 = 12_582_912.0;

/// `e^x` for `x <= 0` or moderate positive `x` (|x| < 87), relative error below 4e-7:
/// `x = n·ln2 + r` with `|r| <= ln2/2`, a degree-6 polynomial for `e^r`, and `2^n` built in
/// the exponent bits. Inputs below -87 give `e^-87`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 87.0);
    // Round to nearest by adding and subtracting ROUNDING: branch-free and vectorisable.
    let shifted = x * std::f32::consts::LOG2_E + ROUNDING;
    let n = shifted - ROUNDING;
    // Cody–Waite: ln2 split in a high part exact in f32 and a low correction.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.0 / 720.0f32;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // `n` as an integer from the low bits of the shifted sum: `n as i32` does not vectorise
    // (a scalar conversion with NaN checks per lane).
    let ni = (shifted.to_bits() as i32).wrapping_sub(ROUNDING.to_bits() as i32);
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    p * scale
}

multiversion! {
    /// Softmax of each `width`-long row of `x` in place (max-subtracted), after scaling by `scale`.
    fn softmax_rows(x: &mut [f32], width: usize, scale: f32) {
        for row in x.chunks_exact_mut(width) {
            let m = max(row);
            for v in row.iter_mut() {
                *v = exp((*v - m) * scale);
            }
            let inv = 1.0 / sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// Softmax of a row in place (max-subtracted).
pub fn softmax(row: &mut [f32]) {
    let n = row.len();
    softmax_rows(row, n, 1.0)
}

/// Scales `x` to unit L2 norm (a zero vector stays zero).
pub fn l2_normalize(x: &mut [f32]) {
    let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        let inv = 1.0 / norm.max(1e-12);
        for v in x {
            *v *= inv;
        }
    }
}

/// Mean of the rows of a `len × width` slice.
pub fn mean_rows(x: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0f32; width];
    let rows = x.len() / width;
    for row in x.chunks_exact(width) {
        add_in_place(&mut out, row);
    }
    if rows > 0 {
        let inv = 1.0 / rows as f32;
        out.iter_mut().for_each(|v| *v *= inv);
    }
    out
}

multiversion! {
    /// Depthwise convolution along the sequence of one sentence (`len × width`, row-major):
    /// `y[t, c] = b[c] + Σ_j w[c, j] · x[t + j - k/2, c]`, zero outside the sentence.
    /// `weight_t` holds the taps transposed, `[kernel, width]`.
    fn depthwise_conv(x: &[f32], width: usize, weight_t: &[f32], bias: &[f32], kernel: usize, out: &mut [f32]) {
        let len = x.len() / width;
        let half = kernel / 2;
        for t in 0..len {
            let dst = &mut out[t * width..(t + 1) * width];
            dst.copy_from_slice(bias);
            for j in 0..kernel {
                let Some(s) = (t + j).checked_sub(half).filter(|&s| s < len) else { continue };
                let src = &x[s * width..(s + 1) * width];
                for ((d, v), w) in dst.iter_mut().zip(src).zip(&weight_t[j * width..(j + 1) * width]) {
                    *d += w * v;
                }
            }
        }
    }
}

/// Transposes the `[width, kernel]` depthwise taps to `[kernel, width]`.
pub fn transpose_taps(weight: &[f32], width: usize, kernel: usize) -> Vec<f32> {
    let mut t = vec![0f32; weight.len()];
    for c in 0..width {
        for j in 0..kernel {
            t[j * width + c] = weight[c * kernel + j];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0f64;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let err = (erf(x) as f64 - libm::erf(x as f64)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "max |erf - libm::erf| = {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert!((erf(10.0) - 1.0).abs() < 1e-7 && (erf(-10.0) + 1.0).abs() < 1e-7);
    }

    #[test]
    fn gelu_closed_form() {
        let mut x = [0.0f32, 1.0, -1.0, 3.0, -20.0];
        gelu(&mut x);
        // GELU(1) = Φ(1) = 0.841344746..., GELU(-1) = -(1 - Φ(1)), GELU(3) = 3 Φ(3).
        assert_eq!(x[0], 0.0);
        assert!((x[1] - 0.841_344_7).abs() < 1e-6);
        assert!((x[2] + 0.158_655_25).abs() < 1e-6);
        assert!((x[3] - 3.0 * 0.998_650_1).abs() < 1e-5);
        assert!(x[4].abs() < 1e-6);
    }

    #[test]
    fn exp_matches_std() {
        for i in -8700..=8000 {
            let x = i as f32 / 100.0;
            let (a, b) = (exp(x) as f64, (x as f64).exp());
            assert!(((a - b) / b).abs() < 4e-7, "exp({x}) = {a}, expected {b}");
        }
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(-1000.0) < 2e-38);
    }

    #[test]
    fn softmax_closed_form() {
        let mut r = [0.0f32, (2.0f32).ln(), f32::NEG_INFINITY, (5.0f32).ln()];
        softmax(&mut r);
        let want = [1.0 / 8.0, 2.0 / 8.0, 0.0, 5.0 / 8.0];
        for (a, b) in r.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{r:?}");
        }
    }

    #[test]
    fn softmax_rows_long_and_scaled() {
        // 37 entries (two 16-lane chunks and a tail): softmax(2·x) against the f64 formula.
        let x: Vec<f32> = (0..37).map(|i| ((i * 7) % 11) as f32 / 3.0 - 1.0).collect();
        let mut y = x.clone();
        softmax_rows(&mut y, 37, 2.0);
        let z: f64 = x.iter().map(|&v| (2.0 * v as f64).exp()).sum();
        for (a, v) in y.iter().zip(&x) {
            assert!((*a as f64 - (2.0 * *v as f64).exp() / z).abs() < 1e-7);
        }
    }

    #[test]
    fn layer_norm_closed_form() {
        // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
        let mut x = [1.0f32, 2.0, 3.0, 4.0];
        layer_norm(&mut x, 4, &[1.0, 2.0, 1.0, 1.0], &[0.0, 0.0, 0.0, 1.0], 0.0);
        let s = 1.25f32.sqrt();
        let want = [-1.5 / s, 2.0 * -0.5 / s, 0.5 / s, 1.5 / s + 1.0];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn depthwise_conv_closed_form() {
        // width 2, len 3, kernel 3: channel 0 sums neighbours, channel 1 takes the left one.
        let x = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0];
        let w = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
        let mut y = [0f32; 6];
        depthwise_conv(&x, 2, &transpose_taps(&w, 2, 3), &[0.5, 0.0], 3, &mut y);
        assert_eq!(y, [3.5, 0.0, 6.5, 10.0, 5.5, 20.0]);
    }

    #[test]
    fn pooling_and_norm() {
        assert_eq!(mean_rows(&[1.0, 2.0, 3.0, 6.0], 2), vec![2.0, 4.0]);
        let mut v = [3.0f32, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0f32; 3];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0; 3]);
    }
}
