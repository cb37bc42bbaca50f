//! A student of a searched architecture without the search: the weights the untrained supernet
//! would give it (the teacher's most important units, the factorised embedding), for `bertling
//! compress --arch` to distil and quantize like any other student.

use bertling_runtime::ModelData;

use super::space::{Arch, Op, SearchSpace};
use super::supernet::Supernet;
use crate::error::Result;
use crate::etd::Importance;

/// `arch` cut from the teacher as the supernet starts: stage widths, heads and neurons chosen by
/// `importance` (the teacher's own order without it), the word embedding narrowed along its
/// principal directions. Refuses an architecture whose slots do not add up to the teacher's
/// blocks or whose widths exceed the teacher's.
pub fn inherit(
    teacher: &ModelData,
    arch: &Arch,
    importance: Option<&Importance>,
    seed: u64,
) -> Result<ModelData> {
    let set = |mut v: Vec<usize>| {
        v.sort_unstable();
        v.dedup();
        v
    };
    let (mut head_dims, mut ffn_halves, mut kernels) = (Vec::new(), Vec::new(), Vec::new());
    for stage in &arch.stages {
        for op in &stage.ops {
            match *op {
                Op::Attention { head_dim, .. } => head_dims.push(head_dim),
                Op::FeedForward { inner } => ffn_halves.push(2 * inner / stage.width.max(1)),
                Op::SepConv { kernel } => kernels.push(kernel),
                Op::Identity => {}
            }
        }
    }
    // The smallest space that holds `arch`: its own slots, widths and op sizes (`check` then
    // refuses what no space holds: heads that do not fill the width, a feed-forward size that
    // is not a whole number of half widths).
    let space = SearchSpace {
        slots: arch.stages.iter().map(|s| s.ops.len()).collect(),
        embedding_widths: vec![arch.embedding],
        head_dims: set(head_dims),
        ffn_halves: set(ffn_halves),
        kernels: set(kernels),
        ..SearchSpace::for_teacher(
            &teacher.spec,
            arch.stages.len(),
            &set(arch.stages.iter().map(|s| s.width).collect()),
        )?
    };
    space.check(arch)?;
    let device = Default::default();
    Supernet::from_teacher(teacher, &space, importance, seed, &device)?.student(arch, teacher)
}
