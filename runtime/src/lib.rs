//! # bertling-runtime
//!
//! Runs BERT-class encoders — Hugging Face BERT directories and bertling model packages
//! (FORMAT.md) with float or 2..8-bit weights — on the CPU or on any GPU through wgpu.
//!
//! ```no_run
//! use bertling_runtime::{LoadOptions, Model};
//! let model = Model::load("model.bertling", &LoadOptions::default())?;
//! let vectors = model.embed(&["A sentence.", "Another one."])?;
//! # Ok::<(), bertling_runtime::Error>(())
//! ```

//!
//! ## Features
//! - `gpu` (default): the wgpu backend ([`Backend::Wgpu`], [`Backend::Auto`] on a hardware GPU)
//!   and the GPU profiler.
//! - `hf` (default): loading Hugging Face BERT directories.
//!
//! `--no-default-features` builds a CPU-only runtime that loads packages: what an app ships.
//!
//! ## Stable surface
//! The items at the crate root — [`Model`], [`LoadOptions`], [`Backend`], [`Classification`],
//! [`ModelInfo`], [`Error`] and [`ErrorKind`], [`cosine`] — are what applications and the
//! bindings use. The modules `spec`, `data`, `package`, `quant` and `profile` serve the rest of
//! the toolchain (compressor, command line) and move with it; `cpu`, `gpu` and `rng` are
//! internals, public only for the workspace's benchmarks and tests.

#[macro_use]
mod simd;
#[doc(hidden)]
pub mod cpu;
pub mod data;
pub mod error;
#[cfg(feature = "gpu")]
#[doc(hidden)]
pub mod gpu;
#[cfg(feature = "hf")]
pub mod hf;
pub mod model;
mod options;
pub mod package;
pub mod profile;
pub mod quant;
#[doc(hidden)]
pub mod rng;
pub mod spec;
mod tag;

pub use cpu::Input;
pub use data::{ActQuant, ModelData, Precision, TensorData};
pub use error::{Error, ErrorKind, Result};
#[cfg(feature = "hf")]
pub use hf::{load_hf, load_hf_dir, HfFiles};
pub use model::{load_model_data, Backend, Classification, HiddenStates, LoadOptions, Model, ModelInfo, TargetRequest, TeacherTargets, TextTokenizer};
pub use options::GpuOptions;
pub use package::{read_package, read_package_file, write_package, write_package_file};
pub use quant::QuantMatrix;
pub use spec::{BlockSpec, HeadKind, ModelSpec};
pub use tag::WordTag;

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
