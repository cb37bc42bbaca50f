//! A candidate's latency predicted from the table `bertling profile` measured on the target: the
//! fixed cost at its embedding width plus the latency of each of its blocks, looked up at the
//! weights, activations, sequence length and batch the students will run with.

use bertling_runtime::profile::{op_key, LatencyTable};
use bertling_runtime::spec::{BlockSpec, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::error::{CompressError, Result};

/// How the predicted models run: the table's entries of these settings are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Weight bits: 32 (f32), 16 (f16) or 2..8.
    pub bits: u8,
    /// Columns per weight step; `None` = per output channel.
    pub group: Option<usize>,
    /// Activation bits (per-token steps), 0 = float.
    pub act_bits: u8,
    pub seq: usize,
    pub batch: usize,
}

/// Predicts latencies from a latency table.
pub struct LatencyModel<'a> {
    table: &'a LatencyTable,
    run: RunSettings,
}

impl<'a> LatencyModel<'a> {
    /// A predictor of models run as `run`; refused when the table has nothing measured so.
    pub fn new(table: &'a LatencyTable, run: RunSettings) -> Result<LatencyModel<'a>> {
        let matches = |e: &&bertling_runtime::profile::LatencyEntry| {
            e.bits == run.bits
                && e.seq == run.seq
                && e.batch == run.batch
                && e.act_bits == run.act_bits
                && e.group == run.group
        };
        if !table.entries.iter().any(|e| matches(&e)) {
            let mut have: Vec<String> = table
                .entries
                .iter()
                .map(|e| {
                    let key = op_key(&e.block, e.bits, e.group, e.act_bits, e.seq, e.batch);
                    {
                        let parts: Vec<&str> = key.split('/').collect();
                        parts[parts.len().saturating_sub(3)..].join(" ")
                    }
                })
                .collect();
            have.sort();
            have.dedup();
            return Err(CompressError::InvalidArgument(format!(
                "the latency table ({} on {}) has no ops measured as {}; it has: {}. Profile \
                 with matching --bits, --group, --act-bits, --seq and --batch",
                table.backend,
                table.device,
                describe(&run),
                have.join(", ")
            )));
        }
        if table.fixed.is_empty() {
            return Err(CompressError::InvalidArgument(format!(
                "the latency table ({} on {}, {}) has no fixed costs (written by an older \
                 `bertling profile`): profile again",
                table.backend, table.device, table.date
            )));
        }
        Ok(LatencyModel { table, run })
    }

    /// The settings predicted for.
    pub fn settings(&self) -> RunSettings {
        self.run
    }

    fn missing(&self, key: &str) -> CompressError {
        CompressError::InvalidArgument(format!(
            "the latency table ({} on {}) has no entry `{key}`: profile the widths the search \
             uses (bertling profile --widths ...)",
            self.table.backend, self.table.device
        ))
    }

    fn key(&self, block: &BlockSpec) -> String {
        let r = &self.run;
        op_key(block, r.bits, r.group, r.act_bits, r.seq, r.batch)
    }

    /// Milliseconds of one block (identity: 0).
    pub fn block_ms(&self, block: &BlockSpec) -> Result<f64> {
        if matches!(block, BlockSpec::Identity { .. }) {
            return Ok(0.0);
        }
        let key = self.key(block);
        self.table.get(&key).map(|e| e.median_ms).ok_or_else(|| self.missing(&key))
    }

    /// Milliseconds every model with embeddings of this width pays besides its blocks.
    pub fn fixed_ms(&self, width: usize) -> Result<f64> {
        let key = self.key(&BlockSpec::Identity { width });
        self.table.get_fixed(&key).map(|e| e.median_ms).ok_or_else(|| self.missing(&key))
    }

    /// Milliseconds of a whole model: the fixed cost and every block.
    pub fn predict(&self, spec: &ModelSpec) -> Result<f64> {
        spec.blocks
            .iter()
            .try_fold(self.fixed_ms(spec.embeddings.width)?, |t, b| Ok(t + self.block_ms(b)?))
    }
}

/// `w4g32a8 s128 b1`.
pub fn describe(run: &RunSettings) -> String {
    let key = op_key(
        &BlockSpec::Identity { width: 1 },
        run.bits,
        run.group,
        run.act_bits,
        run.seq,
        run.batch,
    );
    key.split('/').skip(2).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bertling_runtime::profile::LatencyEntry;

    fn entry(block: BlockSpec, run: &RunSettings, ms: f64) -> LatencyEntry {
        LatencyEntry {
            key: op_key(&block, run.bits, run.group, run.act_bits, run.seq, run.batch),
            block,
            bits: run.bits,
            group: run.group,
            act_bits: run.act_bits,
            seq: run.seq,
            batch: run.batch,
            median_ms: ms,
            p10_ms: ms,
            p90_ms: ms,
            runs: 1,
        }
    }

    /// The prediction is the fixed cost plus the sum of the blocks (a closed form on a table of
    /// made-up times), and missing entries are named.
    #[test]
    fn predicts_the_sum_of_the_table() {
        let run = RunSettings { bits: 4, group: Some(32), act_bits: 8, seq: 128, batch: 1 };
        let att = BlockSpec::Attention { width: 128, heads: 4, head_dim: 32 };
        let ffn = BlockSpec::FeedForward { width: 128, inner: 256 };
        let proj = BlockSpec::Projection { input: 64, output: 128 };
        let back = BlockSpec::Projection { input: 128, output: 128 };
        let table = LatencyTable {
            format: "bertling-latency-table".into(),
            version: 1,
            device: "test".into(),
            backend: "cpu".into(),
            driver: String::new(),
            date: "2026-12-02".into(),
            threads: 1,
            timing: "wall-clock".into(),
            entries: vec![
                entry(att.clone(), &run, 1.5),
                entry(ffn.clone(), &run, 2.25),
                entry(proj.clone(), &run, 0.5),
                entry(back, &run, 0.375),
            ],
            fixed: vec![entry(BlockSpec::Identity { width: 64 }, &run, 0.125)],
        };
        let model = LatencyModel::new(&table, run).unwrap();
        let arch: crate::search::Arch = "e64|128:a4x32,id,f256,a4x32".parse().unwrap();
        let teacher = crate::search::space::test_teacher(128, 2);
        assert_eq!(
            model.predict(&arch.spec(&teacher)).unwrap(),
            0.125 + 0.5 + 1.5 + 2.25 + 1.5 + 0.375
        );
        let wider: crate::search::Arch = "e64|128:a4x32,f512".parse().unwrap();
        let err = model.predict(&wider.spec(&teacher)).unwrap_err().to_string();
        assert!(err.contains("feed_forward/w128/i512/w4g32a8/s128/b1"), "{err}");
        let other = RunSettings { act_bits: 0, ..run };
        let err = LatencyModel::new(&table, other).err().unwrap().to_string();
        assert!(err.contains("w4g32 s128 b1") && err.contains("w4g32a8 s128 b1"), "{err}");
        let old = LatencyTable { fixed: Vec::new(), ..table.clone() };
        assert!(LatencyModel::new(&old, run).is_err());
    }
}
