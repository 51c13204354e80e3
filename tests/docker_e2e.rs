//! End to end against the real Docker engine: the binary, real containers, and what a
//! user would observe (`docker inspect`, `docker events`, the JSON report).

mod support;

use std::time::{Duration, Instant};

use support::*;

fn report(path: &std::path::Path) -> serde_json::Value {
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_spec_report(&r);
    r
}

#[test]
fn pausing_one_of_two_web_containers() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("pause");
    let web1 = fleet.web(&[]);
    let web2 = fleet.web(&[]);
    let url = fleet.url(&web1);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "pause.yaml",
        &format!(
            "version: 1
name: pause-one-web
target:
  docker: {{labels: {{fltest.group: {group}}}, name: {web1}}}
steady_state:
  - name: web answers
    http: {{url: \"{url}\", status: [200], timeout: 1s}}
during:
  interval: 100ms
  probes:
    - name: paused web
      min_success: 0.0
      http: {{url: \"{url}\", timeout: 200ms}}
faults:
  - pause: {{duration: 2s}}
recovery: {{timeout: 10s, interval: 100ms}}
",
            group = fleet.label()
        ),
    );
    let json = dir.path().join("report.json");
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg(format!("json:{}", json.display()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&web1)),
        "docker inspect never showed the target paused during the fault"
    );
    assert!(!paused(&web2), "only the selected container is paused");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!paused(&web1), "the target is unpaused after the run");
    assert!(running(&web1));
    let r = report(&json);
    assert_eq!(r["verdict"], "passed");
    assert_eq!(r["targets"][0]["name"], web1.as_str());
    assert_eq!(r["faults"][0]["type"], "pause");
    assert_eq!(r["faults"][0]["status"], "reverted");
    let during = &r["phases"]["during"]["probes"][0];
    assert!(during["samples"].as_u64().unwrap() >= 5, "{during}");
    assert!(
        during["success_ratio"].as_f64().unwrap() < 1.0,
        "a paused server cannot answer: {during}"
    );
    assert!(r["phases"]["after"]["recovered_after_ms"].is_u64());
}

#[test]
fn a_failing_during_bar_fails_the_run_with_exit_1() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("fail");
    let web = fleet.web(&[]);
    let url = fleet.url(&web);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "fail.yaml",
        &format!(
            "version: 1
name: pause-fails-bar
target:
  docker: {{labels: {{fltest.group: {}}}}}
during:
  interval: 100ms
  probes:
    - name: must always answer
      http: {{url: \"{url}\", timeout: 200ms}}
faults:
  - pause: {{duration: 1s}}
",
            fleet.label()
        ),
    );
    let json = dir.path().join("r.json");
    let out = faultline()
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg(format!("json:{}", json.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&json);
    assert_eq!(r["verdict"], "failed");
    assert_eq!(r["phases"]["during"]["passed"], false);
    assert!(
        r["phases"]["before"].is_null(),
        "no steady_state: the phase is null"
    );
    assert!(!paused(&web));
}

#[test]
fn abort_on_failure_reverts_early() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("abort");
    let web = fleet.web(&[]);
    let url = fleet.url(&web);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "abort.yaml",
        &format!(
            "version: 1
name: abort-early
target:
  docker: {{labels: {{fltest.group: {}}}}}
during:
  interval: 100ms
  abort_on_failure: true
  probes:
    - name: must always answer
      http: {{url: \"{url}\", timeout: 200ms}}
faults:
  - pause: {{duration: 20s}}
",
            fleet.label()
        ),
    );
    let start = Instant::now();
    let out = faultline()
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg("json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the 20s pause was not cut short"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_spec_report(&r);
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "abort")
    );
    assert!(!paused(&web));
}

