//! The public model API: load, tokenize, embed, classify, inspect.

use std::path::Path;

use serde::Serialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::cpu::{Encoder, Input, Team};
use crate::data::ModelData;
use crate::error::{Error, Result};
use crate::hf::{load_hf, load_hf_dir, HfFiles};
use crate::package::{looks_like_package, read_package};
use crate::spec::{BlockSpec, ModelSpec};

/// Which engine runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The native CPU backend (multi-threaded).
    #[default]
    Cpu,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" | "auto" => Ok(Backend::Cpu),
            other => Err(Error::InvalidArgument(format!("unknown backend `{other}`; this build has: cpu, auto"))),
        }
    }
}

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub backend: Backend,
    /// Worker threads; `None` = the machine's available parallelism.
    pub threads: Option<usize>,
}

/// The result of classifying one input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Classification {
    /// The most probable label (for a regression head, its only label).
    pub label: String,
    pub label_id: usize,
    /// Probabilities per label (softmax of the logits); for a one-label regression head, the score.
    pub probs: Vec<f32>,
}

/// Hidden states of one input.
#[derive(Clone, Debug)]
pub struct HiddenStates {
    pub ids: Vec<u32>,
    /// Index 0: the embedding output; index `i + 1`: the output of block `i`. Each is
    /// `tokens × width_of_that_block` (row-major).
    pub layers: Vec<Vec<f32>>,
}

/// Summary of a model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub parameters: usize,
    /// Bytes of all tensors as stored.
    pub bytes: usize,
    /// Weight bits by tensor group, e.g. {"matrices": [4], "embeddings": [8]}.
    pub matrix_bits: Vec<u8>,
    pub embedding_bits: Vec<u8>,
    pub output_width: usize,
    pub max_seq_len: usize,
    pub blocks: Vec<BlockSpec>,
    pub labels: Option<Vec<String>>,
    pub spec: ModelSpec,
}

/// A loaded model. Thread-safe: share it behind an `Arc` and call it from any thread.
pub struct Model {
    encoder: Encoder,
    tokenizer: Tokenizer,
    team: Team,
    threads: usize,
    info: ModelInfo,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("threads", &self.threads).field("info", &self.info).finish()
    }
}

