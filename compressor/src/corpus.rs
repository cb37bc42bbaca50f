//! The training corpus: plain text read line by line (never held in memory), tokenized on the
//! fly, cycled at the end, with cheap augmentations toward what users type.
//!
//! Corpus lines are sentences and paragraphs; users type one-word queries, names, a "?". A
//! student distilled only on sentences drifts from its teacher on those (issue 14's agreement
//! benchmark, `bertling eval --agreement`), so by default a fraction of the lines are replaced
//! by a span of random length cut from them, down to a single word or punctuation mark. Which
//! lines and which spans depend only on the seed and the line's position, so a run resumed from
//! a checkpoint sees the same text as an uninterrupted one.
//!
//! Sentences also lack whole kinds of input: long digit strings, runs of symbols, rare words and
//! other scripts. Optionally a fraction of the lines are replaced by such synthetic noise, drawn
//! from the tokenizer's own vocabulary (`Augment::noise`; off by default: measured no better).

use std::borrow::Cow;

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
    /// Fraction of lines replaced by synthetic noise: a digit string with separators, a run of
    /// marks, or one to eight words drawn uniformly from the vocabulary (see [`Noise`]). Spans
    /// are cut from the other lines. Checkpoints from before it existed had none.
    #[serde(default)]
    pub noise: f32,
}

impl Augment {
    /// No augmentation: the lines as they are.
    pub const NONE: Augment = Augment { spans: 0.0, noise: 0.0 };

    /// Checks the fractions.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [("span", self.spans), ("noise", self.noise)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(CompressError::InvalidArgument(format!("the {what} fraction must be between 0 and 1 (got {v})")));
            }
        }
        Ok(())
    }
}

impl Default for Augment {
    /// The training default: a quarter of the lines cut to spans (see benches/quality/RESULTS.md,
    /// "Loyalty on what users type"), no noise (as good as 0.15 within the spread between seeds,
    /// "Synthetic noise and the spread between seeds").
    fn default() -> Self {
        Augment { spans: 0.25, noise: 0.0 }
    }
}

/// A plain-text corpus read line by line, tokenized on the fly, cycled at the end. Empty lines
/// are skipped.
pub struct Corpus {
    path: PathBuf,
    reader: BufReader<File>,
    tokenizer: TextTokenizer,
    augmenter: Augmenter,
    /// Lines read since the start (over all passes): the position saved in checkpoints.
    pub lines_read: u64,
}

impl Corpus {
    /// Opens `path` without augmentation (calibration and importance read it this way).
    pub fn open(path: &Path, tokenizer_json: &str, max_len: usize) -> Result<Corpus> {
        let file = File::open(path).map_err(|source| CompressError::Io { what: "cannot open the corpus", path: path.into(), source })?;
        Ok(Corpus {
            path: path.into(),
            reader: BufReader::new(file),
            tokenizer: TextTokenizer::new(tokenizer_json, max_len)?,
            augmenter: Augmenter::none(),
            lines_read: 0,
        })
    }

    /// Augments the lines read from now on, with choices drawn from `seed` and each line's
    /// position.
    pub fn set_augment(&mut self, augment: Augment, seed: u64) -> Result<()> {
        // The vocabulary (30k tokens, sorted) is read only when noise draws from it.
        let vocab = if augment.noise > 0.0 { self.tokenizer.vocab() } else { Vec::new() };
        self.augmenter = Augmenter::new(augment, &vocab, seed)?;
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
        Ok(self.augmenter.line(&line, self.lines_read).into_owned())
    }

