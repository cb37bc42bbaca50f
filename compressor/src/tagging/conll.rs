//! Two-column CoNLL files (CoNLL-2003 style) and their entity-level score: one word per line,
//! the word in the first whitespace-separated column and its tag in the last, sentences
//! separated by blank lines, `-DOCSTART-` lines skipped. Tags in the BIO or BIOES scheme
//! (`B-PER`, `I-PER`, `E-PER`, `S-PER`, `O`) are scored by entity-level F1, as conlleval and
//! seqeval do: an entity counts only when its type and both ends are right.

use std::path::Path;

use crate::error::{CompressError, Result};

/// One sentence's words and tags, as written.
pub type Tagged = (Vec<String>, Vec<String>);

/// Reads a two-column file; a line with one column is an error naming it.
pub fn read_conll(path: &Path) -> Result<Vec<Tagged>> {
    let text = std::fs::read_to_string(path).map_err(|source| CompressError::Io { what: "cannot read the CoNLL file", path: path.to_path_buf(), source })?;
    let mut out = Vec::new();
    let mut cur: Tagged = (Vec::new(), Vec::new());
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("-DOCSTART-") {
            if !cur.0.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 2 {
            return Err(CompressError::TaskData {
                path: path.to_path_buf(),
                line: n + 1,
                what: "a word line has the word, then its tag in the last column".into(),
            });
        }
        cur.0.push(cols[0].to_string());
        cur.1.push(cols[cols.len() - 1].to_string());
    }
    if !cur.0.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// The entities of one sentence's tags: `(start, end, type)`, `end` exclusive. An `I-` or
/// `E-` that does not continue an entity of its type starts one (conlleval's reading).
pub fn entities(tags: &[&str]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let close = |open: &mut Option<(usize, String)>, end: usize, out: &mut Vec<_>| {
        if let Some((s, t)) = open.take() {
            out.push((s, end, t));
        }
    };
    for (i, tag) in tags.iter().enumerate() {
        let (prefix, kind) = match tag.split_once('-') {
            Some((p, k)) if ["B", "I", "E", "S"].contains(&p) => (p, k),
            _ => ("O", ""),
        };
        let continues = open.as_ref().is_some_and(|(_, t)| t == kind);
        match prefix {
            "B" | "S" => {
                close(&mut open, i, &mut out);
                open = Some((i, kind.to_string()));
            }
            "I" | "E" if continues => {}
            "I" | "E" => {
                close(&mut open, i, &mut out);
                open = Some((i, kind.to_string()));
            }
            _ => close(&mut open, i, &mut out),
        }
        if prefix == "S" || prefix == "E" {
            close(&mut open, i + 1, &mut out);
        }
    }
    close(&mut open, tags.len(), &mut out);
    out
}

/// Entity-level precision, recall and F1 of predicted against gold tags, sentence by sentence
/// (0 where there is nothing to divide).
pub fn entity_f1(gold: &[Vec<&str>], pred: &[Vec<&str>]) -> (f64, f64, f64) {
    let (mut right, mut n_gold, mut n_pred) = (0usize, 0usize, 0usize);
    for (g, p) in gold.iter().zip(pred) {
        let (ge, pe) = (entities(g), entities(p));
        n_gold += ge.len();
        n_pred += pe.len();
        right += pe.iter().filter(|e| ge.contains(e)).count();
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (p, r) = (ratio(right, n_pred), ratio(right, n_gold));
    let f1 = if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) };
    (p, r, f1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_follow_bio_and_bioes() {
        let e = |t: &str| entities(&t.split(' ').collect::<Vec<_>>());
        let ent = |s: usize, end: usize, t: &str| (s, end, t.to_string());
        assert_eq!(e("B-PER I-PER O B-LOC"), [ent(0, 2, "PER"), ent(3, 4, "LOC")]);
        assert_eq!(e("S-PER B-ORG I-ORG E-ORG O"), [ent(0, 1, "PER"), ent(1, 4, "ORG")]);
        // An I- of another type, or after O, starts an entity.
        assert_eq!(e("B-PER I-LOC O I-LOC"), [ent(0, 1, "PER"), ent(1, 2, "LOC"), ent(3, 4, "LOC")]);
        assert_eq!(e("O O"), []);
    }

    #[test]
    fn f1_counts_whole_entities() {
        // Gold: PER [0,2), LOC [3,4); predicted: PER [0,1) (wrong end), LOC [3,4): P = R = 1/2.
        let gold = vec![vec!["B-PER", "I-PER", "O", "B-LOC"]];
        let pred = vec![vec!["B-PER", "O", "O", "B-LOC"]];
        let (p, r, f) = entity_f1(&gold, &pred);
        assert_eq!((p, r, f), (0.5, 0.5, 0.5));
        // One more predicted entity that is wrong: P = 1/3, R = 1/2, F1 = 0.4.
        let pred = vec![vec!["B-PER", "O", "B-ORG", "B-LOC"]];
        let (p, r, f) = entity_f1(&gold, &pred);
        assert!((p - 1.0 / 3.0).abs() < 1e-12 && r == 0.5 && (f - 0.4).abs() < 1e-12);
        assert_eq!(entity_f1(&[vec!["O"]], &[vec!["O"]]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn files_split_at_blank_lines_and_docstart() {
        let dir = std::env::temp_dir().join(format!("bertling-conll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("train.conll");
        std::fs::write(&p, "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\nPeter B-PER\n").unwrap();
        let s = read_conll(&p).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], (vec!["EU".into(), "rejects".into()], vec!["B-ORG".into(), "O".into()]));
        std::fs::write(&p, "EU B-ORG\nlonely\n").unwrap();
        assert!(read_conll(&p).unwrap_err().to_string().contains("line 2"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
