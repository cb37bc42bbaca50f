//! The NAS-BERT search space scaled to a teacher (`../shared/papers/NOTES.md`): the teacher's
//! blocks split into stages; per stage a width and slots whose op is attention, feed-forward,
//! separable convolution or identity; projections between stages of different widths and to the
//! teacher's width at the end (so sentence embeddings stay comparable with the teacher's); and a
//! factorised word embedding of its own width.

use std::fmt;
use std::str::FromStr;

use bertling_runtime::profile::FFN_HALVES;
use bertling_runtime::rng::XorShift;
use bertling_runtime::spec::{BlockSpec, EmbeddingSpec, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::error::{CompressError, Result};

/// The op of one slot of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Attention { heads: usize, head_dim: usize },
    FeedForward { inner: usize },
    SepConv { kernel: usize },
    Identity,
}

impl Op {
    /// The block this op is at `width` (none for identity: it costs nothing, so it is left out).
    pub fn block(self, width: usize) -> Option<BlockSpec> {
        match self {
            Op::Attention { heads, head_dim } => {
                Some(BlockSpec::Attention { width, heads, head_dim })
            }
            Op::FeedForward { inner } => Some(BlockSpec::FeedForward { width, inner }),
            Op::SepConv { kernel } => Some(BlockSpec::SepConv { width, kernel }),
            Op::Identity => None,
        }
    }
}

impl Op {
    /// Parameters of this op at `width` (weights, biases, norms).
    pub fn parameters(self, width: usize) -> usize {
        let w = width;
        match self {
            Op::Attention { heads, head_dim } => {
                let inner = heads * head_dim;
                3 * inner * w + 3 * inner + w * inner + w + 2 * w
            }
            Op::FeedForward { inner } => 2 * inner * w + inner + w + 2 * w,
            Op::SepConv { kernel } => w * kernel + w + w * w + w + 2 * w,
            Op::Identity => 0,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Attention { heads, head_dim } => write!(f, "a{heads}x{head_dim}"),
            Op::FeedForward { inner } => write!(f, "f{inner}"),
            Op::SepConv { kernel } => write!(f, "c{kernel}"),
            Op::Identity => write!(f, "id"),
        }
    }
}

impl FromStr for Op {
    type Err = CompressError;

    fn from_str(s: &str) -> Result<Op> {
        let bad = || {
            CompressError::InvalidArgument(format!(
                "`{s}` is not an op: use aHxD (attention, H heads of D), fN (feed-forward, N \
                 inner units), cK (separable convolution, kernel K) or id (identity)"
            ))
        };
        let num = |t: &str| t.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(bad);
        if s == "id" {
            Ok(Op::Identity)
        } else if let Some(rest) = s.strip_prefix('a') {
            let (h, d) = rest.split_once('x').ok_or_else(bad)?;
            Ok(Op::Attention { heads: num(h)?, head_dim: num(d)? })
        } else if let Some(rest) = s.strip_prefix('f') {
            Ok(Op::FeedForward { inner: num(rest)? })
        } else if let Some(rest) = s.strip_prefix('c') {
            Ok(Op::SepConv { kernel: num(rest)? })
        } else {
            Err(bad())
        }
    }
}

/// One stage of a candidate: its width and the op of each slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stage {
    pub width: usize,
    pub ops: Vec<Op>,
}

impl Stage {
    /// Parameters of the stage's ops (not its maps in and out).
    pub fn parameters(&self) -> usize {
        self.ops.iter().map(|op| op.parameters(self.width)).sum()
    }
}

/// A candidate architecture. Written `e128|256:a4x64,f512,c5,id|...`: the word embedding's
/// width, then each stage as `width:ops`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Arch {
    pub embedding: usize,
    pub stages: Vec<Stage>,
}

impl Arch {
    /// The blocks of the package description: a projection at every stage boundary (from the
    /// embedding into the first stage, between stages, and to `out_width` at the end, even
    /// between equal widths: each stage of the supernet learns its own maps in and out of the
    /// teacher's width, and the student inherits their products), then the stages' ops in
    /// order, identity slots left out.
    pub fn blocks(&self, out_width: usize) -> Vec<BlockSpec> {
        let mut blocks = Vec::new();
        let mut w = self.embedding;
        for stage in &self.stages {
            blocks.push(BlockSpec::Projection { input: w, output: stage.width });
            blocks.extend(stage.ops.iter().filter_map(|op| op.block(stage.width)));
            w = stage.width;
        }
        blocks.push(BlockSpec::Projection { input: w, output: out_width });
        blocks
    }

