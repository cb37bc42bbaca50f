//! The search proper: the best candidates under a budget of bytes and/or milliseconds, from the
//! stages' surviving candidates and their held-out losses. NAS-BERT's performance approximation
//! makes a candidate's loss the sum of its stages' (and its embedding's), and latency and bytes
//! add up too, so the search is exact: a dynamic programme over the stages that keeps, for each
//! width a stage may end at, every partial candidate no other beats on loss, latency and bytes
//! at once (the Pareto set), pruning whatever already exceeds the loosest budget.

use bertling_runtime::spec::BlockSpec;
use serde::{Deserialize, Serialize};

use super::latency::LatencyModel;
use super::space::{Arch, Stage};
use crate::error::{CompressError, Result};

/// What a student may cost. `None`: no limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub bytes: Option<f64>,
    pub ms: Option<f64>,
}

impl Budget {
    /// `7MB`, `10.5MB`, `800KB`, `12ms`, or both joined by `+` (`7MB+12ms`).
    pub fn parse(text: &str) -> Result<Budget> {
        let bad = || {
            CompressError::InvalidArgument(format!(
                "`{text}` is not a budget: write 7MB, 800KB, 12ms or 7MB+12ms"
            ))
        };
        let mut b = Budget { bytes: None, ms: None };
        for part in text.split('+') {
            let p = part.trim().to_ascii_lowercase();
            let num = |s: &str| s.trim().parse::<f64>().ok().filter(|v| *v > 0.0).ok_or_else(bad);
            if let Some(v) = p.strip_suffix("mb") {
                b.bytes = Some(num(v)? * 1e6);
            } else if let Some(v) = p.strip_suffix("kb") {
                b.bytes = Some(num(v)? * 1e3);
            } else if let Some(v) = p.strip_suffix("ms") {
                b.ms = Some(num(v)?);
            } else {
                return Err(bad());
            }
        }
        Ok(b)
    }

    fn admits(&self, bytes: f64, ms: f64) -> bool {
        self.bytes.is_none_or(|b| bytes <= b) && self.ms.is_none_or(|m| ms <= m)
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.bytes, self.ms) {
            (Some(b), Some(m)) => write!(f, "{}MB+{m}ms", b / 1e6),
            (Some(b), None) => write!(f, "{}MB", b / 1e6),
            (None, Some(m)) => write!(f, "{m}ms"),
            (None, None) => write!(f, "unlimited"),
        }
    }
}

/// What the parts of a candidate cost: bytes as the package stores them (quantized matrices at
/// `bits` with `group` columns per f16 step, embedding tables at 8 bits, everything else f32),
/// and milliseconds from a latency table (0 without one).
pub struct Costs<'a> {
    pub latency: Option<&'a LatencyModel<'a>>,
    pub bits: u8,
    pub group: Option<usize>,
    /// Rows of the embedding tables (vocabulary + positions + segments).
    pub table_rows: usize,
    /// The teacher's width (the students' output).
    pub out_width: usize,
    /// Bytes every package pays whatever its architecture (the tokenizer and the header), so
    /// that a budget is the package file's size.
    pub fixed: f64,
}

impl Costs<'_> {
    fn matrix_bytes(&self, rows: usize, cols: usize, bits: u8) -> f64 {
        if bits >= 16 {
            return (rows * cols) as f64 * f64::from(bits) / 8.0;
        }
        let steps = match self.group {
            Some(g) => rows * cols.div_ceil(g),
            None => rows,
        };
        (rows * cols) as f64 * f64::from(bits) / 8.0 + 2.0 * steps as f64
    }

    /// Bytes of one block.
    pub fn block_bytes(&self, block: &BlockSpec) -> f64 {
        let m = |r, c| self.matrix_bytes(r, c, self.bits);
        let f = |n: usize| 4.0 * n as f64;
        match *block {
            BlockSpec::Attention { width, heads, head_dim } => {
                let inner = heads * head_dim;
                m(3 * inner, width) + m(width, inner) + f(3 * inner + 3 * width)
            }
            BlockSpec::FeedForward { width, inner } => {
                m(inner, width) + m(width, inner) + f(inner + 3 * width)
            }
            BlockSpec::SepConv { width, kernel } => m(width, width) + f(width * kernel + 4 * width),
            BlockSpec::BiConv { width, kernel } => {
                m(width / 2, width / 2) + f(width * kernel + width + 3 * width / 2)
            }
            BlockSpec::Identity { .. } => 0.0,
            BlockSpec::Projection { input, output } => m(output, input) + f(output),
        }
    }

    /// Bytes of the embeddings at width `e` (tables and their norm).
    pub fn embedding_bytes(&self, e: usize) -> f64 {
        let bits = if self.bits >= 16 { self.bits } else { 8 };
        self.matrix_bytes(self.table_rows, e, bits) + 8.0 * e as f64
    }

    fn block_ms(&self, block: &BlockSpec) -> Result<f64> {
        self.latency.map_or(Ok(0.0), |l| l.block_ms(block))
    }

    fn cost(&self, blocks: &[BlockSpec]) -> Result<(f64, f64)> {
        let mut ms = 0.0;
        for b in blocks {
            ms += self.block_ms(b)?;
        }
        Ok((blocks.iter().map(|b| self.block_bytes(b)).sum(), ms))
    }

    fn embedding(&self, e: usize) -> Result<(f64, f64)> {
        let bytes = self.embedding_bytes(e) + self.fixed;
        Ok((bytes, self.latency.map_or(Ok(0.0), |l| l.fixed_ms(e))?))
    }

    /// Bytes and milliseconds of a whole candidate.
    pub fn of(&self, arch: &Arch) -> Result<(f64, f64)> {
        let (b0, m0) = self.embedding(arch.embedding)?;
        let (b, m) = self.cost(&arch.blocks(self.out_width))?;
        Ok((b0 + b, m0 + m))
    }
}

