//! [`FusedOps`] on burn's Flex CPU backend: the tensors' `f32` storage through the kernels.

use std::borrow::Cow;

use burn::backend::Flex;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{Shape, TensorData};
use burn_flex::FlexTensor;

use super::{FusedOps, kernels};

/// The elements of `t` in row-major order, borrowed when `t` is contiguous.
fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().as_slice::<f32>().map(<[f32]>::to_vec).unwrap_or_default()),
    }
}

fn tensor(v: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// The length of the last axis (1 for a scalar).
fn last_dim(t: &FlexTensor) -> usize {
    t.layout().shape().last().copied().unwrap_or(1)
}

impl FusedOps for Flex {
    fn fused_fake_quant_rows(x: FloatTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let cols = last_dim(&x);
        let out = kernels::quant_rows(&values(&x), cols, bits);
        tensor(out, x.layout().shape().clone())
    }

    fn fused_fake_quant_rows_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let cols = last_dim(&x);
        let out = kernels::quant_rows_backward(&values(&x), &values(&grad), cols, bits);
        tensor(out, x.layout().shape().clone())
    }

    fn fused_fake_quant_groups(w: FloatTensor<Self>, s: FloatTensor<Self>, bits: u32, group: usize) -> FloatTensor<Self> {
        let cols = last_dim(&w);
        let out = kernels::quant_groups(&values(&w), &values(&s), cols, group, bits);
        tensor(out, w.layout().shape().clone())
    }

    fn fused_fake_quant_groups_backward(
        w: FloatTensor<Self>,
        s: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bits: u32,
        group: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let cols = last_dim(&w);
        let (dw, ds) = kernels::quant_groups_backward(&values(&w), &values(&s), &values(&grad), cols, group, bits);
        (tensor(dw, w.layout().shape().clone()), tensor(ds, s.layout().shape().clone()))
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = kernels::gelu(&values(&x));
        tensor(out, x.layout().shape().clone())
    }

    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = kernels::gelu_backward(&values(&x), &values(&grad));
        tensor(out, x.layout().shape().clone())
    }

    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = kernels::softmax(&values(&x), last_dim(&x));
        tensor(out, x.layout().shape().clone())
    }

    fn fused_softmax_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = kernels::softmax_backward(&values(&y), &values(&grad), last_dim(&y));
        tensor(out, y.layout().shape().clone())
    }

    fn fused_layer_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, eps: f32) -> FloatTensor<Self> {
        let out = kernels::layer_norm(&values(&x), &values(&gamma), &values(&beta), eps);
        tensor(out, x.layout().shape().clone())
    }

    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dg, db) = kernels::layer_norm_backward(&values(&x), &values(&gamma), &values(&grad), eps);
        let n = dg.len();
        (tensor(dx, x.layout().shape().clone()), tensor(dg, Shape::new([n])), tensor(db, Shape::new([n])))
    }

    fn fused_smooth_quant_rows(x: FloatTensor<Self>, m: FloatTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let out = kernels::smooth_quant_rows(&values(&x), &values(&m), bits);
        tensor(out, x.layout().shape().clone())
    }

    fn fused_smooth_quant_rows_backward(
        x: FloatTensor<Self>,
        m: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bits: u32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dm) = kernels::smooth_quant_rows_backward(&values(&x), &values(&m), &values(&grad), bits);
        (tensor(dx, x.layout().shape().clone()), tensor(dm, m.layout().shape().clone()))
    }
}
