//! `faultline validate`, `plan`, `schema` and the rest of the format's command line,
//! driven through the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn faultline() -> Command {
    let mut cmd = Command::cargo_bin("faultline").unwrap();
    cmd.env_remove("FAULTLINE_TEST_SECRET");
    cmd
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    files.sort();
    files
}

/// Every fixture states, in `# expect: LINE:COLUMN: message` comments, the problems
/// `validate` must print for it. All of them, and nothing is valid.
#[test]
fn every_invalid_fixture_reports_its_problems_with_line_and_column() {
    let files = yaml_files("tests/fixtures/invalid");
    assert!(files.len() >= 15, "fixtures missing");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no expectations",
            file.display()
        );
        let out = faultline().arg("validate").arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let stderr = String::from_utf8(out.stderr).unwrap();
        let reported: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with(&*file.to_string_lossy()))
            .collect();
        for e in &expected {
            let want = format!("{}:{e}", file.display());
            assert!(
                reported.contains(&want.as_str()),
                "missing `{want}` in:\n{stderr}"
            );
        }
        assert_eq!(
            reported.len(),
            expected.len(),
            "unexpected problems in:\n{stderr}"
        );
    }
}

#[test]
fn every_example_validates_cleanly() {
    let mut files = yaml_files("experiments");
    files.extend(yaml_files("scenarios"));
    assert!(files.len() >= 5);
    for file in files {
        faultline()
            .arg("validate")
            .arg(&file)
            .assert()
            .code(0)
            .stdout(predicate::str::contains("valid"));
    }
}

#[test]
fn every_example_starts_with_the_schema_modeline() {
    for dir in ["experiments", "scenarios"] {
        for file in yaml_files(dir) {
            let first = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            assert_eq!(
                first,
                "# yaml-language-server: $schema=../schema/faultline.schema.json",
                "{}",
                file.display()
            );
        }
    }
}

#[test]
fn committed_schema_is_up_to_date() {
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/faultline.schema.json"),
    )
    .unwrap();
    let out = faultline().arg("schema").output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout).unwrap() == committed,
        "schema/faultline.schema.json is stale: run `cargo run -- schema > schema/faultline.schema.json`"
    );
}

#[test]
fn schema_describes_experiments_and_scenarios() {
    let out = faultline().arg("schema").output().unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = schema.to_string();
    for word in [
        "Experiment",
        "Scenario",
        "cpu_stress",
        "min_success",
        "abort_on_failure",
        "Duration",
    ] {
        assert!(text.contains(word), "schema lacks {word}");
    }
}

#[test]
fn several_files_exit_2_if_any_is_invalid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    faultline()
        .arg("validate")
        .arg(root.join("experiments/web-pause.yaml"))
        .arg(root.join("tests/fixtures/invalid/invalid-name.yaml"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("web-pause.yaml: valid"))
        .stderr(predicate::str::contains("invalid-name.yaml:3:1"));
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const WITH_VARS: &str = "version: 1
name: with-vars
vars: {port: 8080}
target: {docker: {labels: {app: web}}}
steady_state:
  - name: web
    http: {url: \"http://${host}:${port}/\", timeout: \"${timeout}\"}
faults:
  - pause: {duration: 1s}
";

#[test]
fn vars_come_from_var_flags_and_var_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "e.yaml", WITH_VARS);
    faultline()
        .args(["validate"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("undefined variable `${host}`"));
    let vars = write(dir.path(), "vars.yaml", "host: 127.0.0.1\ntimeout: 2s\n");
    faultline()
        .arg("validate")
        .arg(&file)
        .arg("--var-file")
        .arg(&vars)
        .assert()
        .code(0);
    faultline()
        .arg("plan")
        .arg(&file)
        .args([
            "--var",
            "host=example.internal",
            "--var",
            "timeout=1s",
            "--var",
            "port=9090",
        ])
        // No Docker here: the plan still shows its steps, and exits 4 as a run would.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .assert()
        .code(4)
        .stdout(predicate::str::contains("http://example.internal:9090/"));
    faultline()
        .arg("validate")
        .arg(&file)
        .args(["--var", "oops"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("NAME=VALUE"));
}

#[test]
fn environment_values_are_secrets_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "e.yaml",
        "version: 1
name: secret
target: {docker: {labels: {app: web}}}
steady_state:
  - name: web
    http:
      url: \"http://127.0.0.1/?token=${env:FAULTLINE_TEST_SECRET}\"
      method: \"${env:FAULTLINE_TEST_SECRET}\"
faults:
  - pause: {duration: 1s}
",
    );
    let out = faultline()
        .arg("validate")
        .arg(&file)
        .env("FAULTLINE_TEST_SECRET", "hunter2-Secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("invalid HTTP method `***`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "secret leaked: {stderr}");
    let out = faultline()
        .arg("plan")
        .arg(&file)
        .env("FAULTLINE_TEST_SECRET", "HUNTERSECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("token=***"), "{stdout}");
    assert!(!stdout.contains("HUNTERSECRET"));
}

#[test]
fn validate_json_lists_problems_for_tools() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/percent-range.yaml");
    let out = faultline()
        .arg("validate")
        .arg(&file)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problems[0]["line"], 6);
    assert_eq!(problems[0]["column"], 27);
    assert_eq!(problems[0]["path"], "target.select.value");
}

#[test]
fn plan_prints_the_timeline() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/web-pause.yaml");
    faultline()
        .arg("plan")
        .arg(&file)
        // No Docker here: the plan still shows its steps, and exits 4 as a run would.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .assert()
        .code(4)
        .stdout(predicate::str::contains("t+0s").and(predicate::str::contains("pause for 5s")))
        .stdout(predicate::str::contains("revert pause"));
}

#[test]
fn scenario_checks_its_experiments() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "version: 1\nname: bad\ntarget: {docker: {}}\nfaults:\n  - pause: {duration: 5}\n",
    );
    let scenario = write(
        dir.path(),
        "s.yaml",
        "version: 1\nkind: scenario\nname: s\nexperiments:\n  - file: bad.yaml\n  - file: missing.yaml\nschedule: \"61 * * * *\"\nwindow: {hours: \"9-5\", timezone: Europe/Berln}\n",
    );
    faultline()
        .arg("validate")
        .arg(&scenario)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "s.yaml:5:5: experiment `bad.yaml` is not valid",
        ))
        .stderr(predicate::str::contains("bad.yaml:5:23"))
        .stderr(predicate::str::contains(
            "missing.yaml: cannot read the file",
        ))
        .stderr(predicate::str::contains("invalid cron expression"))
        .stderr(predicate::str::contains("did you mean `Europe/Berlin`?"))
        .stderr(predicate::str::contains("invalid hours `9-5`"));
}

#[test]
fn help_version_and_completions() {
    faultline()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains("faultline 0.1.0"));
    for sub in [
        "run", "validate", "plan", "recover", "doctor", "schema", "gameday", "rbac", "demo",
    ] {
        faultline().args([sub, "--help"]).assert().success();
    }
    faultline()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("faultline"));
    faultline()
        .args(["run", "x.yaml", "--report", "pdf"])
        .assert()
        .code(2);
}

#[test]
fn a_missing_file_is_invalid_input() {
    faultline()
        .args(["validate", "/nonexistent/e.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read the file"));
}
