//! The public model API: load, tokenize, embed, classify, inspect, cancel.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "gpu")]
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::cpu::{Encoder, Input, Keep, Team};
use crate::data::ModelData;
use crate::spec::HeadKind;
use crate::tag::{TokenHead, WordTag, Words};
use crate::error::{Error, Result};
#[cfg(feature = "gpu")]
use crate::gpu::{AdapterChoice, GpuContext, GpuEncoder};
#[cfg(feature = "hf")]
use crate::hf::{load_hf, load_hf_dir, HfFiles};
use crate::options::GpuOptions;
use crate::package::{looks_like_package, read_package};
use crate::spec::{BlockSpec, ModelSpec};

/// Which engine runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The native CPU backend (multi-threaded).
    #[default]
    Cpu,
    /// The wgpu backend on the best adapter of the backends `WGPU_BACKEND` allows (software
    /// adapters such as lavapipe included). Needs the `gpu` feature.
    Wgpu,
    /// A hardware GPU through wgpu when there is one (and the `gpu` feature is built), else
    /// the CPU.
    Auto,
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            "auto" => Ok(Backend::Auto),
            other => Err(Error::InvalidArgument(format!("unknown backend `{other}`; choose cpu, wgpu or auto"))),
        }
    }
}

/// Which result a forward pass reads back.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Pooled,
    Tokens,
    Logits,
    Hidden,
}

/// Tokens per CPU forward pass: a call over many texts runs in batches of about this many
/// tokens, which bounds its memory and lets it be cancelled between batches. Batches are
/// ragged (never padded), so the split does not change any result.
const BATCH_TOKENS: usize = 4096;

/// One GPU device per process, shared by every model on it.
#[cfg(feature = "gpu")]
fn shared_gpu(choice: AdapterChoice) -> Result<Arc<GpuContext>> {
    static CONTEXTS: Mutex<Vec<(AdapterChoice, Arc<GpuContext>)>> = Mutex::new(Vec::new());
    let mut all = CONTEXTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = all.iter().find(|(k, _)| *k == choice) {
        if c.check().is_ok() {
            return Ok(c.clone());
        }
    }
    let ctx = Arc::new(GpuContext::new(choice)?);
    all.retain(|(k, _)| *k != choice);
    all.push((choice, ctx.clone()));
    Ok(ctx)
}

enum Engine {
    Cpu {
        encoder: Box<Encoder>,
        team: Team,
    },
    #[cfg(feature = "gpu")]
    Gpu(Box<GpuEncoder>),
}

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub backend: Backend,
    /// Worker threads; `None` = the machine's available parallelism.
    pub threads: Option<usize>,
    /// Kernel variants of the wgpu backend.
    pub gpu: GpuOptions,
}

impl LoadOptions {
    /// `backend` with `threads` CPU workers (0 = the machine's available parallelism) and the
    /// default GPU kernels: what the bindings' options carry.
    pub fn new(backend: Backend, threads: usize) -> LoadOptions {
        LoadOptions { backend, threads: (threads > 0).then_some(threads), ..Default::default() }
    }
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

/// What [`Model::teacher_targets`] keeps of each input: the tensors a distillation loss reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct TargetRequest {
    /// Hidden-state indices: 0 the embedding output, `i + 1` the output of block `i`.
    pub hidden: Vec<usize>,
    /// Attention blocks, counted among the attention blocks (0 = the first one).
    pub attention: Vec<usize>,
    /// The head's logits: `labels` per input for a sequence head, `tokens × labels` for a token
    /// head.
    pub logits: bool,
}

/// A teacher's training targets for one input, in the order of its [`TargetRequest`].
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherTargets {
    /// Tokens of the input.
    pub tokens: usize,
    /// Per requested hidden state, `tokens × width` (row-major).
    pub hidden: Vec<Vec<f32>>,
    /// Per requested attention block, `heads × tokens × tokens` (each row a distribution over
    /// the keys).
    pub attention: Vec<Vec<f32>>,
    pub logits: Option<Vec<f32>>,
}

