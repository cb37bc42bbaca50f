//! [`FusedOps`] under autodiff: each op one node whose backward is the matching fused kernel.
//! The inputs the backward needs are kept as primitives (a reference count on Flex, no copy).

use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn_autodiff::Autodiff;

use super::FusedOps;

type Prim<B> = <B as burn::backend::BackendTypes>::FloatTensorPrimitive;

#[derive(Debug)]
struct QuantRows;

impl<B: Backend + FusedOps> Backward<B, 1> for QuantRows {
    type State = (Prim<B>, u32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, bits) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::fused_fake_quant_rows_backward(x, g, bits));
    }
}

#[derive(Debug)]
struct QuantGroups;

impl<B: Backend + FusedOps> Backward<B, 2> for QuantGroups {
    type State = (Prim<B>, Prim<B>, u32, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (w, s, bits, group) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let (dw, ds) = B::fused_fake_quant_groups_backward(w, s, grad, bits, group);
        let [pw, ps] = ops.parents;
        // One kernel call gives both gradients (burn's `binary` would hand each side its own).
        if let Some(node) = pw {
            grads.register::<B>(node.id, dw);
        }
        if let Some(node) = ps {
            grads.register::<B>(node.id, ds);
        }
    }
}

#[derive(Debug)]
struct Gelu;

impl<B: Backend + FusedOps> Backward<B, 1> for Gelu {
    type State = Prim<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::fused_gelu_backward(x, g));
    }
}

#[derive(Debug)]
struct SmoothQuantRows;

impl<B: Backend + FusedOps> Backward<B, 2> for SmoothQuantRows {
    type State = (Prim<B>, Prim<B>, u32);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, m, bits) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let (dx, dm) = B::fused_smooth_quant_rows_backward(x, m, grad, bits);
        let [px, pm] = ops.parents;
        for (parent, g) in [(px, dx), (pm, dm)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct Softmax;

impl<B: Backend + FusedOps> Backward<B, 1> for Softmax {
    type State = Prim<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::fused_softmax_backward(y, g));
    }
}

#[derive(Debug)]
struct LayerNorm;

impl<B: Backend + FusedOps> Backward<B, 3> for LayerNorm {
    type State = (Prim<B>, Prim<B>, f32);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, gamma, eps) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let (dx, dg, db) = B::fused_layer_norm_backward(x, gamma, grad, eps);
        let [px, pg, pb] = ops.parents;
        for (parent, g) in [(px, dx), (pg, dg), (pb, db)] {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Backend + FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_smooth_quant_rows(x: FloatTensor<Self>, m: FloatTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let (x, xn) = x.into_parts();
        let (m, mn) = m.into_parts();
        match SmoothQuantRows.prepare::<C>([xn, mn]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_smooth_quant_rows(x.clone(), m.clone(), bits);
                prep.finish((x, m, bits), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_smooth_quant_rows(x, m, bits)),
        }
    }

    fn fused_smooth_quant_rows_backward(
        x: FloatTensor<Self>,
        m: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bits: u32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dm) = B::fused_smooth_quant_rows_backward(x.into_primitive(), m.into_primitive(), grad.into_primitive(), bits);
        (Self::from_inner(dx), Self::from_inner(dm))
    }

    fn fused_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match Softmax.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_softmax(x);
                prep.finish(out.clone(), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_softmax(x)),
        }
    }

    fn fused_layer_norm(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, eps: f32) -> FloatTensor<Self> {
        let (x, xn) = x.into_parts();
        let (gamma, gn) = gamma.into_parts();
        let (beta, bn) = beta.into_parts();
        match LayerNorm.prepare::<C>([xn, gn, bn]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_layer_norm(x.clone(), gamma.clone(), beta, eps);
                prep.finish((x, gamma, eps), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_layer_norm(x, gamma, beta, eps)),
        }
    }

    fn fused_softmax_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::fused_softmax_backward(y.into_primitive(), grad.into_primitive()))
    }

    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dg, db) = B::fused_layer_norm_backward(x.into_primitive(), gamma.into_primitive(), grad.into_primitive(), eps);
        (Self::from_inner(dx), Self::from_inner(dg), Self::from_inner(db))
    }

    fn fused_fake_quant_rows(x: FloatTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match QuantRows.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_fake_quant_rows(x.clone(), bits);
                prep.finish((x, bits), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_fake_quant_rows(x, bits)),
        }
    }

    fn fused_fake_quant_groups(w: FloatTensor<Self>, s: FloatTensor<Self>, bits: u32, group: usize) -> FloatTensor<Self> {
        let (w, wn) = w.into_parts();
        let (s, sn) = s.into_parts();
        match QuantGroups.prepare::<C>([wn, sn]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_fake_quant_groups(w.clone(), s.clone(), bits, group);
                prep.finish((w, s, bits, group), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_fake_quant_groups(w, s, bits, group)),
        }
    }

    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match Gelu.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_gelu(x.clone());
                prep.finish(x, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_gelu(x)),
        }
    }

    // The backward kernels are called on the inner backend by the rules above; called on
    // autodiff tensors they compute untracked values.
    fn fused_fake_quant_rows_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>, bits: u32) -> FloatTensor<Self> {
        Self::from_inner(B::fused_fake_quant_rows_backward(x.into_primitive(), grad.into_primitive(), bits))
    }

    fn fused_fake_quant_groups_backward(
        w: FloatTensor<Self>,
        s: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        bits: u32,
        group: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, ds) = B::fused_fake_quant_groups_backward(w.into_primitive(), s.into_primitive(), grad.into_primitive(), bits, group);
        (Self::from_inner(dw), Self::from_inner(ds))
    }

    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::fused_gelu_backward(x.into_primitive(), grad.into_primitive()))
    }
}
