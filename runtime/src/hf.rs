//! Loading a Hugging Face BERT directory: `config.json`, `model.safetensors`, `tokenizer.json`,
//! and optionally the sentence-transformers files `modules.json`, `1_Pooling/config.json` and
//! `sentence_bert_config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::data::{ModelData, TensorData};
use crate::error::{Error, Result};
use crate::spec::{names, BlockSpec, EmbeddingSpec, HeadKind, HeadSpec, ModelSpec, PoolingMode, PoolingSpec, Provenance, FORMAT_VERSION};

#[derive(Deserialize)]
struct BertConfig {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    vocab_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "two")]
    type_vocab_size: usize,
    #[serde(default = "eps")]
    layer_norm_eps: f32,
    #[serde(default = "gelu")]
    hidden_act: String,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    id2label: Option<BTreeMap<String, String>>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
}

fn two() -> usize {
    2
}
fn eps() -> f32 {
    1e-12
}
fn gelu() -> String {
    "gelu".into()
}

/// The files of a Hugging Face model, already read (mobile apps hand these over from memory).
#[derive(Clone, Debug, Default)]
pub struct HfFiles {
    pub config_json: String,
    pub safetensors: Vec<u8>,
    pub tokenizer_json: String,
    /// sentence-transformers `modules.json`, if present.
    pub modules_json: Option<String>,
    /// sentence-transformers `1_Pooling/config.json` (or the pooling module's config), if present.
    pub pooling_json: Option<String>,
    /// sentence-transformers `sentence_bert_config.json`, if present.
    pub sentence_bert_json: Option<String>,
    /// Where the files came from (for provenance and messages).
    pub source: String,
}

impl HfFiles {
    /// Reads the files of a model directory.
    pub fn read_dir(dir: &Path) -> Result<HfFiles> {
        let need = |name: &str| -> Result<std::path::PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::HfModel { dir: dir.into(), what: format!("{name} is missing") })
            }
        };
        let read_text = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::io(p, e));
        let optional = |p: std::path::PathBuf| -> Result<Option<String>> {
            if p.is_file() {
                read_text(&p).map(Some)
            } else {
                Ok(None)
            }
        };
        let config_json = read_text(&need("config.json")?)?;
        let st = need("model.safetensors")?;
        let safetensors = std::fs::read(&st).map_err(|e| Error::io(&st, e))?;
        let tokenizer_json = read_text(&need("tokenizer.json")?)?;
        let modules_json = optional(dir.join("modules.json"))?;
        // The pooling module's folder is named in modules.json; "1_Pooling" by convention.
        let pooling_dir = modules_json
            .as_deref()
            .and_then(|m| serde_json::from_str::<Vec<StModule>>(m).ok())
            .and_then(|mods| mods.into_iter().find(|m| m.r#type.ends_with("Pooling")).map(|m| m.path))
            .unwrap_or_else(|| "1_Pooling".into());
        let pooling_json = optional(dir.join(pooling_dir).join("config.json"))?;
        let sentence_bert_json = optional(dir.join("sentence_bert_config.json"))?;
        Ok(HfFiles { config_json, safetensors, tokenizer_json, modules_json, pooling_json, sentence_bert_json, source: dir.display().to_string() })
    }
}

#[derive(Deserialize)]
struct StModule {
    #[serde(default)]
    path: String,
    #[serde(default)]
    r#type: String,
}

#[derive(Deserialize)]
struct StPooling {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct StConfig {
    max_seq_length: Option<usize>,
}

/// Loads a Hugging Face BERT directory as float32 model data.
pub fn load_hf_dir(dir: &Path) -> Result<ModelData> {
    let files = HfFiles::read_dir(dir)?;
    load_hf(&files).map_err(|e| match e {
        Error::InvalidArgument(what) => Error::HfModel { dir: dir.into(), what },
        other => other,
    })
}

fn json<T: for<'a> Deserialize<'a>>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| Error::Json { what: what.into(), source })
}

