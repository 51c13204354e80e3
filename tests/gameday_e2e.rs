//! A game day of two Docker experiments, one passing and one failing: the reports of each,
//! the summary, and the highest exit code.

mod support;

use std::path::{Path, PathBuf};

use support::*;

/// Runs the game day over `files` in `dir` (it fails: exit 1) and returns the one run
/// directory it wrote.
fn game_day(dir: &Path, name: &str, files: &[&str], continue_on_failure: bool) -> PathBuf {
    let file = write(
        dir,
        &format!("{name}.yaml"),
        &scenario(name, files, continue_on_failure),
    );
    let out_dir = dir.join(name);
    Run::new(["gameday"])
        .arg(&file)
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .expect(1);
    let runs: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one directory per game day");
    runs[0].clone()
}

fn json(path: &Path) -> serde_json::Value {
    let r = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_spec_report(&r);
    r
}

#[test]
fn a_game_day_of_a_passing_and_a_failing_experiment() {
    let Some((fleet, web)) = one_web("gameday") else {
        return;
    };
    let url = fleet.url(&web);
    let dir = tempfile::tempdir().unwrap();
    let answers = Probe::http(&url).timeout("200ms");
    fleet
        .experiment("tolerant")
        .steady(Probe::http(&url).named("web"))
        .during(
            "100ms",
            answers.clone().min_success(0.0).named("anything goes"),
        )
        .fault("pause: {duration: 500ms}")
        .write(dir.path());
    fleet
        .experiment("strict")
        .during("100ms", answers.named("must always answer"))
        .fault("pause: {duration: 500ms}")
        .write(dir.path());
    let run = game_day(
        dir.path(),
        "two-step",
        &["tolerant.yaml", "strict.yaml"],
        true,
    );
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
    assert_eq!(json(&run.join("01-tolerant.json"))["verdict"], "passed");
    assert_eq!(json(&run.join("02-strict.json"))["verdict"], "failed");
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(
        summary.contains("tolerant") && summary.contains("strict"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), 2);

    // Without continue_on_failure, the game day stops at the failure.
    let run = game_day(
        dir.path(),
        "stop-early",
        &["strict.yaml", "tolerant.yaml"],
        false,
    );
    assert!(run.join("01-strict.json").exists());
    assert!(
        !run.join("02-tolerant.json").exists(),
        "the second experiment ran after a failure"
    );
    assert!(!paused(&web));
}
