//! `validate` in a CI lint step needs no secrets (issue 18): an unset `${env:...}` is a
//! warning with its line and column (exit 0), a problem under `--strict` (exit 2), and
//! `run` still refuses to start without it.

mod support;

use support::*;

/// `faultline ARGS FILE` with neither variable of [`EXPERIMENT`] set.
fn faultline(args: &[&str], file: &std::path::Path) -> Run {
    Run::new(args)
        .arg(file)
        .env_remove("FAULTLINE_TEST_SURELY_UNSET")
        .env_remove("FAULTLINE_TEST_UNSET_TIMEOUT")
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
    let out = faultline(&["validate"], &f).output();
    out.expect(0).stdout_has("valid experiment `unset-env`");
    let stderr = &out.stderr;
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
    let out = faultline(&["validate"], &f)
        .args(["--format", "json"])
        .output();
    out.expect(0);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
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
    let out = faultline(&["validate", "--strict"], &f).output();
    out.expect(2).stderr_has(&format!(
        "{}:12:24: environment variable `FAULTLINE_TEST_SURELY_UNSET` is not set",
        f.display()
    ));
    assert!(!out.stdout.contains("valid experiment"));
}

#[test]
fn run_still_refuses_without_the_variable_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, EXPERIMENT);
    faultline(&["run"], &f)
        .env("FAULTLINE_STATE_DIR", dir.path().join("state"))
        .output()
        .expect(2)
        .stderr_has("environment variable `FAULTLINE_TEST_SURELY_UNSET` is not set: export it")
        .stderr_has("nothing was touched");
}

#[test]
fn a_set_variable_is_no_warning_and_stays_secret() {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&dir, EXPERIMENT);
    let out = faultline(&["validate"], &f)
        .env("FAULTLINE_TEST_SURELY_UNSET", "hunter2-token")
        .env("FAULTLINE_TEST_UNSET_TIMEOUT", "2s")
        .output();
    out.expect(0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("warning"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}
