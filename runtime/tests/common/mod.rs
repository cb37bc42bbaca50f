//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use std::collections::BTreeMap;

use bertling_runtime::data::{ActQuant, ActStep};
use bertling_runtime::spec::{BlockSpec, EmbeddingSpec, HeadSpec, ModelSpec, PoolingMode, PoolingSpec, QuantSpec};
use bertling_runtime::{ModelData, TensorData};
use safetensors::tensor::{Dtype, SafeTensors};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The all-MiniLM-L6-v2 directory fetched by `scripts/fetch_model.sh`. Tests fail (never skip)
/// when it is missing.
pub fn minilm_dir() -> PathBuf {
    let dir = std::env::var_os("BERTLING_TEST_MODEL").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("BERTLING_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/bertling"));
        cache.join("models/all-MiniLM-L6-v2")
    });
    assert!(
        dir.join("model.safetensors").is_file(),
        "the test model is missing at {}: run scripts/fetch_model.sh (or scripts/test.sh, which does)",
        dir.display()
    );
    dir
}

pub struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    pub fn load(name: &str) -> Golden {
        Golden { bytes: std::fs::read(fixtures().join(name)).expect("fixture file") }
    }
    pub fn f32(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("fixture tensor {name}"));
        assert_eq!(t.dtype(), Dtype::F32);
        (t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
    }
    pub fn i64(&self, name: &str) -> Vec<i64> {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::I64);
        t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A deterministic pseudo-random generator for test data (SplitMix64).
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
}

pub fn tokenizer_json() -> String {
    std::fs::read_to_string(fixtures().join("tiny_cls/tokenizer.json")).unwrap()
}

/// A heterogeneous student: every block kind, widths that change, heads·head_dim ≠ width,
/// quantized activations on one matrix, and a classification head.
pub fn hetero(seed: u64) -> ModelData {
    let blocks = vec![
        BlockSpec::Attention { width: 32, heads: 2, head_dim: 8 },
        BlockSpec::SepConv { width: 32, kernel: 5 },
        BlockSpec::Projection { input: 32, output: 24 },
        BlockSpec::FeedForward { width: 24, inner: 40 },
        BlockSpec::Identity { width: 24 },
        BlockSpec::Attention { width: 24, heads: 3, head_dim: 8 },
        BlockSpec::SepConv { width: 24, kernel: 3 },
    ];
    let mut spec = ModelSpec {
        format_version: bertling_runtime::spec::FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: 44, max_positions: 64, type_vocab_size: 2, width: 32 },
        blocks,
        layer_norm_eps: 1e-12,
        max_seq_len: 48,
        pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: true },
        head: Some(HeadSpec { pooler: true, labels: vec!["no".into(), "yes".into()], kind: Default::default() }),
        quantized: BTreeMap::new(),
        provenance: Default::default(),
    };
    let mut rng = Rng(seed);
    let mut tensors = random_tensors(&spec, &mut rng);
    // Activations entering the first feed-forward matrix are 8-bit.
    let name = "blocks.3.ffn.in.weight".to_string();
    let TensorData::F32 { data, .. } = &tensors[&name] else { unreachable!() };
    let matrix = bertling_runtime::QuantMatrix::quantize_rtn(data, 40, 24, 6, Some(32)).unwrap();
    tensors.insert(name.clone(), TensorData::Quant { matrix, act: Some(ActQuant::new(8, 0.03)) });
    spec.quantized.insert(name, QuantSpec { bits: 6, group: Some(32), act_bits: Some(8), act_smooth: false, act_per_token: false });
    // ... and those entering the second one per token, smoothed (format version 4).
    let name = "blocks.3.ffn.out.weight".to_string();
    let TensorData::F32 { data, .. } = &tensors[&name] else { unreachable!() };
    let matrix = bertling_runtime::QuantMatrix::quantize_rtn(data, 24, 40, 4, None).unwrap();
    let smooth = Some(rng.vec(40, 0.5).iter().map(|v| 1.0 + v).collect());
    let act = ActQuant { bits: 8, step: ActStep::Token, smooth };
    tensors.insert(name.clone(), TensorData::Quant { matrix, act: Some(act) });
    spec.quantized.insert(name, QuantSpec { bits: 4, group: None, act_bits: Some(8), act_smooth: true, act_per_token: true });
    let m = ModelData { spec, tensors, tokenizer_json: tokenizer_json() };
    m.validate().unwrap();
    m
}

