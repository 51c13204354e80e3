//! `--report json:PATH` keeps the table on a terminal (issue 18); piped, stdout carries
//! only what was asked for. The terminal is a real pseudo-terminal from util-linux
//! `script`.

mod support;

use std::process::Command;

use support::*;

/// Regression: the table disappeared as soon as one report went to a file.
#[test]
fn the_table_stays_on_a_terminal_when_the_json_report_goes_to_a_file() {
    assert!(docker_available(), "this test needs the Docker engine");
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "this test needs util-linux `script` for a pseudo-terminal"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = Experiment::no_match().write(dir.path());
    let json = dir.path().join("r.json");
    let cmd = format!(
        "'{}' run '{}' --report 'json:{}'",
        env!("CARGO_BIN_EXE_faultline"),
        file.display(),
        json.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("FAULTLINE_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{seen}");
    assert!(seen.contains("Experiment `no-match`"), "{seen}");
    assert!(seen.contains("Verdict: NO_TARGETS (exit 3)"), "{seen}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["verdict"], "no_targets");

    // Piped, stdout stays empty: nothing was asked for there.
    let out = Run::new(["run"]).arg(&file).json_report().output();
    out.expect(3);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(out.report()["verdict"], "no_targets");
}
