//! Network faults against real containers: a tbf rate limit measured from the host, both
//! ways into the namespace, the refusals, and a real added delay where netem exists.
//!
//! Exactly one of the netem tests applies on any kernel: with `sch_netem` a delay is
//! measured, without it the refusal is checked. The other records itself as "not
//! applicable on this kernel", and `scripts/test.sh` lists it.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Seconds to download `url` fully, at most `limit`.
fn download_secs(url: &str, limit: u64) -> f64 {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-m", &limit.to_string()])
        .args(["-w", "%{time_total} %{size_download}", url])
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

/// The fastest of three downloads.
fn best_download_secs(url: &str) -> f64 {
    (0..3)
        .map(|_| download_secs(url, 10))
        .fold(f64::MAX, f64::min)
}

/// A web container serving a 2 MiB file; returns its name and the file's URL.
fn served_web(fleet: &mut Fleet) -> (String, String) {
    let web = fleet.web(&[]);
    let dd = ["dd", "if=/dev/zero", "of=/www/big", "bs=1024", "count=2048"];
    docker_ok(&[&["exec", web.as_str()][..], &dd[..]].concat());
    let url = format!("{}big", fleet.url(&web));
    (web, url)
}

fn rate_limit_slows_the_download(strategy: &str) {
    let Some(mut fleet) = docker_fleet(&format!("rate-{strategy}")) else {
        return;
    };
    let (web, url) = served_web(&mut fleet);
    let before = best_download_secs(&url);
    let exp = fleet.experiment("rate-limit").fault(&format!(
        "network: {{rate: 1mbit, duration: 8s, strategy: {strategy}, interface: eth0}}"
    ));
    let run = Run::with_tc_image(&exp).json_report().spawn();
    assert!(
        wait_until(Duration::from_secs(10), || qdiscs(&web).contains("fa17:")),
        "no qdisc appeared"
    );
    assert!(qdiscs(&web).contains("tbf fa17: root"), "{}", qdiscs(&web));
    if strategy == "sidecar" {
        assert_eq!(helpers(&web), 1, "one helper shares the namespace");
    }
    let during = download_secs(&url, 4);
    let out = run.wait();
    out.expect(0);
    let after = best_download_secs(&url);
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
    assert_eq!(out.report()["faults"][0]["status"], "reverted");
}

#[test]
fn rate_limit_with_the_host_strategy() {
    rate_limit_slows_the_download("host");
}

#[test]
fn rate_limit_with_the_sidecar_strategy() {
    rate_limit_slows_the_download("sidecar");
}

/// A fleet when this kernel has (`with_netem`) or lacks sch_netem, as the test needs,
/// and Docker answers; otherwise a recorded skip.
fn netem_fleet(test: &str, with_netem: bool, why_not: &str) -> Option<Fleet> {
    if !require_kernel(kernel_has_netem() == with_netem, why_not) {
        return None;
    }
    docker_fleet(test)
}

fn kernel_has_netem() -> bool {
    std::process::Command::new("unshare")
        .args(["--net", "tc", "qdisc", "add", "dev", "lo", "root"])
        .args(["netem", "delay", "1ms"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn without_netem_a_delay_is_refused_and_nothing_is_left() {
    let Some(mut fleet) = netem_fleet(
        "nonetem",
        false,
        "this kernel has sch_netem, so the missing-netem refusal cannot be shown here \
         (a_delay_adds_the_configured_latency runs instead)",
    ) else {
        return;
    };
    let web = fleet.web(&[]);
    for strategy in ["host", "sidecar"] {
        let exp = fleet.experiment("delay").fault(&format!(
            "network: {{delay: 100ms, jitter: 10ms, duration: 5s, strategy: {strategy}, engine: netem}}"
        ));
        let r = Run::with_tc_image(&exp).json_on_stdout().expect_report(4);
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
    let Some((fleet, web)) = one_web("foreign") else {
        return;
    };
    let htb = [
        "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb",
    ];
    assert!(netns_command(&web, &htb).status().unwrap().success());
    for strategy in ["host", "sidecar"] {
        let exp = fleet.experiment("foreign").fault(&format!(
            "network: {{rate: 1mbit, duration: 2s, strategy: {strategy}}}"
        ));
        let r = Run::with_tc_image(&exp).json_on_stdout().expect_report(4);
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
    let Some(mut fleet) = netem_fleet(
        "delay",
        true,
        "no sch_netem in this kernel (a scratch network namespace refuses a netem qdisc), \
         so a netem delay cannot be measured here \
         (without_netem_a_delay_is_refused_and_nothing_is_left runs instead)",
    ) else {
        return;
    };
    let web = fleet.web(&[]);
    let addr = fleet.host_port(&web);
    let base = connect_p50(&addr, 20);
    let exp = fleet
        .experiment("delay")
        .fault("network: {delay: 100ms, duration: 6s}");
    let run = Run::experiment(&exp).spawn();
    assert!(wait_until(Duration::from_secs(10), || qdiscs(&web).contains("fa17:")));
    let during = connect_p50(&addr, 20);
    run.wait().expect(0);
    let added = during - base;
    assert!(
        (80.0..=120.0).contains(&added),
        "added {added:.1}ms, expected 100ms ± 20%"
    );
}