/// Summary of a model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub parameters: usize,
    /// Bytes of all tensors' data in memory ([`TensorData::stored_bytes`]).
    pub bytes: usize,
    /// Weight bits by tensor group, e.g. {"matrices": [4], "embeddings": [8]}.
    pub matrix_bits: Vec<u8>,
    pub embedding_bits: Vec<u8>,
    pub output_width: usize,
    pub max_seq_len: usize,
    pub blocks: Vec<BlockSpec>,
    /// The labels of the head, whichever its kind.
    pub labels: Option<Vec<String>>,
    /// The head's kind: [`Model::classify`] needs `Sequence`, [`Model::tag`] `Token`.
    pub head: Option<HeadKind>,
    pub spec: ModelSpec,
}

/// A loaded model. Thread-safe: share it behind an `Arc` and call it from any thread.
pub struct Model {
    engine: Engine,
    tokenizer: TextTokenizer,
    threads: usize,
    info: ModelInfo,
    token_head: Option<TokenHead>,
    /// Bumped by [`Model::cancel`]; a call stops when it sees a value other than its start's.
    cancel_epoch: AtomicU64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("threads", &self.threads).field("info", &self.info).finish()
    }
}

impl Model {
    /// Loads a bertling package file or (with the `hf` feature) a Hugging Face BERT directory.
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        Model::from_data(load_model_data(path.as_ref())?, options)
    }

    /// Loads a bertling package held in memory (apps that ship the model as an asset). The
    /// weights are copied once out of `bytes`, which the caller may drop afterwards.
    pub fn from_package_bytes(bytes: &[u8], options: &LoadOptions) -> Result<Model> {
        Model::from_data(read_package(bytes)?, options)
    }

    /// Loads a Hugging Face BERT model from its files held in memory.
    #[cfg(feature = "hf")]
    pub fn from_hf_files(files: &HfFiles, options: &LoadOptions) -> Result<Model> {
        Model::from_data(load_hf(files)?, options)
    }

    /// Builds a model from model data, taking its weights over.
    pub fn from_data(data: ModelData, options: &LoadOptions) -> Result<Model> {
        data.validate()?;
        let tokenizer = TextTokenizer::new(&data.tokenizer_json, data.spec.max_seq_len)?;
        let threads = match options.threads {
            Some(0) => return Err(Error::InvalidArgument("threads must be at least 1".into())),
            Some(n) => n,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        let bits = |role| {
            let mut b: Vec<u8> = data.spec.expected_tensors().iter().filter(|t| t.role == role).map(|t| data.tensors[&t.name].bits()).collect();
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
            head: data.spec.head.as_ref().map(|h| h.kind),
            spec: data.spec.clone(),
        };
        let token_head = TokenHead::of(&data)?;
        let engine = Engine::new(data, options.backend, threads, &options.gpu)?;
        Ok(Model { engine, tokenizer, threads, info, token_head, cancel_epoch: AtomicU64::new(0) })
    }

    /// Cancels every call running on this model at this moment, from any thread: each returns
    /// [`Error::Cancelled`] at its next check (between blocks on the CPU, between batches on
    /// either backend). Calls started afterwards run normally.
    pub fn cancel(&self) {
        self.cancel_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Model summary.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Worker threads used per call (CPU backend).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The engine running the model: "cpu (N threads)" or the GPU adapter's description.
    pub fn device(&self) -> String {
        match &self.engine {
            Engine::Cpu { .. } => format!("cpu ({} threads)", self.threads),
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => format!("wgpu: {}", g.context().describe()),
        }
    }

    /// The GPU encoder, when the model runs on the wgpu backend.
    #[cfg(feature = "gpu")]
    pub fn gpu(&self) -> Option<&GpuEncoder> {
        match &self.engine {
            Engine::Gpu(g) => Some(g),
            Engine::Cpu { .. } => None,
        }
    }

    /// Tokenizes texts as the model sees them: special tokens added, truncated to the maximum.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Input>> {
        self.tokenizer.encode(texts)
    }

    /// Tokenizes sentence pairs (see [`TextTokenizer::encode_pairs`]).
    pub fn tokenize_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Input>> {
        self.tokenizer.encode_pairs(pairs)
    }

    fn check(&self, inputs: &[Input]) -> Result<()> {
        let e = &self.info.spec.embeddings;
        for input in inputs {
            if input.ids.len() != input.type_ids.len() {
                return Err(Error::InvalidArgument(format!("{} token ids but {} segment ids", input.ids.len(), input.type_ids.len())));
            }
            if input.ids.is_empty() || input.ids.len() > self.info.max_seq_len {
                return Err(Error::InvalidArgument(format!("an input has {} tokens; this model takes 1 to {}", input.ids.len(), self.info.max_seq_len)));
            }
            if let Some(id) = input.ids.iter().find(|&&id| id as usize >= e.vocab_size) {
                return Err(Error::InvalidArgument(format!("token id {id} is outside the vocabulary of {}", e.vocab_size)));
            }
            if let Some(t) = input.type_ids.iter().find(|&&t| t as usize >= e.type_vocab_size) {
                return Err(Error::InvalidArgument(format!("segment id {t} is outside the {} segment types", e.type_vocab_size)));
            }
        }
        Ok(())
    }

    /// Runs the model and returns, per input, what `want` asks for: the pooled vector, the
    /// logits, the final token states (`tokens × width`) or the hidden states (embedding
    /// output then every block's output, concatenated). Inputs run in batches; [`Model::cancel`]
    /// stops the call between batches and between blocks.
    fn run(&self, inputs: &[Input], want: Want) -> Result<Vec<Vec<f32>>> {
        self.check(inputs)?;
        let epoch = self.cancel_epoch.load(Ordering::SeqCst);
        let check = || {
            if self.cancel_epoch.load(Ordering::SeqCst) == epoch {
                Ok(())
            } else {
                Err(Error::Cancelled)
            }
        };
        let limit = match &self.engine {
            Engine::Cpu { .. } => BATCH_TOKENS,
            #[cfg(feature = "gpu")]
            Engine::Gpu(gpu) => gpu.max_tokens(),
        };
        let mut out = Vec::with_capacity(inputs.len());
        let mut start = 0;
        while start < inputs.len() {
            check()?;
            let mut tokens = 0;
            let mut end = start;
            while end < inputs.len() && (end == start || tokens + inputs[end].ids.len() <= limit) {
                tokens += inputs[end].ids.len();
                end += 1;
            }
            let batch = &inputs[start..end];
            match &self.engine {
                Engine::Cpu { encoder, team } => {
                    let f = encoder.forward_checked(batch, team, (want == Want::Hidden).into(), None, &check)?;
                    match want {
                        Want::Pooled => out.extend(encoder.pool(&f)),
                        Want::Logits => out.extend(encoder.logits(&f, team).ok_or(Error::NoClassificationHead)?),
                        Want::Tokens => out.extend((0..batch.len()).map(|i| f.sentence(i).to_vec())),
                        Want::Hidden => {
                            let widths = self.hidden_widths();
                            out.extend(
                                (0..batch.len())
                                    .map(|i| f.hidden.iter().zip(&widths).flat_map(|(h, w)| h[f.offsets[i] * w..f.offsets[i + 1] * w].to_vec()).collect()),
                            );
                        }
                    }
                }
                #[cfg(feature = "gpu")]
                Engine::Gpu(gpu) => out.extend(self.gpu_batch(gpu, batch, want)?),
            }
            start = end;
        }
        Ok(out)
    }

    /// One pass of the wgpu backend, its results regrouped per input.
    #[cfg(feature = "gpu")]
    fn gpu_batch(&self, gpu: &GpuEncoder, chunk: &[Input], want: Want) -> Result<Vec<Vec<f32>>> {
        let res = gpu.forward(chunk, want)?;
        Ok(match want {
            Want::Pooled | Want::Logits => {
                let per = res.data.len() / chunk.len();
                res.data.chunks(per.max(1)).map(<[f32]>::to_vec).collect()
            }
            Want::Tokens => {
                let w = self.info.output_width;
                let mut off = 0;
                chunk
                    .iter()
                    .map(|inp| {
                        let n = inp.ids.len() * w;
                        off += n;
                        res.data[off - n..off].to_vec()
                    })
                    .collect()
            }
            Want::Hidden => {
                // Snapshots are [layer][token][width]; regroup by input.
                let t: usize = chunk.iter().map(|i| i.ids.len()).sum();
                let mut per_input: Vec<Vec<f32>> = vec![Vec::new(); chunk.len()];
                let mut base = 0;
                for w in &res.widths {
                    let mut row = 0;
                    for (i, inp) in chunk.iter().enumerate() {
                        let n = inp.ids.len();
                        per_input[i].extend_from_slice(&res.data[base + row * w..base + (row + n) * w]);
                        row += n;
                    }
                    base += t * w;
                }
                per_input
            }
        })
    }

    fn hidden_widths(&self) -> Vec<usize> {
        std::iter::once(self.info.spec.embeddings.width).chain(self.info.blocks.iter().map(BlockSpec::output_width)).collect()
    }

    /// Sentence embeddings of texts (pooled, normalised if the model says so).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_inputs(&self.tokenize(texts)?)
    }

    /// Sentence embeddings of tokenized inputs.
    pub fn embed_inputs(&self, inputs: &[Input]) -> Result<Vec<Vec<f32>>> {
        self.run(inputs, Want::Pooled)
    }

    /// Final token states of tokenized inputs, one `tokens × width` matrix each.
    pub fn token_states(&self, inputs: &[Input]) -> Result<Vec<Vec<f32>>> {
        self.run(inputs, Want::Tokens)
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
        if self.info.head != Some(HeadKind::Sequence) {
            return Err(Error::NoClassificationHead);
        }
        let labels = self.info.labels.clone().ok_or(Error::NoClassificationHead)?;
        let logits = self.run(inputs, Want::Logits)?;
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

    /// Tags the words of `text` (split by the tokenizer's pre-tokenization; byte ranges into
    /// `text`) with the model's token head: per word, its first sub-word's label. A text longer
    /// than the model's maximum length is an error, not silently cut.
    pub fn tag(&self, text: &str) -> Result<Vec<WordTag>> {
        Ok(self.tag_texts(&[text])?.pop().unwrap_or_default())
    }

    /// [`Model::tag`] of several texts, run in batches.
    pub fn tag_texts(&self, texts: &[&str]) -> Result<Vec<Vec<WordTag>>> {
        let head = self.token_head.as_ref().ok_or(Error::NoTokenHead)?;
        let words = texts.iter().map(|t| self.tokenizer.words(t, self.info.max_seq_len)).collect::<Result<Vec<_>>>()?;
        self.tag_all(head, &words, texts)
    }

    /// Tags pre-split words (a CoNLL-U sentence's forms, say): one tag per word, each word's
    /// range in the words joined by single spaces.
    pub fn tag_words(&self, words: &[&str]) -> Result<Vec<WordTag>> {
        let head = self.token_head.as_ref().ok_or(Error::NoTokenHead)?;
        let w = self.tokenizer.split_words(words, self.info.max_seq_len)?;
        Ok(self.tag_all(head, std::slice::from_ref(&w), &[&words.join(" ")])?.pop().unwrap_or_default())
    }

    fn tag_all(&self, head: &TokenHead, words: &[Words], texts: &[&str]) -> Result<Vec<Vec<WordTag>>> {
        let inputs: Vec<Input> = words.iter().map(|w| w.input.clone()).collect();
        let states = self.run(&inputs, Want::Tokens)?;
        let labels = self.info.labels.as_deref().unwrap_or_default();
        Ok(words.iter().zip(&states).zip(texts).map(|((w, s), t)| head.tags(w, s, t, labels)).collect())
    }

    /// The tensors a distillation teacher gives its students for each tokenized input: the
    /// requested hidden states, attention probabilities and logits, computed by the CPU
    /// backend's kernels (load the teacher with [`Backend::Cpu`]). The compressor's training
    /// targets come from here rather than from a second, slower implementation of the model.
    pub fn teacher_targets(&self, inputs: &[Input], req: &TargetRequest) -> Result<Vec<TeacherTargets>> {
        self.check(inputs)?;
        let blocks = &self.info.blocks;
        let heads: Vec<usize> = blocks
            .iter()
            .filter_map(|b| match b {
                BlockSpec::Attention { heads, .. } => Some(*heads),
                _ => None,
            })
            .collect();
        if let Some(h) = req.hidden.iter().find(|&&h| h > blocks.len()) {
            return Err(Error::InvalidArgument(format!("hidden state {h} asked for: this model has 0..={} (0 = embeddings)", blocks.len())));
        }
        if let Some(a) = req.attention.iter().find(|&&a| a >= heads.len()) {
            return Err(Error::InvalidArgument(format!("attention block {a} asked for: this model has {} attention blocks", heads.len())));
        }
        if req.logits && self.info.labels.is_none() {
            return Err(Error::NoClassificationHead);
        }
        let (encoder, team) = match &self.engine {
            Engine::Cpu { encoder, team } => (encoder, team),
            #[cfg(feature = "gpu")]
            Engine::Gpu(_) => return Err(Error::InvalidArgument("teacher targets are computed on the CPU backend: load the teacher with Backend::Cpu".into())),
        };
        let widths = self.hidden_widths();
        let epoch = self.cancel_epoch.load(Ordering::SeqCst);
        let check = || if self.cancel_epoch.load(Ordering::SeqCst) == epoch { Ok(()) } else { Err(Error::Cancelled) };
        let keep = Keep { hidden: !req.hidden.is_empty(), attention: !req.attention.is_empty() };
        let mut out = Vec::with_capacity(inputs.len());
        let mut start = 0;
        while start < inputs.len() {
            check()?;
            let (mut tokens, mut end) = (0, start);
            while end < inputs.len() && (end == start || tokens + inputs[end].ids.len() <= BATCH_TOKENS) {
                tokens += inputs[end].ids.len();
                end += 1;
            }
            let batch = &inputs[start..end];
            let f = encoder.forward_checked(batch, team, keep, None, &check)?;
            let logits = match (&self.token_head, req.logits) {
                (_, false) => None,
                // A tagger's targets: every token's logits, `tokens × labels`.
                (Some(head), true) => Some((0..batch.len()).map(|i| head.logits(f.sentence(i))).collect()),
                (None, true) => encoder.logits(&f, team),
            };
            for (i, inp) in batch.iter().enumerate() {
                let (a, b) = (f.offsets[i], f.offsets[i + 1]);
                let n = inp.ids.len();
                let hidden = req.hidden.iter().map(|&h| f.hidden[h][a * widths[h]..b * widths[h]].to_vec()).collect();
                let attention = req
                    .attention
                    .iter()
                    .map(|&k| {
                        let base: usize = f.offsets.windows(2).take(i).map(|w| heads[k] * (w[1] - w[0]).pow(2)).sum();
                        f.attentions[k][base..base + heads[k] * n * n].to_vec()
                    })
                    .collect();
                out.push(TeacherTargets { tokens: n, hidden, attention, logits: logits.as_ref().map(|l| l[i].clone()) });
            }
            start = end;
        }
        Ok(out)
    }

    /// Every block's output for each text, for tests and analysis.
    pub fn hidden_states(&self, texts: &[&str]) -> Result<Vec<HiddenStates>> {
        self.hidden_states_inputs(&self.tokenize(texts)?)
    }

    /// Every block's output for each tokenized input.
    pub fn hidden_states_inputs(&self, inputs: &[Input]) -> Result<Vec<HiddenStates>> {
        let widths = self.hidden_widths();
        let all = self.run(inputs, Want::Hidden)?;
        Ok(inputs
            .iter()
            .zip(all)
            .map(|(inp, flat)| {
                let n = inp.ids.len();
                let mut layers = Vec::with_capacity(widths.len());
                let mut off = 0;
                for w in &widths {
                    layers.push(flat[off..off + n * w].to_vec());
                    off += n * w;
                }
                HiddenStates { ids: inp.ids.clone(), layers }
            })
            .collect())
    }
}