    /// The next non-empty line, trimmed, as the file has it.
    fn next_raw_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let mut restarted = false;
        loop {
            line.clear();
            let n = self.reader.read_line(&mut line).map_err(|source| CompressError::Io { what: "reading the corpus", path: self.path.clone(), source })?;
            if n == 0 {
                if restarted {
                    return Err(CompressError::InvalidArgument(format!("the corpus {} has no text", self.path.display())));
                }
                let file = File::open(&self.path).map_err(|source| CompressError::Io { what: "reopening the corpus", path: self.path.clone(), source })?;
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

/// Turns corpus lines into what training sees, from a seed and each line's position.
pub struct Augmenter {
    augment: Augment,
    noise: Option<Noise>,
    seed: u64,
}

impl Augmenter {
    /// Lines as they are.
    pub fn none() -> Augmenter {
        Augmenter { augment: Augment::NONE, noise: None, seed: 0 }
    }

    /// `vocab`: the tokenizer's tokens (noise is drawn from them when `augment.noise` > 0).
    pub fn new(augment: Augment, vocab: &[String], seed: u64) -> Result<Augmenter> {
        augment.validate()?;
        let noise = if augment.noise > 0.0 { Some(Noise::from_vocab(vocab)?) } else { None };
        Ok(Augmenter { augment, noise, seed })
    }

    /// `line` as training sees it: itself, synthetic noise, or a span of it (a substring, so
    /// spacing is kept). `position` is the line's 1-based position in the stream.
    pub fn line<'a>(&self, line: &'a str, position: u64) -> Cow<'a, str> {
        let mix = position.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if let Some(noise) = &self.noise {
            // Its own stream, so that the spans of runs without noise stay as they were.
            let mut rng = SplitMix(self.seed ^ mix ^ 0x6E6F_6973_6500_0000);
            if unit_interval(rng.next()) < self.augment.noise as f64 {
                return Cow::Owned(noise.text(&mut rng));
            }
        }
        Cow::Borrowed(span(line, self.augment.spans, self.seed ^ mix))
    }
}

/// Synthetic inputs of the kinds corpus sentences lack, built from a WordPiece vocabulary: a
/// third each of digit strings ("1418740788788", "723.232.1132", "+44 20"), runs of one to six
/// marks ("?!", "€ %"), and one to eight whole words drawn uniformly from the vocabulary, a
/// quarter of them with a continuation piece attached (so rare words, names, symbols and the
/// vocabulary's other scripts all occur).
pub struct Noise {
    words: Vec<String>,
    pieces: Vec<String>,
    marks: Vec<char>,
}

impl Noise {
    /// Whole words: tokens that are neither continuations (`##…`) nor bracketed specials
    /// (`[CLS]`, `[unused0]`); marks: single-character tokens that are neither letters, digits
    /// nor spaces.
    pub fn from_vocab(vocab: &[String]) -> Result<Noise> {
        let special = |t: &str| t.starts_with('[') && t.ends_with(']') && t.len() > 2;
        let words: Vec<String> = vocab.iter().filter(|t| !t.starts_with("##") && !special(t) && !t.trim().is_empty()).cloned().collect();
        let pieces: Vec<String> = vocab.iter().filter_map(|t| t.strip_prefix("##")).filter(|p| !p.is_empty()).map(String::from).collect();
        let marks: Vec<char> = words
            .iter()
            .filter_map(|w| {
                let mut c = w.chars();
                match (c.next(), c.next()) {
                    (Some(ch), None) if !ch.is_alphanumeric() && !ch.is_whitespace() => Some(ch),
                    _ => None,
                }
            })
            .collect();
        if words.is_empty() || marks.is_empty() {
            return Err(CompressError::InvalidArgument(
                "noise augmentation needs a WordPiece vocabulary with whole words and marks; this tokenizer has none: use --noise 0".into(),
            ));
        }
        Ok(Noise { words, pieces, marks })
    }

