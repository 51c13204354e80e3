//! `corrupt`, `duplicate` and `reorder` on the nfqueue engine, measured on the wire: ICMP
//! echo replies counted and ordered as they arrive (a raw-socket ping in the peer's
//! namespace), and TCP retransmissions from `/proc/net/snmp` in the target's namespace
//! while a download's bytes arrive intact. The fault sits on B, scoped to A.

mod support;

use support::*;

/// A ping from inside a network namespace: sends `count` echo requests `gap_ms` apart
/// and prints `SEQ RTT_MS` for every reply, in the order they arrive (duplicates too).
const PING: &str = r#"
import socket, struct, sys, time, os
dst, count, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setblocking(False)
ident = os.getpid() & 0xffff
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
sent = {}
def poll(until):
    while time.time() < until:
        try:
            data = s.recv(2048)
        except BlockingIOError:
            time.sleep(0.001); continue
        ihl = (data[0] & 0x0f) * 4
        typ, _, _, rid, seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if typ == 0 and rid == ident and seq in sent:
            print(seq, round((time.time() - sent[seq]) * 1000, 2), flush=True)
for seq in range(1, count + 1):
    body = b"faultline" * 4
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, seq) + body
    sent[seq] = time.time()
    s.sendto(pkt, (dst, 0))
    poll(time.time() + gap)
poll(time.time() + 1.0)
"#;

/// `(seq, rtt_ms)` of every reply `from` got from `to`, in arrival order.
fn ping(from: &str, to: &str, count: u32, gap_ms: u32) -> Vec<(u32, f64)> {
    let ip = container_addr(to).ip().to_string();
    let out = netns_command(from, &["python3", "-c", PING, &ip])
        .args([count.to_string(), gap_ms.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ping failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (s, r) = l.split_once(' ')?;
            Some((s.parse().ok()?, r.parse().ok()?))
        })
        .collect()
}

/// Replies beyond the first for the same sequence number.
fn duplicates(replies: &[(u32, f64)]) -> usize {
    let mut seen = std::collections::HashSet::new();
    replies.iter().filter(|(s, _)| !seen.insert(*s)).count()
}

/// Pairs of replies that arrived in the opposite order of their requests.
fn inversions(replies: &[(u32, f64)]) -> usize {
    replies.windows(2).filter(|w| w[1].0 < w[0].0).count()
}

fn setup(test: &str) -> Option<(Fleet, String, String)> {
    let (fleet, [a, b, _]) = trio_needing(
        test,
        &[
            ("iptables", "iptables", "the nfqueue engine cannot run"),
            ("python3", "python3", "ICMP replies cannot be counted"),
            ("curl", "curl", "the download cannot be measured"),
        ],
    )?;
    Some((fleet, a, b))
}

/// Runs a fault on B scoped to A in the background, until its rule is in place.
fn on_b(fleet: &Fleet, a: &str, b: &str, params: &str, duration: &str) -> Running {
    let exp = fleet.experiment("impair").only(b).fault(&format!(
        "network: {{{params}, engine: nfqueue, duration: {duration}, to: {{containers: {{names: [{a}]}}}}}}"
    ));
    Run::experiment(&exp)
        .json_report()
        .spawn_until(&format!("a rule in {b}"), || {
            nfqueue_rules(b).contains("faultline-")
        })
}

#[test]
fn duplicate_sends_copies_the_peer_counts() {
    let Some((fleet, a, b)) = setup("impair-dup") else {
        return;
    };
    let before = ping(&a, &b, 40, 20);
    assert_eq!(before.len(), 40, "{before:?}");
    assert_eq!(duplicates(&before), 0);
    let running = on_b(&fleet, &a, &b, "duplicate: 50", "10s");
    let during = ping(&a, &b, 60, 20);
    running.wait().expect(0);
    let dups = duplicates(&during);
    eprintln!("duplicate 50%: {dups} duplicate replies of 60");
    // 60 replies at 50%: mean 30, standard deviation 3.9; ±12 is three of them.
    assert!(
        (18..=42).contains(&dups),
        "{dups} duplicate replies of 60, expected about 30"
    );
    let answered: std::collections::HashSet<u32> = during.iter().map(|(s, _)| *s).collect();
    assert_eq!(answered.len(), 60, "a request went unanswered");
    assert_eq!(duplicates(&ping(&a, &b, 20, 20)), 0, "copies after revert");
    assert!(!nfqueue_rules(&b).contains("faultline-"));
}

