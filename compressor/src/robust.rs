//! Adversarial robustness (Xu et al. 2021's loyalty and robustness study; `../shared/papers/
//! NOTES.md`): a word-substitution attack in the manner of TextFooler. Each word of a correctly
//! classified input is scored by how much deleting it lowers the probability of the gold label;
//! in that order, each word is replaced by the synonym (from WordNet) that lowers it most, until
//! the predicted label changes or the budget of changed words is spent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bertling_runtime::{Classification, Model};
use serde::Serialize;

use crate::error::{CompressError, Result};
use crate::eval::Example;

/// Function words the attack leaves alone: replacing them changes grammar, not meaning (and
/// WordNet's senses for them, `i` → `iodine`, are not synonyms in context).
const STOP_WORDS: [&str; 64] = [
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with",
    "from", "as", "is", "are", "was", "were", "be", "been", "am", "do", "does", "did", "have",
    "has", "had", "i", "me", "my", "we", "our", "you", "your", "he", "him", "his", "she", "her",
    "it", "its", "they", "them", "their", "this", "that", "these", "those", "not", "no", "so",
    "than", "too", "very", "can", "will", "just", "there", "here", "what", "which",
];

/// Single-word synonyms by word (lower case): every other word of every synset the word is in.
#[derive(Clone, Debug, Default)]
pub struct Synonyms {
    map: BTreeMap<String, BTreeSet<String>>,
}

impl Synonyms {
    /// Reads WordNet's `data.noun`, `data.verb`, `data.adj` and `data.adv` in `dir` (Debian's
    /// `wordnet-base` installs them in /usr/share/wordnet); at least one must be there.
    pub fn wordnet(dir: &Path) -> Result<Synonyms> {
        let mut syn = Synonyms::default();
        let mut found = 0;
        for pos in ["noun", "verb", "adj", "adv"] {
            let path = dir.join(format!("data.{pos}"));
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            found += 1;
            for (i, line) in text.lines().enumerate() {
                // License text at the top starts with spaces; synsets start with their offset.
                if line.starts_with(' ') || line.is_empty() {
                    continue;
                }
                let words = synset_words(line).ok_or_else(|| {
                    CompressError::InvalidArgument(format!(
                        "{} line {}: not a WordNet synset line",
                        path.display(),
                        i + 1
                    ))
                })?;
                syn.add_synset(&words);
            }
        }
        if found == 0 {
            return Err(CompressError::InvalidArgument(format!(
                "no WordNet data files (data.noun, data.verb, data.adj, data.adv) in {}: install \
                 Debian's wordnet-base or give the directory that holds them",
                dir.display()
            )));
        }
        Ok(syn)
    }

    /// Adds a synset: each of its single words becomes a synonym of the others.
    pub fn add_synset(&mut self, words: &[String]) {
        let single: Vec<String> = words
            .iter()
            .filter(|w| w.chars().all(char::is_alphabetic))
            .map(|w| w.to_lowercase())
            .collect();
        for w in &single {
            let entry = self.map.entry(w.clone()).or_default();
            entry.extend(single.iter().filter(|o| *o != w).cloned());
        }
    }

    /// Synonyms of `word` (any case), in alphabetical order.
    pub fn of(&self, word: &str) -> Vec<&str> {
        self.map
            .get(&word.to_lowercase())
            .map_or(Vec::new(), |s| s.iter().map(String::as_str).collect())
    }
}

/// The words of a WordNet data line: `offset lex_filenum ss_type w_cnt (word lex_id)...`, with
/// `w_cnt` in hexadecimal and adjective markers such as `(a)` after a word.
fn synset_words(line: &str) -> Option<Vec<String>> {
    let mut f = line.split(' ');
    let _offset = f.next()?.parse::<u64>().ok()?;
    let _lex = f.next()?;
    let _ss = f.next()?;
    let count = usize::from_str_radix(f.next()?, 16).ok()?;
    let mut words = Vec::with_capacity(count);
    for _ in 0..count {
        let w = f.next()?;
        let _lex_id = f.next()?;
        let w = w.split('(').next().unwrap_or(w);
        words.push(w.to_string());
    }
    Some(words)
}

/// Limits of the attack.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AttackConfig {
    /// Synonyms tried per word.
    pub candidates: usize,
    /// At most this fraction of an input's words may be changed (at least one).
    pub max_changed: f64,
}

impl Default for AttackConfig {
    fn default() -> AttackConfig {
        AttackConfig { candidates: 50, max_changed: 0.3 }
    }
}

/// One input the attack turned.
#[derive(Clone, Debug, Serialize)]
pub struct Turned {
    pub original: String,
    pub adversarial: String,
    pub changed_words: usize,
}

/// How a model stands up to the attack on a task's examples.
#[derive(Clone, Debug, Serialize)]
pub struct Robustness {
    pub examples: usize,
    pub accuracy: f64,
    /// Correct before the attack and still correct after it, over all examples.
    pub accuracy_under_attack: f64,
    /// Of the correctly classified examples, the fraction whose label the attack changed.
    pub attack_success_rate: f64,
    /// Mean fraction of words changed in the turned examples.
    pub changed_fraction: f64,
    /// Model calls per attacked example (classifications of one input).
    pub queries_per_example: f64,
    pub turned: Vec<Turned>,
}

