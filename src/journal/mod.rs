//! The run journal: a write-ahead record of every injection, on disk and synced *before*
//! the fault is applied, closed only after its revert is confirmed. `faultline recover`
//! reverts what a crashed run left open, through the same code path as a normal revert.
//!
//! The file is JSON lines, appended under an exclusive lock: an `open` line per injection
//! and a `close` line when it is settled. A line torn by a crash is skipped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::fault::Undo;
pub use crate::platform::PlatformRef;

pub mod audit;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Line {
    Open(Box<Entry>),
    Close {
        id: String,
        at: DateTime<Utc>,
        note: String,
    },
}

/// One injection that may need reverting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub run: String,
    /// The process that applied it; `recover` leaves a live run's entries alone.
    pub pid: u32,
    pub experiment: String,
    pub fault: String,
    /// The named target the fault acts on (`targets:`); empty for the one unnamed `target`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    pub platform: PlatformRef,
    pub undo: Undo,
}

pub use crate::state_dir::state_dir;

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {source}")]
pub struct JournalError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

#[derive(Clone, Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn at(dir: &Path) -> Journal {
        Journal {
            path: dir.join("journal.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: std::io::Error) -> JournalError {
        JournalError {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn lock(&self) -> Result<Flock<File>, JournalError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .map_err(|e| self.err(e))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| self.err(e.into()))
    }

    /// Appends a line and syncs it to disk before returning.
    pub fn append(&self, line: &Line) -> Result<(), JournalError> {
        let mut file = self.lock()?;
        let mut text = serde_json::to_string(line).expect("journal lines serialize");
        text.push('\n');
        // A torn line from an earlier crash must not swallow this one.
        let len = file.metadata().map_err(|e| self.err(e))?.len();
        if len > 0 && !ends_with_newline(&self.path) {
            text.insert(0, '\n');
        }
        file.write_all(text.as_bytes()).map_err(|e| self.err(e))?;
        file.sync_data().map_err(|e| self.err(e))
    }

    pub fn open(&self, entry: &Entry) -> Result<(), JournalError> {
        self.append(&Line::Open(Box::new(entry.clone())))
    }

    pub fn close(&self, id: &str, note: &str) -> Result<(), JournalError> {
        self.append(&Line::Close {
            id: id.to_string(),
            at: Utc::now(),
            note: note.to_string(),
        })
    }

    /// Every entry that has no close line, oldest first.
    pub fn open_entries(&self) -> Result<Vec<Entry>, JournalError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut open: Vec<Entry> = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| self.err(e))?;
            match serde_json::from_str::<Line>(&line) {
                Ok(Line::Open(e)) => open.push(*e),
                Ok(Line::Close { id, .. }) => open.retain(|e| e.id != id),
                // A line torn by a crash, or from a newer faultline: skip it.
                Err(_) => tracing::debug!("skipping unreadable journal line"),
            }
        }
        Ok(open)
    }

    /// Rewrites the file with only the open entries, so it does not grow without bound.
    pub fn compact(&self) -> Result<(), JournalError> {
        let _lock = self.lock()?;
        let open = self.open_entries()?;
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut text = String::new();
        for e in open {
            text.push_str(&serde_json::to_string(&Line::Open(Box::new(e))).expect("serializes"));
            text.push('\n');
        }
        std::fs::write(&tmp, text).map_err(|e| self.err(e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| self.err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.err(e))
    }
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return true;
    };
    if f.seek(SeekFrom::End(-1)).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    f.read_exact(&mut b).is_ok() && b[0] == b'\n'
}

/// Whether process `pid` is alive (a run that still owns its entries).
pub fn process_alive(pid: u32) -> bool {
    pid != 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Target;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            at: Utc::now(),
            run: "r1".into(),
            pid: 1,
            experiment: "e".into(),
            fault: "pause".into(),
            target: String::new(),
            platform: PlatformRef {
                kind: "docker".into(),
                endpoint: None,
                tls: None,
            },
            undo: Undo::new(crate::fault::UndoRecord::Unpause {
                target: Target {
                    platform: "docker".into(),
                    id: "abc".into(),
                    name: "web-1".into(),
                    labels: Default::default(),
                },
            }),
        }
    }

    #[test]
    fn open_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::at(dir.path());
        j.open(&entry("a")).unwrap();
        j.open(&entry("b")).unwrap();
        j.close("a", "reverted").unwrap();
        let open = j.open_entries().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].id, "b");
        j.compact().unwrap();
        assert_eq!(j.open_entries().unwrap(), open);
        assert_eq!(
            std::fs::read_to_string(j.path()).unwrap().lines().count(),
            1
        );
    }

    #[test]
    fn a_torn_last_line_is_tolerated_and_not_glued_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::at(dir.path());
        j.open(&entry("a")).unwrap();
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(br#"{"op":"open","id":"torn","at":"#).unwrap();
        assert_eq!(j.open_entries().unwrap().len(), 1);
        j.close("a", "reverted").unwrap();
        assert!(
            j.open_entries().unwrap().is_empty(),
            "the close after a torn line still counts"
        );
    }
}
