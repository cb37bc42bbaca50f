//! Sequence tagging data: CoNLL-U treebanks (UPOS, XPOS) and two-column CoNLL files (BIO/BIOES
//! entities) read into sentences of words and tag indices, for fine-tuning a token head
//! ([`crate::finetune::finetune_tagger`]).

pub mod conll;
pub mod conllu;

use std::path::Path;

pub use conllu::{read_conllu, ConlluSentence};

use crate::error::{CompressError, Result};
use crate::task::{Column, DataFormat, Labels, TaskSpec};

/// The 17 universal part-of-speech tags, in the order of the UD guidelines' table.
pub const UPOS_TAGS: [&str; 17] =
    ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"];

/// One sentence: its words and each word's tag (an index into the task's labels).
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedSentence {
    pub words: Vec<String>,
    pub tags: Vec<usize>,
}

fn column(spec: &TaskSpec) -> Result<(usize, usize)> {
    match (&spec.text, &spec.label) {
        (Column::Index(w), Column::Index(t)) => Ok((*w, *t)),
        _ => Err(CompressError::InvalidArgument("a tagging task names its CoNLL-U columns by index".into())),
    }
}

/// One sentence as written: its words, their tags and each word's line in the file (0 for
/// two-column files, whose tags are the data's own, so no tag is ever unknown).
pub struct WrittenSentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
    lines: Vec<usize>,
}

/// Every sentence of `path` (CoNLL-U or two-column, as the task says) with its tags as written.
pub fn read_words(spec: &TaskSpec, path: &Path) -> Result<Vec<WrittenSentence>> {
    if spec.format == DataFormat::Conll {
        let sentences = conll::read_conll(path)?;
        return Ok(sentences.into_iter().map(|(words, tags)| WrittenSentence { lines: vec![0; words.len()], words, tags }).collect());
    }
    let (words_col, tag_col) = column(spec)?;
    let own = |v: Vec<&str>| v.into_iter().map(str::to_string).collect();
    Ok(read_conllu(path)?
        .into_iter()
        .map(|s| WrittenSentence { words: own(s.tags(words_col)), tags: own(s.tags(tag_col)), lines: s.words.iter().map(|&k| s.first_line + k).collect() })
        .collect())
}

/// The distinct tags of `files` (in the task's tag column), sorted: the labels of a task whose
/// tag set is the data's own (XPOS, CoNLL entities). Every file is read so that a tag only the
/// dev set has is a label too (it is scored, never an error).
pub fn tag_values(spec: &TaskSpec, files: &[&Path]) -> Result<Vec<String>> {
    let mut values = std::collections::BTreeSet::new();
    for path in files {
        for s in read_words(spec, path)? {
            values.extend(s.tags);
        }
    }
    Ok(values.into_iter().collect())
}

/// Sets a tagging task's [`Labels::FromData`] from `files` ([`tag_values`]).
pub fn resolve_tag_labels(spec: &mut TaskSpec, files: &[&Path]) -> Result<()> {
    if spec.labels == Labels::FromData {
        let values = tag_values(spec, files)?;
        if values.len() < 2 {
            return Err(CompressError::InvalidArgument(format!("the tag column holds {} distinct value(s); a tagger needs at least 2", values.len())));
        }
        spec.labels = Labels::Classes(values);
    }
    Ok(())
}

/// The sentences of a CoNLL-U (or two-column CoNLL) file with their tags as label indices. A
/// tag that is not among the task's labels (or `_`) is an error naming its line (CoNLL-U).
pub fn read_tagged(spec: &TaskSpec, path: &Path) -> Result<Vec<TaggedSentence>> {
    let labels = spec.class_names();
    if labels.is_empty() {
        return Err(CompressError::InvalidArgument("the task's tags are not known yet: resolve them from the data first".into()));
    }
    let mut out = Vec::new();
    for WrittenSentence { words, tags, lines } in read_words(spec, path)? {
        let tags = tags
            .iter()
            .zip(&lines)
            .map(|(tag, &line)| {
                labels.iter().position(|l| l == tag).ok_or_else(|| CompressError::TaskData {
                    path: path.to_path_buf(),
                    line,
                    what: format!("the tag {tag:?} is not one of the task's {} labels", labels.len()),
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        out.push(TaggedSentence { words, tags });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_label_indices_and_unknown_ones_name_their_line() {
        let dir = std::env::temp_dir().join(format!("bertling-tagging-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.conllu");
        let line = |i: usize, w: &str, u: &str, x: &str| format!("{i}\t{w}\t_\t{u}\t{x}\t_\t0\t_\t_\t_\n");
        let text = format!("# c\n{}{}\n{}", line(1, "Hi", "INTJ", "UH"), line(2, "!", "PUNCT", "."), line(1, "Go", "VERB", "VB"));
        std::fs::write(&path, &text).unwrap();
        let upos = TaskSpec::tagging("upos").unwrap();
        let s = read_tagged(&upos, &path).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].words, ["Hi", "!"]);
        let idx = |t: &str| UPOS_TAGS.iter().position(|u| *u == t).unwrap();
        assert_eq!(s[0].tags, [idx("INTJ"), idx("PUNCT")]);
        let mut xpos = TaskSpec::tagging("xpos").unwrap();
        resolve_tag_labels(&mut xpos, &[&path]).unwrap();
        assert_eq!(xpos.class_names(), [".", "UH", "VB"]);
        assert_eq!(read_tagged(&xpos, &path).unwrap()[1].tags, [2]);
        std::fs::write(&path, format!("{}{}", line(1, "Hi", "INTJ", "UH"), line(2, "x", "NOPE", "UH"))).unwrap();
        let err = read_tagged(&upos, &path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("NOPE"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
