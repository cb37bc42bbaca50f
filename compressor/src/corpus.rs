//! The training corpus: plain text read line by line (never held in memory), tokenized on the
//! fly, cycled at the end, with cheap augmentations toward what users type.
//!
//! Corpus lines are sentences and paragraphs; users type one-word queries, names, a "?". A
//! student distilled only on sentences drifts from its teacher on those (issue 14's agreement
//! benchmark, `bertling eval --agreement`), so by default a fraction of the lines are replaced
//! by a span of random length cut from them, down to a single word or punctuation mark. Which
//! lines and which spans depend only on the seed and the line's position, so a run resumed from
//! a checkpoint sees the same text as an uninterrupted one.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use bertling_runtime::{Input, TextTokenizer};
use serde::{Deserialize, Serialize};

use crate::error::{CompressError, Result};

/// Augmentations of training lines.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Fraction of lines replaced by a span of their units (words, numbers, single punctuation
    /// marks): length between 1 and the whole line, log-uniform so that short spans (queries of
    /// a few words) are as common as long ones.
    pub spans: f32,
}

impl Augment {
    /// No augmentation: the lines as they are.
    pub const NONE: Augment = Augment { spans: 0.0 };

    /// Checks the fractions.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.spans) {
            return Err(CompressError::InvalidArgument(format!(
                "the span fraction must be between 0 and 1 (got {})",
                self.spans
            )));
        }
        Ok(())
    }
}

impl Default for Augment {
    /// The training default: a quarter of the lines cut to spans (see benches/quality/RESULTS.md,
    /// "Loyalty on what users type").
    fn default() -> Self {
        Augment { spans: 0.25 }
    }
}

/// A plain-text corpus read line by line, tokenized on the fly, cycled at the end. Empty lines
/// are skipped.
pub struct Corpus {
    path: PathBuf,
    reader: BufReader<File>,
    tokenizer: TextTokenizer,
    augment: Augment,
    seed: u64,
    /// Lines read since the start (over all passes): the position saved in checkpoints.
    pub lines_read: u64,
}

impl Corpus {
    /// Opens `path` without augmentation (calibration and importance read it this way).
    pub fn open(path: &Path, tokenizer_json: &str, max_len: usize) -> Result<Corpus> {
        let file = File::open(path).map_err(|source| CompressError::Io {
            what: "cannot open the corpus",
            path: path.into(),
            source,
        })?;
        Ok(Corpus {
            path: path.into(),
            reader: BufReader::new(file),
            tokenizer: TextTokenizer::new(tokenizer_json, max_len)?,
            augment: Augment::NONE,
            seed: 0,
            lines_read: 0,
        })
    }

    /// Augments the lines read from now on, with choices drawn from `seed` and each line's
    /// position.
    pub fn set_augment(&mut self, augment: Augment, seed: u64) -> Result<()> {
        augment.validate()?;
        self.augment = augment;
        self.seed = seed;
        Ok(())
    }

    /// Skips to the position `lines` (a checkpoint's `lines_read`).
    pub fn seek(&mut self, lines: u64) -> Result<()> {
        while self.lines_read < lines {
            self.next_raw_line()?;
        }
        Ok(())
    }

    fn next_line(&mut self) -> Result<String> {
        let line = self.next_raw_line()?;
        Ok(augmented(&line, self.augment, self.seed, self.lines_read).to_string())
    }

    /// The next non-empty line, trimmed, as the file has it.
    fn next_raw_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let mut restarted = false;
        loop {
            line.clear();
            let n = self.reader.read_line(&mut line).map_err(|source| CompressError::Io {
                what: "reading the corpus",
                path: self.path.clone(),
                source,
            })?;
            if n == 0 {
                if restarted {
                    return Err(CompressError::InvalidArgument(format!(
                        "the corpus {} has no text",
                        self.path.display()
                    )));
                }
                let file = File::open(&self.path).map_err(|source| CompressError::Io {
                    what: "reopening the corpus",
                    path: self.path.clone(),
                    source,
                })?;
                self.reader = BufReader::new(file);
                restarted = true;
                continue;
            }
            self.lines_read += 1;
            let t = line.trim();
            if !t.is_empty() {
                return Ok(t.to_string());
            }
        }
    }

    /// The next `n` non-empty lines (augmented), as text.
    pub fn next_lines(&mut self, n: usize) -> Result<Vec<String>> {
        (0..n).map(|_| self.next_line()).collect()
    }

    /// The next `n` non-empty lines (augmented), tokenized.
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<Input>> {
        let lines = self.next_lines(n)?;
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        Ok(self.tokenizer.encode(&refs)?)
    }
}