/// The texts of the all-MiniLM-L6-v2 fixtures.
pub fn golden_texts() -> Vec<String> {
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("minilm_golden.json")).unwrap()).unwrap();
    meta["inputs"].as_array().unwrap().iter().map(|i| i["text"].as_str().unwrap().to_string()).collect()
}

/// Compares every layer's hidden states of all-MiniLM-L6-v2 with the PyTorch fixtures and
/// returns the largest absolute difference; panics past `tol`.
pub fn check_minilm_hidden(model: &bertling_runtime::Model, tol: f32) -> f32 {
    let golden = Golden::load("minilm_golden.safetensors");
    let texts = golden_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let hidden = model.hidden_states(&refs).unwrap();
    let width = 384;
    let mut worst = 0f32;
    for (i, h) in hidden.iter().enumerate() {
        let rows = golden.i64(&format!("input{i}.rows"));
        // transformers' hidden state l is the embedding output (l = 0) or the output of layer
        // l, which is our block 2l - 1 (each layer is an attention and a feed-forward block).
        for l in 0..=6 {
            let (_, want) = golden.f32(&format!("input{i}.layer{l}"));
            let ours = &h.layers[2 * l];
            let got: Vec<f32> = rows.iter().flat_map(|&r| ours[r as usize * width..(r as usize + 1) * width].to_vec()).collect();
            let d = max_abs_diff(&got, &want);
            worst = worst.max(d);
            assert!(d < tol, "input {i} layer {l}: max |diff| = {d}");
        }
    }
    worst
}

/// Rewrites the package description in a container's header, and reseals its checksum so that
/// the reader gets past it to what is being tested.
pub fn with_description(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut desc: serde_json::Value = serde_json::from_str(header["__metadata__"]["bertling"].as_str().unwrap()).unwrap();
    edit(&mut desc);
    header["__metadata__"]["bertling"] = serde_json::Value::String(desc.to_string());
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    assert!(bertling_runtime::package::reseal(&mut out));
    out
}

/// A light tagger (`bertling cvt`'s architecture): embeddings of width 16, a projection into
/// two streams of 12, two `bi_conv` blocks (causal kernels 3 and 4), mean pooling, no head;
/// with `quantized`, the second block's pointwise map is 6-bit with 8-bit per-token
/// activations (the integer kernels on two rows per token).
pub fn light_tagger(seed: u64, quantized: bool) -> ModelData {
    let spec = ModelSpec {
        format_version: bertling_runtime::spec::FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: 44, max_positions: 64, type_vocab_size: 2, width: 16 },
        blocks: vec![
            BlockSpec::Projection { input: 16, output: 24 },
            BlockSpec::BiConv { width: 24, kernel: 3 },
            BlockSpec::BiConv { width: 24, kernel: 4 },
        ],
        layer_norm_eps: 1e-12,
        max_seq_len: 48,
        pooling: PoolingSpec { mode: PoolingMode::Mean, normalize: false },
        head: None,
        quantized: BTreeMap::new(),
        provenance: Default::default(),
    };
    let mut rng = Rng(seed);
    let tensors = random_tensors(&spec, &mut rng);
    let mut m = ModelData { spec, tensors, tokenizer_json: tokenizer_json() };
    if quantized {
        let name = "blocks.2.conv.pointwise.weight".to_string();
        let TensorData::F32 { data, .. } = &m.tensors[&name] else { unreachable!() };
        let matrix = bertling_runtime::QuantMatrix::quantize_rtn(data, 12, 12, 6, None).unwrap();
        let act = ActQuant { bits: 8, step: ActStep::Token, smooth: None };
        m.tensors.insert(name.clone(), TensorData::Quant { matrix, act: Some(act) });
        m.spec.quantized.insert(name, QuantSpec { bits: 6, group: None, act_bits: Some(8), act_smooth: false, act_per_token: true });
    }
    m.validate().unwrap();
    m
}

/// Every tensor of `spec`, uniform in ±0.5 (norm scales in 1 ± 0.3).
fn random_tensors(spec: &ModelSpec, rng: &mut Rng) -> BTreeMap<String, TensorData> {
    let mut tensors = BTreeMap::new();
    for t in spec.expected_tensors() {
        let n: usize = t.shape.iter().product();
        let data = if t.name.ends_with("ln.weight") { rng.vec(n, 0.3).iter().map(|v| 1.0 + v).collect() } else { rng.vec(n, 0.5) };
        tensors.insert(t.name.clone(), TensorData::F32 { shape: t.shape.clone(), data });
    }
    tensors
}
