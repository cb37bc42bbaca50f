//! The command-line tool's one error type.

/// Errors of the command-line tool.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Runtime(#[from] bertling_runtime::Error),
    #[error(transparent)]
    Compress(#[from] bertling_compressor::CompressError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub(crate) type Result<T> = std::result::Result<T, CliError>;

/// Maps an I/O error to [`CliError::Io`] with what was being done.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let what = what.into();
    move |source| CliError::Io { what, source }
}
