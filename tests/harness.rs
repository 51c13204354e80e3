//! The test harness itself (`tests/support`): the experiment builder writes what
//! `faultline validate` accepts, and a skip is recorded, and fails only where every test
//! must run and only for a missing dependency.

mod support;

use support::*;

/// Every part of the builder at once, as the end-to-end tests use them.
fn everything() -> Experiment {
    Experiment::new("builder-everything")
        .vars("{url: \"http://127.0.0.1:8080/\"}")
        .on_label("fltest.group", "harness")
        .only("web-1")
        .select("{mode: count, value: 1}")
        .steady(Probe::http("${url}").with("status", "[200]").timeout("1s"))
        .steady(
            Probe::command("[sh, -c, \"exit 0\"]")
                .named("shell")
                .setting("retries", "1")
                .setting("retry_interval", "100ms"),
        )
        .steady(Probe::flow("tcp", "{address: \"127.0.0.1:8080\"}").named("port"))
        .during(
            "100ms",
            Probe::http("${url}").min_success(0.5).named("mostly"),
        )
        .abort_on_failure()
        .fault("pause: {duration: 2s}")
        .fault("kill: {signal: SIGKILL, after: 3s}")
        .recovery("10s", "100ms")
}

#[test]
fn the_builder_writes_what_validate_accepts() {
    let exp = everything();
    let yaml = exp.yaml();
    assert_contains(
        &yaml,
        &[
            "version: 1\nname: builder-everything\nvars: {url: \"http://127.0.0.1:8080/\"}\n",
            "target:\n  docker: {labels: {fltest.group: harness}, name: web-1}\n",
            "  select: {mode: count, value: 1}\n",
            "  - name: http\n    http: {url: \"${url}\", status: [200], timeout: 1s}\n",
            "  - name: shell\n    retries: 1\n    retry_interval: 100ms\n    command: {run: [sh, -c, \"exit 0\"]}\n",
            "  - name: port\n    tcp: {address: \"127.0.0.1:8080\"}\n",
            "during:\n  interval: 100ms\n  abort_on_failure: true\n  probes:\n    - name: mostly\n      min_success: 0.5\n",
            "faults:\n  - pause: {duration: 2s}\n  - kill: {signal: SIGKILL, after: 3s}\n",
            "recovery: {timeout: 10s, interval: 100ms}\n",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    Run::new(["validate"])
        .arg(exp.write(dir.path()))
        .output()
        .expect(0)
        .stdout_has("builder-everything.yaml: valid");
    // A mistake in a builder's piece is the binary's to find, with its line.
    let broken = Experiment::new("broken")
        .on_nothing()
        .fault("pause: {duration: 5}");
    Run::new(["validate"])
        .arg(broken.write(dir.path()))
        .output()
        .expect(2)
        .stderr_has("broken.yaml:6:23: faults[0].pause.duration");
}

#[test]
fn a_game_day_scenario_validates_with_its_experiments() {
    let dir = tempfile::tempdir().unwrap();
    everything().write(dir.path());
    let file = write(
        dir.path(),
        "day.yaml",
        &scenario("day", &["builder-everything.yaml"], true),
    );
    Run::new(["validate"]).arg(&file).output().expect(0);
}

fn records(dir: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("harness.tsv"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn a_skip_is_recorded_and_only_a_missing_dependency_fails_where_all_must_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    skip_into(d, false, "harness::a", Skip::Missing, "no tool\there");
    skip_into(d, true, "harness::b", Skip::NotApplicable, "no sch_netem");
    skip_into(d, true, "harness::c", Skip::TurnedOff, "X is set");
    let failed = std::panic::catch_unwind(|| {
        skip_into(d, true, "harness::d", Skip::Missing, "no chromium");
    });
    let message = failed.expect_err("a missing dependency fails under CI");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("harness::d: no chromium") && message.contains("install-test-deps"),
        "{message}"
    );
    let tag = |k: Skip| k.tag().to_string();
    assert_eq!(
        records(d),
        [
            [
                tag(Skip::Missing),
                "harness::a".into(),
                "no tool here".into()
            ],
            [
                tag(Skip::NotApplicable),
                "harness::b".into(),
                "no sch_netem".into()
            ],
            [tag(Skip::TurnedOff), "harness::c".into(), "X is set".into()],
            [
                tag(Skip::Missing),
                "harness::d".into(),
                "no chromium".into()
            ],
        ],
        "every skip is listed, the failing one too"
    );
}

#[test]
fn ci_or_faultline_require_all_makes_every_test_required() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert!(!require_all_from(env(&[])));
    assert!(require_all_from(env(&[("CI", "true")])));
    assert!(require_all_from(env(&[("CI", "1")])));
    assert!(!require_all_from(env(&[("CI", "false")])));
    assert!(require_all_from(env(&[("FAULTLINE_REQUIRE_ALL", "1")])));
    assert!(!require_all_from(env(&[
        ("CI", "true"),
        ("FAULTLINE_REQUIRE_ALL", "0")
    ])));
}