#[test]
fn killing_a_container_with_restart_policy_always_reports_recovery() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("kill");
    let web = fleet.web(&["--restart", "always"]);
    let id_before = fleet.id(&web);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "kill.yaml",
        &format!(
            "version: 1
name: kill-restarts
target:
  docker: {{labels: {{fltest.group: {group}}}}}
steady_state:
  - name: one running
    docker: {{labels: {{fltest.group: {group}}}, running: 1}}
faults:
  - kill: {{signal: SIGKILL}}
recovery: {{timeout: 20s, interval: 100ms}}
",
            group = fleet.label()
        ),
    );
    let json = dir.path().join("r.json");
    let out = faultline()
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg(format!("json:{}", json.display()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&json);
    assert_eq!(r["faults"][0]["type"], "kill");
    assert_eq!(r["faults"][0]["status"], "completed");
    let restarts = docker_ok(&["inspect", "-f", "{{.RestartCount}}", &web]);
    assert_eq!(
        restarts, "1",
        "the container was really killed and restarted"
    );
    assert_eq!(fleet.id(&web), id_before);
    let recovered = r["phases"]["after"]["recovered_after_ms"]
        .as_u64()
        .expect("recovery time reported");
    assert!(recovered < 20_000);
}

#[test]
fn steady_state_failing_before_touches_nothing() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("notsteady");
    let web = fleet.web(&[]);
    let since = docker_ok(&["version", "-f", "{{.Server.Version}}"]);
    assert!(!since.is_empty());
    let start = chrono_now();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "ns.yaml",
        &format!(
            "version: 1
name: not-steady
target:
  docker: {{labels: {{fltest.group: {}}}}}
steady_state:
  - name: impossible
    command: {{run: [sh, -c, \"exit 1\"]}}
    retries: 1
    retry_interval: 100ms
faults:
  - pause: {{duration: 1s}}
  - kill: {{}}
",
            fleet.label()
        ),
    );
    let out = faultline()
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg("json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_spec_report(&r);
    assert_eq!(r["verdict"], "not_steady");
    assert_eq!(r["phases"]["before"]["probes"][0]["attempts"], 2);
    assert!(r["faults"].as_array().unwrap().is_empty());
    assert!(r["phases"]["during"].is_null() && r["phases"]["after"].is_null());
    assert!(running(&web) && !paused(&web));
    let end = chrono_now();
    let events = docker_ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &end,
        "--filter",
        &format!("container={web}"),
        "--format",
        "{{.Action}}",
    ]);
    let touched: Vec<&str> = events
        .lines()
        .filter(|a| ["pause", "kill", "die", "stop"].contains(a))
        .collect();
    assert!(touched.is_empty(), "the target was touched: {touched:?}");
}

fn chrono_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .to_string()
}

#[test]
fn a_selector_that_matches_nothing_is_no_targets() {
    if !docker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "none.yaml",
        "version: 1\nname: no-match\ntarget:\n  docker: {labels: {fltest.group: surely-nobody-uses-this}}\nfaults:\n  - pause: {duration: 1s}\n",
    );
    let out = faultline()
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg("json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_spec_report(&r);
    assert_eq!(r["verdict"], "no_targets");
    assert!(r["targets"].as_array().unwrap().is_empty());
}

#[test]
fn count_percent_and_seed_select_the_same_containers_each_time() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("seed");
    for _ in 0..5 {
        fleet.web(&[]);
    }
    let dir = tempfile::tempdir().unwrap();
    let chosen = |select: &str, seed: u64| -> Vec<String> {
        let file = write(
            dir.path(),
            "s.yaml",
            &format!(
                "version: 1\nname: seeded\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\n  select: {select}\nfaults:\n  - pause: {{duration: 100ms}}\n",
                fleet.label()
            ),
        );
        let out = faultline()
            .arg("run")
            .arg(&file)
            .args(["--seed", &seed.to_string(), "--report", "json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["seed"], seed);
        r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let a = chosen("{mode: count, value: 2}", 11);
    assert_eq!(a.len(), 2);
    assert_eq!(chosen("{mode: count, value: 2}", 11), a);
    let p = chosen("{mode: percent, value: 50}", 5);
    assert_eq!(p.len(), 3, "50% of 5 rounds up to 3");
    assert_eq!(chosen("{mode: percent, value: 50}", 5), p);
    let differs = (12..20).any(|seed| chosen("{mode: count, value: 2}", seed) != a);
    assert!(differs, "another seed picks other containers");
}

#[test]
fn plan_and_dry_run_resolve_real_targets_and_touch_nothing() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("dry");
    let web = fleet.web(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "d.yaml",
        &format!(
            "version: 1\nname: dry\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - pause: {{duration: 30s}}\n",
            fleet.label()
        ),
    );
    for args in [vec!["plan"], vec!["run", "--dry-run"]] {
        let out = faultline().args(&args).arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&web), "{stdout}");
        assert!(stdout.contains("Nothing was touched"));
        assert!(!paused(&web));
    }
}

