//! Progressive module replacing (BERT-of-Theseus, Xu et al. 2020): the fine-tuned teacher's
//! layers are grouped into modules, one per student layer; at every step each module is run
//! by its student layer (successor) with a probability that rises linearly from a base rate to
//! one, and by the teacher's layers (predecessor, frozen) otherwise, so the successors learn
//! to stand in for the modules inside the teacher; once the rate is one, the student trains
//! alone. The student shares the teacher's width; its embeddings and head start as the
//! teacher's and train with it.

use std::ops::Range;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{CompressError, Result};
use crate::student::{Batch, Encoder, Masks};

/// The replacement schedule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Replacing {
    /// The replacement probability at the first step.
    pub base_rate: f32,
    /// The fraction of all steps at which the probability reaches one.
    pub full_at: f32,
}

impl Default for Replacing {
    /// The paper's linear curriculum from 0.3; the second half of training is the student
    /// alone.
    fn default() -> Self {
        Replacing { base_rate: 0.3, full_at: 0.5 }
    }
}

impl Replacing {
    /// The replacement probability at step `step` of `steps`.
    pub fn rate(&self, step: usize, steps: usize) -> f32 {
        let full = (self.full_at as f64 * steps as f64).max(1.0);
        let r = self.base_rate as f64 + (1.0 - self.base_rate as f64) * step as f64 / full;
        r.min(1.0) as f32
    }

    /// Which modules the successors run at `step` (seeded draws, the same on a resumed run).
    pub fn draw(&self, modules: usize, step: usize, steps: usize, seed: u64) -> Vec<bool> {
        let p = self.rate(step, steps);
        let mut rng = bertling_runtime::rng::XorShift::new(
            seed ^ (step as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        (0..modules).map(|_| rng.unit() < p).collect()
    }
}

/// Student blocks and the teacher blocks they replace, one pair per student layer.
pub type Modules = Vec<(Range<usize>, Range<usize>)>;

/// The layers of a model of alternating attention and feed-forward blocks, and its width.
fn layers(enc: &Encoder, what: &str) -> Result<(usize, usize)> {
    let ok = enc.blocks.len().is_multiple_of(2)
        && !enc.blocks.is_empty()
        && enc
            .blocks
            .chunks(2)
            .all(|p| p[0].attention().is_some() && p[1].feed_forward().is_some());
    if !ok {
        return Err(CompressError::InvalidArgument(format!(
            "module replacing needs standard BERT layers (attention then feed-forward); the {what} \
             has other blocks"
        )));
    }
    Ok((enc.blocks.len() / 2, enc.embeddings.word.dims()[1]))
}

/// The modules of a student and its teacher: student layer `j` replaces teacher layers
/// `j·r .. (j+1)·r`, `r` = teacher layers / student layers.
pub fn modules(student: &Encoder, teacher: &Encoder) -> Result<Modules> {
    let ((ls, ws), (lt, wt)) = (layers(student, "student")?, layers(teacher, "teacher")?);
    if ws != wt || !lt.is_multiple_of(ls) {
        return Err(CompressError::InvalidArgument(format!(
            "module replacing needs a student of the teacher's width ({wt}) whose layers divide \
             the teacher's ({lt}); this student has {ls} layers of width {ws}"
        )));
    }
    let r = lt / ls;
    Ok((0..ls).map(|j| (2 * j..2 * j + 2, 2 * j * r..2 * (j + 1) * r)).collect())
}

/// The logits of the mixed model: the student's embeddings, then each module run by the
/// student's layer where `replace` says so and by the teacher's layers otherwise, then the
/// student's head.
pub fn mixed_logits(
    student: &Encoder,
    teacher: &Encoder,
    modules: &Modules,
    replace: &[bool],
    batch: &Batch,
) -> Option<Tensor<2>> {
    let masks = Masks::new(batch);
    let mut x = student.embed(batch);
    for ((s, t), &by_student) in modules.iter().zip(replace) {
        let (enc, blocks) = if by_student { (student, s) } else { (teacher, t) };
        for i in blocks.clone() {
            x = enc.block_forward(i, x, &masks, &mut |_, _| {}).0;
        }
    }
    student.head.as_ref().map(|h| h.forward(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_rises_linearly_to_one_and_the_draws_follow_it() {
        let r = Replacing::default();
        assert!((r.rate(0, 100) - 0.3).abs() < 1e-6);
        assert!((r.rate(25, 100) - 0.65).abs() < 1e-6);
        assert_eq!(r.rate(50, 100), 1.0);
        assert_eq!(r.rate(99, 100), 1.0);
        assert!(r.draw(3, 60, 100, 1).iter().all(|&b| b), "at rate 1 every module is replaced");
        let none = Replacing { base_rate: 0.0, full_at: 1.0 };
        assert!(none.draw(3, 0, 100, 1).iter().all(|&b| !b), "at rate 0 none is");
        // Over many steps at rate 0.5 about half the draws replace.
        let half = Replacing { base_rate: 0.5, full_at: 1e9 };
        let n: usize = (0..2000).map(|s| half.draw(1, s, 10, 7)[0] as usize).sum();
        assert!((900..1100).contains(&n), "{n}");
        assert_eq!(r.draw(3, 5, 100, 9), r.draw(3, 5, 100, 9));
    }
}
