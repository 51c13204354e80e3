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
    if !docker_available() {
        return;
    }
    if std::env::var_os("FAULTLINE_E2E_NO_DAEMON_RESTART").is_some() {
        eprintln!(
            "SKIPPED: FAULTLINE_E2E_NO_DAEMON_RESTART is set; the daemon-restart test did not run"
        );
        return;
    }
    let mut fleet = Fleet::new("restart");
    let web = fleet.web(&["--restart", "always"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = write(
        dir.path(),
        "r.yaml",
        &format!(
            "version: 1\nname: daemon-restart\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - pause: {{duration: 4s}}\n",
            fleet.label()
        ),
    );
    let child = faultline()
        .arg("run")
        .arg(&file)
        .args(["--report", "json"])
        .env("FAULTLINE_STATE_DIR", &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || paused(&web)));
    assert!(restart_dockerd(), "the Docker daemon did not come back");
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {}", String::from_utf8_lossy(&out.stderr)));
    assert_spec_report(&r);
    let verdict = r["verdict"].as_str().unwrap();
    assert!(
        ["passed", "revert_incomplete", "error"].contains(&verdict),
        "unclear verdict {verdict}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = faultline()
        .arg("recover")
        .env("FAULTLINE_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        wait_until(Duration::from_secs(20), || !paused(&web)),
        "left paused"
    );
    let out = faultline()
        .args(["recover", "--dry-run"])
        .env("FAULTLINE_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing to recover"));
}
