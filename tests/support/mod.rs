//! Shared test harness. Every end-to-end test reads like the scenario it checks:
//!
//! - [`experiment`]: one experiment builder (`Experiment::new(..).on(&fleet).fault(..)`);
//! - [`run`]: one way to run the binary and read its exit code, output and JSON report;
//! - [`docker`]: labelled containers removed on drop, and independent observations
//!   (docker CLI, `tc`, `iptables`, `/proc`);
//! - [`receiver`]: a loopback HTTP server that keeps the notifications it gets;
//! - [`skip`]: a test that cannot run here records why, and fails under `CI=true`.

#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod docker;
pub mod experiment;
pub mod receiver;
pub mod run;
pub mod skip;

use std::path::{Path, PathBuf};

pub use docker::*;
pub use experiment::*;
pub use receiver::*;
pub use run::*;
pub use skip::*;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The message of the report's first event of `kind` (e.g. `verdict`).
#[track_caller]
pub fn event_message(r: &serde_json::Value, kind: &str) -> String {
    r["events"]
        .as_array()
        .expect("the report has events")
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no `{kind}` event in {r}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `faultline validate` on an experiment `bad` whose one fault is `fault`: exit 2, and
/// every message on stderr (each says where: `bad.yaml:LINE:COLUMN: ...`).
#[track_caller]
pub fn assert_invalid_fault(fault: &str, messages: &[&str]) {
    let exp = Experiment::new("bad").on_label("app", "web").fault(fault);
    let out = Run::validate(&exp).output();
    out.expect(2);
    assert_contains(&out.stderr, messages);
}

/// Asserts that the report's first fault is of `kind` and ended `status` (`reverted`,
/// `completed`, ...).
#[track_caller]
pub fn assert_first_fault(r: &serde_json::Value, kind: &str, status: &str) {
    let f = &r["faults"][0];
    assert_eq!(f["type"], kind, "the first fault's type in {r}");
    assert_eq!(f["status"], status, "the first fault's status in {r}");
}

/// Runs `cmd`, which must succeed; its output. A failure shows the command and its stderr.
#[track_caller]
pub fn must_succeed(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `n` calls of `call` on 8 threads at a time; the results in no particular order.
pub fn eight_at_a_time<T: Send + 'static>(
    n: usize,
    call: impl Fn() -> T + Send + Copy + 'static,
) -> Vec<T> {
    let per = n.div_ceil(8);
    let handles: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || (0..per).map(|_| call()).collect::<Vec<T>>()))
        .collect();
    let mut all: Vec<T> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.truncate(n);
    all
}

/// Asserts that `text` contains every piece, showing the text when one is missing.
#[track_caller]
pub fn assert_contains(text: &str, pieces: &[&str]) {
    for piece in pieces {
        assert!(text.contains(piece), "`{piece}` is missing from:\n{text}");
    }
}

/// Checks a JSON report against spec section 6: every field, its type, the enumerations,
/// and that the verdict agrees with the exit code.
pub fn assert_spec_report(r: &serde_json::Value) {
    use serde_json::Value;
    let obj = r.as_object().expect("the report is an object");
    for key in [
        "format_version",
        "tool",
        "experiment",
        "verdict",
        "exit_code",
        "started_at",
        "ended_at",
        "duration_ms",
        "targets",
        "faults",
        "phases",
        "events",
    ] {
        assert!(obj.contains_key(key), "report lacks `{key}`");
    }
    assert_eq!(r["format_version"], 1);
    assert_eq!(r["tool"]["name"], "faultline");
    assert!(r["tool"]["version"].is_string());
    assert!(r["experiment"]["name"].is_string() && r["experiment"]["file"].is_string());
    let verdict = r["verdict"].as_str().unwrap();
    let expected_code = match verdict {
        "passed" => 0,
        "failed" => 1,
        "not_steady" | "no_targets" => 3,
        "error" => 4,
        "revert_incomplete" => 5,
        "interrupted" => 130,
        other => panic!("unknown verdict {other}"),
    };
    assert_eq!(r["exit_code"], expected_code);
    let ts = |v: &Value| {
        let s = v.as_str().expect("a timestamp string");
        assert!(
            s.ends_with('Z') && s.len() == 24,
            "timestamp `{s}` is not RFC 3339 with milliseconds"
        );
    };
    ts(&r["started_at"]);
    ts(&r["ended_at"]);
    assert!(r["duration_ms"].is_u64());
    for t in r["targets"].as_array().unwrap() {
        assert!(t["platform"].is_string() && t["id"].is_string() && t["name"].is_string());
    }
    for f in r["faults"].as_array().unwrap() {
        assert!(f["type"].is_string() && f["target"].is_string());
        assert!(
            ["reverted", "completed", "failed", "active"].contains(&f["status"].as_str().unwrap())
        );
        assert!(f["error"].is_null() || f["error"].is_string());
        for k in ["injected_at", "reverted_at"] {
            if !f[k].is_null() {
                ts(&f[k]);
            }
        }
    }
    let phases = &r["phases"];
    for p in ["before", "after"] {
        if phases[p].is_null() {
            continue;
        }
        assert!(phases[p]["passed"].is_boolean());
        for probe in phases[p]["probes"].as_array().unwrap() {
            for k in ["name", "kind", "detail"] {
                assert!(probe[k].is_string(), "{p} probe lacks {k}");
            }
            assert!(
                probe["passed"].is_boolean()
                    && probe["attempts"].is_u64()
                    && probe["duration_ms"].is_u64()
            );
        }
    }
    if !phases["during"].is_null() {
        assert!(phases["during"]["passed"].is_boolean());
        for probe in phases["during"]["probes"].as_array().unwrap() {
            for k in ["samples", "successes"] {
                assert!(probe[k].is_u64());
            }
            assert!(probe["success_ratio"].is_f64() || probe["success_ratio"].is_u64());
            assert!(probe["min_success"].is_number() && probe["passed"].is_boolean());
            for k in ["p50", "p95", "max"] {
                assert!(probe["latency_ms"][k].is_u64());
            }
        }
    }
    for e in r["events"].as_array().unwrap() {
        ts(&e["at"]);
        assert!(e["kind"].is_string() && e["message"].is_string());
    }
}

/// The bare `faultline` command with the test environment of [`Run`], for the few tests
/// that drive the binary in ways `Run` does not (a pseudo-terminal, raw stdin).
pub fn faultline() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.env("FAULTLINE_LOG", "faultline=warn")
        .env("FAULTLINE_STATE_DIR", root().join("target/test-state"))
        .stdin(std::process::Stdio::null());
    cmd
}

/// Whether Docker answers (and the test images exist); a test that needs it records a
/// skip otherwise, which fails under `CI=true`.
pub fn docker_available() -> bool {
    require_docker()
}
