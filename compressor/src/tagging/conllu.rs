//! CoNLL-U (universaldependencies.org/format.html): sentences of tab-separated word lines,
//! comments, multiword-token ranges (`3-4`) and empty nodes (`5.1`). Tagging reads the syntactic
//! words (integer ids); every other line is kept verbatim so that a file can be written back
//! with only a column replaced.

use std::path::Path;

use crate::error::{CompressError, Result};

/// Columns of a word line (0-based).
pub const FORM: usize = 1;
pub const UPOS: usize = 3;
pub const XPOS: usize = 4;

/// One sentence: its lines as read, and which of them are words.
#[derive(Clone, Debug, PartialEq)]
pub struct ConlluSentence {
    /// Every line (comments, ranges, empty nodes, words), without the line end.
    pub lines: Vec<String>,
    /// Indices into `lines` of the syntactic words, in order.
    pub words: Vec<usize>,
    /// The file's line number (1-based) of the sentence's first line.
    pub first_line: usize,
}

impl ConlluSentence {
    /// Column `col` of word `i`.
    pub fn column(&self, i: usize, col: usize) -> &str {
        self.lines[self.words[i]].split('\t').nth(col).unwrap_or("_")
    }

    /// The word forms.
    pub fn forms(&self) -> Vec<&str> {
        (0..self.words.len()).map(|i| self.column(i, FORM)).collect()
    }

    /// Column `col` of every word (`UPOS`, `XPOS`).
    pub fn tags(&self, col: usize) -> Vec<&str> {
        (0..self.words.len()).map(|i| self.column(i, col)).collect()
    }

    /// Replaces column `col` of word `i`.
    pub fn set_column(&mut self, i: usize, col: usize, value: &str) {
        let line = &mut self.lines[self.words[i]];
        let mut fields: Vec<&str> = line.split('\t').collect();
        fields[col] = value;
        *line = fields.join("\t");
    }

    /// The sentence as CoNLL-U text, ending with its blank line.
    pub fn to_text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push_str("\n\n");
        s
    }
}

/// Reads a CoNLL-U file. A word line must have 10 columns and a form; errors name the line.
pub fn read_conllu(path: &Path) -> Result<Vec<ConlluSentence>> {
    let text = std::fs::read_to_string(path).map_err(|source| CompressError::Io { what: "cannot read the CoNLL-U file", path: path.to_path_buf(), source })?;
    parse_conllu(&text).map_err(|(line, what)| CompressError::TaskData { path: path.to_path_buf(), line, what })
}

/// Parses CoNLL-U text; an error is (line number, what is wrong).
pub fn parse_conllu(text: &str) -> std::result::Result<Vec<ConlluSentence>, (usize, String)> {
    let mut out = Vec::new();
    let mut cur = ConlluSentence { lines: Vec::new(), words: Vec::new(), first_line: 1 };
    let finish = |cur: &mut ConlluSentence, out: &mut Vec<ConlluSentence>, next: usize| {
        let done = std::mem::replace(cur, ConlluSentence { lines: Vec::new(), words: Vec::new(), first_line: next });
        if !done.lines.is_empty() {
            if done.words.is_empty() {
                return Err((done.first_line, "a sentence without words (only comments or ranges)".to_string()));
            }
            out.push(done);
        }
        Ok(())
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let number = n + 1;
        if line.trim().is_empty() {
            finish(&mut cur, &mut out, number + 1)?;
            continue;
        }
        if cur.lines.is_empty() {
            cur.first_line = number;
        }
        if !line.starts_with('#') {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != 10 {
                return Err((number, format!("a word line has 10 tab-separated columns, this one has {}", fields.len())));
            }
            let id = fields[0];
            if id.parse::<usize>().is_ok() {
                if fields[FORM].is_empty() {
                    return Err((number, "a word without a form".into()));
                }
                cur.words.push(cur.lines.len());
            } else if !(id.contains('-') || id.contains('.')) {
                return Err((number, format!("the id {id:?} is not a word number, a range or an empty node")));
            }
        }
        cur.lines.push(line.to_string());
    }
    let end = text.lines().count() + 1;
    finish(&mut cur, &mut out, end)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# sent_id = a\n# text = Don't go.\n1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\n\
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n\
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No\n3.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_\n\
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n";

    #[test]
    fn words_skip_ranges_and_empty_nodes_and_round_trip() {
        let s = parse_conllu(TEXT).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].forms(), ["Do", "n't", "go", "."]);
        assert_eq!(s[0].tags(UPOS), ["AUX", "PART", "VERB", "PUNCT"]);
        assert_eq!(s[0].tags(XPOS), ["VBP", "RB", "VB", "."]);
        assert_eq!((s[0].first_line, s[1].first_line), (1, 10));
        let text: String = s.iter().map(ConlluSentence::to_text).collect();
        assert_eq!(text, TEXT.to_string() + "\n");
        let mut t = s[1].clone();
        t.set_column(0, UPOS, "NOUN");
        assert_eq!(t.to_text(), "1\tHi\thi\tNOUN\tUH\t_\t0\troot\t_\t_\n\n");
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert_eq!(parse_conllu("1\tDo\tdo\n").unwrap_err().0, 1);
        let e = parse_conllu("1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\nx\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n").unwrap_err();
        assert_eq!(e.0, 3);
        assert_eq!(parse_conllu("# only a comment\n").unwrap_err().0, 1);
    }
}