#[test]
fn an_unreachable_daemon_is_exit_4_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "u.yaml",
        "version: 1\nname: unreachable\ntarget:\n  docker: {host: \"unix:///nonexistent/docker.sock\", labels: {app: web}}\nfaults:\n  - pause: {duration: 1s}\n",
    );
    let out = faultline().arg("run").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach Docker at unix:///nonexistent/docker.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was touched"));
}

#[test]
fn a_container_removed_mid_fault_is_reported_not_a_crash() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("vanish");
    let web = fleet.web(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "v.yaml",
        &format!(
            "version: 1\nname: vanish\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - pause: {{duration: 3s}}\n",
            fleet.label()
        ),
    );
    let state = dir.path().join("state");
    let child = faultline()
        .arg("run")
        .arg(&file)
        .args(["--report", "json"])
        .env("FAULTLINE_STATE_DIR", &state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || paused(&web)));
    docker_ok(&["rm", "-f", &web]);
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_spec_report(&r);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        r["faults"][0]["error"]
            .as_str()
            .unwrap()
            .contains("vanished"),
        "{}",
        r["faults"][0]
    );
    assert!(
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "target_vanished")
    );
    let out = faultline()
        .args(["recover", "--dry-run"])
        .env("FAULTLINE_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Nothing to recover"),
        "the journal entry stayed open"
    );
}

#[test]
fn a_large_blast_radius_needs_yes() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("blast");
    for _ in 0..4 {
        fleet.web(&[]);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "all.yaml",
        &format!(
            "version: 1\nname: all-four\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\n  select: {{mode: all}}\nfaults:\n  - pause: {{duration: 200ms}}\n",
            fleet.label()
        ),
    );
    let start = chrono_now();
    let out = faultline()
        .arg("run")
        .arg(&file)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs confirmation: pass --yes") && stderr.contains("nothing was touched"),
        "{stderr}"
    );
    let events = docker_ok(&[
        "events",
        "--since",
        &start,
        "--until",
        &chrono_now(),
        "--filter",
        &format!("label=fltest.group={}", fleet.label()),
        "--filter",
        "event=pause",
        "--format",
        "{{.Action}}",
    ]);
    assert!(events.is_empty(), "a container was paused: {events}");
    let out = faultline()
        .arg("run")
        .arg(&file)
        .args(["--yes", "--report", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["faults"].as_array().unwrap().len(), 4);
}

