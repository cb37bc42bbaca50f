//! Between the runtime's model data and burn: import any model (a Hugging Face teacher, a
//! package) as an [`Encoder`], set up LSQ quantization, and export an encoder back to model
//! data — floats, or packed codes with the learned steps — for a package.

use std::collections::BTreeMap;

use bertling_runtime::data::{ActQuant, ActStep};
use bertling_runtime::spec::{names, BlockSpec, QuantSpec, TensorRole};
use bertling_runtime::{ModelData, QuantMatrix, TensorData as RtTensor};
use burn::module::Param;
use burn::prelude::*;

use crate::error::{CompressError, Result};
use crate::lsq::weight_steps;
pub use crate::lsq::StepInit;
use crate::student::{Attention, Block, Dense, Embeddings, Encoder, FeedForward, Head, Lsq, Norm, SepConv};

fn values(model: &ModelData, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = model.tensors.get(name).ok_or_else(|| CompressError::Tensor { name: name.into(), what: "is missing".into() })?;
    Ok((t.shape(), t.to_f32()))
}

fn t1(model: &ModelData, name: &str, device: &Device) -> Result<Tensor<1>> {
    let (shape, v) = values(model, name)?;
    Ok(Tensor::from_data(TensorData::new(v, [shape[0]]), device))
}

fn t2(model: &ModelData, name: &str, device: &Device) -> Result<Tensor<2>> {
    let (shape, v) = values(model, name)?;
    Ok(Tensor::from_data(TensorData::new(v, [shape[0], shape[1]]), device))
}

fn dense(model: &ModelData, prefix: &str, device: &Device) -> Result<Dense> {
    Ok(Dense::new(t2(model, &names::weight(prefix), device)?, t1(model, &names::bias(prefix), device)?))
}

fn norm(model: &ModelData, prefix: &str, device: &Device) -> Result<Norm> {
    Ok(Norm {
        gamma: Param::from_tensor(t1(model, &names::weight(prefix), device)?),
        beta: Param::from_tensor(t1(model, &names::bias(prefix), device)?),
        eps: model.spec.layer_norm_eps as f64,
    })
}

/// A convolution block's taps, pointwise map and norm (`sep_conv` and `bi_conv` store the same
/// tensors).
fn conv(model: &ModelData, n: &names::Block, kernel: usize, device: &Device) -> Result<SepConv> {
    Ok(SepConv {
        kernel,
        taps: Param::from_tensor(t2(model, &names::weight(&n.depthwise()), device)?),
        taps_bias: Param::from_tensor(t1(model, &names::bias(&n.depthwise()), device)?),
        pointwise: dense(model, &n.pointwise(), device)?,
        norm: norm(model, &n.norm(), device)?,
    })
}

