//! The client's errors and the exit codes they map to: 1 for errors the
//! server reported, 2 for usage and configuration problems, 3 when the
//! server could not be reached.

use std::fmt;
use std::process::ExitCode;

#[derive(Debug)]
pub enum CliError {
    /// A usage or local configuration problem (exit 2).
    Usage(String),
    /// The server answered with an error (exit 1).
    Api {
        status: u16,
        message: String,
        field: Option<String>,
    },
    /// The server could not be reached (exit 3).
    Connect { url: String, detail: String },
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// An answer the client cannot make sense of; counted as a server error.
    pub fn unexpected(message: impl Into<String>) -> Self {
        CliError::Api {
            status: 0,
            message: message.into(),
            field: None,
        }
    }

    /// Something the server did that failed: a deploy that failed or was
    /// rejected, an unhealthy cluster (exit 1, like a server error).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::unexpected(message)
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Api { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Connect { .. } => 3,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::Api {
                message,
                field: Some(field),
                ..
            } => write!(f, "{message} (field: {field})"),
            CliError::Api {
                message, field: None, ..
            } => f.write_str(message),
            CliError::Connect { url, detail } => write!(f, "cannot connect to {url}: {detail}"),
        }
    }
}

impl std::error::Error for CliError {}