    fn text(&self, rng: &mut SplitMix) -> String {
        let pick = |rng: &mut SplitMix, n: usize| (rng.next() % n as u64) as usize;
        let mut out = String::new();
        match rng.next() % 3 {
            0 => {
                const SEPARATORS: [&str; 7] = ["", ".", "-", ":", "/", ",", " "];
                if rng.next().is_multiple_of(4) {
                    out.push(self.marks[pick(rng, self.marks.len())]);
                }
                let sep = SEPARATORS[pick(rng, SEPARATORS.len())];
                for g in 0..1 + pick(rng, 3) {
                    if g > 0 {
                        out.push_str(sep);
                    }
                    for _ in 0..log_uniform(rng, 16) {
                        out.push(char::from(b'0' + pick(rng, 10) as u8));
                    }
                }
            }
            1 => {
                let spaced = rng.next().is_multiple_of(2);
                for i in 0..log_uniform(rng, 6) {
                    if spaced && i > 0 {
                        out.push(' ');
                    }
                    out.push(self.marks[pick(rng, self.marks.len())]);
                }
            }
            _ => {
                for i in 0..log_uniform(rng, 8) {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(&self.words[pick(rng, self.words.len())]);
                    if !self.pieces.is_empty() && rng.next().is_multiple_of(4) {
                        out.push_str(&self.pieces[pick(rng, self.pieces.len())]);
                    }
                }
            }
        }
        out
    }
}

/// Log-uniform in 1..=n: floor((n + 1)^u) for u uniform in [0, 1).
fn log_uniform(rng: &mut SplitMix, n: usize) -> usize {
    (((n + 1) as f64).powf(unit_interval(rng.next())).floor() as usize).clamp(1, n)
}

/// With probability `fraction` (drawn from `stream`), a span of `line`'s units of log-uniform
/// length; else `line`.
fn span(line: &str, fraction: f32, stream: u64) -> &str {
    if fraction <= 0.0 {
        return line;
    }
    let mut rng = SplitMix(stream);
    if unit_interval(rng.next()) >= fraction as f64 {
        return line;
    }
    let units = units(line);
    if units.len() < 2 {
        return line;
    }
    let n = units.len();
    let len = log_uniform(&mut rng, n);
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

    fn augmented(line: &str, augment: Augment, seed: u64, position: u64) -> String {
        Augmenter::new(augment, &[], seed).unwrap().line(line, position).into_owned()
    }

    fn spans(spans: f32) -> Augment {
        Augment { spans, noise: 0.0 }
    }

    #[test]
    fn spans_are_substrings_of_every_length_at_the_asked_fraction() {
        let line = "The quick brown fox jumps over the lazy dog near the river bank today.";
        let n = units(line).len();
        let every = spans(1.0);
        let mut lengths = vec![0usize; n + 1];
        for pos in 1..=4000 {
            let s = augmented(line, every, 7, pos);
            assert!(line.contains(&s) && !s.is_empty() && s.trim() == s, "{s:?}");
            lengths[units(&s).len()] += 1;
            // Deterministic in (seed, position).
            assert_eq!(s, augmented(line, every, 7, pos));
        }
        // Log-uniform: every length occurs; one unit as often as floor((n + 1)^u) = 1 predicts.
        assert!(lengths[1..].iter().all(|&c| c > 0), "{lengths:?}");
        let p1 = 2f64.ln() / ((n + 1) as f64).ln();
        assert!((lengths[1] as f64 / 4000.0 - p1).abs() < 0.03, "{} vs {p1}", lengths[1]);
        let quarter = spans(0.25);
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
        let tokenizer = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/tiny_cls/tokenizer.json")).unwrap();
        let open = || {
            let mut c = Corpus::open(&path, &tokenizer, 32).unwrap();
            c.set_augment(Augment { spans: 0.5, noise: 0.2 }, 11).unwrap();
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
        let changed = all.iter().zip(&plain).filter(|(a, b)| a != b).count();
        let noise = all.iter().zip(&plain).filter(|(a, b)| !b.contains(a.as_str())).count();
        assert!((15..50).contains(&changed) && (3..25).contains(&noise), "{changed} changed, {noise} noise of 57");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn fractions_outside_zero_to_one_are_refused() {
        assert!(spans(1.5).validate().is_err());
        assert!(spans(-0.1).validate().is_err());
        assert!(spans(f32::NAN).validate().is_err());
        assert!(Augment { spans: 0.2, noise: 1.01 }.validate().is_err());
        assert!(Augment { spans: 0.2, noise: f32::NAN }.validate().is_err());
        assert!(Augment::default().validate().is_ok());
    }

    /// Specials, 40 letter words, two other scripts, three marks and two continuations.
    fn vocab() -> Vec<String> {
        let letters = (b'a'..b'e').flat_map(|a| (b'a'..b'k').map(move |b| String::from_utf8(vec![a, b]).unwrap()));
        let rest = ["москва", "東", "?", "€", "!", "##s", "##ing"].map(String::from);
        ["[PAD]", "[unused0]", "[CLS]"].map(String::from).into_iter().chain(letters).chain(rest).collect()
    }

    /// Noise lines come in the three kinds, from the vocabulary only, at the asked fraction, and
    /// draw from their own stream: the other lines are what the same seed gives without noise.
    #[test]
    fn noise_is_digits_marks_or_vocabulary_words() {
        let line = "The quick brown fox jumps over the lazy dog near the river bank today.";
        let with = Augmenter::new(Augment { spans: 0.5, noise: 0.3 }, &vocab(), 7).unwrap();
        let without = Augmenter::new(spans(0.5), &vocab(), 7).unwrap();
        let (mut digits, mut marks, mut words) = (0, 0, 0);
        for pos in 1..=3000 {
            let got = with.line(line, pos);
            assert_eq!(got, with.line(line, pos));
            if got == without.line(line, pos) {
                continue;
            }
            let t = got.as_ref();
            assert!(!t.is_empty() && t.trim() == t, "{t:?}");
            if t.chars().any(|c| c.is_ascii_digit()) {
                assert!(t.chars().all(|c| c.is_ascii_digit() || ".-:/, ?€!".contains(c)), "{t:?}");
                digits += 1;
            } else if t.chars().all(|c| "?€! ".contains(c)) {
                assert!(t.chars().filter(|&c| c != ' ').count() <= 6, "{t:?}");
                marks += 1;
            } else {
                let whole = &vocab()[3..48];
                for w in t.split(' ') {
                    let ok = whole.iter().any(|v| w == v || [v, "s"].concat() == w || [v, "ing"].concat() == w);
                    assert!(ok, "{w:?} in {t:?}");
                }
                assert!(t.split(' ').count() <= 8 && !t.contains("[") && !t.contains("##"), "{t:?}");
                words += 1;
            }
        }
        let noise = digits + marks + words;
        assert!((noise as f64 / 3000.0 - 0.3).abs() < 0.03, "{noise}");
        for kind in [digits, marks, words] {
            assert!((kind as f64 / noise as f64 - 1.0 / 3.0).abs() < 0.06, "{digits} {marks} {words}");
        }
    }

    #[test]
    fn noise_needs_words_and_marks_in_the_vocabulary() {
        let letters: Vec<String> = ["[CLS]", "a", "b", "##c"].map(String::from).to_vec();
        assert!(Augmenter::new(Augment { spans: 0.0, noise: 0.1 }, &letters, 1).is_err());
        assert!(Augmenter::new(Augment { spans: 0.3, noise: 0.0 }, &letters, 1).is_ok());
        let marks = Noise::from_vocab(&vocab()).unwrap().marks;
        assert_eq!(marks, ['?', '€', '!']);
    }
}