/// Builds an encoder with the (dequantized) values of a model. Quantized matrices come back
/// as floats; use [`quantize`] to train them with LSQ.
pub fn encoder_from_data(model: &ModelData, device: &Device) -> Result<Encoder> {
    model.validate()?;
    let embeddings = Embeddings {
        word: Param::from_tensor(t2(model, names::WORD_EMBEDDINGS, device)?),
        position: Param::from_tensor(t2(model, names::POSITION_EMBEDDINGS, device)?),
        token_type: Param::from_tensor(t2(model, names::TOKEN_TYPE_EMBEDDINGS, device)?),
        norm: norm(model, names::EMBEDDING_NORM, device)?,
        word_quant: None,
        position_quant: None,
        token_type_quant: None,
    };
    let mut blocks = Vec::with_capacity(model.spec.blocks.len());
    for (i, b) in model.spec.blocks.iter().enumerate() {
        let n = names::block(i);
        blocks.push(match *b {
            BlockSpec::Attention { heads, head_dim, .. } => Block::Attention(Attention {
                heads,
                head_dim,
                qkv: dense(model, &n.qkv(), device)?,
                out: dense(model, &n.attn_out(), device)?,
                norm: norm(model, &n.norm(), device)?,
            }),
            BlockSpec::FeedForward { .. } => Block::FeedForward(FeedForward {
                inp: dense(model, &n.ffn_in(), device)?,
                out: dense(model, &n.ffn_out(), device)?,
                norm: norm(model, &n.norm(), device)?,
            }),
            BlockSpec::SepConv { kernel, .. } => Block::SepConv(conv(model, &n, kernel, device)?),
            BlockSpec::BiConv { kernel, .. } => Block::BiConv(conv(model, &n, kernel, device)?),
            BlockSpec::Identity { width } => Block::Identity(width),
            BlockSpec::Projection { .. } => Block::Projection(dense(model, &n.proj(), device)?),
        });
    }
    let head = match &model.spec.head {
        None => None,
        Some(h) => Some(Head {
            pooler: if h.pooler { Some(dense(model, names::POOLER, device)?) } else { None },
            classifier: dense(model, names::CLASSIFIER, device)?,
            token: h.kind == bertling_runtime::HeadKind::Token,
        }),
    };
    let cls_pooling = model.spec.pooling.mode == bertling_runtime::spec::PoolingMode::Cls;
    Ok(Encoder { embeddings, blocks, head, cls_pooling })
}

/// Builds an encoder that trains on as the model it was: like [`encoder_from_data`], but each
/// quantized matrix and table keeps its quantization as LSQ state — the package's steps as the
/// starting steps, its activation bits, step and smoothing — so fine-tuning a W4A8 package
/// gives a W4A8 package again. Exported untrained, it gives back the same codes and steps.
pub fn encoder_keeping_quantization(model: &ModelData, device: &Device) -> Result<Encoder> {
    let mut enc = encoder_from_data(model, device)?;
    let lsq = |name: &str| -> Option<Lsq> {
        let Some(RtTensor::Quant { matrix, act }) = model.tensors.get(name) else { return None };
        let groups = matrix.groups_per_row();
        let param1 = |v: Vec<f32>| {
            let n = v.len();
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [n]), device))
        };
        let (act_step, act_bits, act_smooth) = match act {
            None => (None, 0, None),
            Some(a) => {
                let step = match a.step {
                    ActStep::Tensor(s) => Some(param1(vec![s])),
                    ActStep::Token => None,
                };
                (step, a.bits as usize, a.smooth.clone().map(param1))
            }
        };
        Some(Lsq {
            step: Param::from_tensor(Tensor::from_data(TensorData::new(matrix.scales.clone(), [matrix.rows, groups]), device)),
            bits: matrix.bits as usize,
            group: matrix.group.unwrap_or(0),
            act_step,
            act_bits,
            act_smooth,
        })
    };
    for (prefix, d) in dense_layers_mut(&mut enc) {
        if let Some(q) = lsq(&names::weight(&prefix)) {
            // The package holds the folded weights `W ⊙ (1/m)`; the module holds `W`.
            if let Some(m) = &q.act_smooth {
                d.weight = Param::from_tensor(d.weight.val() * m.val().unsqueeze::<2>());
            }
            d.quant = Some(q);
        }
    }
    let e = &mut enc.embeddings;
    e.word_quant = lsq(names::WORD_EMBEDDINGS);
    e.position_quant = lsq(names::POSITION_EMBEDDINGS);
    e.token_type_quant = lsq(names::TOKEN_TYPE_EMBEDDINGS);
    Ok(enc)
}