    /// The package description of this candidate as a student of `teacher`: the teacher's
    /// vocabulary, positions, pooling and norm epsilon, no head, no quantization.
    pub fn spec(&self, teacher: &ModelSpec) -> ModelSpec {
        let out_width = teacher.embeddings.width;
        ModelSpec {
            embeddings: EmbeddingSpec { width: self.embedding, ..teacher.embeddings.clone() },
            blocks: self.blocks(out_width),
            head: None,
            quantized: Default::default(),
            provenance: Default::default(),
            ..teacher.clone()
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.embedding)?;
        for s in &self.stages {
            let ops: Vec<String> = s.ops.iter().map(Op::to_string).collect();
            write!(f, "|{}:{}", s.width, ops.join(","))?;
        }
        Ok(())
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Arch {
    type Error = CompressError;

    fn try_from(s: String) -> Result<Arch> {
        s.parse()
    }
}

impl FromStr for Arch {
    type Err = CompressError;

    fn from_str(s: &str) -> Result<Arch> {
        let bad = |why: &str| {
            CompressError::InvalidArgument(format!(
                "`{s}` is not an architecture ({why}): write e<embedding width>|<width>:<op>,\
                 <op>,...|..., e.g. e128|256:a4x64,f512,c5,id|192:a3x64,f288,id,id"
            ))
        };
        let mut parts = s.trim().split('|');
        let embedding = parts
            .next()
            .and_then(|e| e.strip_prefix('e'))
            .and_then(|e| e.parse::<usize>().ok())
            .filter(|&e| e > 0)
            .ok_or_else(|| bad("it must start with e and the embedding width"))?;
        let mut stages = Vec::new();
        for part in parts {
            let (w, ops) = part.split_once(':').ok_or_else(|| bad("a stage needs width:ops"))?;
            let width =
                w.parse::<usize>().ok().filter(|&w| w > 0).ok_or_else(|| bad("a stage's width"))?;
            let ops = ops.split(',').map(Op::from_str).collect::<Result<Vec<Op>>>()?;
            stages.push(Stage { width, ops });
        }
        if stages.is_empty() {
            return Err(bad("no stages"));
        }
        Ok(Arch { embedding, stages })
    }
}

/// The space: how many slots each stage has and what each slot and width may be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// The teacher's width: the students' output width.
    pub out_width: usize,
    /// Slots per stage.
    pub slots: Vec<usize>,
    /// Stage widths.
    pub widths: Vec<usize>,
    /// Word embedding widths.
    pub embedding_widths: Vec<usize>,
    /// Attention head widths (heads = width / head_dim).
    pub head_dims: Vec<usize>,
    /// Feed-forward inner sizes in halves of the width (3 = 1.5×).
    pub ffn_halves: Vec<usize>,
    /// Separable convolution kernels.
    pub kernels: Vec<usize>,
}

impl SearchSpace {
    /// NAS-BERT's space scaled to `teacher`: its blocks split into `stages` stages of (nearly)
    /// equal slots (12 blocks of all-MiniLM-L6-v2 → 3 stages of 4), widths `widths` (and the
    /// same for the embedding), attention with 32- and 64-wide heads, feed-forward 1×, 1.5×,
    /// 2×, 4×, convolutions k3/k5/k7, identity: the ops `bertling profile` times.
    pub fn for_teacher(
        teacher: &ModelSpec,
        stages: usize,
        widths: &[usize],
    ) -> Result<SearchSpace> {
        let blocks = teacher.blocks.len();
        if stages == 0 || stages > blocks {
            return Err(CompressError::InvalidArgument(format!(
                "{stages} stages: use 1 to the teacher's {blocks} blocks"
            )));
        }
        if widths.is_empty() || widths.contains(&0) {
            return Err(CompressError::InvalidArgument(
                "give the stage widths, e.g. --widths 128,192,256,384".into(),
            ));
        }
        let slots =
            (0..stages).map(|s| blocks / stages + usize::from(s < blocks % stages)).collect();
        Ok(SearchSpace {
            out_width: teacher.embeddings.width,
            slots,
            widths: widths.to_vec(),
            embedding_widths: widths.to_vec(),
            head_dims: vec![32, 64],
            ffn_halves: FFN_HALVES.to_vec(),
            kernels: vec![3, 5, 7],
        })
    }

