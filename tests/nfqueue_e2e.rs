//! The nfqueue engine end to end: a real added delay, jitter and loss measured from the
//! host with TCP connects to the container (its SYN-ACKs leave through the delayer), and
//! fail-open when faultline dies.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Connect times in milliseconds, `n` of them, 8 at a time, sorted.
fn connects(addr: std::net::SocketAddr, n: usize) -> Vec<f64> {
    let mut all = eight_at_a_time(n, move || {
        let t = Instant::now();
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(_) => t.elapsed().as_secs_f64() * 1000.0,
            Err(_) => 5000.0,
        }
    });
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

fn has_rule(name: &str) -> bool {
    nfqueue_rules(name).contains("NFQUEUE")
}

/// Delayers running in the container's network namespace.
fn delayers(name: &str) -> usize {
    netns_processes(name, "\0delayer\0").len()
}

/// The nfqueue engine's delay, jitter or loss (`params`).
static NFQ: NetnsFault = NetnsFault {
    name: "nfq",
    entry: |params, duration| {
        format!("network: {{{params}, engine: nfqueue, duration: {duration}}}")
    },
    in_place: has_rule,
    why: "the nfqueue engine cannot run",
};

fn setup(test: &str) -> Option<NetnsWeb> {
    netns_web(test, &NFQ)
}

#[test]
fn a_delay_raises_connect_time_by_the_delay() {
    let Some(s) = setup("nfq-delay") else { return };
    let before = p50(&connects(s.addr, 40));
    let run = s.start(Run::experiment(&s.experiment("delay: 100ms", "8s")));
    let during = connects(s.addr, 40);
    run.wait().expect(0);
    let added = p50(&during) - before;
    assert!(
        (80.0..=120.0).contains(&added),
        "p50 rose by {added:.1}ms, expected 100ms ± 20%"
    );
    let after = p50(&connects(s.addr, 40));
    assert!(after < before + 10.0, "after revert p50 is {after:.1}ms");
    assert!(!has_rule(&s.web), "the rule is still there");
    assert_eq!(delayers(&s.web), 0, "a delayer is still running");
}

#[test]
fn jitter_widens_the_spread() {
    let Some(s) = setup("nfq-jitter") else { return };
    let run = s.start(Run::experiment(
        &s.experiment("delay: 50ms, jitter: 20ms", "8s"),
    ));
    let during = connects(s.addr, 80);
    run.wait().expect(0);
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
    let Some(s) = setup("nfq-loss") else { return };
    let run = s.start(Run::experiment(&s.experiment("loss: 30", "20s")));
    // A dropped SYN-ACK costs the client a SYN retransmission (1s): the share of slow
    // connects estimates the drop rate. With n = 120 the standard error is 4.2 points;
    // ±13 points is three of them.
    let during = connects(s.addr, 120);
    run.interrupt();
    run.wait().expect(130);
    let slow = during.iter().filter(|t| **t > 500.0).count() as f64 / during.len() as f64;
    assert!(
        (0.17..=0.43).contains(&slow),
        "{:.0}% of connects were slowed by a drop, expected 30%",
        slow * 100.0
    );
    assert!(!has_rule(&s.web), "SIGINT left the rule");
    assert_eq!(delayers(&s.web), 0);
}

#[test]
fn sigkill_fails_open_and_recover_removes_the_rule() {
    let Some(s) = setup("nfq-kill") else { return };
    let (state, run) = s.start_recoverable(&s.experiment("delay: 200ms", "30s"));
    assert!(
        p50(&connects(s.addr, 16)) > 150.0,
        "the delay was not in effect"
    );
    run.signal(nix::sys::signal::Signal::SIGKILL);
    run.wait();
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
    assert!(has_rule(&s.web), "the rule is left for recover");
    state.recover();
    assert!(!has_rule(&s.web), "recover left the rule");
}

#[test]
fn nfqueue_delay_combines_with_a_tbf_rate() {
    let Some(s) = setup("nfq-rate") else { return };
    let run = s.start(Run::experiment(
        &s.experiment("delay: 50ms, rate: 1mbit", "5s"),
    ));
    assert!(
        qdiscs(&s.web).contains("tbf fa17: root"),
        "no tbf: {}",
        qdiscs(&s.web)
    );
    let during = p50(&connects(s.addr, 16));
    assert!(during > 40.0, "the delay is not applied: p50 {during:.1}ms");
    run.wait().expect(0);
    assert!(!has_rule(&s.web));
    assert!(!qdiscs(&s.web).contains("fa17:"));
    assert_eq!(delayers(&s.web), 0);
}

/// Connect times to the container's own loopback, measured inside its network namespace.
fn loopback_connects(name: &str, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let out = netns_command(
                name,
                &[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{time_connect}",
                    "http://127.0.0.1:80/",
                ],
            )
            .output()
            .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap_or(f64::MAX)
                * 1000.0
        })
        .collect()
}

/// Regression: the rule had no `-o`, so a fault delayed every interface, loopback too.
#[test]
fn the_delay_holds_only_the_faults_interface() {
    let Some(s) = setup("nfq-iface") else { return };
    if require_program("curl", "curl", "loopback latency cannot be measured").is_none() {
        return;
    }
    let run = s.start(Run::experiment(&s.experiment("delay: 200ms", "8s")));
    let rules = nfqueue_rules(&s.web);
    assert!(rules.contains("-o eth0"), "{rules}");
    let outside = p50(&connects(s.addr, 10));
    let inside = p50(&loopback_connects(&s.web, 10));
    run.wait().expect(0);
    assert!(outside > 150.0, "eth0 was not delayed: p50 {outside:.1}ms");
    assert!(inside < 50.0, "loopback was delayed: p50 {inside:.1}ms");
}

/// An interface the target does not have is refused, not a fault that does nothing.
#[test]
fn a_missing_interface_is_refused() {
    let Some(s) = setup("nfq-noiface") else {
        return;
    };
    Run::experiment(&s.experiment("delay: 100ms, interface: eth7", "3s"))
        .output()
        .expect(4)
        .stdout_has("has no network interface `eth7`");
    assert!(!has_rule(&s.web), "a rule was left");
    assert_eq!(delayers(&s.web), 0, "a delayer was left");
}
