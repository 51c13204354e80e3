//! The nfqueue engine end to end: a real added delay, jitter and loss measured from the
//! host with TCP connects to the container (its SYN-ACKs leave through the delayer), and
//! fail-open when faultline dies.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

fn container_addr(name: &str) -> std::net::SocketAddr {
    let ip = docker_ok(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        name,
    ]);
    format!("{ip}:80").parse().unwrap()
}

/// Connect times in milliseconds, `n` of them, 8 at a time.
fn connects(addr: std::net::SocketAddr, n: usize) -> Vec<f64> {
    let per = n.div_ceil(8);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..per)
                    .map(|_| {
                        let t = Instant::now();
                        let ok =
                            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                                .is_ok();
                        if ok {
                            t.elapsed().as_secs_f64() * 1000.0
                        } else {
                            5000.0
                        }
                    })
                    .collect::<Vec<f64>>()
            })
        })
        .collect();
    let mut all: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.truncate(n);
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all
}

fn p50(v: &[f64]) -> f64 {
    v[v.len() / 2]
}

/// Spread of the middle 80%: robust against the odd retransmission.
fn spread(v: &[f64]) -> f64 {
    v[v.len() * 9 / 10] - v[v.len() / 10]
}

fn rules(name: &str) -> String {
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", name]);
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-n", "iptables", "-S", "OUTPUT"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Delayers running in the container's network namespace (other tests run their own).
fn delayers(name: &str) -> usize {
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", name]);
    let netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("\0delayer\0"))
        })
        .filter(|e| std::fs::read_link(e.path().join("ns/net")).is_ok_and(|n| n == netns))
        .count()
}

fn usable() -> bool {
    if !docker_available() {
        return false;
    }
    let ok = std::process::Command::new("iptables")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: iptables is not installed; the nfqueue engine cannot run here");
    }
    ok
}

struct Setup {
    _fleet: Fleet,
    web: String,
    addr: std::net::SocketAddr,
    dir: tempfile::TempDir,
    group: String,
}

fn setup(test: &str) -> Setup {
    let mut fleet = Fleet::new(test);
    let web = fleet.web(&[]);
    let addr = container_addr(&web);
    let group = fleet.label();
    Setup {
        _fleet: fleet,
        web,
        addr,
        dir: tempfile::tempdir().unwrap(),
        group,
    }
}

fn experiment(s: &Setup, params: &str, duration: &str) -> std::path::PathBuf {
    write(
        s.dir.path(),
        "nfq.yaml",
        &format!(
            "version: 1\nname: nfq\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\nfaults:\n  - network: {{{params}, engine: nfqueue, duration: {duration}}}\n",
            s.group
        ),
    )
}

/// Waits until the delayer's rule is in place.
fn wait_for_rule(s: &Setup) {
    assert!(
        wait_until(Duration::from_secs(10), || rules(&s.web)
            .contains("NFQUEUE")),
        "no NFQUEUE rule appeared"
    );
}

#[test]
fn a_delay_raises_connect_time_by_the_delay() {
    if !usable() {
        return;
    }
    let s = setup("nfq-delay");
    let before = p50(&connects(s.addr, 40));
    let file = experiment(&s, "delay: 100ms", "8s");
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_rule(&s);
    let during = connects(s.addr, 40);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let added = p50(&during) - before;
    assert!(
        (80.0..=120.0).contains(&added),
        "p50 rose by {added:.1}ms, expected 100ms ± 20%"
    );
    let after = p50(&connects(s.addr, 40));
    assert!(after < before + 10.0, "after revert p50 is {after:.1}ms");
    assert!(
        !rules(&s.web).contains("NFQUEUE"),
        "the rule is still there"
    );
    assert_eq!(delayers(&s.web), 0, "a delayer is still running");
}

#[test]
fn jitter_widens_the_spread() {
    if !usable() {
        return;
    }
    let s = setup("nfq-jitter");
    let file = experiment(&s, "delay: 50ms, jitter: 20ms", "8s");
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_rule(&s);
    let during = connects(s.addr, 80);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let median = p50(&during);
    // Uniform in [30, 70]ms: the middle 80% spans about 32ms.
    assert!(
        (40.0..=60.0).contains(&median),
        "p50 {median:.1}ms, expected 50ms"
    );
    let width = spread(&during);
    assert!(
        (20.0..=45.0).contains(&width),
        "p10..p90 spread {width:.1}ms, expected about 32ms"
    );
}

#[test]
fn loss_drops_about_that_share_of_packets() {
    if !usable() {
        return;
    }
    let s = setup("nfq-loss");
    let file = experiment(&s, "loss: 30", "20s");
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_rule(&s);
    // A dropped SYN-ACK costs the client a SYN retransmission (1s): the share of slow
    // connects estimates the drop rate. With n = 120 the standard error is 4.2 points;
    // ±13 points is three of them.
    let during = connects(s.addr, 120);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let slow = during.iter().filter(|t| **t > 500.0).count() as f64 / during.len() as f64;
    assert!(
        (0.17..=0.43).contains(&slow),
        "{:.0}% of connects were slowed by a drop, expected 30%",
        slow * 100.0
    );
    assert!(!rules(&s.web).contains("NFQUEUE"), "SIGINT left the rule");
    assert_eq!(delayers(&s.web), 0);
}

#[test]
fn sigkill_fails_open_and_recover_removes_the_rule() {
    if !usable() {
        return;
    }
    let s = setup("nfq-kill");
    let state = s.dir.path().join("state");
    let file = experiment(&s, "delay: 200ms", "30s");
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .env("FAULTLINE_STATE_DIR", &state)
        .env("FAULTLINE_NO_DEAD_MANS_SWITCH", "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_rule(&s);
    assert!(
        p50(&connects(s.addr, 16)) > 150.0,
        "the delay was not in effect"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The delayer dies with faultline; --queue-bypass lets traffic through at once.
    assert!(wait_until(Duration::from_secs(2), || delayers(&s.web) == 0));
    let after_kill = connects(s.addr, 16);
    assert!(
        p50(&after_kill) < 20.0,
        "traffic is not flowing freely after SIGKILL: p50 {:.1}ms",
        p50(&after_kill)
    );
    assert!(
        after_kill.iter().all(|t| *t < 5000.0),
        "a connection was black-holed"
    );
    assert!(
        rules(&s.web).contains("NFQUEUE"),
        "the rule is left for recover"
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
    assert!(!rules(&s.web).contains("NFQUEUE"), "recover left the rule");
}

#[test]
fn nfqueue_delay_combines_with_a_tbf_rate() {
    if !usable() {
        return;
    }
    let s = setup("nfq-rate");
    let file = experiment(&s, "delay: 50ms, rate: 1mbit", "5s");
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_rule(&s);
    assert!(
        qdiscs(&s.web).contains("tbf fa17: root"),
        "no tbf: {}",
        qdiscs(&s.web)
    );
    let during = p50(&connects(s.addr, 16));
    assert!(during > 40.0, "the delay is not applied: p50 {during:.1}ms");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(!rules(&s.web).contains("NFQUEUE"));
    assert!(!qdiscs(&s.web).contains("fa17:"));
    assert_eq!(delayers(&s.web), 0);
}