/// A model's tokenizer as the runtime uses it: the stored `tokenizer.json` with its own
/// padding switched off (batches are never padded in memory) and truncation at the model's
/// maximum length, special tokens included.
pub struct TextTokenizer {
    pub(crate) inner: Tokenizer,
}

impl TextTokenizer {
    pub fn new(tokenizer_json: &str, max_len: usize) -> Result<TextTokenizer> {
        // A damaged tokenizer.json can make the tokenizers crate panic while parsing it.
        let mut inner = guard("cannot parse tokenizer.json", || Tokenizer::from_bytes(tokenizer_json.as_bytes()))?
            .map_err(|e| Error::Tokenizer(format!("cannot parse tokenizer.json: {e}")))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TextTokenizer { inner })
    }

    /// Token and segment ids of each text, with special tokens.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Input>> {
        texts
            .iter()
            .map(|t| {
                let enc = guard("cannot tokenize the text", || self.inner.encode(*t, true))?.map_err(|e| Error::Tokenizer(e.to_string()))?;
                Ok(Input { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() })
            })
            .collect()
    }

    /// The vocabulary's tokens in id order (added tokens, such as `[CLS]`, included).
    pub fn vocab(&self) -> Vec<String> {
        let mut v: Vec<(String, u32)> = self.inner.get_vocab(true).into_iter().collect();
        v.sort_by_key(|&(_, id)| id);
        v.into_iter().map(|(t, _)| t).collect()
    }

    /// Sentence pairs (`[CLS] a [SEP] b [SEP]`, segment ids 0 then 1), truncating the longer
    /// one first. An empty second text gives the single-text encoding, as transformers does.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Input>> {
        pairs
            .iter()
            .map(|&(a, b)| {
                let enc = guard("cannot tokenize the text pair", || if b.is_empty() { self.inner.encode(a, true) } else { self.inner.encode((a, b), true) })?
                    .map_err(|e| Error::Tokenizer(e.to_string()))?;
                Ok(Input { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() })
            })
            .collect()
    }
}