/// `line` as training sees it: itself, or a span of it (a substring, so spacing is kept).
/// `position` is the line's 1-based position in the stream.
pub fn augmented(line: &str, augment: Augment, seed: u64, position: u64) -> &str {
    if augment.spans <= 0.0 {
        return line;
    }
    let mut rng = SplitMix(seed ^ position.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    if unit_interval(rng.next()) >= augment.spans as f64 {
        return line;
    }
    let units = units(line);
    if units.len() < 2 {
        return line;
    }
    let n = units.len();
    // Log-uniform length in 1..=n: floor((n + 1)^u) for u uniform in [0, 1).
    let len = (((n + 1) as f64).powf(unit_interval(rng.next())).floor() as usize).clamp(1, n);
    let first = (rng.next() % (n - len + 1) as u64) as usize;
    &line[units[first].0..units[first + len - 1].1]
}

/// Byte ranges of a line's units: words (maximal runs of alphanumeric characters, with the
/// combining marks that follow them and apostrophes between letters: "don't", "café" written
/// with U+0301), and every other non-space character on its own.
fn units(line: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut in_word = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        let next_is_word = chars.peek().is_some_and(|&(_, n)| n.is_alphanumeric());
        let joins = in_word && (combining(c) || (matches!(c, '\'' | '\u{2019}') && next_is_word));
        if c.is_alphanumeric() || joins {
            match out.last_mut() {
                Some(last) if in_word => last.1 = end,
                _ => out.push((i, end)),
            }
            in_word = true;
        } else {
            if !c.is_whitespace() {
                out.push((i, end));
            }
            in_word = false;
        }
    }
    out
}

/// Combining diacritical marks (the blocks of them; marks that Unicode counts as alphabetic,
/// such as Indic vowel signs, are alphanumeric already).
fn combining(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// SplitMix64 (Steele et al. 2014): a few well-mixed numbers from one seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The top 53 bits as a number in [0, 1).
fn unit_interval(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_words_numbers_and_single_marks() {
        let line = "Hello, wörld: 3.5 «ok»?!";
        let got: Vec<&str> = units(line).iter().map(|&(a, b)| &line[a..b]).collect();
        assert_eq!(got, ["Hello", ",", "wörld", ":", "3", ".", "5", "«", "ok", "»", "?", "!"]);
        assert!(units(" \t ").is_empty());
        let line = "don't 'quote' cafe\u{301} l’été ́x";
        let got: Vec<&str> = units(line).iter().map(|&(a, b)| &line[a..b]).collect();
        assert_eq!(got, ["don't", "'", "quote", "'", "cafe\u{301}", "l’été", "\u{301}", "x"]);
    }

    #[test]
    fn spans_are_substrings_of_every_length_at_the_asked_fraction() {
        let line = "The quick brown fox jumps over the lazy dog near the river bank today.";
        let n = units(line).len();
        let every = Augment { spans: 1.0 };
        let mut lengths = vec![0usize; n + 1];
        for pos in 1..=4000 {
            let s = augmented(line, every, 7, pos);
            assert!(line.contains(s) && !s.is_empty() && s.trim() == s, "{s:?}");
            lengths[units(s).len()] += 1;
            // Deterministic in (seed, position).
            assert_eq!(s, augmented(line, every, 7, pos));
        }
        // Log-uniform: every length occurs; one unit as often as floor((n + 1)^u) = 1 predicts.
        assert!(lengths[1..].iter().all(|&c| c > 0), "{lengths:?}");
        let p1 = 2f64.ln() / ((n + 1) as f64).ln();
        assert!((lengths[1] as f64 / 4000.0 - p1).abs() < 0.03, "{} vs {p1}", lengths[1]);
        let quarter = Augment { spans: 0.25 };
        let cut = (1..=4000).filter(|&p| augmented(line, quarter, 7, p) != line).count();
        // A cut keeps the whole line with probability 1 − ln n / ln(n + 1) (2% here).
        assert!((cut as f64 / 4000.0 - 0.25).abs() < 0.03, "{cut}");
        assert_eq!(augmented(line, Augment::NONE, 7, 3), line);
        assert_eq!(augmented("word", every, 7, 3), "word");
    }

    /// A resumed run reads the same text: seeking to a position and reading on gives what an
    /// uninterrupted read gives from there, spans included.
    #[test]
    fn seeking_reads_the_same_augmented_lines() {
        let path = std::env::temp_dir().join(format!("bertling-corpus-{}.txt", std::process::id()));
        let text: String = (0..40).map(|i| format!("line {i} has several words, and a mark!\n\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tokenizer = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls/tokenizer.json"),
        )
        .unwrap();
        let open = || {
            let mut c = Corpus::open(&path, &tokenizer, 32).unwrap();
            c.set_augment(Augment { spans: 0.5 }, 11).unwrap();
            c
        };
        let mut straight = open();
        let first = straight.next_lines(7).unwrap();
        let position = straight.lines_read;
        let rest = straight.next_lines(50).unwrap();
        let mut resumed = open();
        resumed.seek(position).unwrap();
        assert_eq!(resumed.next_lines(50).unwrap(), rest);
        // Spans were cut (some lines differ from the file's), and the cycle continues past the end.
        let plain = Corpus::open(&path, &tokenizer, 32).unwrap().next_lines(57).unwrap();
        let all: Vec<String> = first.into_iter().chain(rest).collect();
        let cut = all.iter().zip(&plain).filter(|(a, b)| a != b).count();
        assert!((10..47).contains(&cut), "{cut} of 57 lines cut");
        assert!(all.iter().zip(&plain).all(|(a, b)| b.contains(a.as_str())));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn fractions_outside_zero_to_one_are_refused() {
        assert!(Augment { spans: 1.5 }.validate().is_err());
        assert!(Augment { spans: -0.1 }.validate().is_err());
        assert!(Augment { spans: f32::NAN }.validate().is_err());
        assert!(Augment::default().validate().is_ok());
    }
}
