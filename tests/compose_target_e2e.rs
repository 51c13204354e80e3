//! `target.docker.compose` against real containers carrying the labels Compose sets: only
//! the named project's named service is selected.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn compose_selects_one_service_of_one_project() {
    let Some(mut fleet) = docker_fleet("compose") else {
        return;
    };
    let project = format!("flt-{}", fleet.group);
    let label = |k: &str, v: &str| format!("{k}={v}");
    let (p, web, db) = (
        label("com.docker.compose.project", &project),
        label("com.docker.compose.service", "web"),
        label("com.docker.compose.service", "db"),
    );
    let other = label("com.docker.compose.project", &format!("{project}-other"));
    let web1 = fleet.web(&["--label", &p, "--label", &web]);
    let db1 = fleet.web(&["--label", &p, "--label", &db]);
    let stranger = fleet.web(&["--label", &other, "--label", &web]);
    let exp = Experiment::new("compose-web")
        .docker(&format!("compose: {{project: {project}, service: web}}"))
        .select("{mode: all}")
        .fault("pause: {duration: 2s}");
    let run = Run::experiment(&exp).json_report().spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&web1)),
        "the project's web container was never paused"
    );
    assert!(!paused(&db1), "another service of the project was paused");
    assert!(!paused(&stranger), "another project's web was paused");
    let r = run.wait().expect(0).report();
    let names: Vec<&str> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [web1.as_str()]);
    assert!(!paused(&web1));
}
