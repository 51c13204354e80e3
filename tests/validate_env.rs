//! `validate` in a CI lint step needs no secrets (issue 18): an unset `${env:...}` is a
//! warning with its line and column (exit 0), a problem under `--strict` (exit 2), and
//! `run` still refuses to start without it.

use assert_cmd::Command;

fn faultline() -> Command {
    let mut cmd = Command::cargo_bin("faultline").unwrap();
    cmd.env_remove("FAULTLINE_TEST_SURELY_UNSET");
    cmd.env_remove("FAULTLINE_TEST_UNSET_TIMEOUT");
    cmd
}

const EXPERIMENT: &str = "version: 1
name: unset-env
vars:
  probe_timeout: ${env:FAULTLINE_TEST_UNSET_TIMEOUT}
target: {docker: {labels: {app: web}}}
steady_state:
  - name: api answers
    http:
      url: http://127.0.0.1:8080/
      timeout: ${probe_timeout}
      headers:
        Authorization: Bearer ${env:FAULTLINE_TEST_SURELY_UNSET}
faults:
  - pause: {duration: 5s}
";

fn file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("unset-env.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Regression: validate failed (exit 2) when a secret was not exported.
#[test]
fn an_unset_environment_variable_is_a_warning_for_validate() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, EXPERIMENT);
    let out = faultline().arg("validate").arg(&f).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("valid experiment `unset-env`"), "{stdout}");
    let at = |line: u32, col: u32, name: &str| {
        format!(
            "{}:{line}:{col}: warning: environment variable `{name}` is not set: `faultline run` will need it",
            f.display()
        )
    };
    assert!(
        stderr.contains(&at(12, 24, "FAULTLINE_TEST_SURELY_UNSET")),
        "{stderr}"
    );
    // Used through a var, it is reported where the value lands; the placeholder is not
    // judged as a duration.
    assert!(
        stderr.contains(&at(10, 16, "FAULTLINE_TEST_UNSET_TIMEOUT")),
        "{stderr}"
    );
    assert!(!stderr.contains("duration"), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");

    // JSON output lists the warnings for tools, still exit 0.
    let out = faultline()
        .arg("validate")
        .arg(&f)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(
        list[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("warning: ")
    );
}

#[test]
fn strict_validate_fails_on_an_unset_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, EXPERIMENT);
    let out = faultline()
        .args(["validate", "--strict"])
        .arg(&f)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:12:24: environment variable `FAULTLINE_TEST_SURELY_UNSET` is not set",
            f.display()
        )),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("valid experiment"));
}

#[test]
fn run_still_refuses_without_the_variable_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, EXPERIMENT);
    let out = faultline()
        .arg("run")
        .arg(&f)
        .env("FAULTLINE_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("environment variable `FAULTLINE_TEST_SURELY_UNSET` is not set: export it"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was touched"), "{stderr}");
}

#[test]
fn a_set_variable_is_no_warning_and_stays_secret() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, EXPERIMENT);
    let out = faultline()
        .arg("validate")
        .arg(&f)
        .env("FAULTLINE_TEST_SURELY_UNSET", "hunter2-token")
        .env("FAULTLINE_TEST_UNSET_TIMEOUT", "2s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("warning"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}