/// Weight quantization of a student: every matrix at `bits` (`group` columns per step, `None`
/// per output channel), the embedding tables at `embedding_bits` (`embedding_group`), and, with `act_bits`,
/// activations entering every matrix (steps from [`Encoder`] calibration or set directly).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct QuantPlan {
    pub bits: u8,
    pub group: Option<usize>,
    /// Columns per step of the embedding tables (`None`: one step per row). A 2-bit table of
    /// 30k × 384 costs 2.9 MB in codes, plus 0.06 MB of steps per row or 1.5 MB in groups of 16.
    pub embedding_group: Option<usize>,
    pub embedding_bits: u8,
    pub act_bits: Option<u8>,
    /// With `act_bits`: each token's activations get their own step, `max|x| / Q_P`, at run
    /// time (format version 4), instead of one calibrated and trained step per matrix.
    pub act_per_token: bool,
    /// How the weight and embedding steps start (see [`crate::lsq::weight_steps`]).
    pub weight_init: StepInit,
    /// How the activation steps start (see [`calibrate_activations`]).
    pub act_init: StepInit,
    /// Smoothing strength α in 0..=1 (with `act_bits`): each matrix's input channels are
    /// multiplied by `m_j = max|W_:j|^(1-α) / max|x_j|^α` before quantization and its weight
    /// columns divided by them (SmoothQuant), which flattens BERT's outlier channels; `None`
    /// leaves the activations as they are.
    pub smooth: Option<f32>,
}

impl QuantPlan {
    /// Weights at `bits` in groups of `group` columns, embedding tables at 8 bits (or `bits`,
    /// if wider) grouped the same, float activations, LSQ-rule initial steps, no smoothing.
    pub fn weights(bits: u8, group: Option<usize>) -> QuantPlan {
        QuantPlan {
            bits,
            group,
            embedding_group: group,
            embedding_bits: bits.max(8),
            act_bits: None,
            act_per_token: false,
            weight_init: StepInit::default(),
            act_init: StepInit::default(),
            smooth: None,
        }
    }

    /// The same plan for weights of `bits` bits (embedding tables at least as wide).
    pub fn at(self, bits: u8) -> QuantPlan {
        QuantPlan { bits, embedding_bits: self.embedding_bits.max(bits), ..self }
    }
}

/// How one matrix's input activations start: the step, and the smoothing factors when the
/// plan smooths.
#[derive(Clone, Debug, PartialEq)]
pub struct ActCalibration {
    pub step: f32,
    pub smooth: Option<Vec<f32>>,
}

/// `act`: the activations' bits, calibration, and whether their steps are per token.
fn lsq_for(w: &Tensor<2>, bits: u8, group: Option<usize>, init: StepInit, act: Option<(u8, &ActCalibration, bool)>) -> Result<Lsq> {
    bertling_runtime::quant::check_bits(bits)?;
    bertling_runtime::quant::check_group(group)?;
    let [rows, cols] = w.dims();
    let device = w.device();
    let smooth = act.and_then(|(_, a, _)| a.smooth.as_ref());
    if let Some(m) = smooth {
        if m.len() != cols {
            return Err(CompressError::InvalidArgument(format!("{} smoothing factors for a matrix of {cols} columns", m.len())));
        }
    }
    let smooth = smooth.map(|m| Tensor::<1>::from_data(TensorData::new(m.clone(), [cols]), &device));
    // The weight quantizer sees the folded weights W ⊙ (1/m).
    let w = match &smooth {
        Some(m) => w.clone() / m.clone().unsqueeze::<2>(),
        None => w.clone(),
    };
    let v: Vec<f32> = w.clone().into_data().try_into_vec_as::<f32>().map_err(|e| CompressError::InvalidArgument(format!("{e:?}")))?;
    let steps = weight_steps(&v, rows, cols, bits, group, init);
    let groups = steps.len() / rows.max(1);
    Ok(Lsq {
        step: Param::from_tensor(Tensor::from_data(TensorData::new(steps, [rows, groups]), &device)),
        bits: bits as usize,
        group: group.unwrap_or(0),
        act_step: act
            .filter(|(_, _, per_token)| !per_token)
            .map(|(_, a, _)| Param::from_tensor(Tensor::from_data(TensorData::new(vec![a.step], [1]), &device))),
        act_bits: act.map_or(0, |(b, _, _)| b as usize),
        act_smooth: smooth.map(Param::from_tensor),
    })
}

