//! The Docker daemon restarted in the middle of a fault: the run ends with a clear verdict
//! and `faultline recover` leaves nothing behind. A test binary of its own, so that no
//! other test runs while the daemon is down.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// Restarts dockerd with the command line it runs with now; returns false if it cannot.
fn restart_dockerd() -> bool {
    let out = Command::new("pidof").arg("dockerd").output();
    let Ok(out) = out else { return false };
    let Some(pid) = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
    else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let gone = wait_until(Duration::from_secs(60), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(gone, "dockerd did not stop");
    // Started from a shell that exits at once, so dockerd is adopted by init and keeps
    // running after the test, as it was before.
    let log = root().join("target/dockerd-restart.log");
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let started = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "setsid {} >'{}' 2>&1 </dev/null &",
            quoted.join(" "),
            log.display()
        ))
        .stdin(Stdio::null())
        .status()
        .expect("sh runs");
    assert!(started.success());
    wait_until(Duration::from_secs(60), || {
        docker(&["info"]).status.success()
    })
}

#[test]
fn a_daemon_restart_mid_fault_ends_clearly_and_recover_leaves_nothing() {
    if std::env::var_os("FAULTLINE_E2E_NO_DAEMON_RESTART").is_some() {
        skip(
            Skip::TurnedOff,
            "FAULTLINE_E2E_NO_DAEMON_RESTART is set; the daemon-restart test did not run",
        );
        return;
    }
    let Some(mut fleet) = docker_fleet("restart") else {
        return;
    };
    let web = fleet.web(&["--restart", "always"]);
    let exp = fleet
        .experiment("daemon-restart")
        .fault("pause: {duration: 4s}");
    let state = StateDir::new();
    let run = Run::experiment(&exp).json_on_stdout().state(&state).spawn();
    assert!(wait_until(Duration::from_secs(10), || paused(&web)));
    assert!(restart_dockerd(), "the Docker daemon did not come back");
    let out = run.wait();
    let r = out.report();
    let verdict = r["verdict"].as_str().unwrap();
    assert!(
        ["passed", "revert_incomplete", "error"].contains(&verdict),
        "unclear verdict {verdict}: {}",
        out.stderr
    );
    state.recover();
    assert!(
        wait_until(Duration::from_secs(20), || !paused(&web)),
        "left paused"
    );
    assert!(state.is_clean());
}
