//! YAML scalars follow YAML 1.2 and the field's type (issue 18): where a string is due,
//! a plain scalar is the text as written (`no`, `on`, `1.10`, `0x1F`), and only `true`
//! and `false` are booleans.

use faultline::experiment::{Loaded, VarOverrides, load, load_experiment_str};

fn load_str(yaml: &str) -> faultline::experiment::LoadedExperiment {
    load_experiment_str("t.yaml", yaml, &VarOverrides::default(), &|_| None)
        .unwrap_or_else(|d| panic!("{d:#?}"))
}

/// Regression: `labels: {env: no}` was "invalid type: boolean", `1.10` became "1.1".
#[test]
fn strings_keep_the_text_that_was_written() {
    let l = load_str(
        "version: 1
name: no
vars:
  ver: 1.10
target:
  docker:
    labels: {env: on, canary: no, version: 1.10, build: 0x1F, zero: 007, off: yes, enabled: true}
    name: yes
steady_state:
  - name: 1.10
    http: {url: \"http://127.0.0.1/v${ver}\", headers: {X-Flag: off}}
faults:
  - pause: {duration: 5s}
",
    );
    let e = &l.experiment;
    assert_eq!(e.name, "no");
    let d = e.target.as_ref().unwrap().docker.as_ref().unwrap();
    let label = |k: &str| d.labels.get(k).map(String::as_str);
    assert_eq!(label("env"), Some("on"));
    assert_eq!(label("canary"), Some("no"));
    assert_eq!(label("version"), Some("1.10"));
    assert_eq!(label("build"), Some("0x1F"));
    assert_eq!(label("zero"), Some("007"));
    assert_eq!(label("off"), Some("yes"), "keys are text too");
    assert_eq!(label("enabled"), Some("true"));
    assert_eq!(d.name.as_ref().unwrap().to_string(), "yes");
    let probe = &e.steady_state[0];
    assert_eq!(probe.name, "1.10");
    let http = probe.http.as_ref().unwrap();
    assert_eq!(http.url, "http://127.0.0.1/v1.10", "a var keeps its text");
    assert_eq!(http.headers.get("X-Flag").map(String::as_str), Some("off"));
}

/// An experiment whose http probe has `insecure: VALUE` (at line 6, column 48).
fn with_insecure(value: &str) -> String {
    format!(
        "version: 1
name: t
target: {{docker: {{labels: {{app: web}}}}}}
steady_state:
  - name: web
    http: {{url: \"http://127.0.0.1/\", insecure: {value}}}
faults:
  - pause: {{duration: 5s}}
"
    )
}

#[test]
fn only_true_and_false_are_booleans() {
    let l = load_str(&with_insecure("true"));
    assert!(l.experiment.steady_state[0].http.as_ref().unwrap().insecure);
    let err = load_experiment_str(
        "t.yaml",
        &with_insecure("yes"),
        &VarOverrides::default(),
        &|_| None,
    )
    .unwrap_err();
    assert_eq!(err.len(), 1, "{err:#?}");
    assert_eq!((err[0].line, err[0].column), (Some(6), Some(48)));
    assert_eq!(
        err[0].message,
        "steady_state[0].http.insecure: `yes` is text, not a boolean (YAML 1.2): write `true` or `false`"
    );
}

#[test]
fn scenario_entry_vars_keep_their_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("e.yaml"),
        "version: 1
name: e
target: {docker: {labels: {app: web, version: \"${ver}\", flag: \"${flag}\"}}}
faults:
  - pause: {duration: 5s}
",
    )
    .unwrap();
    let scenario = dir.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "version: 1
kind: scenario
name: s
experiments:
  - file: e.yaml
    vars: {ver: 1.10, flag: no}
",
    )
    .unwrap();
    let Loaded::Scenario(s) = load(&scenario, &VarOverrides::default()).unwrap() else {
        panic!("a scenario");
    };
    let labels = &s.experiments[0]
        .experiment
        .target
        .as_ref()
        .unwrap()
        .docker
        .as_ref()
        .unwrap()
        .labels;
    assert_eq!(labels["version"], "1.10");
    assert_eq!(labels["flag"], "no");
}