/// The initial activation quantizer of every dense layer, from its inputs over the real tokens
/// of `batch`: smoothing factors with strength `smooth` (see [`QuantPlan::smooth`]), then the
/// step of the (smoothed) inputs by `init` (see [`StepInit`]).
pub fn calibrate_activations(
    enc: &Encoder,
    batch: &crate::student::Batch,
    bits: u8,
    init: StepInit,
    smooth: Option<f32>,
) -> Result<BTreeMap<String, ActCalibration>> {
    if let Some(a) = smooth {
        if !(0.0..=1.0).contains(&a) {
            return Err(CompressError::InvalidArgument(format!("smoothing strength {a}: use a value from 0 to 1 (0.5 is SmoothQuant's default)")));
        }
    }
    // Largest |w| of every input column, per matrix.
    let mut probe = enc.clone();
    let column_max: BTreeMap<String, Tensor<1>> =
        dense_layers_mut(&mut probe).into_iter().map(|(name, d)| (name, d.weight.val().abs().max_dim(0).squeeze_dim::<1>(0))).collect();
    let mut out = BTreeMap::new();
    enc.forward_observed(batch, &mut |name, x| {
        // A `bi_conv` block's pointwise map reads two rows (its streams) per token.
        let [b, rows, _] = x.dims();
        let s = batch.mask.dims()[1];
        let mask = if rows == s { batch.mask.clone() } else { batch.mask.clone().unsqueeze_dim::<3>(2).repeat_dim(2, rows / s).reshape([b, rows]) };
        let (step, m) = match (smooth, column_max.get(name)) {
            (Some(alpha), Some(wmax)) => {
                let xmax = (x.clone() * mask.clone().unsqueeze_dim::<3>(2)).abs().max_dim(0).max_dim(1).flatten::<1>(0, 2);
                let m = smoothing_factors(wmax.clone(), xmax, alpha);
                let step = activation_step(&(x.clone() * m.clone().unsqueeze::<3>()), &mask, bits, init);
                (step, m.into_data().try_into_vec_as::<f32>().ok())
            }
            _ => (activation_step(x, &mask, bits, init), None),
        };
        out.insert(name.to_string(), ActCalibration { step, smooth: m });
    });
    Ok(out)
}

/// `m_j = max|W_:j|^(1-α) / max|x_j|^α`, within [1e-3, 1e3] (a dead channel or column keeps
/// a finite factor).
pub fn smoothing_factors(weight_max: Tensor<1>, act_max: Tensor<1>, alpha: f32) -> Tensor<1> {
    let w = weight_max.clamp_min(1e-6).powf_scalar(1.0 - alpha);
    let x = act_max.clamp_min(1e-6).powf_scalar(alpha);
    (w / x).clamp(1e-3, 1e3)
}

/// The initial step of a `bits`-bit quantizer of `x` (`[batch, seq, width]`) over its real
/// tokens (`mask`, `[batch, seq]`).
pub fn activation_step(x: &Tensor<3>, mask: &Tensor<2>, bits: u8, init: StepInit) -> f32 {
    let (qn, qp) = crate::lsq::q_range(bits);
    let [_, _, w] = x.dims();
    let tokens = mask.clone().sum().into_scalar::<f32>().max(1.0);
    // Padding is zeroed: a zero quantizes exactly at any step, so it adds no error.
    let xm = x.clone() * mask.clone().unsqueeze_dim::<3>(2);
    let mean = xm.clone().abs().sum().into_scalar::<f32>() / (tokens * w as f32);
    let lsq = (2.0 * mean / qp.sqrt()).max(1e-8);
    match init {
        StepInit::Lsq => lsq,
        StepInit::Mse => {
            let max = xm.clone().abs().max().into_scalar::<f32>();
            crate::lsq::least_error_step(lsq, max / qp, 32, |s| {
                ((xm.clone() / s).round().clamp(-qn, qp) * s - xm.clone()).powi_scalar(2).sum().into_scalar::<f32>()
            })
        }
    }
}

