//! Learned step size quantization (LSQ, Esser et al. 2020) as used by KDLSQ: fake quantization
//! with straight-through rounding and a gradient-scaled step.
//!
//! `v̂ = clamp(round(v / s), -Q_N, Q_P) · s` with `Q_N = 2^(b-1)`, `Q_P = 2^(b-1) - 1`. The
//! rounding passes gradients straight through; the step's gradient is scaled by
//! `g = 1 / sqrt(N · Q_P)` (N = elements sharing the step) and is, per element,
//! `∂v̂/∂s = round(v/s) - v/s` inside the range and `-Q_N` or `Q_P` outside.
//! Steps start at `2 · mean|v| / sqrt(Q_P)`.

use burn::prelude::*;

/// The smallest step a quantizer uses.
pub const MIN_STEP: f32 = 1e-8;

/// The step a quantizer uses for a learned value `s`.
pub fn effective_step(s: f32) -> f32 {
    s.abs().max(MIN_STEP)
}

/// The smallest weight step: f16's smallest normal number, 2^-14, so that every weight step
/// has an exact f16 value (packages store them as F16).
pub const MIN_WEIGHT_STEP: f32 = 6.103_515_6e-5;

/// `x` rounded to 11 significant bits (f16's precision) by Veltkamp splitting,
/// `c = x · (2^13 + 1)`, `x̃ = c − (c − x)`, in f32 arithmetic: for steps in f16's normal range
/// the result is an f16 value. [`round_half_precision`] on tensors does the same operations.
pub fn round_half_precision_f32(x: f32) -> f32 {
    let c = x * 8193.0;
    c - (c - x)
}

/// [`round_half_precision_f32`] of every element, with a straight-through gradient.
pub fn round_half_precision<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let c = x.clone().mul_scalar(8193.0);
    let rounded = c.clone() - (c - x.clone());
    x.clone() + (rounded - x).detach()
}

/// The weight step a quantizer uses for a learned value `s`: `|s|`, at least
/// [`MIN_WEIGHT_STEP`], rounded to an f16 value.
pub fn effective_weight_step(s: f32) -> f32 {
    round_half_precision_f32(s.abs().max(MIN_WEIGHT_STEP))
}

/// `Q_N` and `Q_P` for a bit width.
pub fn q_range(bits: u8) -> (f32, f32) {
    let qn = (1u32 << (bits - 1)) as f32;
    (qn, qn - 1.0)
}

/// round(x) forward, identity backward.
pub fn round_ste<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() + (x.clone().round() - x).detach()
}

/// Forward value `x`, gradient multiplied by `g`.
pub fn grad_scale<const D: usize>(x: Tensor<D>, g: f32) -> Tensor<D> {
    let y = x.clone().mul_scalar(g);
    (x - y.clone()).detach() + y
}

/// Fake-quantizes a `[rows, cols]` matrix with steps `[rows, groups]` (`group` columns per
/// step; `None` = one step per row). The steps used are [`effective_weight_step`]s: f16
/// values, so that the package stores exactly them in half the space. The step arithmetic is
/// composed (a small tensor); the quantization itself is [`crate::fused`]'s one-pass kernel.
pub fn fake_quant_weight(w: Tensor<2>, step: Tensor<2>, bits: u8, group: Option<usize>) -> Tensor<2> {
    let [_, cols] = w.dims();
    let (_, qp) = q_range(bits);
    let per_step = group.unwrap_or(cols).min(cols);
    let s = round_half_precision(grad_scale(step, 1.0 / ((per_step as f32) * qp).sqrt()).abs().clamp_min(MIN_WEIGHT_STEP));
    crate::fused::fake_quant_groups(w, s, bits, per_step)
}

/// Fake-quantizes activations with a per-tensor step `[1]`, computing `x · (1/s)` as the
/// runtime does.
pub fn fake_quant_act<const D: usize>(x: Tensor<D>, step: Tensor<1>, bits: u8) -> Tensor<D> {
    let (qn, qp) = q_range(bits);
    let n = x.shape().num_elements();
    let s = grad_scale(step, 1.0 / ((n as f32) * qp).sqrt()).abs().clamp_min(MIN_STEP);
    let s = s.reshape([1usize; D]);
    round_ste((x * s.clone().recip()).clamp(-qn, qp)) * s
}