#[test]
fn protected_containers_are_never_selected() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("protected");
    let open = fleet.web(&[]);
    let guarded = fleet.web(&["--label", "faultline.protected=true"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "p.yaml",
        &format!(
            "version: 1\nname: protected\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\n  select: {{mode: all}}\nfaults:\n  - pause: {{duration: 100ms}}\n",
            fleet.label()
        ),
    );
    let out = faultline()
        .arg("run")
        .arg(&file)
        .args(["--report", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![open.as_str()]);
    assert!(!names.contains(&guarded.as_str()));
}

#[test]
fn the_audit_log_records_every_action_and_no_secret() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("audit");
    fleet.web(&["--restart", "always"]);
    fleet.web(&["--restart", "always"]);
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let file = write(
        dir.path(),
        "a.yaml",
        &format!(
            "version: 1\nname: audited\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\n  select: {{mode: all}}\nfaults:\n  - pause: {{duration: 200ms}}\n  - kill: {{signal: \"${{env:FAULTLINE_TEST_SIGNAL}}\", after: 300ms}}\n",
            fleet.label()
        ),
    );
    let out = faultline()
        .arg("run")
        .arg(&file)
        .arg("--audit-log")
        .arg(&audit)
        .env("FAULTLINE_TEST_SIGNAL", "SIGTERM")
        .env("FAULTLINE_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |action: &str, fault: &str| {
        records
            .iter()
            .filter(|r| r["action"] == action && r["fault"] == fault)
            .count()
    };
    assert_eq!(count("inject", "pause"), 2);
    assert_eq!(count("revert", "pause"), 2);
    assert_eq!(count("inject", "kill"), 2);
    for r in &records {
        for key in [
            "at",
            "user",
            "host",
            "experiment",
            "target",
            "parameters",
            "result",
        ] {
            assert!(r[key].is_string(), "audit record lacks {key}: {r}");
        }
    }
    assert!(
        !text.contains("SIGTERM"),
        "a value from the environment reached the audit log: {text}"
    );
    assert!(text.contains("kill with ***"));
}

#[test]
fn a_third_interrupt_quits_and_recover_finishes_the_job() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("sigint3");
    let web = fleet.web(&[]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = write(
        dir.path(),
        "i.yaml",
        &format!(
            "version: 1\nname: interrupted\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - pause: {{duration: 30s}}\n",
            fleet.label()
        ),
    );
    let child = faultline()
        .arg("run")
        .arg(&file)
        .env("FAULTLINE_STATE_DIR", &state)
        .env("FAULTLINE_NO_DEAD_MANS_SWITCH", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || paused(&web)));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    for _ in 0..3 {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reverting every active fault"), "{stderr}");
    let out = faultline()
        .arg("recover")
        .env("FAULTLINE_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!paused(&web), "recover left the container paused");
    let out = faultline()
        .args(["recover", "--dry-run"])
        .env("FAULTLINE_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing to recover"));
}

/// Accepts HTTP requests on 127.0.0.1 and records their bodies.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        b.lock().unwrap().push(body.to_string());
                        break;
                    }
                }
            }
            let _ = s.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, bodies)
}

#[test]
fn notifications_and_metrics_never_change_the_verdict() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("notify");
    fleet.web(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "n.yaml",
        &format!(
            "version: 1\nname: notified\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - pause: {{duration: 200ms}}\n",
            fleet.label()
        ),
    );
    let (url, bodies) = receiver();
    let metrics = dir.path().join("faultline.prom");
    let out = faultline()
        .arg("run")
        .arg(&file)
        .args(["--notify", &url, "--notify", "http://127.0.0.1:1/down"])
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["--pushgateway", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = bodies.lock().unwrap().clone();
    let events: Vec<String> = got
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(events, vec!["run_started", "run_finished"]);
    let finished: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(finished["verdict"], "passed");
    assert!(finished["text"].as_str().unwrap().contains("notified"));
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("faultline_run_exit_code{experiment=\"notified\"} 0"),
        "{text}"
    );
}

#[test]
fn the_demo_runs_and_removes_itself() {
    if !docker_available() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let out = faultline()
        .arg("demo")
        .env("FAULTLINE_STATE_DIR", state.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Verdict: PASSED"), "{stdout}");
    assert!(stdout.contains("pause for 3s"));
    let left = docker_ok(&["ps", "-aq", "--filter", "label=faultline.demo=true"]);
    assert!(left.is_empty(), "the demo left containers: {left}");
    let networks = docker_ok(&[
        "network",
        "ls",
        "-q",
        "--filter",
        "label=faultline.demo=true",
    ]);
    assert!(networks.is_empty(), "the demo left its network");
}