/// Every dense layer of an encoder, mutably, with its package name.
pub fn dense_layers_mut(enc: &mut Encoder) -> Vec<(String, &mut Dense)> {
    let mut out = Vec::new();
    for (i, b) in enc.blocks.iter_mut().enumerate() {
        out.extend(b.dense_layers_mut(&names::block(i)));
    }
    out
}

/// Turns on LSQ for every matrix and the embedding tables, with steps initialised as
/// `plan.weight_init` says; `acts` gives each matrix's activation quantizer by name (from
/// [`calibrate_activations`]) when `plan.act_bits`.
pub fn quantize(mut enc: Encoder, plan: &QuantPlan, acts: &BTreeMap<String, ActCalibration>) -> Result<Encoder> {
    for (name, d) in dense_layers_mut(&mut enc) {
        let act = match plan.act_bits {
            None => None,
            Some(bits) => {
                if !matches!(bits, 4 | 8) {
                    return Err(CompressError::InvalidArgument(format!("activation bits {bits}: use 4 or 8")));
                }
                let a =
                    acts.get(&name).ok_or_else(|| CompressError::InvalidArgument(format!("no activation step for {name}; calibrate the activations first")))?;
                Some((bits, a, plan.act_per_token))
            }
        };
        d.quant = Some(lsq_for(&d.weight.val(), plan.bits, plan.group, plan.weight_init, act)?);
    }
    let e = &mut enc.embeddings;
    let (bits, group) = (plan.embedding_bits, plan.embedding_group);
    e.word_quant = Some(lsq_for(&e.word.val(), bits, group, plan.weight_init, None)?);
    e.position_quant = Some(lsq_for(&e.position.val(), bits, group, plan.weight_init, None)?);
    e.token_type_quant = Some(lsq_for(&e.token_type.val(), bits, group, plan.weight_init, None)?);
    Ok(enc)
}

fn read2(t: Tensor<2>) -> Result<(Vec<usize>, Vec<f32>)> {
    let dims = t.dims().to_vec();
    let v = t.into_data().try_into_vec_as::<f32>().map_err(|e| CompressError::InvalidArgument(format!("{e:?}")))?;
    Ok((dims, v))
}

fn read1(t: Tensor<1>) -> Result<(Vec<usize>, Vec<f32>)> {
    let dims = t.dims().to_vec();
    let v = t.into_data().try_into_vec_as::<f32>().map_err(|e| CompressError::InvalidArgument(format!("{e:?}")))?;
    Ok((dims, v))
}

fn float(dims_v: (Vec<usize>, Vec<f32>)) -> RtTensor {
    RtTensor::F32 { shape: dims_v.0, data: dims_v.1 }
}

/// A matrix as the package stores it: floats, or codes with the learned steps (the codes are
/// exactly those of the fake-quantized forward: `clamp(round_half_even(w / step))`).
fn export_matrix(weight: Tensor<2>, quant: Option<&Lsq>) -> Result<(RtTensor, Option<QuantSpec>)> {
    let (dims, w) = read2(weight)?;
    let Some(q) = quant else {
        return Ok((RtTensor::F32 { shape: dims, data: w }, None));
    };
    let steps: Vec<f32> = read2(q.step.val())?.1.into_iter().map(crate::lsq::effective_weight_step).collect();
    let group = (q.group > 0).then_some(q.group);
    let matrix = QuantMatrix::from_steps(&w, dims[0], dims[1], q.bits as u8, group, steps)?;
    let act = match (&q.act_step, q.act_bits) {
        (_, 0) => None,
        (step, bits) => {
            let smooth = match &q.act_smooth {
                Some(m) => Some(read1(m.val())?.1),
                None => None,
            };
            let step = match step {
                Some(s) => ActStep::Tensor(crate::lsq::effective_step(read1(s.val())?.1[0])),
                None => ActStep::Token,
            };
            Some(ActQuant { bits: bits as u8, step, smooth })
        }
    };
    let spec = QuantSpec {
        bits: q.bits as u8,
        group,
        act_bits: act.as_ref().map(|a| a.bits),
        act_smooth: act.as_ref().is_some_and(|a| a.smooth.is_some()),
        act_per_token: act.as_ref().is_some_and(|a| a.step == ActStep::Token),
    };
    Ok((RtTensor::Quant { matrix, act }, Some(spec)))
}

