//! The model being trained: the student and the projections to the teacher's widths.

use burn::module::{Module, Param};
use burn::prelude::*;

use super::config::{layer_outputs, pair_layers, DistillConfig};
use crate::error::Result;
use crate::student::{Dense, Encoder};

/// The student with the projections that map its hidden states to the teacher's widths.
#[derive(Module, Debug)]
pub struct Trainee {
    pub student: Encoder,
    /// One per distilled layer pair (then the embedding output), present where widths differ.
    pub proj: Vec<Option<Dense>>,
}

/// Creates the projections for a student/teacher pair: identity-free where widths match,
/// otherwise a learned `teacher_width × student_width` map (small random init from `seed`).
pub fn projections(
    student: &Encoder,
    teacher: &Encoder,
    pairs: &[(usize, usize)],
    seed: u64,
    device: &Device,
) -> Vec<Option<Dense>> {
    let probe_width = |enc: &Encoder, hidden: usize| -> usize {
        // The width of hidden state `hidden`: the embedding width, changed by projections.
        let mut w = enc.embeddings.word.dims()[1];
        for b in &enc.blocks[..hidden] {
            if let Some(p) = b.projection() {
                w = p.weight.dims()[0];
            }
        }
        w
    };
    let (sl, tl) = (layer_outputs(student), layer_outputs(teacher));
    let mut want: Vec<(usize, usize)> = pairs
        .iter()
        .map(|&(js, jt)| (probe_width(student, sl[js]), probe_width(teacher, tl[jt])))
        .collect();
    want.push((probe_width(student, 0), probe_width(teacher, 0)));
    let mut rng = bertling_runtime::rng::XorShift::new(seed);
    want.into_iter()
        .map(|(ws, wt)| {
            (ws != wt).then(|| {
                let scale = 1.0 / (ws as f32).sqrt();
                let v: Vec<f32> = (0..ws * wt).map(|_| rng.symmetric(scale)).collect();
                Dense::new(
                    Tensor::from_data(TensorData::new(v, [wt, ws]), device),
                    Tensor::zeros([wt], device),
                )
            })
        })
        .collect()
}

/// Turns a plain module into the student of a trainee on `device` (autodiff for training).
pub fn trainee(
    student: Encoder,
    teacher: &Encoder,
    cfg: &DistillConfig,
    device: &Device,
) -> Result<Trainee> {
    let pairs = pair_layers(&cfg.map, layer_outputs(&student).len(), layer_outputs(teacher).len())?;
    let proj = projections(&student, teacher, &pairs, cfg.seed, device);
    Ok(Trainee { student, proj }.train())
}

/// Reads a parameter back (tests, export).
pub fn param_values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    p.val().into_data().try_into_vec_as::<f32>().unwrap_or_default()
}