/// Fake-quantizes activations with per-token steps: each row (last axis) its own step
/// `max|x| / Q_P`, computed as the runtime does (FORMAT.md). The step is not trained (it is a
/// function of the row): the gradient passes straight through the rounding.
pub fn fake_quant_act_per_token<const D: usize>(x: Tensor<D>, bits: u8) -> Tensor<D> {
    crate::fused::fake_quant_rows(x, bits)
}

/// The fake quantizers composed from burn's tensor ops: what devices other than the CPU run,
/// and the reference the fused kernels are tested against.
pub(crate) mod composed {
    use super::{q_range, round_ste};
    use burn::prelude::*;

    /// Per-token fake quantization (see [`super::fake_quant_act_per_token`]).
    pub(crate) fn fake_quant_act_per_token<const D: usize>(x: Tensor<D>, bits: u8) -> Tensor<D> {
        let (qn, qp) = q_range(bits);
        // An all-zero row gets codes 0 (the runtime's zero step) instead of 0 / 0.
        let s = (x.clone().abs().max_dim(D - 1) / qp).clamp_min(f32::MIN_POSITIVE).detach();
        round_ste((x * s.clone().recip()).clamp(-qn, qp)) * s
    }

    /// `w` fake-quantized with effective steps `s: [rows, groups]`, `group` columns each.
    pub(crate) fn fake_quant_expanded(w: Tensor<2>, s: Tensor<2>, bits: u8, group: usize) -> Tensor<2> {
        let [rows, cols] = w.dims();
        let (qn, qp) = q_range(bits);
        let groups = cols.div_ceil(group);
        // Expand each step over its columns: [rows, groups] -> [rows, groups * g] -> [rows, cols].
        let s_full = s.unsqueeze_dim::<3>(2).expand([rows, groups, group]).reshape([rows, groups * group]).narrow(1, 0, cols);
        round_ste((w / s_full.clone()).clamp(-qn, qp)) * s_full
    }
}

/// How a quantizer's step starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepInit {
    /// LSQ's rule `2 · mean|v| / sqrt(Q_P)` (the default, as the paper has it). It clips:
    /// at 4 bits a group's range ends near 5.3 · mean|v|, at 8 bits activations are cut at
    /// ≈ 22 · mean|x|, which BERT's outlier channels exceed.
    #[default]
    Lsq,
    /// The step with the least squared quantization error over the values it covers, among
    /// `max|v| · r / Q_P` (r on a grid over (0, 1]) and the LSQ rule: on all-MiniLM-L6-v2,
    /// untrained W4 g32 gives embedding cosine 0.967 with it against 0.886 with the rule
    /// (benches/quality/RESULTS.md).
    Mse,
}

impl std::str::FromStr for StepInit {
    type Err = crate::error::CompressError;
    fn from_str(s: &str) -> Result<StepInit, Self::Err> {
        match s {
            "lsq" => Ok(StepInit::Lsq),
            "mse" => Ok(StepInit::Mse),
            other => Err(crate::error::CompressError::InvalidArgument(format!("step init `{other}`: use lsq or mse"))),
        }
    }
}

/// LSQ's step initialisation `2 · mean|v| / sqrt(Q_P)` over each row or group of a matrix.
pub fn init_weight_steps(w: &[f32], rows: usize, cols: usize, bits: u8, group: Option<usize>) -> Vec<f32> {
    weight_steps(w, rows, cols, bits, group, StepInit::Lsq)
}

/// The step with the least `err` among `start` and `top · r / grid`, r = 1..=grid (the
/// candidates of [`StepInit::Mse`]; `top` is the step that just covers the largest value).
pub fn least_error_step(start: f32, top: f32, grid: usize, err: impl Fn(f32) -> f32) -> f32 {
    let mut best = (err(start), start);
    for r in 1..=grid {
        let s = (top * r as f32 / grid as f32).max(MIN_STEP);
        let e = err(s);
        if e < best.0 {
            best = (e, s);
        }
    }
    best.1
}

/// Grid points of the least-error search for weights: `max|v| · r / Q_P`, r = k / WEIGHT_GRID.
pub const WEIGHT_GRID: usize = 100;