impl Model {
    /// Loads a bertling package file or a Hugging Face BERT directory.
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        Model::from_data(load_model_data(path.as_ref())?, options)
    }

    /// Loads a bertling package held in memory (apps that ship the model as an asset).
    pub fn from_package_bytes(bytes: &[u8], options: &LoadOptions) -> Result<Model> {
        Model::from_data(read_package(bytes)?, options)
    }

    /// Loads a Hugging Face BERT model from its files held in memory.
    pub fn from_hf_files(files: &HfFiles, options: &LoadOptions) -> Result<Model> {
        Model::from_data(load_hf(files)?, options)
    }

    /// Builds a model from model data.
    pub fn from_data(data: ModelData, options: &LoadOptions) -> Result<Model> {
        let encoder = Encoder::new(&data)?;
        let mut tokenizer = Tokenizer::from_bytes(data.tokenizer_json.as_bytes())
            .map_err(|e| Error::Tokenizer(format!("cannot parse tokenizer.json: {e}")))?;
        // The stored tokenizer may pad or truncate on its own (all-MiniLM-L6-v2 pads to 128):
        // batches are built without padding, and truncation follows the model's maximum.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: data.spec.max_seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let threads = match options.threads {
            Some(0) => return Err(Error::InvalidArgument("threads must be at least 1".into())),
            Some(n) => n,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        let team = Team::new(threads).map_err(|e| Error::Threads(e.to_string()))?;
        let bits = |role| {
            let mut b: Vec<u8> = data
                .spec
                .expected_tensors()
                .iter()
                .filter(|t| t.role == role)
                .map(|t| data.tensors[&t.name].bits())
                .collect();
            b.sort_unstable();
            b.dedup();
            b
        };
        let info = ModelInfo {
            parameters: data.parameters(),
            bytes: data.stored_bytes(),
            matrix_bits: bits(crate::spec::TensorRole::Matrix),
            embedding_bits: bits(crate::spec::TensorRole::Embedding),
            output_width: data.spec.output_width(),
            max_seq_len: data.spec.max_seq_len,
            blocks: data.spec.blocks.clone(),
            labels: data.spec.head.as_ref().map(|h| h.labels.clone()),
            spec: data.spec.clone(),
        };
        Ok(Model { encoder, tokenizer, team, threads, info })
    }

    /// Model summary.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Worker threads used per call.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Tokenizes texts as the model sees them: special tokens added, truncated to the maximum.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Input>> {
        texts
            .iter()
            .map(|t| {
                let enc = self.tokenizer.encode(*t, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
                Ok(Input { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() })
            })
            .collect()
    }

    /// Tokenizes sentence pairs (`[CLS] a [SEP] b [SEP]`, segment ids 0 then 1), truncating
    /// the longer one first. An empty second text gives the single-text encoding, as
    /// transformers does.
    pub fn tokenize_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Input>> {
        pairs
            .iter()
            .map(|&(a, b)| {
                let enc = if b.is_empty() { self.tokenizer.encode(a, true) } else { self.tokenizer.encode((a, b), true) }
                    .map_err(|e| Error::Tokenizer(e.to_string()))?;
                Ok(Input { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() })
            })
            .collect()
    }

    fn run<T>(&self, inputs: &[Input], keep_hidden: bool, f: impl FnOnce(crate::cpu::Forward) -> T) -> Result<T> {
        for inp in inputs {
            self.encoder.check_input(inp)?;
        }
        Ok(f(self.encoder.forward(inputs, &self.team, keep_hidden)))
    }

    /// Sentence embeddings of texts (pooled, normalised if the model says so).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_inputs(&self.tokenize(texts)?)
    }

    /// Sentence embeddings of tokenized inputs.
    pub fn embed_inputs(&self, inputs: &[Input]) -> Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        self.run(inputs, false, |f| self.encoder.pool(&f))
    }

    /// Final token states of tokenized inputs, one `tokens × width` matrix each.
    pub fn token_states(&self, inputs: &[Input]) -> Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        self.run(inputs, false, |f| (0..inputs.len()).map(|i| f.sentence(i).to_vec()).collect())
    }

    /// Classifies texts with the model's head.
    pub fn classify(&self, texts: &[&str]) -> Result<Vec<Classification>> {
        self.classify_inputs(&self.tokenize(texts)?)
    }

    /// Classifies sentence pairs with the model's head.
    pub fn classify_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Classification>> {
        self.classify_inputs(&self.tokenize_pairs(pairs)?)
    }

    /// Classifies tokenized inputs.
    pub fn classify_inputs(&self, inputs: &[Input]) -> Result<Vec<Classification>> {
        let labels = self.info.labels.clone().ok_or(Error::NoClassificationHead)?;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let logits = self.run(inputs, false, |f| self.encoder.logits(&f, &self.team))?.ok_or(Error::NoClassificationHead)?;
        Ok(logits
            .into_iter()
            .map(|mut l| {
                if labels.len() > 1 {
                    crate::cpu::ops::softmax(&mut l);
                }
                let label_id = l.iter().enumerate().fold(0, |best, (i, v)| if *v > l[best] { i } else { best });
                Classification { label: labels[label_id].clone(), label_id, probs: l }
            })
            .collect())
    }

    /// Every block's output for each text, for tests and analysis.
    pub fn hidden_states(&self, texts: &[&str]) -> Result<Vec<HiddenStates>> {
        let inputs = self.tokenize(texts)?;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let widths: Vec<usize> = std::iter::once(self.info.spec.embeddings.width)
            .chain(self.info.blocks.iter().map(BlockSpec::output_width))
            .collect();
        self.run(&inputs, true, |f| {
            inputs
                .iter()
                .enumerate()
                .map(|(i, inp)| HiddenStates {
                    ids: inp.ids.clone(),
                    layers: f
                        .hidden
                        .iter()
                        .zip(&widths)
                        .map(|(h, w)| h[f.offsets[i] * w..f.offsets[i + 1] * w].to_vec())
                        .collect(),
                })
                .collect()
        })
    }
}

/// Reads model data from a package file or a Hugging Face directory.
pub fn load_model_data(path: &Path) -> Result<ModelData> {
    if path.is_dir() {
        return load_hf_dir(path);
    }
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory")));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if looks_like_package(&bytes) {
        read_package(&bytes)
    } else if path.file_name().is_some_and(|n| n == "model.safetensors") {
        load_hf_dir(path.parent().unwrap_or(Path::new(".")))
    } else {
        read_package(&bytes).map_err(|e| match e {
            Error::Container { .. } | Error::Package(_) => Error::UnknownModelPath { path: path.into() },
            other => other,
        })
    }
}
