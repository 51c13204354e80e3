//! Network faults against real containers: a tbf rate limit measured from the host, both
//! ways into the namespace, the refusals, a real added delay where netem exists, and
//! ingress shaping through faultline's IFB device measured from inside the containers.
//!
//! Exactly one of the netem tests applies on any kernel: with `sch_netem` a delay is
//! measured, without it the refusal is checked. The other records itself as "not
//! applicable on this kernel", and `scripts/test.sh` lists it.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Seconds for `curl` (run on the host or inside a namespace) to download `url` of
/// `size` bytes, at most `limit`: a download cut by the limit counts as the time the
/// whole would take.
fn timed_download(mut curl: std::process::Command, url: &str, size: f64, limit: u64) -> f64 {
    let out = curl
        .args(["-s", "-o", "/dev/null", "-m", &limit.to_string()])
        .args(["-w", "%{time_total} %{size_download}", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let t: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    let got: f64 = parts.next().unwrap_or("0").parse().unwrap_or(0.0);
    assert!(got > 0.0, "nothing was downloaded from {url}");
    t * size / got.min(size)
}

const MIB2: f64 = 2_097_152.0;

/// Seconds for the host to download `url` (2 MiB), at most `limit`.
fn download_secs(url: &str, limit: u64) -> f64 {
    timed_download(std::process::Command::new("curl"), url, MIB2, limit)
}

/// The fastest of three.
fn best_of_3(f: impl Fn() -> f64) -> f64 {
    (0..3).map(|_| f()).fold(f64::MAX, f64::min)
}

fn best_download_secs(url: &str) -> f64 {
    best_of_3(|| download_secs(url, 10))
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
    // Egress, and ingress (which would go through the IFB device).
    for (strategy, direction) in [
        ("host", "egress"),
        ("sidecar", "egress"),
        ("host", "ingress"),
    ] {
        let exp = fleet.experiment("delay").fault(&format!(
            "network: {{delay: 100ms, jitter: 10ms, duration: 5s, strategy: {strategy}, engine: netem, direction: {direction}}}"
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
        assert_eq!(ingress_leftovers(&web), Vec::<String>::new());
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
        refused_and_left_alone(&exp, &web, &["htb"], "qdisc htb 1: root");
    }
    // The same for an ingress qdisc: an ingress fault on tc refuses to replace it.
    let ingress = [
        "tc", "qdisc", "add", "dev", "eth0", "handle", "ffff:", "ingress",
    ];
    assert!(netns_command(&web, &ingress).status().unwrap().success());
    let exp = fleet
        .experiment("foreign-ingress")
        .fault("network: {rate: 1mbit, duration: 2s, direction: ingress, strategy: host}");
    refused_and_left_alone(&exp, &web, &["ingress qdisc"], "qdisc ingress ffff:");
    assert!(in_netns(&web, &["ip", "link", "show", "ifb-fa17"]).is_empty());
}

/// The run refuses (exit 4) because of a qdisc faultline did not create, names it, and
/// leaves it (`qdisc`) as it was, with nothing of faultline's added.
#[track_caller]
fn refused_and_left_alone(exp: &Experiment, web: &str, err_has: &[&str], qdisc: &str) {
    let r = Run::with_tc_image(exp).json_on_stdout().expect_report(4);
    let err = r["faults"][0]["error"].as_str().unwrap();
    assert!(err.contains("faultline did not create"), "{err}");
    for part in err_has {
        assert!(err.contains(part), "{err}");
    }
    assert!(
        qdiscs(web).contains(qdisc),
        "the foreign qdisc was touched: {}",
        qdiscs(web)
    );
    assert_eq!(helpers(web), 0);
    assert!(in_netns(web, &["ip", "link", "show", "ifb-fa17"]).is_empty());
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
    // A connect's SYN-ACK leaves the container (egress), its SYN arrives (ingress): either
    // delay adds to the connect time once.
    for direction in ["egress", "ingress"] {
        let base = connect_p50(&addr, 20);
        let exp = fleet.experiment("delay").fault(&format!(
            "network: {{delay: 100ms, duration: 6s, engine: netem, direction: {direction}}}"
        ));
        let run = Run::experiment(&exp).spawn();
        assert!(wait_until(Duration::from_secs(10), || qdiscs(&web)
            .contains("fa17:")
            || qdiscs(&web).contains("ingress")));
        let during = connect_p50(&addr, 20);
        run.wait().expect(0);
        let added = during - base;
        assert!(
            (80.0..=120.0).contains(&added),
            "{direction}: added {added:.1}ms, expected 100ms ± 20%"
        );
        assert_eq!(ingress_leftovers(&web), Vec::<String>::new());
    }
}

// Ingress on tc: what the target receives is redirected to faultline's IFB device and
// shaped there. Measured from inside the containers: A downloading from B is what A
// receives; C downloading from A is what A sends.

/// A file of `kib` KiB served by `name` at /www/big; its URL on the containers' network.
fn serve_file(name: &str, kib: u32) -> String {
    let count = format!("count={kib}");
    docker_ok(&[
        "exec",
        name,
        "dd",
        "if=/dev/zero",
        "of=/www/big",
        "bs=1024",
        &count,
    ]);
    format!("http://{}/big", container_addr(name).ip())
}

/// Seconds for `from` (in its network namespace) to download `url` of `size` bytes.
fn download_in(from: &str, url: &str, size: f64, limit: u64) -> f64 {
    timed_download(netns_command(from, &["curl"]), url, size, limit)
}

fn best_download_in(from: &str, url: &str, size: f64) -> f64 {
    best_of_3(|| download_in(from, url, size, 10))
}

/// The filters of the ingress qdisc on the container's eth0.
fn redirects(name: &str) -> String {
    in_netns(
        name,
        &["tc", "filter", "show", "dev", "eth0", "parent", "ffff:"],
    )
}

/// What ingress shaping leaves on `name` (empty: nothing).
fn ingress_leftovers(name: &str) -> Vec<String> {
    let mut left = Vec::new();
    if !in_netns(name, &["ip", "link", "show", "ifb-fa17"]).is_empty() {
        left.push("the IFB device ifb-fa17".to_string());
    }
    let q = qdiscs(name);
    if q.contains("qdisc ingress") || q.contains("fa17:") {
        left.push(format!("qdiscs: {q}"));
    }
    if helpers(name) > 0 {
        left.push("a network helper".to_string());
    }
    left
}

/// Three containers with curl's view from inside them, or a recorded skip.
fn trio_with_curl(test: &str) -> Option<(Fleet, [String; 3])> {
    trio_needing(test, &[("curl", "curl", "downloads cannot be timed")])
}

/// A 10 s ingress fault (`params`) on `a` alone, run in the background until the
/// redirect to the IFB device is in place.
fn start_ingress(fleet: &Fleet, a: &str, params: &str) -> Running {
    let exp = fleet.experiment("ingress").only(a).fault(&format!(
        "network: {{direction: ingress, duration: 10s, {params}}}"
    ));
    Run::with_tc_image(&exp)
        .json_report()
        .spawn_until("a redirect to the IFB device", || {
            redirects(a).contains("ifb-fa17")
        })
}

const SIZE_KIB: u32 = 512;
const SIZE: f64 = 512.0 * 1024.0;

#[test]
fn an_ingress_rate_slows_what_the_target_receives_not_what_it_sends() {
    let Some((fleet, [a, b, c])) = trio_with_curl("ingress-rate") else {
        return;
    };
    let (from_b, from_a) = (serve_file(&b, SIZE_KIB), serve_file(&a, SIZE_KIB));
    let (base_in, base_out) = (
        best_download_in(&a, &from_b, SIZE),
        best_download_in(&c, &from_a, SIZE),
    );
    let run = start_ingress(&fleet, &a, "rate: 2mbit, strategy: host");
    let on_device = in_netns(&a, &["tc", "qdisc", "show", "dev", "ifb-fa17"]);
    assert!(on_device.contains("tbf fa17: root"), "{on_device}");
    let filters = redirects(&a);
    assert!(filters.contains("Redirect to device ifb-fa17"), "{filters}");
    // What the target sends is not shaped: no root qdisc of faultline's on eth0.
    assert!(!qdiscs(&a).contains("fa17:"), "{}", qdiscs(&a));
    // 512 KiB at 2 Mbit/s takes about 2.1 s.
    let during_in = download_in(&a, &from_b, SIZE, 5);
    let during_out = download_in(&c, &from_a, SIZE, 5);
    let out = run.wait();
    out.expect(0);
    assert!(
        during_in >= 1.5 && during_in >= 10.0 * base_in,
        "B→A took {during_in:.2}s during the fault ({base_in:.3}s before): not limited to 2 Mbit/s"
    );
    assert!(
        during_out < 1.0,
        "A→C took {during_out:.2}s during the fault ({base_out:.3}s before): what A sends was slowed"
    );
    assert_eq!(ingress_leftovers(&a), Vec::<String>::new());
    assert_eq!(out.report()["faults"][0]["status"], "reverted");
    let after = best_download_in(&a, &from_b, SIZE);
    assert!(after < 1.0, "B→A still takes {after:.2}s after the revert");
}

#[test]
fn a_scoped_ingress_rate_through_the_sidecar_slows_only_that_peer() {
    let Some((fleet, [a, b, c])) = trio_with_curl("ingress-scoped") else {
        return;
    };
    let (from_b, from_c) = (serve_file(&b, SIZE_KIB), serve_file(&c, SIZE_KIB));
    let run = start_ingress(
        &fleet,
        &a,
        &format!("rate: 2mbit, strategy: sidecar, to: {{containers: {{names: [{b}]}}}}"),
    );
    assert_eq!(helpers(&a), 1, "one helper shares the namespace");
    let filters = redirects(&a);
    // u32 lists the source address as hex at offset 12 of the IP header.
    let ip = match container_addr(&b).ip() {
        std::net::IpAddr::V4(v4) => format!("{:08x}/ffffffff at 12", u32::from(v4)),
        other => panic!("{other}"),
    };
    assert!(
        filters.contains(&ip),
        "no filter for B's address ({ip}): {filters}"
    );
    let during_b = download_in(&a, &from_b, SIZE, 5);
    let during_c = download_in(&a, &from_c, SIZE, 5);
    let out = run.wait();
    out.expect(0);
    assert!(during_b >= 1.5, "B→A took {during_b:.2}s: not limited");
    assert!(
        during_c < 1.0,
        "C→A took {during_c:.2}s: outside the scope but slowed"
    );
    assert_eq!(ingress_leftovers(&a), Vec::<String>::new());
}
