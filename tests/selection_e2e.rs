//! What a selection tells the user (issue 18): fewer matches than requested is said in
//! every report, `select.min` refuses to run on too few, and `plan` exits with the code
//! the run would start with. Against the real Docker engine; effects checked with the
//! docker CLI.

mod support;

use support::*;

fn experiment(fleet: &Fleet, select: &str) -> String {
    format!(
        "version: 1\nname: short-selection\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\n  select: {select}\nfaults:\n  - pause: {{duration: 300ms}}\n",
        fleet.label()
    )
}

#[test]
fn count_5_with_3_matches_says_3_of_5_requested_and_min_4_refuses_to_run() {
    assert!(
        docker_available(),
        "this test needs the Docker engine (`docker info` failed)"
    );
    let mut fleet = Fleet::new("short");
    for _ in 0..3 {
        fleet.web(&[]);
    }
    let dir = tempfile::tempdir().unwrap();

    // Without min the run goes ahead on the 3, and says so.
    let file = write(
        dir.path(),
        "short.yaml",
        &experiment(&fleet, "{mode: count, value: 5}"),
    );
    let json = dir.path().join("short.json");
    let out = faultline()
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg(format!("json:{}", json.display()))
        .arg("--report")
        .arg("table")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(3 of 5 requested)"), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_spec_report(&r);
    assert_eq!(r["selection"]["mode"], "count");
    assert_eq!(r["selection"]["requested"], 5);
    assert_eq!(r["selection"]["matched"], 3);
    assert_eq!(r["selection"]["selected"], 3);
    let mut names: Vec<String> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut expected = fleet.names.clone();
    expected.sort();
    assert_eq!(names, expected, "the 3 matches were taken");

    // With min: 4 the run stops before touching anything: exit 3.
    let file = write(
        dir.path(),
        "min.yaml",
        &experiment(&fleet, "{mode: count, value: 5, min: 4}"),
    );
    let started: Vec<String> = fleet
        .names
        .iter()
        .map(|n| docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", n]))
        .collect();
    let out = faultline()
        .arg("run")
        .arg(&file)
        .args(["--report", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_spec_report(&r);
    assert_eq!(r["verdict"], "no_targets");
    assert!(r["faults"].as_array().unwrap().is_empty());
    let why = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "verdict")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.starts_with("only 3 of 5 requested targets matched") && why.contains("select.min 4"),
        "{why}"
    );
    // Nothing was touched: no container was paused or restarted, and Docker logged no pause.
    for (name, started) in fleet.names.iter().zip(&started) {
        assert!(!paused(name));
        assert_eq!(
            &docker_ok(&["inspect", "-f", "{{.State.StartedAt}}", name]),
            started
        );
    }
    let since = r["started_at"].as_str().unwrap();
    let until = chrono_like_now();
    let events = docker_ok(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        &format!("label=fltest.group={}", fleet.label()),
        "--filter",
        "event=pause",
    ]);
    assert!(events.is_empty(), "{events}");

    // `plan` agrees with the run: exit 3, and says why.
    let out = faultline().arg("plan").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("fewer than select.min 4"), "{stdout}");
    assert!(stdout.contains("exit 3"), "{stdout}");
    // ... and so does `run --dry-run`.
    let out = faultline()
        .args(["run", "--dry-run"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // A plan that can run says how short it is, and exits 0.
    let file = write(
        dir.path(),
        "short.yaml",
        &experiment(&fleet, "{mode: count, value: 5}"),
    );
    let out = faultline().arg("plan").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("3 of 3 matching target(s) (3 of 5 requested)"),
        "{stdout}"
    );
}

/// Regression: `plan` exited 0 when no target matched.
#[test]
fn plan_of_a_selector_that_matches_nothing_exits_3() {
    assert!(
        docker_available(),
        "this test needs the Docker engine (`docker info` failed)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "none.yaml",
        "version: 1\nname: no-match\ntarget:\n  docker: {labels: {fltest.group: surely-nobody-uses-this}}\nfaults:\n  - pause: {duration: 1s}\n",
    );
    let out = faultline().arg("plan").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("no target matched"), "{stdout}");
    assert!(stdout.contains("`no_targets` (exit 3)"), "{stdout}");
}

/// Regression: `plan` exited 0 when the platform could not be reached. Needs no Docker.
#[test]
fn plan_against_an_unreachable_daemon_exits_4_and_still_shows_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "u.yaml",
        "version: 1\nname: unreachable\ntarget:\n  docker: {host: \"unix:///nonexistent/docker.sock\", labels: {app: web}}\nfaults:\n  - pause: {duration: 1s}\n",
    );
    let out = faultline().arg("plan").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    assert!(stdout.contains("targets not resolved"), "{stdout}");
    assert!(stdout.contains("pause for 1s"), "{stdout}");
    assert!(stderr.contains("exit 4"), "{stderr}");
}

/// `docker events --until` wants a timestamp; now, as Unix seconds.
fn chrono_like_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}", now.as_secs() + 1)
}
