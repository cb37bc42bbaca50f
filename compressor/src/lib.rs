//! # bertling-compressor
//!
//! Turns a BERT teacher into small, low-bit students on `burn`: the teacher and every student
//! are one module type ([`student::Encoder`]) for any heterogeneous architecture of the package
//! format; [`lsq`] is learned-step-size fake quantization (KDLSQ); [`convert`] moves models
//! between the runtime's model data (Hugging Face import, package export) and burn.

pub mod blockwise;
pub mod convert;
pub mod corpus;
pub mod cvt;
pub mod distill;
pub mod error;
pub mod etd;
pub mod finetune;
pub mod fused;
pub mod eval;
pub mod lsq;
pub mod pipeline;
pub mod prune;
pub mod recipe;
pub mod robust;
pub mod search;
pub mod student;
pub mod targets;
pub mod tagging;
pub mod task;

pub use error::{CompressError, Result};
