//! The compressor's one error type.

/// Everything that can go wrong while building, training or exporting a student.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error(transparent)]
    Runtime(#[from] bertling_runtime::Error),

    #[error("tensor `{name}`: {what}")]
    Tensor { name: String, what: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A file the job reads or writes failed (`what` says which and why it was needed).
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: std::path::PathBuf, source: std::io::Error },

    /// A line of a task's data file is not what the task's layout says (`line` 0: the whole file).
    #[error("{}{}: {what}", path.display(), if *line > 0 { format!(", line {line}") } else { String::new() })]
    TaskData { path: std::path::PathBuf, line: usize, what: String },

    /// A checkpoint directory could not be written or read back (`what` says why and what to do).
    #[error("checkpoint {}: {what}", dir.display())]
    Checkpoint { dir: std::path::PathBuf, what: String },

    /// The teacher's target cache could not be used (`what` says why and what to do).
    #[error("target cache {}: {what}", dir.display())]
    TargetCache { dir: std::path::PathBuf, what: String },

    /// A run stopped where it was asked to (`--stop-after`); its checkpoint is saved.
    #[error("stopped after step {step} of {steps} as asked; the checkpoint is saved: run the same command with --resume to continue")]
    Stopped { step: usize, steps: usize },
}

/// The compressor's result type.
pub type Result<T, E = CompressError> = std::result::Result<T, E>;
