//! The errors that end a command, each mapped to an exit code of spec section 5.

use serde::Serialize;

use crate::experiment::Diagnostic;

/// Exit codes of spec section 5. Ordered so that the highest of several runs wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Exit {
    Passed = 0,
    Failed = 1,
    Invalid = 2,
    NotRun = 3,
    Error = 4,
    RevertIncomplete = 5,
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The files have problems; nothing was touched.
    #[error("{} problem(s) found", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// A bad flag or argument value; nothing was touched.
    #[error("{0}")]
    Usage(String),
    /// Not run: no target matched; nothing was touched.
    #[error("{0}")]
    NoTargets(String),
    /// A platform could not be reached or answered with an error.
    #[error("{0}")]
    Platform(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Invalid(_) | Error::Usage(_) => Exit::Invalid,
            Error::NoTargets(_) => Exit::NotRun,
            Error::Platform(_) | Error::Io(_) => Exit::Error,
        }
    }
}
