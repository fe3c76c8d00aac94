//! The error the command line reports, with the exit code it maps to:
//! 1 for input or data errors (output so far is valid), 2 for usage or
//! configuration errors (nothing written). A closed stdout pipe is not an
//! error at all.

use std::fmt;

/// An error on its way to `main`.
#[derive(Debug)]
pub struct CliError {
    /// Exit code: 1 data, 2 usage. 0 means "stop quietly" (broken pipe).
    pub code: u8,
    /// Message for stderr (already carries its context).
    pub msg: String,
}

impl CliError {
    /// A usage or configuration error (exit 2).
    pub fn usage(msg: impl Into<String>) -> Self {
        CliError {
            code: 2,
            msg: msg.into(),
        }
    }

    /// An input or data error (exit 1).
    pub fn data(msg: impl Into<String>) -> Self {
        CliError {
            code: 1,
            msg: msg.into(),
        }
    }

    /// True for a closed output pipe, which ends the run quietly.
    pub fn is_broken_pipe(&self) -> bool {
        self.code == 0
    }

    /// Build from an I/O error with context.
    pub fn io(context: impl fmt::Display, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError {
                code: 0,
                msg: String::new(),
            };
        }
        CliError::data(format!("{context}: {e}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::io("output", e)
    }
}

impl From<crate::method::UsageError> for CliError {
    fn from(e: crate::method::UsageError) -> Self {
        CliError::usage(e.0)
    }
}