#[test]
fn reorder_lets_some_replies_overtake_delayed_ones() {
    let Some((fleet, a, b)) = setup("impair-reorder") else {
        return;
    };
    assert_eq!(inversions(&ping(&a, &b, 40, 10)), 0);
    let running = on_b(
        &fleet,
        &a,
        &b,
        "delay: 100ms, reorder: {percent: 50}",
        "10s",
    );
    let during = ping(&a, &b, 80, 10);
    running.wait().expect(0);
    assert_eq!(during.len(), 80, "{during:?}");
    let fast = during.iter().filter(|(_, rtt)| *rtt < 50.0).count();
    eprintln!(
        "reorder 50%: {fast} of 80 fast, {} inversions",
        inversions(&during)
    );
    // Half skip the 100 ms: mean 40 of 80, standard deviation 4.5.
    assert!(
        (26..=54).contains(&fast),
        "{fast} of 80 replies skipped the delay, expected about 40"
    );
    assert!(
        inversions(&during) >= 10,
        "only {} replies overtook others: {during:?}",
        inversions(&during)
    );
    let slow = during.iter().filter(|(_, rtt)| *rtt >= 50.0);
    assert!(slow.clone().all(|(_, rtt)| *rtt < 200.0));
}

/// The `Tcp: RetransSegs` counter of a container's network namespace.
fn retransmissions(name: &str) -> u64 {
    let snmp = in_netns(name, &["cat", "/proc/net/snmp"]);
    let tcp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Tcp:")).collect();
    let keys: Vec<&str> = tcp[0].split_whitespace().collect();
    let values: Vec<&str> = tcp[1].split_whitespace().collect();
    let i = keys.iter().position(|k| *k == "RetransSegs").unwrap();
    values[i].parse().unwrap()
}

/// Downloads B's 2 MiB file from A's namespace; returns its SHA-256 (hex).
fn download_sum(a: &str, url: &str) -> String {
    let out = netns_command(
        a,
        &[
            "sh",
            "-c",
            &format!("curl -s -m 60 {url} | sha256sum | cut -d' ' -f1"),
        ],
    )
    .output()
    .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn corrupt_costs_retransmissions_and_no_byte_arrives_wrong() {
    let Some((fleet, a, b)) = setup("impair-corrupt") else {
        return;
    };
    docker_ok(&[
        "exec",
        &b,
        "sh",
        "-c",
        "dd if=/dev/urandom of=/www/big bs=1024 count=2048 2>/dev/null",
    ]);
    let url = format!("http://{}:80/big", container_addr(&b).ip());
    let r0 = retransmissions(&b);
    let clean = download_sum(&a, &url);
    let base = retransmissions(&b) - r0;
    let running = on_b(&fleet, &a, &b, "corrupt: 5", "20s");
    let r1 = retransmissions(&b);
    let during_sum = download_sum(&a, &url);
    let during = retransmissions(&b) - r1;
    running.wait().expect(0);
    assert_eq!(
        during_sum, clean,
        "the download's bytes differ: a corrupted packet was accepted"
    );
    eprintln!("corrupt 5%: {during} retransmissions (without: {base})");
    // About 1,450 segments at 5%: some 70 corrupted, each one retransmitted.
    assert!(
        during >= 20 && during > base * 4,
        "{during} retransmissions with corrupt 5% vs {base} without"
    );
    assert!(!nfqueue_rules(&b).contains("faultline-"));
}
