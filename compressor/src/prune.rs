//! Pruning, the compression baselines of the loyalty study (Xu et al. 2021): unstructured
//! magnitude pruning (the smallest weights of every encoder matrix set to zero; fine-tuning then
//! keeps them zero) and structured pruning (the least important attention heads and
//! feed-forward neurons of every layer removed, importance as ETD measures it). Both give
//! normal packages; the structured one is smaller and faster, the magnitude-pruned one is as
//! large as before (the format stores matrices dense; f16 stays f16).

use bertling_runtime::spec::TensorRole;
use bertling_runtime::{Input, ModelData, TensorData as Rt};

use crate::error::{CompressError, Result};
use crate::etd::{bert_dims, extract, importance, Init, StudentShape};

/// The provenance `method` of a magnitude-pruned package (fine-tuning keeps its zeros).
pub const MAGNITUDE_METHOD: &str = "prune-magnitude";

fn check(model: &ModelData, sparsity: f32) -> Result<()> {
    if !(0.0..1.0).contains(&sparsity) {
        return Err(CompressError::InvalidArgument(format!(
            "sparsity {sparsity}: give the fraction to remove, from 0 up to (not including) 1"
        )));
    }
    if !model.spec.quantized.is_empty() {
        return Err(CompressError::InvalidArgument(
            "the model is quantized: prune its float model, then quantize (or fine-tune) the \
             pruned one"
                .into(),
        ));
    }
    Ok(())
}

/// The matrices of the encoder's blocks (not the embedding tables, not the head), as the
/// package description lists them.
fn block_matrices(model: &ModelData) -> Vec<String> {
    model
        .spec
        .expected_tensors()
        .into_iter()
        .filter(|t| t.role == TensorRole::Matrix)
        .map(|t| t.name)
        .collect()
}

/// Unstructured magnitude pruning: in every matrix of the encoder's blocks, the
/// `⌊sparsity · n⌋` weights of smallest magnitude (ties broken by position) set to zero.
pub fn magnitude(model: &ModelData, sparsity: f32) -> Result<ModelData> {
    check(model, sparsity)?;
    let mut out = model.clone();
    for name in block_matrices(model) {
        let t = out.tensors.get_mut(&name).ok_or_else(|| CompressError::Tensor {
            name: name.clone(),
            what: "is missing".into(),
        })?;
        let shape = t.shape();
        let mut w = t.to_f32();
        let k = (sparsity as f64 * w.len() as f64).floor() as usize;
        let mut order: Vec<usize> = (0..w.len()).collect();
        order.sort_by(|&a, &b| w[a].abs().total_cmp(&w[b].abs()).then(a.cmp(&b)));
        for &i in &order[..k] {
            w[i] = 0.0;
        }
        *t = match t {
            Rt::F16 { .. } => {
                Rt::F16 { shape, data: w.into_iter().map(half::f16::from_f32).collect() }
            }
            _ => Rt::F32 { shape, data: w },
        };
    }
    out.spec.provenance.recipe = serde_json::json!({
        "method": MAGNITUDE_METHOD, "sparsity": sparsity, "from": model.spec.provenance.recipe,
    });
    Ok(out)
}

/// Structured pruning: every layer keeps the `round((1 − sparsity) · n)` (at least one) most
/// important attention heads and feed-forward neurons, importance measured on `sample` as ETD
/// measures it; layers, width and head are kept.
pub fn structured(model: &ModelData, sparsity: f32, sample: &[Input]) -> Result<ModelData> {
    check(model, sparsity)?;
    let (width, heads, _, inner, layers) = bert_dims(model)?;
    let keep = |n: usize| (((1.0 - sparsity as f64) * n as f64).round() as usize).clamp(1, n);
    let shape = StudentShape { layers, width, heads: keep(heads), inner: keep(inner) };
    let imp = importance(model, sample)?;
    let mut out = extract(model, &shape, &Init::EtdImpt(imp), 0)?;
    out.spec.provenance = model.spec.provenance.clone();
    out.spec.provenance.recipe = serde_json::json!({
        "method": "prune-structured", "sparsity": sparsity, "heads": shape.heads,
        "inner": shape.inner, "from": model.spec.provenance.recipe,
    });
    Ok(out)
}
