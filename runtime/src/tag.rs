//! Token classification (a `token` head, FORMAT.md): words aligned to their first sub-word,
//! each word's label the softmax argmax of that sub-word's logits. The encoder runs on the
//! model's backend (CPU or wgpu) and returns its final token states; the head, a
//! `labels × width` product per word (well under 1 % of the encoder's work), runs here on the
//! host for both backends, so one implementation serves them.

use serde::Serialize;

use crate::cpu::Input;
use crate::data::ModelData;
use crate::error::{Error, Result};
use crate::model::{guard, TextTokenizer};
use crate::spec::{names, HeadKind};

/// The label of one word.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WordTag {
    pub word: String,
    /// `[start, end)`: the word's bytes in the text ([`crate::Model::tag`]) or in the words
    /// joined by single spaces ([`crate::Model::tag_words`]).
    pub start: usize,
    pub end: usize,
    pub label: String,
    pub label_id: usize,
    /// The label's probability (softmax of the first sub-word's logits).
    pub prob: f32,
}

/// A text's tokens with, per word, its byte range and the index of its first token.
pub(crate) struct Words {
    pub input: Input,
    pub spans: Vec<(usize, usize)>,
    pub first_token: Vec<usize>,
}

/// The token head's weights on the host: `[labels, width]` and `[labels]`.
pub(crate) struct TokenHead {
    weight: Vec<f32>,
    bias: Vec<f32>,
    width: usize,
}

impl TokenHead {
    /// The head of `data` when it is a token head.
    pub fn of(data: &ModelData) -> Result<Option<TokenHead>> {
        let Some(h) = data.spec.head.as_ref().filter(|h| h.kind == HeadKind::Token) else {
            return Ok(None);
        };
        let get = |name: String| -> Result<Vec<f32>> { data.tensors.get(&name).map(|t| t.to_f32()).ok_or_else(|| Error::tensor(&name, "is missing")) };
        let weight = get(names::weight(names::CLASSIFIER))?;
        let bias = get(names::bias(names::CLASSIFIER))?;
        let labels = h.labels.len();
        let width = data.spec.output_width();
        if weight.len() != labels * width || bias.len() != labels {
            return Err(Error::tensor(names::CLASSIFIER, "does not match the head's labels and the model's width"));
        }
        Ok(Some(TokenHead { weight, bias, width }))
    }

    /// Logits per label of one token state.
    fn logits_of(&self, state: &[f32]) -> Vec<f32> {
        self.weight.chunks_exact(self.width).zip(&self.bias).map(|(row, b)| row.iter().zip(state).map(|(w, x)| w * x).sum::<f32>() + b).collect()
    }

    /// Probabilities per label of one token state.
    fn probs(&self, state: &[f32]) -> Vec<f32> {
        let mut l = self.logits_of(state);
        crate::cpu::ops::softmax(&mut l);
        l
    }

    /// Every token's logits (`tokens × labels`, row-major) from final states `tokens × width`:
    /// a tagging teacher's training targets.
    pub fn logits(&self, states: &[f32]) -> Vec<f32> {
        states.chunks_exact(self.width).flat_map(|s| self.logits_of(s)).collect()
    }

    /// The tags of `words` from their input's final token states (`tokens × width`).
    pub fn tags(&self, words: &Words, states: &[f32], text: &str, labels: &[String]) -> Vec<WordTag> {
        words
            .spans
            .iter()
            .zip(&words.first_token)
            .map(|(&(start, end), &t)| {
                let p = self.probs(&states[t * self.width..(t + 1) * self.width]);
                let label_id = p.iter().enumerate().fold(0, |best, (i, v)| if *v > p[best] { i } else { best });
                WordTag { word: text[start..end].to_string(), start, end, label: labels[label_id].clone(), label_id, prob: p[label_id] }
            })
            .collect()
    }
}

