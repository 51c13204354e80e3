//! `faultline validate`, `plan`, `schema` and the rest of the format's command line,
//! driven through the real binary.

mod support;

use std::path::{Path, PathBuf};

use support::{Experiment, Probe, Run, write};

/// `faultline ARGS` without the secret the tests set themselves.
fn faultline<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> Run {
    Run::new(args).env_remove("FAULTLINE_TEST_SECRET")
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
        let out = faultline(["validate"]).arg(&file).output();
        assert_eq!(out.code, Some(2), "{}", file.display());
        let stderr = out.stderr;
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
        faultline(["validate"])
            .arg(&file)
            .output()
            .expect(0)
            .stdout_has("valid");
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
    let out = faultline(["schema"]).output();
    assert!(
        out.expect(0).stdout == committed,
        "schema/faultline.schema.json is stale: run `cargo run -- schema > schema/faultline.schema.json`"
    );
}

#[test]
fn schema_describes_experiments_and_scenarios() {
    let out = faultline(["schema"]).output();
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
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
    faultline(["validate"])
        .arg(root.join("experiments/web-pause.yaml"))
        .arg(root.join("tests/fixtures/invalid/invalid-name.yaml"))
        .output()
        .expect(2)
        .stdout_has("web-pause.yaml: valid")
        .stderr_has("invalid-name.yaml:3:1");
}

/// An experiment on `app: web` whose steady state is one probe.
fn with_probe(name: &str, vars: Option<&str>, probe: Probe) -> Experiment {
    let exp = Experiment::new(name);
    let exp = match vars {
        Some(v) => exp.vars(v),
        None => exp,
    };
    exp.on_label("app", "web")
        .steady(probe.named("web"))
        .fault("pause: {duration: 1s}")
}

#[test]
fn vars_come_from_var_flags_and_var_files() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Probe::http("http://${host}:${port}/").timeout("\"${timeout}\"");
    let file = with_probe("with-vars", Some("{port: 8080}"), probe).write(dir.path());
    faultline(["validate"])
        .arg(&file)
        .output()
        .expect(2)
        .stderr_has("undefined variable `${host}`");
    let vars = write(dir.path(), "vars.yaml", "host: 127.0.0.1\ntimeout: 2s\n");
    faultline(["validate"])
        .arg(&file)
        .arg("--var-file")
        .arg(&vars)
        .output()
        .expect(0);
    let overrides = ["host=example.internal", "timeout=1s", "port=9090"];
    faultline(["plan"])
        .arg(&file)
        .args(overrides.iter().flat_map(|v| ["--var", v]))
        // No Docker here: the plan still shows its steps, and exits 4 as a run would.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect(4)
        .stdout_has("http://example.internal:9090/");
    faultline(["validate"])
        .arg(&file)
        .args(["--var", "oops"])
        .output()
        .expect(2)
        .stderr_has("NAME=VALUE");
}

#[test]
fn environment_values_are_secrets_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Probe::http("http://127.0.0.1/?token=${env:FAULTLINE_TEST_SECRET}")
        .with("method", "\"${env:FAULTLINE_TEST_SECRET}\"");
    let file = with_probe("secret", None, probe).write(dir.path());
    let out = faultline(["validate"])
        .arg(&file)
        .env("FAULTLINE_TEST_SECRET", "hunter2-Secret")
        .output();
    out.expect(2).stderr_has("invalid HTTP method `***`");
    assert!(
        !out.stderr.contains("hunter2"),
        "secret leaked: {}",
        out.stderr
    );
    let out = faultline(["plan"])
        .arg(&file)
        .env("FAULTLINE_TEST_SECRET", "HUNTERSECRET")
        .output();
    out.stdout_has("token=***");
    assert!(!out.stdout.contains("HUNTERSECRET"));
}

#[test]
fn validate_json_lists_problems_for_tools() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/percent-range.yaml");
    let out = faultline(["validate"])
        .arg(&file)
        .args(["--format", "json"])
        .output();
    out.expect(2);
    let problems: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(problems[0]["line"], 6);
    assert_eq!(problems[0]["column"], 27);
    assert_eq!(problems[0]["path"], "target.select.value");
}

#[test]
fn plan_prints_the_timeline() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/web-pause.yaml");
    faultline(["plan"])
        .arg(&file)
        // No Docker here: the plan still shows its steps, and exits 4 as a run would.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect(4)
        .stdout_has("t+0s")
        .stdout_has("pause for 5s")
        .stdout_has("revert pause");
}

#[test]
fn plan_shows_one_timeline_for_every_named_target() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/cache-and-api.yaml");
    faultline(["plan"])
        .arg(&file)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect(4)
        .stdout_has("Targets:\n  api: docker containers with labels app=api")
        .stdout_has("  cache: docker containers with labels app=cache")
        .stdout_has("t+0s     fault 1 on cache: pause for 4s")
        .stdout_has("t+1s     fault 2 on api: kill")
        .stdout_has("t+4s     fault 1 on cache: revert pause");
}

/// One Docker and one Kubernetes target in one experiment: valid, planned on one
/// timeline, and `rbac` asks only for what the Kubernetes target's faults need.
#[test]
fn a_mixed_docker_and_kubernetes_experiment() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/k8s-cache-docker-api.yaml");
    faultline(["validate"])
        .arg(&file)
        .output()
        .expect(0)
        .stdout_has("valid experiment `k8s-cache-docker-api` (2 fault(s)");
    faultline(["plan"])
        .arg(&file)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect(4)
        .stdout_has("  api: docker containers with labels app=api")
        .stdout_has("  cache: kubernetes pods in namespace shop matching app=cache")
        .stdout_has("fault 1 on cache: ")
        .stdout_has("t+2s     fault 2 on api: pause for 3s");
    let out = faultline(["rbac"])
        .arg(&file)
        .args(["--service-account", "faultline/faultline"])
        .output();
    out.expect(0)
        .stdout_has("namespace: shop")
        .stdout_has("pods/ephemeralcontainers");
    // The pause is on the Docker target: nothing of it in the Role.
    assert!(!out.stdout.contains("pause"), "{}", out.stdout);
    assert_eq!(
        out.stdout.matches("\nkind: Role\n").count(),
        1,
        "{}",
        out.stdout
    );
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
    let out = faultline(["validate"]).arg(&scenario).output();
    out.expect(2);
    support::assert_contains(
        &out.stderr,
        &[
            "s.yaml:5:5: experiment `bad.yaml` is not valid",
            "bad.yaml:5:23",
            "missing.yaml: cannot read the file",
            "invalid cron expression",
            "did you mean `Europe/Berlin`?",
            "invalid hours `9-5`",
        ],
    );
}

#[test]
fn help_version_and_completions() {
    faultline(["--version"])
        .output()
        .expect(0)
        .stdout_has("faultline 0.1.0");
    for sub in [
        "run", "validate", "plan", "recover", "doctor", "schema", "gameday", "rbac", "demo",
    ] {
        faultline([sub, "--help"]).output().expect(0);
    }
    faultline(["completions", "bash"])
        .output()
        .expect(0)
        .stdout_has("faultline");
    faultline(["run", "x.yaml", "--report", "pdf"])
        .output()
        .expect(2);
}

#[test]
fn a_missing_file_is_invalid_input() {
    faultline(["validate", "/nonexistent/e.yaml"])
        .output()
        .expect(2)
        .stderr_has("cannot read the file");
}