    /// Every op a slot of a stage of this width may hold.
    pub fn ops_at(&self, width: usize) -> Vec<Op> {
        let mut ops = Vec::new();
        for &d in &self.head_dims {
            if width.is_multiple_of(d) {
                ops.push(Op::Attention { heads: width / d, head_dim: d });
            }
        }
        for &h in &self.ffn_halves {
            if (width * h).is_multiple_of(2) {
                ops.push(Op::FeedForward { inner: width * h / 2 });
            }
        }
        ops.extend(self.kernels.iter().map(|&kernel| Op::SepConv { kernel }));
        ops.push(Op::Identity);
        ops
    }

    /// Whether `arch` is in the space; if not, why.
    pub fn check(&self, arch: &Arch) -> Result<()> {
        let bad = |why: String| CompressError::InvalidArgument(format!("{arch}: {why}"));
        if !self.embedding_widths.contains(&arch.embedding) {
            return Err(bad(format!("embedding width not one of {:?}", self.embedding_widths)));
        }
        if arch.stages.len() != self.slots.len() {
            return Err(bad(format!(
                "{} stages, the space has {}",
                arch.stages.len(),
                self.slots.len()
            )));
        }
        for (i, (s, &n)) in arch.stages.iter().zip(&self.slots).enumerate() {
            if !self.widths.contains(&s.width) {
                return Err(bad(format!("stage {i}: width not one of {:?}", self.widths)));
            }
            if s.ops.len() != n {
                return Err(bad(format!("stage {i}: {} ops for {n} slots", s.ops.len())));
            }
            let allowed = self.ops_at(s.width);
            if let Some(op) = s.ops.iter().find(|op| !allowed.contains(op)) {
                return Err(bad(format!("stage {i}: {op} is not an op of width {}", s.width)));
            }
        }
        Ok(())
    }

    /// A candidate drawn uniformly: embedding width, then per stage a width and per slot an op.
    pub fn sample(&self, rng: &mut XorShift) -> Arch {
        let embedding =
            self.embedding_widths[rng.below(self.embedding_widths.len() as u64) as usize];
        let stages = self.slots.iter().map(|&n| self.sample_stage(n, rng)).collect();
        Arch { embedding, stages }
    }

    /// A stage of `slots` slots drawn uniformly: a width, then per slot an op.
    pub fn sample_stage(&self, slots: usize, rng: &mut XorShift) -> Stage {
        let width = self.widths[rng.below(self.widths.len() as u64) as usize];
        let ops = self.ops_at(width);
        Stage {
            width,
            ops: (0..slots).map(|_| ops[rng.below(ops.len() as u64) as usize]).collect(),
        }
    }

