//! `tag`: token classification of text lines (JSON lines out) or of a CoNLL-U file's words
//! (the file back with the predicted tags in one column).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bertling_compressor::tagging::{conllu, read_conllu};
use clap::{Args, ValueEnum};

use crate::error::{io, CliError, Result};
use crate::infer::{self, RunArgs};

#[derive(Args)]
pub(crate) struct TagArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Tag the words of this CoNLL-U file instead of text lines: the file is written to standard
    /// output with the predictions in --column, and the accuracy against the column it had goes
    /// to standard error.
    #[arg(long, conflicts_with = "input")]
    conllu: Option<PathBuf>,
    /// Which CoNLL-U column the predictions replace.
    #[arg(long, value_enum, default_value = "upos", requires = "conllu")]
    column: Column,
}

#[derive(Clone, Copy, ValueEnum)]
enum Column {
    Upos,
    Xpos,
}

pub(crate) fn tag_cmd(a: &TagArgs) -> Result<()> {
    match &a.conllu {
        None => infer::stream(&a.run, |model, lines, out| {
            // A struct, not `json!`, so that each word's fields keep their order.
            #[derive(serde::Serialize)]
            struct Line<'a> {
                words: &'a [bertling_runtime::WordTag],
            }
            for words in model.tag_texts(lines)? {
                serde_json::to_writer(&mut *out, &Line { words: &words })
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                writeln!(out).map_err(io("writing output"))?;
            }
            Ok(())
        }),
        Some(path) => tag_conllu(a, path),
    }
}

fn tag_conllu(a: &TagArgs, path: &PathBuf) -> Result<()> {
    let model = a.run.load()?;
    let col = match a.column {
        Column::Upos => conllu::UPOS,
        Column::Xpos => conllu::XPOS,
    };
    let sentences = read_conllu(path)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut scored, mut right) = (0usize, 0usize);
    for mut s in sentences {
        let forms = s.forms();
        let tags = model.tag_words(&forms).map_err(|e| {
            CliError::Usage(format!(
                "{}: the sentence at line {}: {e}",
                path.display(),
                s.first_line
            ))
        })?;
        for (i, t) in tags.iter().enumerate() {
            let gold = s.column(i, col);
            if gold != "_" {
                scored += 1;
                right += usize::from(gold == t.label);
            }
            s.set_column(i, col, &t.label);
        }
        out.write_all(s.to_text().as_bytes()).map_err(io("writing output"))?;
    }
    out.flush().map_err(io("writing output"))?;
    if scored > 0 {
        eprintln!(
            "accuracy {:.4} ({right} of {scored} words against the file's own {} column)",
            right as f64 / scored as f64,
            if col == conllu::UPOS { "UPOS" } else { "XPOS" }
        );
    }
    Ok(())
}
