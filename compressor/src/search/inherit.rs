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
    let ops = || arch.stages.iter().flat_map(|s| s.ops.iter().map(move |op| (s.width, *op)));
    // The smallest space that holds `arch`: its own slots, widths and op sizes (`check` then
    // refuses what no space holds: heads that do not fill the width, a feed-forward size that
    // is not a whole number of half widths).
    let space = SearchSpace {
        slots: arch.stages.iter().map(|s| s.ops.len()).collect(),
        embedding_widths: vec![arch.embedding],
        head_dims: set(ops()
            .filter_map(|(_, op)| match op {
                Op::Attention { head_dim, .. } => Some(head_dim),
                _ => None,
            })
            .collect()),
        ffn_halves: set(ops()
            .filter_map(|(w, op)| match op {
                Op::FeedForward { inner } => Some(2 * inner / w.max(1)),
                _ => None,
            })
            .collect()),
        kernels: set(ops()
            .filter_map(|(_, op)| match op {
                Op::SepConv { kernel } => Some(kernel),
                _ => None,
            })
            .collect()),
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
