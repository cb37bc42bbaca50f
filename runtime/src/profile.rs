//! On-device latency: the per-op latency table the architecture search reads (FORMAT.md,
//! "Latency table"), and the per-op breakdown of one model.
//!
//! Each op of the search space is timed as a one-block model on random weights: on the wgpu
//! backend from GPU timestamps around its dispatches (wall clock around a lone submission
//! where the device has no timestamp queries), on the CPU from the wall clock around the block.

use std::collections::BTreeMap;
#[cfg(feature = "gpu")]
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cpu::{Encoder, Input, Team};
use crate::data::{ModelData, Precision, TensorData};
use crate::error::{Error, Result};
#[cfg(feature = "gpu")]
use crate::gpu::{GpuContext, GpuEncoder, GpuOptions};
use crate::spec::{names, BlockSpec, EmbeddingSpec, ModelSpec, PoolingMode, PoolingSpec, FORMAT_VERSION};

/// Version of the latency table format.
pub const TABLE_VERSION: u32 = 1;

/// One timed op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyEntry {
    /// The lookup key: `op/dims/bits/seq/batch`, e.g. `attention/w256/h8xd32/w4/s128/b1`.
    pub key: String,
    /// The block as the package format describes it.
    pub block: BlockSpec,
    /// Weight bits (32 = f32).
    pub bits: u8,
    /// Columns per step for quantized weights; absent = per output channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// Bits of the activations entering the matrices, quantized per token (the integer
    /// kernels); 0 or absent = float activations.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub act_bits: u8,
    pub seq: usize,
    pub batch: usize,
    pub median_ms: f64,
    pub p10_ms: f64,
    pub p90_ms: f64,
    pub runs: usize,
}

/// A latency table: where it was measured and every op's latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyTable {
    /// Always `"bertling-latency-table"`.
    pub format: String,
    pub version: u32,
    /// The adapter's or CPU's name.
    pub device: String,
    /// `cpu`, or the wgpu backend (`Vulkan`, `Metal`, `Dx12`, `Gl`).
    pub backend: String,
    /// Driver (GPU) or build target (CPU).
    pub driver: String,
    /// UTC date of the measurement, `YYYY-MM-DD`.
    pub date: String,
    /// CPU worker threads (CPU tables).
    pub threads: usize,
    /// How times were taken: `gpu-timestamps`, `wall-clock-per-submission` or `wall-clock`.
    pub timing: String,
    pub entries: Vec<LatencyEntry>,
    /// The cost every model pays at a width besides its blocks (the embeddings and their norm,
    /// pooling): a model of one identity block, timed whole. Keyed as its identity block.
    /// Absent in tables written before the architecture search read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<LatencyEntry>,
}

impl LatencyTable {
    /// Reads a table, checking its format and version.
    pub fn from_json(text: &str) -> Result<LatencyTable> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|source| Error::Json { what: "latency table".into(), source })?;
        if v.get("format").and_then(|f| f.as_str()) != Some("bertling-latency-table") {
            return Err(Error::InvalidArgument("not a bertling latency table".into()));
        }
        if v.get("version").and_then(|f| f.as_u64()) != Some(TABLE_VERSION as u64) {
            return Err(Error::UnsupportedVersion { found: v["version"].to_string(), supported: TABLE_VERSION });
        }
        serde_json::from_value(v).map_err(|source| Error::Json { what: "latency table".into(), source })
    }

    /// The entry with this key.
    pub fn get(&self, key: &str) -> Option<&LatencyEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The fixed cost entry (see [`LatencyTable::fixed`]) with this key.
    pub fn get_fixed(&self, key: &str) -> Option<&LatencyEntry> {
        self.fixed.iter().find(|e| e.key == key)
    }
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// The key of an op in a latency table (`act_bits` 0 = float activations).
pub fn op_key(block: &BlockSpec, bits: u8, group: Option<usize>, act_bits: u8, seq: usize, batch: usize) -> String {
    let dims = match *block {
        BlockSpec::Attention { width, heads, head_dim } => format!("attention/w{width}/h{heads}xd{head_dim}"),
        BlockSpec::FeedForward { width, inner } => format!("feed_forward/w{width}/i{inner}"),
        BlockSpec::SepConv { width, kernel } => format!("sep_conv/w{width}/k{kernel}"),
        BlockSpec::BiConv { width, kernel } => format!("bi_conv/w{width}/k{kernel}"),
        BlockSpec::Identity { width } => format!("identity/w{width}"),
        BlockSpec::Projection { input, output } => format!("projection/w{input}/o{output}"),
    };
    let w = match (bits, group) {
        (32, _) => "f32".to_string(),
        (16, _) => "f16".to_string(),
        (b, Some(g)) => format!("w{b}g{g}"),
        (b, None) => format!("w{b}"),
    };
    let a = if act_bits > 0 && bits <= 8 { format!("a{act_bits}") } else { String::new() };
    format!("{dims}/{w}{a}/s{seq}/b{batch}")
}

