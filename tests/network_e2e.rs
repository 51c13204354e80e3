//! Network faults against real containers: a tbf rate limit measured from the host, both
//! ways into the namespace, the refusals, and a real added delay where netem exists.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

const TC_IMAGE: &str = "faultline-test/tc:1";

/// Seconds to download `url` fully, at most `limit`.
fn download_secs(url: &str, limit: u64) -> f64 {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-m",
            &limit.to_string(),
            "-w",
            "%{time_total} %{size_download}",
            url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let t: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    let size: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    // A download cut by the time limit counts as the time the whole file would take.
    if size > 0.0 && size < 2_097_152.0 {
        t * 2_097_152.0 / size
    } else {
        t
    }
}

fn served_web(fleet: &mut Fleet) -> (String, String) {
    let web = fleet.web(&[]);
    docker_ok(&[
        "exec",
        &web,
        "dd",
        "if=/dev/zero",
        "of=/www/big",
        "bs=1024",
        "count=2048",
    ]);
    let url = format!("{}big", fleet.url(&web));
    (web, url)
}

fn rate_limit_slows_the_download(strategy: &str) {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new(&format!("rate-{strategy}"));
    let (web, url) = served_web(&mut fleet);
    let before = (0..3)
        .map(|_| download_secs(&url, 10))
        .fold(f64::MAX, f64::min);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "rate.yaml",
        &format!(
            "version: 1\nname: rate-limit\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - network: {{rate: 1mbit, duration: 8s, strategy: {strategy}, interface: eth0}}\n",
            fleet.label()
        ),
    );
    let json = dir.path().join("r.json");
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .args([
            "--tc-image",
            TC_IMAGE,
            "--report",
            &format!("json:{}", json.display()),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || qdiscs(&web).contains("fa17:")),
        "no qdisc appeared"
    );
    assert!(qdiscs(&web).contains("tbf fa17: root"), "{}", qdiscs(&web));
    if strategy == "sidecar" {
        assert_eq!(helpers(&web), 1, "one helper shares the namespace");
    }
    let during = download_secs(&url, 4);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let after = (0..3)
        .map(|_| download_secs(&url, 10))
        .fold(f64::MAX, f64::min);
    assert!(
        during >= 4.0 * before.max(0.05),
        "during {during:.2}s vs before {before:.2}s: not 4x slower"
    );
    assert!(
        after < during / 4.0,
        "after {after:.2}s vs during {during:.2}s: not back to normal"
    );
    assert!(
        !qdiscs(&web).contains("fa17:"),
        "the qdisc is still there: {}",
        qdiscs(&web)
    );
    assert_eq!(helpers(&web), 0, "a helper was left behind");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_spec_report(&r);
    assert_eq!(r["faults"][0]["status"], "reverted");
}

#[test]
fn rate_limit_with_the_host_strategy() {
    rate_limit_slows_the_download("host");
}

#[test]
fn rate_limit_with_the_sidecar_strategy() {
    rate_limit_slows_the_download("sidecar");
}

fn kernel_has_netem() -> bool {
    std::process::Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn without_netem_a_delay_is_refused_and_nothing_is_left() {
    if !docker_available() {
        return;
    }
    if kernel_has_netem() {
        eprintln!(
            "SKIPPED: this kernel has sch_netem; the missing-netem path cannot be shown here"
        );
        return;
    }
    let mut fleet = Fleet::new("nonetem");
    let web = fleet.web(&[]);
    let dir = tempfile::tempdir().unwrap();
    for strategy in ["host", "sidecar"] {
        let file = write(
            dir.path(),
            "d.yaml",
            &format!(
                "version: 1\nname: delay\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - network: {{delay: 100ms, jitter: 10ms, duration: 5s, strategy: {strategy}, engine: netem}}\n",
                fleet.label()
            ),
        );
        let out = faultline()
            .arg("run")
            .arg(&file)
            .args(["--tc-image", TC_IMAGE, "--report", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_spec_report(&r);
        assert_eq!(r["verdict"], "error");
        let msg = r["events"].as_array().unwrap().last().unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("sch_netem") && msg.contains("modprobe"),
            "{msg}"
        );
        assert!(!qdiscs(&web).contains("fa17:"));
        assert_eq!(helpers(&web), 0);
    }
}

#[test]
fn a_foreign_root_qdisc_is_refused_and_left_alone() {
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("foreign");
    let web = fleet.web(&[]);
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &web]);
    let added = std::process::Command::new("nsenter")
        .args([
            "-t", &pid, "-n", "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb",
        ])
        .status()
        .unwrap();
    assert!(added.success());
    let dir = tempfile::tempdir().unwrap();
    for strategy in ["host", "sidecar"] {
        let file = write(
            dir.path(),
            "f.yaml",
            &format!(
                "version: 1\nname: foreign\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - network: {{rate: 1mbit, duration: 2s, strategy: {strategy}}}\n",
                fleet.label()
            ),
        );
        let out = faultline()
            .arg("run")
            .arg(&file)
            .args(["--tc-image", TC_IMAGE, "--report", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let err = r["faults"][0]["error"].as_str().unwrap();
        assert!(
            err.contains("faultline did not create") && err.contains("htb"),
            "{err}"
        );
        assert!(
            qdiscs(&web).contains("qdisc htb 1: root"),
            "the foreign qdisc was touched: {}",
            qdiscs(&web)
        );
        assert_eq!(helpers(&web), 0);
    }
}

/// p50 of TCP connect times to `addr`, in milliseconds.
fn connect_p50(addr: &str, n: usize) -> f64 {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let mut times: Vec<f64> = (0..n)
        .filter_map(|_| {
            let t = Instant::now();
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
            Some(t.elapsed().as_secs_f64() * 1000.0)
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[times.len() / 2]
}

#[test]
fn a_delay_adds_the_configured_latency() {
    if !docker_available() {
        return;
    }
    if !kernel_has_netem() {
        eprintln!(
            "SKIPPED: a_delay_adds_the_configured_latency: a scratch network namespace does not accept a netem qdisc (no sch_netem in this kernel)"
        );
        return;
    }
    let mut fleet = Fleet::new("delay");
    let web = fleet.web(&[]);
    let addr = fleet
        .url(&web)
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let base = connect_p50(&addr, 20);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "delay.yaml",
        &format!(
            "version: 1\nname: delay\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - network: {{delay: 100ms, duration: 6s}}\n",
            fleet.label()
        ),
    );
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || qdiscs(&web).contains("fa17:")));
    let during = connect_p50(&addr, 20);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let added = during - base;
    assert!(
        (80.0..=120.0).contains(&added),
        "added {added:.1}ms, expected 100ms ± 20%"
    );
}