/// Converts the files of a Hugging Face BERT model into model data (all tensors `f32`).
pub fn load_hf(files: &HfFiles) -> Result<ModelData> {
    let bad = |what: String| Error::InvalidArgument(what);
    let cfg: BertConfig = json(&files.config_json, "config.json")?;
    if let Some(t) = cfg.model_type.as_deref() {
        if t != "bert" {
            return Err(bad(format!("model_type `{t}` is not supported; bertling loads BERT models (model_type `bert`)")));
        }
    }
    if cfg.hidden_act != "gelu" {
        return Err(bad(format!("hidden_act `{}` is not supported; only exact (erf) `gelu` is", cfg.hidden_act)));
    }
    if let Some(p) = cfg.position_embedding_type.as_deref() {
        if p != "absolute" {
            return Err(bad(format!("position_embedding_type `{p}` is not supported; only `absolute` is")));
        }
    }
    if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
        return Err(bad(format!("hidden_size {} is not divisible by num_attention_heads {}", cfg.hidden_size, cfg.num_attention_heads)));
    }

    let st = SafeTensors::deserialize(&files.safetensors).map_err(|e| Error::Container { what: "model.safetensors".into(), detail: e.to_string() })?;
    let prefixed = st.names().iter().any(|n| n.starts_with("bert."));
    let get = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let full = if prefixed { format!("bert.{name}") } else { name.to_string() };
        let t = st.tensor(&full).or_else(|_| st.tensor(name)).map_err(|_| bad(format!("model.safetensors has no tensor `{full}`")))?;
        Ok((t.shape().to_vec(), to_f32(&full, t.dtype(), t.data())?))
    };
    let h = cfg.hidden_size;
    let mut tensors = BTreeMap::new();
    let mut put = |name: String, (shape, data): (Vec<usize>, Vec<f32>)| {
        tensors.insert(name, TensorData::F32 { shape, data });
    };
    put(names::WORD_EMBEDDINGS.into(), get("embeddings.word_embeddings.weight")?);
    put(names::POSITION_EMBEDDINGS.into(), get("embeddings.position_embeddings.weight")?);
    put(names::TOKEN_TYPE_EMBEDDINGS.into(), get("embeddings.token_type_embeddings.weight")?);
    // A layer of ours from transformers' layer `theirs`: its weight and its bias.
    let layer = |put: &mut dyn FnMut(String, (Vec<usize>, Vec<f32>)), ours: &str, theirs: &str| -> Result<()> {
        put(names::weight(ours), get(&format!("{theirs}.weight"))?);
        put(names::bias(ours), get(&format!("{theirs}.bias"))?);
        Ok(())
    };
    layer(&mut put, names::EMBEDDING_NORM, "embeddings.LayerNorm")?;

    let mut blocks = Vec::new();
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        // transformers' layer l is our attention block 2l and feed-forward block 2l + 1.
        let (a, f) = (names::block(2 * l), names::block(2 * l + 1));
        // Fuse query, key and value into one [3h, h] matrix: one matrix product per layer.
        // No pre-reservation: sizes come from config.json and are only trusted once checked.
        let mut qkv_w = Vec::new();
        let mut qkv_b = Vec::new();
        for which in ["query", "key", "value"] {
            let (ws, w) = get(&format!("{p}.attention.self.{which}.weight"))?;
            let (bs, b) = get(&format!("{p}.attention.self.{which}.bias"))?;
            if ws != [h, h] || bs != [h] {
                return Err(bad(format!("{p}.attention.self.{which} has shape {ws:?}; expected [{h}, {h}]")));
            }
            qkv_w.extend(w);
            qkv_b.extend(b);
        }
        put(names::weight(&a.qkv()), (vec![3 * h, h], qkv_w));
        put(names::bias(&a.qkv()), (vec![3 * h], qkv_b));
        layer(&mut put, &a.attn_out(), &format!("{p}.attention.output.dense"))?;
        layer(&mut put, &a.norm(), &format!("{p}.attention.output.LayerNorm"))?;
        layer(&mut put, &f.ffn_in(), &format!("{p}.intermediate.dense"))?;
        layer(&mut put, &f.ffn_out(), &format!("{p}.output.dense"))?;
        layer(&mut put, &f.norm(), &format!("{p}.output.LayerNorm"))?;
        let heads = cfg.num_attention_heads;
        blocks.push(BlockSpec::Attention { width: h, heads, head_dim: h / heads });
        blocks.push(BlockSpec::FeedForward { width: h, inner: cfg.intermediate_size });
    }

    // A sequence-classification head (BertForSequenceClassification) or, when config.json
    // names BertForTokenClassification, a token-classification head (no pooler).
    let head = if st.names().contains(&"classifier.weight") {
        let (cs, cw) = (st.tensor("classifier.weight").map_err(|e| bad(e.to_string()))?, "classifier.weight");
        let n_labels = cs.shape().first().copied().unwrap_or(0);
        put(names::weight(names::CLASSIFIER), (cs.shape().to_vec(), to_f32(cw, cs.dtype(), cs.data())?));
        let cb = st.tensor("classifier.bias").map_err(|_| bad("classifier.bias is missing".into()))?;
        put(names::bias(names::CLASSIFIER), (cb.shape().to_vec(), to_f32("classifier.bias", cb.dtype(), cb.data())?));
        let pooler = st.names().iter().any(|n| n.ends_with("pooler.dense.weight"));
        if pooler {
            layer(&mut put, names::POOLER, "pooler.dense")?;
        }
        let mut labels: Vec<String> = (0..n_labels).map(|i| format!("LABEL_{i}")).collect();
        if let Some(map) = &cfg.id2label {
            for (k, v) in map {
                if let Some(slot) = k.parse::<usize>().ok().and_then(|i| labels.get_mut(i)) {
                    *slot = v.clone();
                }
            }
        }
        let token = cfg.architectures.iter().flatten().any(|a| a.ends_with("ForTokenClassification"));
        if token && pooler {
            return Err(bad("config.json names BertForTokenClassification, but the weights have a pooler".into()));
        }
        Some(HeadSpec { pooler, labels, kind: if token { HeadKind::Token } else { HeadKind::Sequence } })
    } else {
        None
    };

    let pooling = pooling_spec(files, head.is_some())?;
    let max_seq_len = files
        .sentence_bert_json
        .as_deref()
        .map(|t| json::<StConfig>(t, "sentence_bert_config.json"))
        .transpose()?
        .and_then(|c| c.max_seq_length)
        .unwrap_or(cfg.max_position_embeddings)
        .min(cfg.max_position_embeddings);

    let spec = ModelSpec {
        format_version: FORMAT_VERSION,
        embeddings: EmbeddingSpec { vocab_size: cfg.vocab_size, max_positions: cfg.max_position_embeddings, type_vocab_size: cfg.type_vocab_size, width: h },
        blocks,
        layer_norm_eps: cfg.layer_norm_eps,
        max_seq_len,
        pooling,
        head,
        quantized: BTreeMap::new(),
        provenance: Provenance {
            teacher_sha256: hex_sha256(&files.safetensors),
            source: files.source.clone(),
            recipe: serde_json::json!({"method": "hf-import"}),
            metrics: serde_json::Value::Null,
            created_by: format!("bertling {}", env!("CARGO_PKG_VERSION")),
        },
    };
    let model = ModelData { spec, tensors, tokenizer_json: files.tokenizer_json.clone() };
    model.validate().map_err(|e| bad(format!("weights do not match config.json: {e}")))?;
    Ok(model)
}

