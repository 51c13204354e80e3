//! faultline: chaos experiments against Docker containers and Kubernetes pods.
//!
//! Data flows one way: file → [`experiment`] → [`plan`] → run → result → reports.
//! The binary in `main.rs` only calls [`cli::main`].

pub(crate) mod causes;
pub mod cli;
pub(crate) mod demo;
pub mod doctor;
pub mod error;
pub mod experiment;
pub mod fault;
pub mod journal;
pub mod notify;
pub mod plan;
pub mod platform;
pub mod probe;
pub mod report;
pub mod run;
pub(crate) mod schedule;
pub(crate) mod schema;
pub(crate) mod state_dir;

pub use error::{Error, Exit};

#[cfg(test)]
mod test_support;