impl Engine {
    fn new(data: ModelData, backend: Backend, threads: usize, gpu: &GpuOptions) -> Result<Engine> {
        let cpu = |data| -> Result<Engine> {
            let team = Team::new(threads).map_err(|e| Error::Threads(e.to_string()))?;
            Ok(Engine::Cpu { encoder: Box::new(Encoder::new(data)?), team })
        };
        #[cfg(feature = "gpu")]
        return match backend {
            Backend::Cpu => cpu(data),
            Backend::Wgpu => Ok(Engine::Gpu(Box::new(GpuEncoder::new(shared_gpu(AdapterChoice::Any)?, &data, gpu)?))),
            Backend::Auto => match shared_gpu(AdapterChoice::HardwareOnly).and_then(|ctx| GpuEncoder::new(ctx, &data, gpu)) {
                Ok(g) => Ok(Engine::Gpu(Box::new(g))),
                Err(_) => cpu(data),
            },
        };
        #[cfg(not(feature = "gpu"))]
        {
            let _ = gpu;
            match backend {
                Backend::Cpu | Backend::Auto => cpu(data),
                Backend::Wgpu => Err(Error::Gpu(
                    "this build of bertling has no GPU backend (built without the `gpu` feature); use the CPU backend or a build with the feature".into(),
                )),
            }
        }
    }
}

