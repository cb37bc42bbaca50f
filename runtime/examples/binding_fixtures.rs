//! Writes the fixtures of the binding tests (bindings/c/tests/run.sh, bindings/uniffi/test.sh):
//! a 4-bit package of a Hugging Face model (what `bertling pack --bits 4 --group 32` writes,
//! without a classification head)
//! and the Rust runtime's own answers for it, which the C, Kotlin and Swift tests must
//! reproduce through the bindings; with a classifier directory, its package and answers too.
//!
//!   cargo run -p bertling-runtime --example binding_fixtures -- MODEL_DIR TEXTS OUT [CLASSIFIER [TAGGER]]
//!
//! TEXTS: one text per line. OUT gets `model.bertling` and, one line per text with
//! space-separated numbers (plain text: neither C nor the JVM has a JSON parser at hand),
//! `embeddings.txt` (f32 in shortest round-trip form), `ids.txt`, `type_ids.txt`; `info.txt`
//! has `key value` lines. With CLASSIFIER: `classifier.bertling` (float), `classify.txt`
//! (label id, then the probabilities) and `labels.txt` (one name per line). With TAGGER (a
//! token-classification directory): `tagger.bertling` (float), `tag.txt` (per text the number
//! of words, then per word its byte start, end, label id and probability) and `tag_labels.txt`.
//! Built from the runtime alone, so the tests need neither the CLI nor the compressor (burn).

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;

use bertling_runtime::{load_model_data, write_package_file, LoadOptions, Model, Precision};

fn lines<T: Display>(rows: impl Iterator<Item = Vec<T>>) -> String {
    rows.map(|r| r.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ") + "\n").collect()
}

fn run(args: &[String]) -> Result<(), String> {
    let (model_dir, texts, out, classifier, tagger) = match args {
        [m, t, o] => (m, t, o, None, None),
        [m, t, o, c] => (m, t, o, Some(c), None),
        [m, t, o, c, g] => (m, t, o, Some(c), Some(g)),
        _ => return Err("usage: binding_fixtures MODEL_DIR TEXTS OUT [CLASSIFIER_DIR [TAGGER_DIR]]".into()),
    };
    let texts = std::fs::read_to_string(texts).map_err(|e| format!("reading {texts}: {e}"))?;
    let texts: Vec<&str> = texts.lines().collect();
    let out = Path::new(out);
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let write = |name: &str, text: String| std::fs::write(out.join(name), text).map_err(|e| format!("writing {name}: {e}"));
    let err = |e: bertling_runtime::Error| e.to_string();
    let mut data = load_model_data(Path::new(model_dir)).map_err(err)?;
    // An embedding model: a classifier's head is dropped (the classifier package keeps it).
    data.spec.head = None;
    data.tensors.retain(|name, _| !name.starts_with("head."));
    let packed = data.convert(Precision::Quantized { bits: 4, group: Some(32), embedding_bits: 8 }).map_err(err)?;
    let package = out.join("model.bertling");
    write_package_file(&packed, &package).map_err(err)?;
    // The reference comes from the package as written, loaded the way an app loads it.
    let model = Model::load(&package, &LoadOptions::default()).map_err(err)?;
    let embeddings = model.embed(&texts).map_err(err)?;
    let tokens = model.tokenize(&texts).map_err(err)?;
    write("embeddings.txt", lines(embeddings.into_iter()))?;
    write("ids.txt", lines(tokens.iter().map(|t| t.ids.clone())))?;
    write("type_ids.txt", lines(tokens.iter().map(|t| t.type_ids.clone())))?;
    let info = model.info();
    write(
        "info.txt",
        format!("parameters {}\noutput_width {}\nmax_seq_len {}\nblocks {}\n", info.parameters, info.output_width, info.max_seq_len, info.blocks.len()),
    )?;
    if let Some(dir) = classifier {
        let data = load_model_data(Path::new(dir)).map_err(err)?;
        let package = out.join("classifier.bertling");
        write_package_file(&data, &package).map_err(err)?;
        let model = Model::load(&package, &LoadOptions::default()).map_err(err)?;
        let results = model.classify(&texts).map_err(err)?;
        let rows = results.iter().map(|c| std::iter::once(c.label_id as f32).chain(c.probs.iter().copied()).collect::<Vec<_>>());
        write("classify.txt", lines(rows))?;
        let labels = model.info().labels.clone().unwrap_or_default();
        write("labels.txt", labels.iter().map(|l| format!("{l}\n")).collect())?;
    }
    if let Some(dir) = tagger {
        let data = load_model_data(Path::new(dir)).map_err(err)?;
        let package = out.join("tagger.bertling");
        write_package_file(&data, &package).map_err(err)?;
        let model = Model::load(&package, &LoadOptions::default()).map_err(err)?;
        let tags = model.tag_texts(&texts).map_err(err)?;
        let rows = tags.iter().map(|words| {
            let mut row = vec![words.len().to_string()];
            for w in words {
                row.extend([w.start.to_string(), w.end.to_string(), w.label_id.to_string(), w.prob.to_string()]);
            }
            row
        });
        write("tag.txt", lines(rows))?;
        let labels = model.info().labels.clone().unwrap_or_default();
        write("tag_labels.txt", labels.iter().map(|l| format!("{l}\n")).collect())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
