//! Where faultline keeps what must outlive a run: the journal, the audit log, the
//! dead-man's switch's log, helpers' counters. Its own module so that faults and the
//! journal both reach it without importing each other.

use std::path::PathBuf;

/// The state directory: `$FAULTLINE_STATE_DIR`, else `$XDG_STATE_HOME/faultline`, else
/// `~/.local/state/faultline`.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FAULTLINE_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("faultline");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/state/faultline")
}
