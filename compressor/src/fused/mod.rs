//! Fused training kernels for burn's CPU backend (Flex): fake quantization and the exact GELU,
//! each one pass forward and one pass backward with its own autodiff rule.
//!
//! Composed from burn's tensor ops, per-token fake quantization is about a dozen full-size
//! passes forward (abs, max, divide, clamp as two masked fills, round, the straight-through
//! subtraction and addition, multiply) and as many backward; the exact GELU's `erf` is libm's
//! scalar one. These were most of a KDLSQ step that was not matrix products
//! (benches/quality/RESULTS.md, "Training speed"). Other devices (CUDA, wgpu) keep the composed
//! forms in [`crate::lsq`], which these kernels are tested against.
//!
//! Rooms: [`kernels`] the slices-in, slices-out arithmetic; `flex` the backend glue;
//! `autodiff` the backward rules.

mod autodiff;
mod flex;
pub(crate) mod kernels;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension};
use burn::prelude::*;

/// The fused operations, for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// Per-token fake quantization: each row of the last axis gets the step `max|x| / Q_P`
    /// (rows of zeros: f32's smallest normal step). The gradient passes straight through where
    /// `x / step` is inside `[-Q_N, Q_P]`.
    fn fused_fake_quant_rows(x: FloatTensor<Self>, bits: u32) -> FloatTensor<Self>;
    /// Fake quantization of `w: [rows, cols]` with steps `s: [rows, ceil(cols / group)]` (the
    /// steps as used: positive). Gradients: `w` where `w / s` is inside the range; `s` LSQ's
    /// `round(v) - v` inside, `-Q_N` or `Q_P` outside, summed over each group.
    fn fused_fake_quant_groups(w: FloatTensor<Self>, s: FloatTensor<Self>, bits: u32, group: usize) -> FloatTensor<Self>;
    /// The backward of [`FusedOps::fused_fake_quant_groups`]: `(dw, ds)` for `grad`.
    fn fused_fake_quant_groups_backward(
        w: FloatTensor<Self>,
        s: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bits: u32,
        group: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// Per-token fake quantization of `x ⊙ m`, `m: [cols]` (activation smoothing, trained).
    fn fused_smooth_quant_rows(x: FloatTensor<Self>, m: FloatTensor<Self>, bits: u32) -> FloatTensor<Self>;
    /// Its backward: `(dx, dm)`.
    fn fused_smooth_quant_rows_backward(
        x: FloatTensor<Self>,
        m: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bits: u32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// The backward of [`FusedOps::fused_fake_quant_rows`]: `grad` where inside.
    fn fused_fake_quant_rows_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>, bits: u32) -> FloatTensor<Self>;
    /// The exact GELU, `x · Φ(x)`.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Its backward, `grad · (Φ(x) + x · φ(x))`.
    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Softmax over the last axis.
    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Its backward from the output `y`: `y · (grad − Σ grad · y)`.
    fn fused_softmax_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    /// LayerNorm over the last axis (biased variance): `(x − mean) / sqrt(var + eps) · γ + β`.
    fn fused_layer_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, eps: f32) -> FloatTensor<Self>;
    /// Its backward: `(dx, dγ, dβ)`.
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether `t` is an `f32` tensor on the Flex CPU device (with or without autodiff): the
/// fused kernels exist for those only.
fn on_flex<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == burn::tensor::DType::F32 && matches!(t.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// Per-token fake quantization, as [`crate::lsq::fake_quant_act_per_token`] computes it.
pub fn fake_quant_rows<const D: usize>(x: Tensor<D>, bits: u8) -> Tensor<D> {
    if !on_flex(&x) {
        return crate::lsq::composed::fake_quant_act_per_token(x, bits);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_fake_quant_rows(x.into_dispatch(), bits as u32))
}

/// Per-token fake quantization of `x ⊙ m` (smoothing `m` per channel of the last axis).
pub fn smooth_quant_rows<const D: usize>(x: Tensor<D>, m: Tensor<1>, bits: u8) -> Tensor<D> {
    if !on_flex(&x) {
        return crate::lsq::composed::fake_quant_act_per_token(x * m.unsqueeze::<D>(), bits);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_smooth_quant_rows(x.into_dispatch(), m.into_dispatch(), bits as u32))
}

/// Grouped fake quantization with steps already made effective (positive, one per `group`
/// columns of each row), as the composed form after its step arithmetic.
pub fn fake_quant_groups(w: Tensor<2>, s: Tensor<2>, bits: u8, group: usize) -> Tensor<2> {
    if !on_flex(&w) {
        return crate::lsq::composed::fake_quant_expanded(w, s, bits, group);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_fake_quant_groups(
        w.into_dispatch(),
        s.into_dispatch(),
        bits as u32,
        group,
    ))
}

/// The exact GELU (`erf` form, as BERT's `gelu`).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return burn::tensor::activation::gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
}

/// Softmax over the last axis.
pub fn softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x) {
        return burn::tensor::activation::softmax(x, D - 1);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_softmax(x.into_dispatch()))
}

/// LayerNorm over the last axis with the biased variance, as BERT's.
pub fn layer_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, beta: Tensor<1>, eps: f64) -> Tensor<D> {
    if !on_flex(&x) {
        return composed_layer_norm(x, gamma, beta, eps);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_layer_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        eps as f32,
    ))
}

/// [`layer_norm`] composed from burn's ops (other devices; the tests' reference).
pub(crate) fn composed_layer_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, beta: Tensor<1>, eps: f64) -> Tensor<D> {
    let (var, mean) = x.clone().var_mean_bias(D - 1);
    let xn = (x - mean) / var.add_scalar(eps).sqrt();
    xn * gamma.unsqueeze::<D>() + beta.unsqueeze::<D>()
}

#[cfg(test)]
mod tests;
