//! The runtime's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
///
/// Messages say what was wrong and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is neither a bertling package file nor a Hugging Face model directory (config.json + model.safetensors + tokenizer.json)")]
    UnknownModelPath { path: PathBuf },

    #[error("Hugging Face model directory {dir}: {what}")]
    HfModel { dir: PathBuf, what: String },

    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("not a valid safetensors container ({what}): {detail}. The file may be truncated or not a model file")]
    Container { what: String, detail: String },

    #[error("format version {found} is not supported; this build reads format versions up to {supported}. Upgrade bertling or re-export the file")]
    UnsupportedVersion { found: String, supported: u32 },

    /// The package's bytes differ from what its writer wrote (its checksum does not match).
    #[error("the package is damaged ({0}): re-download or re-export it")]
    Damaged(String),

    #[error("invalid model package: {0}")]
    Package(String),

    #[error("tensor `{name}`: {what}")]
    Tensor { name: String, what: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("this model has no sequence-classification head; use `embed` instead (or `tag` for a token-classification model), or load a model fine-tuned for classification")]
    NoClassificationHead,

    #[error("this model has no token-classification head; use `classify` or `embed` instead, or load a tagger (`bertling finetune --task upos`)")]
    NoTokenHead,

    #[error("GPU: {0}")]
    Gpu(String),

    #[error("cannot start the runtime's worker threads: {0}")]
    Threads(String),

    #[error("the call was cancelled (Model::cancel) before it finished; its results were discarded")]
    Cancelled,
}

/// What kind of failure an [`Error`] is: a stable classification that the C, Kotlin and Swift
/// bindings map to their status codes and exception classes. New kinds may be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read (missing, permissions, I/O error).
    Io,
    /// The model is not a valid package or model directory: damaged, truncated, inconsistent.
    InvalidModel,
    /// The package was written by a newer (or unknown) format version.
    UnsupportedVersion,
    /// Classification was asked of a model without a classification head.
    NoClassificationHead,
    /// An argument was out of range (threads, token ids, input lengths, backend names...).
    InvalidArgument,
    /// The GPU backend failed or is not available.
    Gpu,
    /// The call was cancelled.
    Cancelled,
    /// A failure inside the runtime or its environment (threads could not start, a caught
    /// panic in a binding): a bug to report.
    Internal,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } => ErrorKind::Io,
            Error::UnknownModelPath { .. }
            | Error::HfModel { .. }
            | Error::Json { .. }
            | Error::Container { .. }
            | Error::Package(_)
            | Error::Tensor { .. }
            | Error::Tokenizer(_)
            | Error::Damaged(_) => ErrorKind::InvalidModel,
            Error::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NoClassificationHead | Error::NoTokenHead => ErrorKind::NoClassificationHead,
            Error::Gpu(_) => ErrorKind::Gpu,
            Error::Threads(_) => ErrorKind::Internal,
            Error::Cancelled => ErrorKind::Cancelled,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn tensor(name: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Tensor { name: name.into(), what: what.into() }
    }
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