    /// How many candidates the space holds (saturating).
    pub fn size(&self) -> u128 {
        let per_stage = |n: usize| -> u128 {
            self.widths
                .iter()
                .map(|&w| (self.ops_at(w).len() as u128).saturating_pow(n as u32))
                .fold(0u128, u128::saturating_add)
        };
        self.slots
            .iter()
            .map(|&n| per_stage(n))
            .fold(self.embedding_widths.len() as u128, u128::saturating_mul)
    }
}

/// A space for tests: 3 stages of 4 slots, widths 128..384.
#[cfg(test)]
pub(crate) fn test_space() -> SearchSpace {
    SearchSpace::for_teacher(&test_teacher(384, 6), 3, &[128, 192, 256, 384])
        .expect("a valid space")
}

/// A BERT-shaped description (`layers` attention + feed-forward pairs) for tests.
#[cfg(test)]
pub(crate) fn test_teacher(width: usize, layers: usize) -> ModelSpec {
    let mut blocks = Vec::new();
    for _ in 0..layers {
        blocks.push(BlockSpec::Attention { width, heads: width / 32, head_dim: 32 });
        blocks.push(BlockSpec::FeedForward { width, inner: 4 * width });
    }
    ModelSpec {
        format_version: bertling_runtime::spec::FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: 100, max_positions: 64, type_vocab_size: 2, width },
        blocks,
        layer_norm_eps: 1e-12,
        max_seq_len: 64,
        pooling: bertling_runtime::spec::PoolingSpec {
            mode: bertling_runtime::spec::PoolingMode::Mean,
            normalize: false,
        },
        head: None,
        quantized: Default::default(),
        provenance: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teacher(width: usize, layers: usize) -> ModelSpec {
        test_teacher(width, layers)
    }

    #[test]
    fn stages_split_the_teacher_blocks() {
        let s = SearchSpace::for_teacher(&teacher(384, 6), 3, &[128, 192, 256, 384]).unwrap();
        assert_eq!(s.slots, [4, 4, 4]);
        let s = SearchSpace::for_teacher(&teacher(384, 5), 3, &[128]).unwrap();
        assert_eq!(s.slots, [4, 3, 3]);
        assert!(SearchSpace::for_teacher(&teacher(384, 1), 3, &[128]).is_err());
        assert!(SearchSpace::for_teacher(&teacher(384, 6), 3, &[]).is_err());
        // Width 192: heads of 32 and 64, feed-forward 192/288/384/768, 3 kernels, identity.
        let ops = s.ops_at(192);
        assert_eq!(ops.len(), 2 + 4 + 3 + 1);
        assert!(ops.contains(&Op::Attention { heads: 3, head_dim: 64 }));
        assert!(ops.contains(&Op::FeedForward { inner: 288 }));
        // 4 widths; width 128, 192, 256, 384 each 10 ops; 4 slots per stage; 4 embedding widths.
        let s = SearchSpace::for_teacher(&teacher(384, 6), 3, &[128, 192, 256, 384]).unwrap();
        assert_eq!(s.size(), 4 * (4 * 10u128.pow(4)).pow(3));
    }

    #[test]
    fn architectures_print_parse_and_lower_to_blocks() {
        let text = "e128|256:a4x64,f512,c5,id|256:id,id,id,id|192:a6x32,f288,id,c3";
        let arch: Arch = text.parse().unwrap();
        assert_eq!(arch.to_string(), text);
        let blocks = arch.blocks(384);
        use BlockSpec::*;
        assert_eq!(
            blocks,
            [
                Projection { input: 128, output: 256 },
                Attention { width: 256, heads: 4, head_dim: 64 },
                FeedForward { width: 256, inner: 512 },
                SepConv { width: 256, kernel: 5 },
                Projection { input: 256, output: 256 },
                Projection { input: 256, output: 192 },
                Attention { width: 192, heads: 6, head_dim: 32 },
                FeedForward { width: 192, inner: 288 },
                SepConv { width: 192, kernel: 3 },
                Projection { input: 192, output: 384 },
            ]
        );
        let t = teacher(384, 6);
        let spec = arch.spec(&t);
        spec.validate().unwrap();
        assert_eq!(spec.embeddings.width, 128);
        assert_eq!(spec.embeddings.vocab_size, 100);
        let space = SearchSpace::for_teacher(&t, 3, &[128, 192, 256, 384]).unwrap();
        space.check(&arch).unwrap();
        for bad in ["", "128|256:id", "e128", "e128|256:a4", "e128|256:x1", "e0|256:id"] {
            assert!(bad.parse::<Arch>().is_err(), "{bad}");
        }
        let wrong: Arch = "e128|256:a4x64,f512,c5|256:id,id,id,id|192:id,id,id,id".parse().unwrap();
        assert!(space.check(&wrong).unwrap_err().to_string().contains("3 ops for 4 slots"));
        let wrong: Arch =
            "e128|256:a5x64,id,id,id|256:id,id,id,id|192:id,id,id,id".parse().unwrap();
        assert!(space.check(&wrong).is_err());
    }

    #[test]
    fn samples_are_in_the_space_and_seeded() {
        let t = teacher(384, 6);
        let space = SearchSpace::for_teacher(&t, 3, &[128, 192, 256, 384]).unwrap();
        let draw = |seed| {
            let mut rng = XorShift::new(seed);
            (0..50).map(|_| space.sample(&mut rng)).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        for arch in &a {
            space.check(arch).unwrap();
            arch.spec(&t).validate().unwrap();
        }
        let distinct: std::collections::HashSet<&Arch> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
    }
}
