//! The audit log: one JSON line per action (inject, revert, recover, abort) with who did
//! what to which target, appended to the state directory or `--audit-log PATH`. Parameters
//! are redacted before they reach it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub at: DateTime<Utc>,
    pub user: String,
    pub host: String,
    pub action: String,
    pub experiment: String,
    pub target: String,
    pub fault: String,
    pub parameters: String,
    pub result: String,
}

#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
    user: String,
    host: String,
}

impl AuditLog {
    pub fn at(path: &Path) -> AuditLog {
        let user = std::env::var("USER")
            .ok()
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .unwrap_or_else(|| nix::unistd::getuid().to_string());
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        AuditLog {
            path: path.to_path_buf(),
            user,
            host,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record. A failure to audit is logged, never fatal to the run.
    pub fn record(
        &self,
        action: &str,
        experiment: &str,
        target: &str,
        fault: &str,
        parameters: &str,
        result: &str,
    ) {
        let rec = Record {
            at: Utc::now(),
            user: self.user.clone(),
            host: self.host.clone(),
            action: action.into(),
            experiment: experiment.into(),
            target: target.into(),
            fault: fault.into(),
            parameters: parameters.into(),
            result: result.into(),
        };
        let mut line = serde_json::to_string(&rec).expect("audit records serialize");
        line.push('\n');
        let written = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
            })
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot write the audit log {}: {e}", self.path.display());
        }
    }
}