/// Writes an encoder's weights into `template` (same architecture): the head, tokenizer and
/// description come from the template; quantized layers become packed codes.
pub fn encoder_to_data(enc: &Encoder, template: &ModelData) -> Result<ModelData> {
    let mut out = template.clone();
    out.spec.quantized.clear();
    let put = |out: &mut ModelData, name: String, (t, q): (RtTensor, Option<QuantSpec>)| {
        if let Some(q) = q {
            out.spec.quantized.insert(name.clone(), q);
        }
        out.tensors.insert(name, t);
    };
    let e = &enc.embeddings;
    put(&mut out, names::WORD_EMBEDDINGS.into(), export_matrix(e.word.val(), e.word_quant.as_ref())?);
    put(&mut out, names::POSITION_EMBEDDINGS.into(), export_matrix(e.position.val(), e.position_quant.as_ref())?);
    put(&mut out, names::TOKEN_TYPE_EMBEDDINGS.into(), export_matrix(e.token_type.val(), e.token_type_quant.as_ref())?);
    let norm = |out: &mut ModelData, p: &str, n: &Norm| -> Result<()> {
        out.tensors.insert(names::weight(p), float(read1(n.gamma.val())?));
        out.tensors.insert(names::bias(p), float(read1(n.beta.val())?));
        Ok(())
    };
    norm(&mut out, names::EMBEDDING_NORM, &e.norm)?;
    let dense = |out: &mut ModelData, p: &str, d: &Dense| -> Result<()> {
        let (t, q) = export_matrix(d.folded_weight(), d.quant.as_ref())?;
        if let Some(q) = q {
            out.spec.quantized.insert(names::weight(p), q);
        }
        out.tensors.insert(names::weight(p), t);
        out.tensors.insert(names::bias(p), float(read1(d.bias.val())?));
        Ok(())
    };
    for (i, b) in enc.blocks.iter().enumerate() {
        let n = names::block(i);
        for (name, d) in b.dense_layers(&n) {
            dense(&mut out, &name, d)?;
        }
        match b {
            Block::Attention(a) => norm(&mut out, &n.norm(), &a.norm)?,
            Block::FeedForward(f) => norm(&mut out, &n.norm(), &f.norm)?,
            Block::SepConv(c) | Block::BiConv(c) => {
                out.tensors.insert(names::weight(&n.depthwise()), float(read2(c.taps.val())?));
                out.tensors.insert(names::bias(&n.depthwise()), float(read1(c.taps_bias.val())?));
                norm(&mut out, &n.norm(), &c.norm)?;
            }
            Block::Projection(_) | Block::Identity(_) => {}
        }
    }
    if let Some(h) = &enc.head {
        if let Some(p) = &h.pooler {
            dense(&mut out, names::POOLER, p)?;
        }
        dense(&mut out, names::CLASSIFIER, &h.classifier)?;
    }
    // Anything left quantized in the template but float here would be inconsistent.
    for t in out.spec.expected_tensors() {
        if t.role != TensorRole::Other && !out.spec.quantized.contains_key(&t.name) {
            if let Some(RtTensor::Quant { .. }) = out.tensors.get(&t.name) {
                let v = out.tensors[&t.name].to_f32();
                out.tensors.insert(t.name.clone(), RtTensor::F32 { shape: t.shape.clone(), data: v });
            }
        }
    }
    out.validate()?;
    Ok(out)
}
