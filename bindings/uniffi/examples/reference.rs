//! Writes the fixtures of the binding tests (bindings/uniffi/test.sh): a 4-bit package of a
//! Hugging Face model (what `bertling pack --bits 4 --group 32` writes) and the Rust runtime's
//! own answers for it, which the Kotlin and Swift tests must reproduce through the bindings.
//!
//!   cargo run -p bertling-uniffi --example reference -- MODEL_DIR TEXTS_FILE OUT_DIR
//!
//! TEXTS_FILE: one text per line. OUT_DIR gets `model.bertling` and, one line per text with
//! space-separated numbers (plain text: the JVM has no JSON parser), `embeddings.txt` (f32 in
//! shortest round-trip form), `ids.txt`, `type_ids.txt`; `info.txt` has `key value` lines.
//! Built from the runtime alone, so the tests need neither the CLI nor the compressor (burn).

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;

use bertling_runtime::{load_model_data, write_package_file, LoadOptions, Model, Precision};

fn lines<T: Display>(rows: impl Iterator<Item = Vec<T>>) -> String {
    rows.map(|r| r.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ") + "\n").collect()
}

fn run(args: &[String]) -> Result<(), String> {
    let [model_dir, texts, out] = args else {
        return Err("usage: reference MODEL_DIR TEXTS_FILE OUT_DIR".into());
    };
    let texts = std::fs::read_to_string(texts).map_err(|e| format!("reading {texts}: {e}"))?;
    let texts: Vec<&str> = texts.lines().collect();
    let out = Path::new(out);
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    let data = load_model_data(Path::new(model_dir)).map_err(|e| e.to_string())?;
    let packed = data
        .convert(Precision::Quantized { bits: 4, group: Some(32), embedding_bits: 8 })
        .map_err(|e| e.to_string())?;
    let package = out.join("model.bertling");
    write_package_file(&packed, &package).map_err(|e| e.to_string())?;
    // The reference comes from the package as written, loaded the way an app loads it.
    let model = Model::load(&package, &LoadOptions::default()).map_err(|e| e.to_string())?;
    let embeddings = model.embed(&texts).map_err(|e| e.to_string())?;
    let tokens = model.tokenize(&texts).map_err(|e| e.to_string())?;
    write("embeddings.txt", lines(embeddings.into_iter()))?;
    write("ids.txt", lines(tokens.iter().map(|t| t.ids.clone())))?;
    write("type_ids.txt", lines(tokens.iter().map(|t| t.type_ids.clone())))?;
    let info = model.info();
    write(
        "info.txt",
        format!(
            "parameters {}\noutput_width {}\nmax_seq_len {}\nblocks {}\n",
            info.parameters,
            info.output_width,
            info.max_seq_len,
            info.blocks.len()
        ),
    )
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