/// Feed-forward inner sizes of the search space, in halves of the width: 1×, 1.5×, 2× and 4×.
pub const FFN_HALVES: [usize; 4] = [2, 3, 4, 8];

/// The search space's ops at one width: attention with 32- and 64-wide heads, feed-forward
/// with 1, 1.5, 2 and 4 times the width ([`FFN_HALVES`]), separable convolutions of kernel 3, 5
/// and 7, and projections to every width (its own included: the searched students project at
/// every stage boundary).
pub fn search_space_ops(width: usize, widths: &[usize]) -> Vec<BlockSpec> {
    let mut ops = Vec::new();
    for head_dim in [32, 64] {
        if width.is_multiple_of(head_dim) {
            ops.push(BlockSpec::Attention { width, heads: width / head_dim, head_dim });
        }
    }
    for halves in FFN_HALVES {
        if (width * halves).is_multiple_of(2) {
            ops.push(BlockSpec::FeedForward { width, inner: width * halves / 2 });
        }
    }
    for kernel in [3, 5, 7] {
        ops.push(BlockSpec::SepConv { width, kernel });
    }
    for &other in widths {
        ops.push(BlockSpec::Projection { input: width, output: other });
    }
    ops
}

/// A model of one block on seeded random weights, at the given precision.
pub fn one_block_model(block: &BlockSpec, precision: Precision, max_seq: usize, seed: u64) -> Result<ModelData> {
    let width = block.input_width();
    let spec = ModelSpec {
        format_version: FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: 64, max_positions: max_seq.max(2), type_vocab_size: 2, width },
        blocks: vec![block.clone()],
        layer_norm_eps: 1e-12,
        max_seq_len: max_seq.max(2),
        pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: false },
        head: None,
        quantized: Default::default(),
        provenance: Default::default(),
    };
    random_model(spec, precision, seed)
}

/// A model of this description on seeded random weights (uniform, ±1/√fan-in), at the given
/// precision: for timing architectures that were never trained.
pub fn random_model(spec: ModelSpec, precision: Precision, seed: u64) -> Result<ModelData> {
    spec.validate()?;
    let mut rng = crate::rng::XorShift::new(seed);
    let mut tensors = BTreeMap::new();
    for t in spec.expected_tensors() {
        let n: usize = t.shape.iter().product();
        let scale = 1.0 / (*t.shape.last().unwrap_or(&1) as f32).sqrt();
        let data = (0..n).map(|_| rng.symmetric(scale)).collect();
        tensors.insert(t.name, TensorData::F32 { shape: t.shape, data });
    }
    ModelData { spec, tensors, tokenizer_json: String::new() }.convert(precision)
}

/// Where ops are timed.
pub enum Profiler {
    Cpu {
        team: Team,
    },
    #[cfg(feature = "gpu")]
    Gpu {
        ctx: Arc<GpuContext>,
        options: GpuOptions,
    },
}

impl Profiler {
    /// A name for the table's `backend` field.
    pub fn backend(&self) -> String {
        match self {
            Profiler::Cpu { .. } => "cpu".into(),
            #[cfg(feature = "gpu")]
            Profiler::Gpu { ctx, .. } => format!("{:?}", ctx.info.backend),
        }
    }