/// Attacks `model` on `examples` (the second text of a pair, else the only one).
pub fn attack(
    model: &Model,
    examples: &[Example],
    synonyms: &Synonyms,
    cfg: &AttackConfig,
) -> Result<Robustness> {
    let (mut correct, mut turned, mut queries, mut changed) = (0usize, Vec::new(), 0usize, 0f64);
    for e in examples {
        let target = e.b.as_deref().unwrap_or(&e.a);
        let classify = |texts: &[String]| -> Result<Vec<Classification>> {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok(match &e.b {
                None => model.classify(&refs)?,
                Some(_) => {
                    let pairs: Vec<(&str, &str)> =
                        refs.iter().map(|t| (e.a.as_str(), *t)).collect();
                    model.classify_pairs(&pairs)?
                }
            })
        };
        let first = classify(&[target.to_string()])?.remove(0);
        queries += 1;
        if first.label_id != e.label {
            continue;
        }
        correct += 1;
        let mut words: Vec<String> = target.split_whitespace().map(str::to_string).collect();
        let gold = |c: &Classification| c.probs.get(e.label).copied().unwrap_or(0.0);
        // Importance: the drop in the gold label's probability when the word is deleted.
        let deleted: Vec<String> = (0..words.len())
            .map(|i| {
                let rest: Vec<&str> = words
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, w)| w.as_str())
                    .collect();
                rest.join(" ")
            })
            .collect();
        let scores = if deleted.is_empty() { Vec::new() } else { classify(&deleted)? };
        queries += deleted.len();
        let mut order: Vec<usize> = (0..words.len()).collect();
        order.sort_by(|&i, &j| gold(&scores[i]).total_cmp(&gold(&scores[j])).then(i.cmp(&j)));
        let budget = ((words.len() as f64 * cfg.max_changed).floor() as usize).max(1);
        let (mut best, mut n_changed) = (gold(&first), 0usize);
        for i in order {
            if n_changed == budget {
                break;
            }
            if STOP_WORDS.contains(&words[i].to_lowercase().as_str()) {
                continue;
            }
            let cands: Vec<String> = synonyms
                .of(&words[i])
                .into_iter()
                .take(cfg.candidates)
                .map(str::to_string)
                .collect();
            if cands.is_empty() {
                continue;
            }
            let texts: Vec<String> = cands
                .iter()
                .map(|c| {
                    let mut w = words.clone();
                    w[i] = c.clone();
                    w.join(" ")
                })
                .collect();
            let outs = classify(&texts)?;
            queries += texts.len();
            // A candidate that turns the label wins (the one leaving the gold label least
            // probable); else the one lowering the gold label most, if any does.
            let pick = outs
                .iter()
                .enumerate()
                .filter(|(_, o)| o.label_id != e.label)
                .min_by(|a, b| gold(a.1).total_cmp(&gold(b.1)))
                .map(|(k, _)| (k, true))
                .or_else(|| {
                    outs.iter()
                        .enumerate()
                        .min_by(|a, b| gold(a.1).total_cmp(&gold(b.1)))
                        .filter(|(_, o)| gold(o) < best)
                        .map(|(k, _)| (k, false))
                });
            let Some((k, flipped)) = pick else { continue };
            words[i] = cands[k].clone();
            n_changed += 1;
            best = gold(&outs[k]);
            if flipped {
                changed += n_changed as f64 / words.len() as f64;
                turned.push(Turned {
                    original: target.to_string(),
                    adversarial: words.join(" "),
                    changed_words: n_changed,
                });
                break;
            }
        }
    }
    let n = examples.len().max(1) as f64;
    Ok(Robustness {
        examples: examples.len(),
        accuracy: correct as f64 / n,
        accuracy_under_attack: (correct - turned.len()) as f64 / n,
        attack_success_rate: if correct == 0 { 0.0 } else { turned.len() as f64 / correct as f64 },
        changed_fraction: if turned.is_empty() { 0.0 } else { changed / turned.len() as f64 },
        queries_per_example: queries as f64 / n,
        turned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_synset_lines() {
        let line = "01123148 00 a 03 good 0 well(a) 1 full_of_life 0 018 ^ 00227507 a 0000 | x";
        assert_eq!(synset_words(line).unwrap(), ["good", "well", "full_of_life"]);
        // 0a words: the count is hexadecimal.
        let many: String = (0..10).map(|i| format!(" w{i} 0")).collect();
        assert_eq!(synset_words(&format!("1 00 n 0a{many} 000 |")).unwrap().len(), 10);
        assert!(synset_words("not a synset").is_none());
        let mut s = Synonyms::default();
        s.add_synset(&["Good".into(), "well".into(), "full_of_life".into()]);
        s.add_synset(&["good".into(), "beneficial".into()]);
        assert_eq!(s.of("GOOD"), ["beneficial", "well"]);
        assert_eq!(s.of("well"), ["good"]);
        assert!(s.of("full_of_life").is_empty());
    }
}