/// The initial steps of a `[rows, cols]` matrix, one per row or per `group` columns, row-major.
pub fn weight_steps(w: &[f32], rows: usize, cols: usize, bits: u8, group: Option<usize>, init: StepInit) -> Vec<f32> {
    let (qn, qp) = q_range(bits);
    let g = group.unwrap_or(cols).max(1);
    let mut steps = Vec::with_capacity(rows * cols.div_ceil(g));
    for row in w.chunks(cols.max(1)).take(rows) {
        for chunk in row.chunks(g) {
            let mean = chunk.iter().map(|v| v.abs()).sum::<f32>() / chunk.len() as f32;
            let lsq = (2.0 * mean / qp.sqrt()).max(MIN_STEP);
            steps.push(match init {
                StepInit::Lsq => lsq,
                StepInit::Mse => {
                    let max = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
                    least_error_step(lsq, max / qp, WEIGHT_GRID, |s| chunk.iter().map(|&v| ((v / s).round().clamp(-qn, qp) * s - v).powi(2)).sum())
                }
            });
        }
    }
    steps
}

/// LSQ's step initialisation for activations from a sample of them.
pub fn init_act_step(sample: &[f32], bits: u8) -> f32 {
    let (_, qp) = q_range(bits);
    let mean = sample.iter().map(|v| v.abs()).sum::<f32>() / sample.len().max(1) as f32;
    (2.0 * mean / qp.sqrt()).max(1e-8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(v: Vec<f32>, shape: [usize; 2], dev: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, shape), dev)
    }

    fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    /// Forward values and both gradients against the closed form, at 2..8 bits, per row and
    /// per group, with elements inside and outside the clipping range.
    #[test]
    fn step_and_weight_gradients_match_the_closed_form() {
        let dev = Device::flex().autodiff();
        for bits in 2..=8u8 {
            for group in [None, Some(4)] {
                let (rows, cols) = (2usize, 6usize);
                let w: Vec<f32> = vec![0.31, -0.74, 2.9, -3.3, 0.05, 0.49, -0.12, 0.88, -0.61, 1.7, -2.2, 0.0];
                let g = group.unwrap_or(cols);
                let groups = cols.div_ceil(g);
                let steps: Vec<f32> = (0..rows * groups).map(|i| 0.13 + 0.07 * i as f32).collect();
                let wt = t2(w.clone(), [rows, cols], &dev).require_grad();
                let st = t2(steps.clone(), [rows, groups], &dev).require_grad();
                let out = fake_quant_weight(wt.clone(), st.clone(), bits, group);
                let got = vec(out.clone());
                let grads = out.sum().backward();
                let gw = vec(wt.grad(&grads).unwrap());
                let gs = vec(st.grad(&grads).unwrap());
                let (qn, qp) = q_range(bits);
                let mut want_gs = vec![0f32; rows * groups];
                for r in 0..rows {
                    for c in 0..cols {
                        let si = r * groups + c / g;
                        let s = effective_weight_step(steps[si]);
                        assert_eq!(half::f16::from_f32(s).to_f32(), s, "an f16 step");
                        let v = w[r * cols + c] / s;
                        let inside = v >= -qn && v <= qp;
                        let q = v.clamp(-qn, qp).round_ties_even();
                        assert!((got[r * cols + c] - q * s).abs() < 1e-6, "bits {bits}: forward");
                        assert_eq!(gw[r * cols + c], if inside { 1.0 } else { 0.0 }, "bits {bits}: weight gradient");
                        let n = g.min(cols) as f32;
                        let dv = if inside {
                            q - v
                        } else if v < 0.0 {
                            -qn
                        } else {
                            qp
                        };
                        want_gs[si] += dv / (n * qp).sqrt();
                    }
                }
                for (a, b) in gs.iter().zip(&want_gs) {
                    assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "bits {bits} group {group:?}: step grad {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn activation_quantization_matches_the_runtime() {
        let dev = Device::flex();
        let x: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) * 0.037).collect();
        let step = 0.05f32;
        let out = vec(fake_quant_act(t2(x.clone(), [4, 10], &dev), Tensor::from_data(TensorData::new(vec![step], [1]), &dev), 4));
        let mut want = x.clone();
        bertling_runtime::quant::fake_quantize_row(&mut want, None, step, 4);
        assert_eq!(out, want);
    }

    #[test]
    fn step_initialisation() {
        // mean |v| = 1.5 over the row; Q_P = 7 at 4 bits.
        let s = init_weight_steps(&[1.0, -2.0, 1.0, -2.0], 1, 4, 4, None);
        assert!((s[0] - 2.0 * 1.5 / 7f32.sqrt()).abs() < 1e-6);
        let s = init_weight_steps(&[1.0, -1.0, 3.0, 3.0], 1, 4, 4, Some(32));
        assert_eq!(s.len(), 1);
    }
}
