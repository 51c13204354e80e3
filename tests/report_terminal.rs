//! `--report json:PATH` keeps the table on a terminal (issue 18); piped, stdout carries
//! only what was asked for. The terminal is a real pseudo-terminal from util-linux
//! `script`.

use std::process::Command;

fn experiment(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("none.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: no-match\ntarget:\n  docker: {labels: {fltest.group: surely-nobody-uses-this}}\nfaults:\n  - pause: {duration: 1s}\n",
    )
    .unwrap();
    file
}

fn docker_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Regression: the table disappeared as soon as one report went to a file.
#[test]
fn the_table_stays_on_a_terminal_when_the_json_report_goes_to_a_file() {
    assert!(docker_answers(), "this test needs the Docker engine");
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "this test needs util-linux `script` for a pseudo-terminal"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path());
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
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg(format!("json:{}", json.display()))
        .env("FAULTLINE_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