impl TextTokenizer {
    /// The tokens of `text` and its words as the tokenizer's pre-tokenization splits it.
    pub(crate) fn words(&self, text: &str, max_len: usize) -> Result<Words> {
        let enc = guard("cannot tokenize the text", || self.inner.encode(text, true))?.map_err(|e| Error::Tokenizer(e.to_string()))?;
        untruncated(&enc, max_len)?;
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut first_token = Vec::new();
        let mut last_word = None;
        for (t, (word, &(s, e))) in enc.get_word_ids().iter().zip(enc.get_offsets()).enumerate() {
            let Some(word) = *word else { continue };
            if last_word == Some(word) {
                if let Some(span) = spans.last_mut() {
                    span.1 = span.1.max(e);
                }
            } else {
                spans.push((s, e));
                first_token.push(t);
                last_word = Some(word);
            }
        }
        // Offsets index the original text; keep them on character boundaries whatever the
        // normalizer did (a word is never cut inside a character).
        for span in &mut spans {
            span.1 = span.1.min(text.len());
            span.0 = span.0.min(span.1);
            while !text.is_char_boundary(span.0) {
                span.0 -= 1;
            }
            while !text.is_char_boundary(span.1) {
                span.1 += 1;
            }
        }
        Ok(Words { input: Input { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() }, spans, first_token })
    }

    /// The tokens of pre-split `words` (each word one or more sub-words; never split further by
    /// the pre-tokenizer) and their ranges in the words joined by single spaces.
    pub(crate) fn split_words(&self, words: &[&str], max_len: usize) -> Result<Words> {
        let enc = self.encode_split(words)?;
        untruncated(&enc, max_len)?;
        let (input, first_token) = first_tokens(&enc, words.len());
        let mut spans = Vec::with_capacity(words.len());
        let mut start = 0;
        for w in words {
            spans.push((start, start + w.len()));
            start += w.len() + 1;
        }
        let first_token = first_token
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                t.ok_or_else(|| Error::InvalidArgument(format!("word {i} ({:?}) gives no tokens: leave out empty and whitespace-only words", words[i])))
            })
            .collect::<Result<Vec<usize>>>()?;
        Ok(Words { input, spans, first_token })
    }
}

impl TextTokenizer {
    /// Pre-split words for training a tagger: the tokens (truncated at the tokenizer's maximum
    /// length) and, per word, the index of its first token; `None` for a word that truncation
    /// cut off or that gives no tokens (training skips it; [`crate::Model::tag_words`] refuses
    /// both).
    pub fn encode_words(&self, words: &[&str]) -> Result<(Input, Vec<Option<usize>>)> {
        Ok(first_tokens(&self.encode_split(words)?, words.len()))
    }

    fn encode_split(&self, words: &[&str]) -> Result<tokenizers::Encoding> {
        guard("cannot tokenize the words", || self.inner.encode(words, true))?.map_err(|e| Error::Tokenizer(e.to_string()))
    }
}

/// The input of an encoding of `n` pre-split words and each word's first token.
fn first_tokens(enc: &tokenizers::Encoding, n: usize) -> (Input, Vec<Option<usize>>) {
    let mut first: Vec<Option<usize>> = vec![None; n];
    for (t, word) in enc.get_word_ids().iter().enumerate() {
        if let Some(w) = word.map(|w| w as usize).filter(|&w| w < n) {
            first[w].get_or_insert(t);
        }
    }
    (Input { ids: enc.get_ids().to_vec(), type_ids: enc.get_type_ids().to_vec() }, first)
}

/// Tagging never drops words silently: a text longer than the model takes is an error.
fn untruncated(enc: &tokenizers::Encoding, max_len: usize) -> Result<()> {
    if enc.get_overflowing().is_empty() {
        return Ok(());
    }
    let total = enc.len() + enc.get_overflowing().iter().map(|o| o.len()).sum::<usize>();
    Err(Error::InvalidArgument(format!(
        "the text has more than the {max_len} tokens this model tags at once (about {total} with overflow): split it into sentences"
    )))
}