    fn timing(&self) -> &'static str {
        match self {
            Profiler::Cpu { .. } => "wall-clock",
            #[cfg(feature = "gpu")]
            Profiler::Gpu { ctx, .. } if ctx.caps.timestamps => "gpu-timestamps",
            #[cfg(feature = "gpu")]
            Profiler::Gpu { .. } => "wall-clock-per-submission",
        }
    }

    /// Times of each op of `data` (labels, kernel names, milliseconds), `runs` times after a
    /// warm-up: on the GPU per dispatch, on the CPU per block (plus the embeddings).
    pub fn time_ops(&self, data: &ModelData, inputs: &[Input], runs: usize) -> Result<Vec<(String, String, Vec<f64>)>> {
        let mut out: Vec<(String, String, Vec<f64>)> = Vec::new();
        let mut record = |i: usize, label: String, kernel: String, ms: f64| {
            if out.len() <= i {
                out.push((label, kernel, Vec::new()));
            }
            out[i].2.push(ms);
        };
        match self {
            Profiler::Cpu { team } => {
                let enc = Encoder::new(data.clone())?;
                let labels: Vec<(String, String)> = std::iter::once(("embeddings".to_string(), "embed+layernorm".to_string()))
                    .chain(data.spec.blocks.iter().enumerate().map(|(i, b)| (names::block(i).prefix().to_string(), b.kind().to_string())))
                    .collect();
                for run in 0..=runs {
                    let mut times = Vec::new();
                    let _ = enc.forward_checked(inputs, team, false.into(), Some(&mut times), &|| Ok::<(), std::convert::Infallible>(()));
                    if run > 0 {
                        for (i, ms) in times.into_iter().enumerate() {
                            record(i, labels[i].0.clone(), labels[i].1.clone(), ms);
                        }
                    }
                }
            }
            #[cfg(feature = "gpu")]
            Profiler::Gpu { ctx, options } => {
                let enc = GpuEncoder::new(ctx.clone(), data, options)?;
                for run in 0..=runs {
                    let times = enc.profile(inputs)?;
                    if run > 0 {
                        for (i, (label, kernel, ms)) in times.into_iter().enumerate() {
                            record(i, label, kernel, ms);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Times a whole model (the sum of all its ops), `runs` times.
    pub fn time_model(&self, data: &ModelData, inputs: &[Input], runs: usize) -> Result<Vec<f64>> {
        let mut total = vec![0f64; runs];
        for (_, _, times) in self.time_ops(data, inputs, runs)? {
            for (t, ms) in total.iter_mut().zip(times) {
                *t += ms;
            }
        }
        Ok(total)
    }

    /// Times one block (the sum of its ops), `runs` times.
    pub fn time_block(&self, data: &ModelData, inputs: &[Input], runs: usize) -> Result<Vec<f64>> {
        let ops = self.time_ops(data, inputs, runs)?;
        let mut total = vec![0f64; runs];
        let block = names::block(0);
        for (label, _, times) in &ops {
            if label == block.prefix() || block.owns(label) {
                for (t, ms) in total.iter_mut().zip(times) {
                    *t += ms;
                }
            }
        }
        Ok(total)
    }
}

/// What to measure for a latency table.
#[derive(Clone, Debug)]
pub struct TableConfig {
    pub widths: Vec<usize>,
    /// Weight bits: 32 (f32), 16 (f16) or 2..8.
    pub bits: Vec<u8>,
    pub group: Option<usize>,
    /// Activation bits (8 or 4, per-token steps) for the quantized weights; 0 = float.
    pub act_bits: u8,
    pub seqs: Vec<usize>,
    pub batch: usize,
    pub runs: usize,
    /// Also time the light tagger's two-stream convolutions (`bi_conv`, the causal kernels
    /// given) at every even width; empty: the search space's ops only.
    pub bi_conv_kernels: Vec<usize>,
}

/// Median, 10th and 90th percentiles.
pub fn percentiles(times: &[f64]) -> (f64, f64, f64) {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    if t.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let at = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

/// Measures every op of the search space; `progress(done, total, key)` is called before each.
pub fn latency_table(profiler: &Profiler, cfg: &TableConfig, mut progress: impl FnMut(usize, usize, &str)) -> Result<LatencyTable> {
    if cfg.runs == 0 || cfg.batch == 0 || cfg.seqs.is_empty() || cfg.widths.is_empty() || cfg.bits.is_empty() {
        return Err(Error::InvalidArgument("nothing to measure: give widths, bits, sequence lengths, a batch and runs".into()));
    }
    if !matches!(cfg.act_bits, 0 | 4 | 8) {
        return Err(Error::InvalidArgument(format!("{}-bit activations: use 8 or 4 (or 0 for float)", cfg.act_bits)));
    }
    if let Some(k) = cfg.bi_conv_kernels.iter().find(|&&k| !(1..=crate::spec::MAX_BI_CONV_KERNEL).contains(&k)) {
        return Err(Error::InvalidArgument(format!("bi_conv kernel {k}: use 1..={}", crate::spec::MAX_BI_CONV_KERNEL)));
    }
    // (op, bits, seq, fixed): the ops, then each width's fixed cost as a one-identity model.
    let mut jobs = Vec::new();
    for &w in &cfg.widths {
        let taggers = cfg.bi_conv_kernels.iter().filter(|_| w % 2 == 0).map(|&kernel| BlockSpec::BiConv { width: w, kernel });
        let ops = search_space_ops(w, &cfg.widths).into_iter().chain(taggers).map(|op| (op, false));
        for (op, fixed) in ops.chain(std::iter::once((BlockSpec::Identity { width: w }, true))) {
            for &bits in &cfg.bits {
                for &seq in &cfg.seqs {
                    jobs.push((op.clone(), bits, seq, fixed));
                }
            }
        }
    }
    let mut entries = Vec::with_capacity(jobs.len());
    let mut fixed_entries = Vec::new();
    let max_seq = cfg.seqs.iter().copied().max().unwrap_or(2);
    for (i, (op, bits, seq, fixed)) in jobs.iter().enumerate() {
        let precision = match bits {
            32 => Precision::F32,
            16 => Precision::F16,
            2..=8 => Precision::Quantized { bits: *bits, group: cfg.group, embedding_bits: 8 },
            other => return Err(Error::InvalidArgument(format!("{other} bits: use 32, 16 or 2..8"))),
        };
        let group = if *bits <= 8 { cfg.group } else { None };
        let act_bits = if *bits <= 8 { cfg.act_bits } else { 0 };
        let key = op_key(op, *bits, group, act_bits, *seq, cfg.batch);
        progress(i, jobs.len(), &key);
        let mut data = one_block_model(op, precision, max_seq, i as u64 + 1)?;
        if act_bits > 0 {
            data = data.with_token_activations(act_bits)?;
        }
        let inputs = Input::synthetic(cfg.batch, *seq, 64);
        let times = if *fixed { profiler.time_model(&data, &inputs, cfg.runs)? } else { profiler.time_block(&data, &inputs, cfg.runs)? };
        let (median_ms, p10_ms, p90_ms) = percentiles(&times);
        let entry = LatencyEntry { key, block: op.clone(), bits: *bits, group, act_bits, seq: *seq, batch: cfg.batch, median_ms, p10_ms, p90_ms, runs: cfg.runs };
        if *fixed {
            fixed_entries.push(entry);
        } else {
            entries.push(entry);
        }
    }
    progress(jobs.len(), jobs.len(), "done");
    let (device, driver, threads) = match profiler {
        Profiler::Cpu { team } => (cpu_name(), format!("{} {}", std::env::consts::ARCH, std::env::consts::OS), team.size()),
        #[cfg(feature = "gpu")]
        Profiler::Gpu { ctx, .. } => (ctx.info.name.clone(), format!("{} {}", ctx.info.driver, ctx.info.driver_info).trim().to_string(), 0),
    };
    Ok(LatencyTable {
        format: "bertling-latency-table".into(),
        version: TABLE_VERSION,
        device,
        backend: profiler.backend(),
        driver,
        date: utc_date(),
        threads,
        timing: profiler.timing().into(),
        entries,
        fixed: fixed_entries,
    })
}

/// Median and minimum milliseconds of `model.embed_inputs` on random ids `[batch, seq]`, timed
/// `runs` times after `warmup` runs: what `bertling bench` reports.
pub fn bench_model(model: &crate::Model, batch: usize, seq: usize, runs: usize, warmup: usize) -> Result<(f64, f64)> {
    if batch == 0 || runs == 0 || seq < 2 {
        return Err(Error::InvalidArgument("benchmark at least one run of one input of 2 tokens or more".into()));
    }
    let inputs = Input::synthetic(batch, seq, model.info().spec.embeddings.vocab_size);
    for _ in 0..warmup {
        model.embed_inputs(&inputs)?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = std::time::Instant::now();
        std::hint::black_box(model.embed_inputs(&inputs)?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

/// The CPU's model name (Linux), or the architecture.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Today's UTC date as `YYYY-MM-DD`.
pub fn utc_date() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() / 86_400).unwrap_or(0) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_percentiles() {
        let b = BlockSpec::Attention { width: 256, heads: 8, head_dim: 32 };
        assert_eq!(op_key(&b, 4, Some(32), 0, 128, 1), "attention/w256/h8xd32/w4g32/s128/b1");
        assert_eq!(op_key(&b, 4, Some(32), 8, 128, 1), "attention/w256/h8xd32/w4g32a8/s128/b1");
        assert_eq!(op_key(&BlockSpec::SepConv { width: 128, kernel: 5 }, 32, None, 8, 16, 8), "sep_conv/w128/k5/f32/s16/b8");
        assert_eq!(percentiles(&[5.0, 1.0, 3.0, 2.0, 4.0]), (3.0, 1.0, 5.0));
        let ops = search_space_ops(192, &[128, 192, 256]);
        assert_eq!(ops.iter().filter(|o| o.kind() == "attention").count(), 2);
        assert_eq!(ops.iter().filter(|o| o.kind() == "projection").count(), 3);
        assert_eq!(ops.len(), 2 + 4 + 3 + 3);
        let inner: Vec<usize> = ops.iter().filter_map(|o| if let BlockSpec::FeedForward { inner, .. } = o { Some(*inner) } else { None }).collect();
        assert_eq!(inner, [192, 288, 384, 768]);
    }

    #[test]
    fn utc_date_is_a_date() {
        let d = utc_date();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"));
    }

    #[test]
    fn cpu_table_round_trips_and_times_every_op() {
        let p = Profiler::Cpu { team: Team::new(1).unwrap() };
        let cfg = TableConfig { widths: vec![64, 96], bits: vec![32, 4], group: None, act_bits: 0, seqs: vec![8], batch: 2, runs: 3, bi_conv_kernels: Vec::new() };
        let mut calls = 0;
        let t = latency_table(&p, &cfg, |_, _, _| calls += 1).unwrap();
        // width 64: attention d32 + d64, 4 ffn, 3 conv, 2 projections = 11; width 96: 1
        // attention (96 = 3 × 32), 4 + 3 + 2 = 10; times 2 bit widths; a fixed cost per width
        // and bits.
        assert_eq!(t.entries.len(), (11 + 10) * 2);
        assert_eq!(t.fixed.len(), 2 * 2);
        assert_eq!(calls, t.entries.len() + t.fixed.len() + 1);
        assert!(t.entries.iter().chain(&t.fixed).all(|e| e.median_ms > 0.0 && e.p10_ms <= e.median_ms && e.median_ms <= e.p90_ms));
        assert!(t.get_fixed("identity/w96/w4/s8/b2").is_some());
        let back = LatencyTable::from_json(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(back.get("feed_forward/w64/i256/w4/s8/b2").is_some());
        assert!(LatencyTable::from_json("{\"format\":\"bertling-latency-table\",\"version\":9}").is_err());
        // The light tagger's blocks on request, at each (even) width and kernel.
        let cfg = TableConfig { widths: vec![64], bits: vec![8], act_bits: 8, bi_conv_kernels: vec![3, 5], ..cfg };
        let t = latency_table(&p, &cfg, |_, _, _| {}).unwrap();
        assert_eq!(t.entries.len(), 10 + 2, "the search space at one width (one projection), two bi_conv");
        let e = t.get("bi_conv/w64/k5/w8a8/s8/b2").unwrap();
        assert_eq!(e.block, BlockSpec::BiConv { width: 64, kernel: 5 });
        assert!(e.median_ms > 0.0);
        assert!(latency_table(&p, &TableConfig { bi_conv_kernels: vec![10], ..cfg }, |_, _, _| {}).is_err());
    }
}