fn pooling_spec(files: &HfFiles, has_head: bool) -> Result<PoolingSpec> {
    let normalize = files
        .modules_json
        .as_deref()
        .map(|m| json::<Vec<StModule>>(m, "modules.json"))
        .transpose()?
        .is_some_and(|mods| mods.iter().any(|m| m.r#type.ends_with("Normalize")));
    let mode = match files.pooling_json.as_deref() {
        Some(text) => {
            let p: StPooling = json(text, "1_Pooling/config.json")?;
            if p.pooling_mode_max_tokens || p.pooling_mode_mean_sqrt_len_tokens {
                return Err(Error::InvalidArgument("pooling modes max and mean_sqrt_len are not supported; use cls or mean pooling".into()));
            }
            match (p.pooling_mode_cls_token, p.pooling_mode_mean_tokens) {
                (true, false) => PoolingMode::Cls,
                (false, true) => PoolingMode::Mean,
                _ => return Err(Error::InvalidArgument("1_Pooling/config.json must enable exactly one of cls and mean pooling".into())),
            }
        }
        // A classifier's sentence vector is its [CLS] state; a plain encoder is mean-pooled,
        // as sentence-transformers does by default.
        None if has_head => PoolingMode::Cls,
        None => PoolingMode::Mean,
    };
    Ok(PoolingSpec { mode, normalize })
}

fn to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => crate::package::f32s(bytes),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => return Err(Error::tensor(name, format!("has dtype {other:?}; expected F32, F16 or BF16"))),
    })
}

/// SHA-256 of bytes, lower-case hex.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
