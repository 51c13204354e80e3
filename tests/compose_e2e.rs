//! Experiments that compose (issue 20), on real containers: latency SLOs over the fault
//! window, command faults with a journaled rollback.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// How long one GET to `url` takes, measured here (the independent check).
fn time_get(url: &str) -> Duration {
    let start = Instant::now();
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", url])
        .status()
        .expect("curl runs");
    assert!(out.success(), "curl {url} failed");
    start.elapsed()
}

/// A p95 bound of 300 ms on the API while a 2 s pause freezes a container: aimed at the
/// API, the pause breaks the bound (exit 1, the measured p95 in the report) although every
/// sample succeeds; aimed at a container off the request path, the same experiment passes.
#[test]
fn a_p95_bound_the_fault_breaks_fails_the_run_and_holds_without_it() {
    let Some(mut fleet) = docker_fleet("slo") else {
        return;
    };
    let api = fleet.web(&[]);
    let elsewhere = fleet.web(&[]);
    let url = fleet.url(&api);
    let experiment = |name: &str, victim: &str| {
        fleet
            .experiment(name)
            .only(victim)
            .during(
                "200ms",
                Probe::http(&url)
                    .named("api fast")
                    .timeout("5s")
                    .setting("latency", "{p95: 300ms}"),
            )
            .fault("pause: {duration: 2s}")
    };

    // The fault on the request path: a request made here while it is paused takes until
    // the thaw.
    let run = Run::experiment(&experiment("slo-broken", &api))
        .json_report()
        .spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&api)),
        "the API container was never paused"
    );
    let seen_here = time_get(&url);
    let out = run.wait();
    let r = out.expect(1).report();
    assert!(
        seen_here >= Duration::from_millis(800),
        "a request during the pause took only {seen_here:?}"
    );
    let p = &r["phases"]["during"]["probes"][0];
    assert_eq!(p["success_ratio"], 1.0, "every sample answered: {p}");
    let bound = &p["latency_bounds"][0];
    assert_eq!(bound["percentile"], "p95");
    assert_eq!(bound["bound_ms"], 300);
    assert_eq!(bound["passed"], false);
    let measured = bound["measured_ms"].as_u64().unwrap();
    assert!(measured >= 800, "measured p95 {measured}ms: {p}");
    assert_eq!(p["latency_ms"]["p95"].as_u64(), Some(measured));
    // The measured value agrees with the samples the report lists.
    let mut lat: Vec<u64> = p["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["latency_ms"].as_u64().unwrap())
        .collect();
    lat.sort_unstable();
    let rank = ((0.95 * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
    assert_eq!(lat[rank], measured, "{lat:?}");
    assert_contains(
        &event_message(&r, "verdict"),
        &[&format!("`api fast`: p95 {measured}ms > 300ms")],
    );
    assert!(!paused(&api));

    // The same experiment with the pause off the request path passes.
    let r = Run::experiment(&experiment("slo-held", &elsewhere))
        .json_report()
        .expect_report(0);
    let p = &r["phases"]["during"]["probes"][0];
    assert!(p["samples"].as_u64().unwrap() >= 5, "{p}");
    let bound = &p["latency_bounds"][0];
    assert_eq!(bound["passed"], true, "{p}");
    assert!(bound["measured_ms"].as_u64().unwrap() <= 300, "{p}");
    assert!(!paused(&elsewhere));
}
