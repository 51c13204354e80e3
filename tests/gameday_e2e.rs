//! A game day of two Docker experiments, one passing and one failing: the reports of each,
//! the summary, and the highest exit code.

mod support;

use support::*;

#[test]
fn a_game_day_of_a_passing_and_a_failing_experiment() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("gameday");
    let web = fleet.web(&[]);
    let url = fleet.url(&web);
    let dir = tempfile::tempdir().unwrap();
    let group = fleet.label();
    write(
        dir.path(),
        "passes.yaml",
        &format!(
            "version: 1\nname: tolerant\ntarget:\n  docker: {{labels: {{fltest.group: {group}}}}}\nsteady_state:\n  - name: web\n    http: {{url: \"{url}\"}}\nduring:\n  interval: 100ms\n  probes:\n    - name: anything goes\n      min_success: 0.0\n      http: {{url: \"{url}\", timeout: 200ms}}\nfaults:\n  - pause: {{duration: 500ms}}\n"
        ),
    );
    write(
        dir.path(),
        "fails.yaml",
        &format!(
            "version: 1\nname: strict\ntarget:\n  docker: {{labels: {{fltest.group: {group}}}}}\nduring:\n  interval: 100ms\n  probes:\n    - name: must always answer\n      http: {{url: \"{url}\", timeout: 200ms}}\nfaults:\n  - pause: {{duration: 500ms}}\n"
        ),
    );
    let scenario = write(
        dir.path(),
        "day.yaml",
        "version: 1\nkind: scenario\nname: two-step\nexperiments:\n  - file: passes.yaml\n  - file: fails.yaml\ncontinue_on_failure: true\n",
    );
    let out_dir = dir.path().join("reports");
    let out = faultline()
        .arg("gameday")
        .arg(&scenario)
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one directory per game day");
    let run = &runs[0];
    for f in [
        "01-tolerant.json",
        "01-tolerant.md",
        "01-tolerant.html",
        "02-strict.json",
        "02-strict.md",
        "02-strict.html",
        "summary.md",
        "summary.html",
        "junit.xml",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("01-tolerant.json")).unwrap())
            .unwrap();
    let second: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("02-strict.json")).unwrap())
            .unwrap();
    assert_spec_report(&first);
    assert_spec_report(&second);
    assert_eq!(first["verdict"], "passed");
    assert_eq!(second["verdict"], "failed");
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(
        summary.contains("tolerant") && summary.contains("strict"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 2);

    // Without continue_on_failure, the game day stops at the failure.
    let stop_first = write(
        dir.path(),
        "stop.yaml",
        "version: 1\nkind: scenario\nname: stop-early\nexperiments:\n  - file: fails.yaml\n  - file: passes.yaml\n",
    );
    let out_dir = dir.path().join("stop");
    let out = faultline()
        .arg("gameday")
        .arg(&stop_first)
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let run = std::fs::read_dir(&out_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(run.join("01-strict.json").exists());
    assert!(
        !run.join("02-tolerant.json").exists(),
        "the second experiment ran after a failure"
    );
    assert!(!paused(&web));
}
