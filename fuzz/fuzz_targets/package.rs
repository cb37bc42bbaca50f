//! A package from arbitrary bytes: the checksum is resealed first so that the fuzzer reaches
//! the parser, validation, model construction (CPU) and an embedding behind it. Every input
//! must end in Ok or Err; a panic (outside the tokenizer guard, which turns tokenizer panics
//! into errors) aborts and is reported as a crash. `BERTLING_FUZZ_VERBOSE=1` prints each
//! input's outcome (to check a corpus).
#![no_main]

use bertling_runtime::package::reseal;
use bertling_runtime::{read_package, Backend, LoadOptions, Model, Result};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8]) -> Result<Vec<Vec<f32>>> {
    let mut bytes = data.to_vec();
    reseal(&mut bytes);
    let model = read_package(&bytes)?;
    let options = LoadOptions { backend: Backend::Cpu, threads: Some(1), ..Default::default() };
    Model::from_data(model, &options)?.embed(&["a short text to embed", "x"])
}

fuzz_target!(|data: &[u8]| {
    let outcome = run(data);
    if std::env::var_os("BERTLING_FUZZ_VERBOSE").is_some() {
        match outcome {
            Ok(e) => eprintln!("ok: {} embeddings of width {}", e.len(), e[0].len()),
            Err(e) => eprintln!("error: {e}"),
        }
    }
});