/// A candidate the search found: its proxy loss and costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub arch: Arch,
    /// The sum of its stages' and embedding's held-out losses.
    pub loss: f64,
    pub bytes: f64,
    pub ms: f64,
}

/// A partial candidate: which embedding and which candidate of each stage so far.
#[derive(Clone)]
struct Partial {
    loss: f64,
    bytes: f64,
    ms: f64,
    embedding: usize,
    picks: Vec<usize>,
}

/// Keeps the partials no other beats on all of loss, bytes and milliseconds.
fn pareto(mut v: Vec<Partial>) -> Vec<Partial> {
    v.sort_by(|a, b| {
        a.loss.total_cmp(&b.loss).then(a.bytes.total_cmp(&b.bytes)).then(a.ms.total_cmp(&b.ms))
    });
    let mut kept: Vec<Partial> = Vec::new();
    for p in v {
        // Everything kept has a loss ≤ p's: p survives unless one of them is no larger in both.
        if !kept.iter().any(|k| k.bytes <= p.bytes && k.ms <= p.ms) {
            kept.push(p);
        }
    }
    kept
}

/// The `top` best candidates (lowest proxy loss) within each budget, best first; an empty list
/// for a budget nothing fits. `embeddings` are (width, held-out loss); `stages[k]` the
/// candidates of stage k with their held-out losses.
pub fn search(
    embeddings: &[(usize, f64)],
    stages: &[Vec<(Stage, f64)>],
    costs: &Costs,
    budgets: &[Budget],
    top: usize,
) -> Result<Vec<Vec<Found>>> {
    if embeddings.is_empty() || stages.iter().any(Vec::is_empty) {
        return Err(CompressError::InvalidArgument(
            "the search has no candidates for some stage".into(),
        ));
    }
    let loosest = |f: fn(&Budget) -> Option<f64>| -> f64 {
        budgets.iter().map(|b| f(b).unwrap_or(f64::INFINITY)).fold(0.0, f64::max)
    };
    let (max_bytes, max_ms) = (loosest(|b| b.bytes), loosest(|b| b.ms));
    // Partials keyed by the width the last stage ended at (the embedding's, at first).
    let mut frontier: Vec<(usize, Vec<Partial>)> = Vec::new();
    for (i, &(e, loss)) in embeddings.iter().enumerate() {
        let (bytes, ms) = costs.embedding(e)?;
        let p = Partial { loss, bytes, ms, embedding: i, picks: Vec::new() };
        match frontier.iter_mut().find(|(w, _)| *w == e) {
            Some((_, v)) => v.push(p),
            None => frontier.push((e, vec![p])),
        }
    }
    for cands in stages {
        let mut next: Vec<(usize, Vec<Partial>)> = Vec::new();
        for (prev, partials) in &frontier {
            for (j, (stage, loss)) in cands.iter().enumerate() {
                let mut blocks = vec![BlockSpec::Projection { input: *prev, output: stage.width }];
                blocks.extend(stage.ops.iter().filter_map(|op| op.block(stage.width)));
                let (bytes, ms) = costs.cost(&blocks)?;
                for p in partials {
                    let q = Partial {
                        loss: p.loss + loss,
                        bytes: p.bytes + bytes,
                        ms: p.ms + ms,
                        embedding: p.embedding,
                        picks: p.picks.iter().copied().chain([j]).collect(),
                    };
                    if q.bytes > max_bytes || q.ms > max_ms {
                        continue;
                    }
                    match next.iter_mut().find(|(w, _)| *w == stage.width) {
                        Some((_, v)) => v.push(q),
                        None => next.push((stage.width, vec![q])),
                    }
                }
            }
        }
        frontier = next.into_iter().map(|(w, v)| (w, pareto(v))).collect();
    }
    // The last map to the teacher's width.
    let mut done = Vec::new();
    for (w, partials) in &frontier {
        let (bytes, ms) =
            costs.cost(&[BlockSpec::Projection { input: *w, output: costs.out_width }])?;
        for p in partials {
            let arch = Arch {
                embedding: embeddings[p.embedding].0,
                stages: p.picks.iter().enumerate().map(|(k, &j)| stages[k][j].0.clone()).collect(),
            };
            done.push(Found { arch, loss: p.loss, bytes: p.bytes + bytes, ms: p.ms + ms });
        }
    }
    done.sort_by(|a, b| a.loss.total_cmp(&b.loss).then(a.bytes.total_cmp(&b.bytes)));
    Ok(budgets
        .iter()
        .map(|b| done.iter().filter(|f| b.admits(f.bytes, f.ms)).take(top).cloned().collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Op;

    fn costs() -> Costs<'static> {
        Costs { latency: None, bits: 4, group: Some(32), table_rows: 1000, out_width: 64, fixed: 0.0 }
    }

    /// The dynamic programme finds what enumerating every combination finds, for budgets from
    /// tight to loose.
    #[test]
    fn search_equals_exhaustive_enumeration() {
        let mut rng = bertling_runtime::rng::XorShift::new(5);
        let stage = |rng: &mut bertling_runtime::rng::XorShift| {
            let width = [32usize, 64][rng.below(2) as usize];
            let ops = (0..2)
                .map(|_| match rng.below(4) {
                    0 => Op::Attention { heads: width / 32, head_dim: 32 },
                    1 => Op::FeedForward { inner: width * (1 + rng.below(4) as usize) },
                    2 => Op::SepConv { kernel: 3 },
                    _ => Op::Identity,
                })
                .collect();
            Stage { width, ops }
        };
        let stages: Vec<Vec<(Stage, f64)>> = (0..3)
            .map(|_| (0..6).map(|_| (stage(&mut rng), rng.unit() as f64)).collect())
            .collect();
        let embeddings = vec![(32, 0.3), (64, 0.1)];
        let c = costs();
        let mut all = Vec::new();
        for &(e, le) in &embeddings {
            for (s0, l0) in &stages[0] {
                for (s1, l1) in &stages[1] {
                    for (s2, l2) in &stages[2] {
                        let arch =
                            Arch { embedding: e, stages: vec![s0.clone(), s1.clone(), s2.clone()] };
                        let (bytes, _) = c.of(&arch).unwrap();
                        all.push((le + l0 + l1 + l2, bytes));
                    }
                }
            }
        }
        let mut sizes: Vec<f64> = all.iter().map(|a| a.1).collect();
        sizes.sort_by(f64::total_cmp);
        let budgets: Vec<Budget> = [0usize, 5, 50, 150, sizes.len() - 1]
            .iter()
            .map(|&i| Budget { bytes: Some(sizes[i]), ms: None })
            .collect();
        let found = search(&embeddings, &stages, &c, &budgets, 1).unwrap();
        for (b, f) in budgets.iter().zip(&found) {
            let best = all
                .iter()
                .filter(|a| a.1 <= b.bytes.unwrap())
                .map(|a| a.0)
                .fold(f64::INFINITY, f64::min);
            assert!((f[0].loss - best).abs() < 1e-12, "{b}: {} vs {best}", f[0].loss);
            let (bytes, _) = c.of(&f[0].arch).unwrap();
            assert!((bytes - f[0].bytes).abs() < 1e-6 && bytes <= b.bytes.unwrap());
        }
        let none = search(&embeddings, &stages, &c, &[Budget { bytes: Some(1.0), ms: None }], 1);
        assert!(none.unwrap()[0].is_empty());
    }

    #[test]
    fn budgets_parse() {
        assert_eq!(Budget::parse("7MB").unwrap(), Budget { bytes: Some(7e6), ms: None });
        assert_eq!(
            Budget::parse("10.5mb+12ms").unwrap(),
            Budget { bytes: Some(10.5e6), ms: Some(12.0) }
        );
        assert_eq!(Budget::parse("800KB").unwrap().bytes, Some(8e5));
        for bad in ["7", "MB", "-1MB", "7GB", ""] {
            assert!(Budget::parse(bad).is_err(), "{bad}");
        }
    }

    /// Bytes of a block as the package stores it: W4 g32 codes with f16 steps, f32 vectors.
    #[test]
    fn block_bytes_closed_form() {
        let c = costs();
        let ffn = BlockSpec::FeedForward { width: 64, inner: 128 };
        // Two 64×128 matrices at 4 bits = 8192 B; steps 128·2 + 64·4 = 512, 2 B each; f32
        // vectors 128 + 3·64 = 320.
        assert_eq!(c.block_bytes(&ffn), 8192.0 + 1024.0 + 1280.0);
    }
}
