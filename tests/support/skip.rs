//! Tests that say what they did: a test that cannot run here records why, so that
//! `scripts/test.sh` lists it at the end instead of counting it as passed in silence.
//!
//! Three kinds of skip, each a line in `target/test-skips/<binary>.tsv`
//! (`$FAULTLINE_SKIP_DIR` overrides the directory):
//! - [`Skip::Missing`]: a dependency the tests need is not installed or does not answer
//!   (Docker, Chromium, Prometheus, ...). Under `CI=true` or `FAULTLINE_REQUIRE_ALL=1`
//!   this is a failure: the test panics instead of returning.
//! - [`Skip::NotApplicable`]: the test cannot apply on this machine's kernel (the netem test
//!   where `sch_netem` is missing, the missing-netem test where it is there). One of such a
//!   pair always skips; that is never a failure, but it is always listed.
//! - [`Skip::TurnedOff`]: the user switched the test off with an environment variable.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    Missing,
    NotApplicable,
    TurnedOff,
}

impl Skip {
    pub fn tag(self) -> &'static str {
        match self {
            Skip::Missing => "missing dependency",
            Skip::NotApplicable => "not applicable on this kernel",
            Skip::TurnedOff => "turned off",
        }
    }
}

/// Whether every test must run: `CI=true` (or `1`) or `FAULTLINE_REQUIRE_ALL=1`;
/// `FAULTLINE_REQUIRE_ALL=0` turns it off even under CI.
pub fn require_all() -> bool {
    require_all_from(|k| std::env::var(k).ok())
}

/// [`require_all`] over any environment.
pub fn require_all_from(env: impl Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| env(k).map(|v| v.trim().to_ascii_lowercase());
    match set("FAULTLINE_REQUIRE_ALL").as_deref() {
        Some("1" | "true" | "yes") => return true,
        Some("0" | "false" | "no") => return false,
        _ => {}
    }
    matches!(set("CI").as_deref(), Some("1" | "true" | "yes"))
}

/// The directory `scripts/test.sh` reads skips from.
pub fn skip_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_SKIP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| super::root().join("target/test-skips"))
}

/// `binary::test` of the running test (libtest names each test's thread after it).
fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| match s.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
            _ => s,
        })
        .unwrap_or_else(|| "tests".into());
    let thread = std::thread::current();
    format!("{binary}::{}", thread.name().unwrap_or("unknown test"))
}

/// Records that the current test did not run (fully) and why. A missing dependency
/// panics under `CI=true` / `FAULTLINE_REQUIRE_ALL=1`; the other kinds never do.
pub fn skip(kind: Skip, reason: &str) {
    skip_into(&skip_dir(), require_all(), &test_name(), kind, reason);
}

/// [`skip`] for `test`, recorded in `dir`, failing on a missing dependency when
/// `require_all`.
pub fn skip_into(dir: &Path, require_all: bool, test: &str, kind: Skip, reason: &str) {
    let reason = reason.replace(['\t', '\n'], " ");
    record(dir, kind, test, &reason);
    if kind == Skip::Missing && require_all {
        panic!(
            "{test}: {reason} (a skip is a failure under CI=true or FAULTLINE_REQUIRE_ALL=1; \
             run scripts/install-test-deps.sh)"
        );
    }
    eprintln!("SKIPPED ({}): {test}: {reason}", kind.tag());
}

/// Appends `kind<TAB>test<TAB>reason` to the binary's file in `dir`.
fn record(dir: &Path, kind: Skip, test: &str, reason: &str) {
    let binary = test.split("::").next().unwrap_or("tests");
    let line = format!("{}\t{test}\t{reason}\n", kind.tag());
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{binary}.tsv")))?
            .write_all(line.as_bytes())
    });
    if let Err(e) = written {
        eprintln!("cannot record the skip in {}: {e}", dir.display());
    }
}

/// A program on PATH, or a recorded skip naming the Debian package that provides it.
pub fn require_program(name: &str, package: &str, what: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip(
            Skip::Missing,
            &format!("`{name}` is not installed (Debian package `{package}`): {what}"),
        );
    }
    found
}

/// Whether the test applies on this kernel; records a "not applicable" skip when not.
pub fn require_kernel(applies: bool, why_not: &str) -> bool {
    if !applies {
        skip(Skip::NotApplicable, why_not);
    }
    applies
}
