//! Named targets on real containers: several targets in one experiment, each fault on its
//! own target and its own schedule, observed with the docker CLI.

mod support;

use std::time::{Duration, Instant};

use support::docker::{Fleet, docker_fleet, paused, running, wait_until};
use support::{Experiment, Run};

/// Milliseconds between two RFC 3339 timestamps of the report.
fn ms_between(from: &serde_json::Value, to: &serde_json::Value) -> i64 {
    let t = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp")).unwrap()
    };
    (t(to) - t(from)).num_milliseconds()
}

/// `apis` API containers and one cache container, and an experiment `name` with the
/// named targets `api` (one of the APIs) and `cache`; the faults are the caller's.
fn api_and_cache(name: &str, apis: usize) -> Option<(Fleet, Vec<String>, String, Experiment)> {
    let mut fleet = docker_fleet(name)?;
    let apis = fleet.webs(apis, &["--label", "fltest.role=api"]);
    let cache = fleet.web(&["--label", "fltest.role=cache"]);
    let exp = Experiment::new(name)
        .target_on("api", &fleet, "api", "{mode: one, seed: 7}")
        .target_on("cache", &fleet, "cache", "{mode: one}");
    Some((fleet, apis, cache, exp))
}

#[test]
fn the_cache_is_paused_while_one_of_three_api_containers_is_killed() {
    let Some((_fleet, apis, cache, exp)) = api_and_cache("cache-paused-api-killed", 3) else {
        return;
    };
    let exp = exp
        .fault("pause: {target: cache, duration: 4s}")
        .fault("kill: {target: api, after: 1s}");
    let html = tempfile::tempdir().unwrap();
    // The plan resolves each target on its own and touches nothing.
    let plan = Run::new(["plan"]).arg(exp.write(html.path())).output();
    plan.expect(0)
        .stdout_has("Target `api`: Resolved on ")
        .stdout_has("1 of 3 matching target(s)")
        .stdout_has("Target `cache`: Resolved on ")
        .stdout_has(&format!("  - {cache} ("))
        .stdout_has("fault 2 on api: kill");
    assert!(!paused(&cache));
    let html_path = html.path().join("report.html");
    let run = Run::experiment(&exp)
        .json_report()
        .arg("--report")
        .arg(format!("html:{}", html_path.display()))
        .spawn();

    // Seen from outside: the cache paused first, then an API container gone while the
    // cache is still paused.
    assert!(
        wait_until(Duration::from_secs(15), || paused(&cache)),
        "docker inspect never showed the cache paused"
    );
    let paused_seen = Instant::now();
    let dead = || apis.iter().filter(|a| !running(a)).count();
    assert!(
        wait_until(Duration::from_secs(10), || dead() == 1),
        "no API container was killed"
    );
    let killed_seen = paused_seen.elapsed();
    assert!(
        paused(&cache),
        "the cache is still paused when the API container dies ({killed_seen:?} after the pause was seen)"
    );

    let out = run.wait();
    out.expect(0);
    // Both reverted or done, seen from outside: the cache answers again, two APIs run.
    assert!(
        !paused(&cache),
        "docker inspect shows the cache still paused"
    );
    assert!(running(&cache));
    assert_eq!(dead(), 1, "exactly one API container was killed");
    let killed = apis.iter().find(|a| !running(a)).unwrap();

    let r = out.report();
    assert_eq!(r["verdict"], "passed");
    let faults = r["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2, "{faults:?}");
    let pause = faults.iter().find(|f| f["type"] == "pause").unwrap();
    let kill = faults.iter().find(|f| f["type"] == "kill").unwrap();
    assert_eq!(
        (&pause["target_name"], &pause["target"], &pause["status"]),
        (&"cache".into(), &cache.as_str().into(), &"reverted".into())
    );
    assert_eq!(
        (&kill["target_name"], &kill["target"], &kill["status"]),
        (&"api".into(), &killed.as_str().into(), &"completed".into())
    );
    // Each on its own schedule: the kill 1 s into the pause, the pause held 4 s.
    let gap = ms_between(&pause["injected_at"], &kill["injected_at"]);
    assert!(
        (900..2000).contains(&gap),
        "the kill started {gap} ms after the pause; 1 s was asked"
    );
    let held = ms_between(&pause["injected_at"], &pause["reverted_at"]);
    assert!((3900..6000).contains(&held), "the pause held {held} ms");
    // The targets, per name, and each selection.
    let targets = r["targets"].as_array().unwrap();
    for (name, target) in [("cache", &cache), ("api", killed)] {
        assert!(
            targets
                .iter()
                .any(|t| t["target_name"] == name && t["name"] == target.as_str()),
            "{name}: {target} not among {targets:?}"
        );
    }
    assert_eq!(r["selection"], serde_json::Value::Null);
    assert_eq!(r["selections"]["api"]["matched"], 3);
    assert_eq!(r["selections"]["api"]["selected"], 1);
    assert_eq!(r["selections"]["cache"]["selected"], 1);

    // The HTML timeline: one row per fault, each with its target.
    let page = std::fs::read_to_string(&html_path).unwrap();
    for row in [format!("cache: {cache}"), format!("api: {killed}")] {
        assert!(
            page.contains(&format!("<title>{row}</title>")),
            "no timeline row `{row}` in the HTML report"
        );
    }
    // Every other format names the targets too.
    let json = out.report_text().to_string();
    let saved = html.path().join("result.json");
    std::fs::write(&saved, json).unwrap();
    for format in ["markdown", "junit"] {
        let text = Run::report(&[&saved], format)
            .output()
            .expect(0)
            .stdout
            .clone();
        for piece in [format!("cache: {cache}"), format!("api: {killed}")] {
            assert!(text.contains(&piece), "{format} lacks `{piece}`:\n{text}");
        }
    }
}

/// faultline killed mid-fault: `recover` reverts each fault on its own target, and says
/// which named target each journal entry was for.
#[test]
fn recover_names_the_target_of_each_entry() {
    let Some((_fleet, apis, cache, exp)) = api_and_cache("two-paused", 1) else {
        return;
    };
    let api = &apis[0];
    let exp = exp
        .fault("pause: {target: cache, duration: 30s}")
        .fault("pause: {target: api, duration: 30s}");
    let state = support::StateDir::new();
    let run = Run::experiment(&exp)
        .state(&state)
        .no_dead_mans_switch()
        .spawn();
    assert!(
        wait_until(Duration::from_secs(15), || paused(&cache) && paused(api)),
        "docker inspect never showed both paused"
    );
    run.signal(nix::sys::signal::Signal::SIGKILL);
    run.wait();
    assert!(
        paused(&cache) && paused(api),
        "left paused by the killed run"
    );
    let out = state.recover();
    for line in [format!("on cache: {cache}"), format!("on api: {api}")] {
        assert!(
            out.stdout.contains(&line),
            "`{line}` not in:\n{}",
            out.stdout
        );
    }
    assert!(!paused(&cache) && !paused(api), "recover unpaused both");
    assert!(state.is_clean());
}