thread_local! {
    /// Set while this thread runs tokenizer code whose panics are caught and reported as errors.
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs tokenizer code, turning a panic inside the tokenizers crate (a damaged tokenizer.json
/// can cause one) into `Error::Tokenizer`: a panic must never cross the runtime's API, and
/// through FFI it would abort the app. The panic's message is kept off stderr by a panic hook
/// that defers to the previous one for every other panic. Needs `panic = "unwind"`.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET_PANICS.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(was));
    result.map_err(|payload| {
        let why = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default();
        Error::Tokenizer(format!(
            "{what}: the tokenizer failed internally ({why}); tokenizer.json is damaged or unsupported: re-download or re-export the model"
        ))
    })
}

/// Reads model data from a package file or (with the `hf` feature) a Hugging Face directory.
pub fn load_model_data(path: &Path) -> Result<ModelData> {
    if path.is_dir() {
        return load_dir(path);
    }
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory")));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if looks_like_package(&bytes) {
        read_package(&bytes)
    } else if path.file_name().is_some_and(|n| n == "model.safetensors") {
        load_dir(path.parent().unwrap_or(Path::new(".")))
    } else {
        read_package(&bytes).map_err(|e| match e {
            Error::Container { .. } | Error::Package(_) => Error::UnknownModelPath { path: path.into() },
            other => other,
        })
    }
}

#[cfg(feature = "hf")]
fn load_dir(dir: &Path) -> Result<ModelData> {
    load_hf_dir(dir)
}

#[cfg(not(feature = "hf"))]
fn load_dir(dir: &Path) -> Result<ModelData> {
    Err(Error::HfModel {
        dir: dir.into(),
        what: "this build of bertling loads packages only (built without the `hf` feature); convert the directory with `bertling pack` and load the package"
            .into(),
    })
}
