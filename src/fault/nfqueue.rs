//! The `nfqueue` engine of the `network` fault: delay, jitter and loss without netem.
//!
//! An iptables rule in the target's network namespace sends its outgoing packets to an
//! NFQUEUE with `--queue-bypass`, and a delayer (`faultline delayer`, hidden, started in
//! that namespace) holds each packet for the delay before accepting it, or drops it with
//! the loss probability. It fails open: if the delayer dies, `--queue-bypass` lets traffic
//! flow untouched, never black-holed. The rule carries a comment naming the injection, so
//! that revert deletes exactly it.

use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Queue numbers faultline picks from; one nothing else is bound to in the namespace.
pub const QUEUE_RANGE: std::ops::Range<u16> = 40_000..60_000;

/// What revert needs: the rule (queue and marker) and the delayer (marker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayerRecord {
    pub queue: u16,
    pub marker: String,
    /// Where the delayer runs: on the host (Docker, the default of older records) or in
    /// an ephemeral container beside the pod (Kubernetes).
    #[serde(default = "crate::fault::network::host_placement")]
    pub placement: crate::platform::Placement,
    /// The interface the rule matches (`-o`): only packets leaving through it are
    /// queued, so loopback traffic inside the target is never delayed. `None` in
    /// records written before the rule named one (their rule has no `-o`).
    #[serde(default)]
    pub interface: Option<String>,
    /// Every rule faultline added, in full (chain first, as after `-I`/`-D`): one per
    /// chain, address, protocol of a scoped fault. Empty in records written before
    /// scopes: their one rule is [`rule_spec`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Vec<String>>,
}

impl DelayerRecord {
    /// The rules of this record, as added and deleted.
    pub fn specs(&self) -> Vec<Vec<String>> {
        if self.rules.is_empty() {
            vec![rule_spec(self)]
        } else {
            self.rules.clone()
        }
    }

    /// The chains its rules are in (OUTPUT first), for listings.
    pub fn chains(&self) -> Vec<String> {
        chains_of(&self.specs())
    }
}

/// The distinct chains of rule specs, in order of first use.
pub fn chains_of(specs: &[Vec<String>]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for s in specs {
        if let Some(c) = s.first() {
            if !v.contains(c) {
                v.push(c.clone());
            }
        }
    }
    v
}

/// A full rule: the scope's matches, the comment naming the injection, and the target.
pub fn with_comment(matches: &[String], marker: &str, target: &[&str]) -> Vec<String> {
    let mut v = matches.to_vec();
    v.extend(["-m", "comment", "--comment", marker].map(String::from));
    v.extend(target.iter().map(ToString::to_string));
    v
}

/// The NFQUEUE target of a delayer on `queue`.
pub fn queue_target(queue: u16) -> Vec<String> {
    vec![
        "-j".into(),
        "NFQUEUE".into(),
        "--queue-num".into(),
        queue.to_string(),
        "--queue-bypass".into(),
    ]
}

/// `iptables -w -I SPEC` / `-D SPEC`.
pub fn iptables(op: &str, spec: &[String]) -> Vec<String> {
    let mut v = vec!["iptables".to_string(), "-w".into(), op.into()];
    v.extend(spec.iter().cloned());
    v
}

/// The rule, as iptables arguments after `-I`/`-D`. Identical for add and delete, so the
/// delete removes exactly the rule faultline added.
pub fn rule_spec(d: &DelayerRecord) -> Vec<String> {
    let mut v = vec!["OUTPUT".to_string()];
    if let Some(iface) = &d.interface {
        v.extend(["-o".to_string(), iface.clone()]);
    }
    v.extend(
        [
            "-m",
            "comment",
            "--comment",
            &d.marker,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &d.queue.to_string(),
            "--queue-bypass",
        ]
        .iter()
        .map(ToString::to_string),
    );
    v
}

pub fn add_rule(d: &DelayerRecord) -> Vec<String> {
    iptables("-I", &rule_spec(d))
}

pub fn delete_rule(d: &DelayerRecord) -> Vec<String> {
    iptables("-D", &rule_spec(d))
}

/// Shell commands that delete every OUTPUT rule carrying `marker`, whatever its queue:
/// the network helper runs them as it ends. No single quotes (they go into a `trap '...'`),
/// and the marker split in two, so that stopping the delayer by its marker (which scans
/// every process the container sees: the whole pod with `shareProcessNamespace`) never
/// takes the helper's shell for it.
pub fn delete_rules_script(marker: &str) -> String {
    delete_rules_script_in(marker, &["OUTPUT".to_string()])
}

/// [`delete_rules_script`] over several chains (a scoped fault's INPUT rules too).
pub fn delete_rules_script_in(marker: &str, chains: &[String]) -> String {
    let (a, b) = marker.split_at(marker.len() / 2);
    let mut s = format!("m1={a}; m2={b}");
    for c in chains {
        s.push_str(&format!(
            "; iptables -w -S {c} 2>/dev/null | grep -F -e \"--comment $m1$m2 \" | while read -r _ rule; do iptables -w -D $rule; done"
        ));
    }
    s
}

pub fn list_rules() -> Vec<String> {
    list_rules_in("OUTPUT")
}

/// `iptables -w -S CHAIN`.
pub fn list_rules_in(chain: &str) -> Vec<String> {
    ["iptables", "-w", "-S", chain]
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Queue numbers already bound in a namespace, from /proc/net/netfilter/nfnetlink_queue
/// as read inside it.
pub fn bound_queues(proc_listing: &str) -> Vec<u16> {
    proc_listing
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A free queue number in [`QUEUE_RANGE`].
pub fn pick_queue(bound: &[u16]) -> u16 {
    loop {
        let q = QUEUE_RANGE.start + (rand::random::<u16>() % (QUEUE_RANGE.end - QUEUE_RANGE.start));
        if !bound.contains(&q) {
            return q;
        }
    }
}

/// The delayer's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub delay: Duration,
    pub jitter: Duration,
    /// Probability of dropping a packet, 0.0..=1.0.
    pub loss: f64,
}

/// A packet held until its release time. Ordered by release, then arrival, so that with
/// no jitter the order of packets is kept.
struct Held {
    release: Instant,
    seq: u64,
    msg: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.release, self.seq) == (o.release, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: reverse for earliest first.
        (o.release, o.seq).cmp(&(self.release, self.seq))
    }
}

/// The delay of one packet: the delay plus a uniform jitter in [-jitter, +jitter].
pub fn packet_delay(shape: &Shape, uniform: f64) -> Duration {
    let base = shape.delay.as_secs_f64();
    let j = shape.jitter.as_secs_f64() * (2.0 * uniform - 1.0);
    Duration::from_secs_f64((base + j).max(0.0))
}

/// How long the delayer sleeps at most when it holds no packet.
const IDLE_WAKE: Duration = Duration::from_millis(200);

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs the delayer on `queue` until the epoch second `until` or SIGTERM, then lets every
/// held packet go. The body of the hidden `faultline delayer` command, started inside the
/// target's network namespace.
pub fn run_delayer(queue: u16, shape: Shape, until: u64) -> std::io::Result<()> {
    crate::platform::host::flag_on_sigterm(&STOP)?;
    // nfq does not expose its netlink socket: find it as the descriptor `open` adds, so
    // that the loop can sleep in poll(2) until a packet arrives or one is due.
    let before = crate::platform::host::open_fds();
    let mut q = nfq::Queue::open()?;
    let socket = crate::platform::host::open_fds()
        .into_iter()
        .find(|fd| !before.contains(fd));
    q.bind(queue)?;
    // Only the metadata: the payload is never looked at.
    q.set_copy_range(queue, 0)?;
    q.set_fail_open(queue, true)?;
    q.set_nonblocking(true);
    let jitter = !shape.jitter.is_zero();
    let mut fifo: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut heap: BinaryHeap<Held> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if now_epoch >= until || STOP.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        loop {
            match q.recv() {
                Ok(mut msg) => {
                    if shape.loss > 0.0 && rand::random::<f64>() < shape.loss {
                        msg.set_verdict(nfq::Verdict::Drop);
                        q.verdict(msg)?;
                        continue;
                    }
                    let release = Instant::now() + packet_delay(&shape, rand::random::<f64>());
                    if jitter {
                        seq += 1;
                        heap.push(Held { release, seq, msg });
                    } else {
                        fifo.push_back((release, msg));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let now = Instant::now();
        while fifo.front().is_some_and(|(r, _)| *r <= now) {
            let (_, mut msg) = fifo.pop_front().expect("checked");
            msg.set_verdict(nfq::Verdict::Accept);
            q.verdict(msg)?;
        }
        while heap.peek().is_some_and(|h| h.release <= now) {
            let mut h = heap.pop().expect("checked");
            h.msg.set_verdict(nfq::Verdict::Accept);
            q.verdict(h.msg)?;
        }
        let next = fifo
            .front()
            .map(|(r, _)| *r)
            .into_iter()
            .chain(heap.peek().map(|h| h.release))
            .min();
        // Sleep until a packet arrives or the next held one is due; wake at least every
        // 200 ms to notice the deadline (SIGTERM interrupts the wait at once).
        let nap = next
            .map(|n| n.saturating_duration_since(Instant::now()))
            .unwrap_or(IDLE_WAKE)
            .min(IDLE_WAKE);
        match socket {
            Some(fd) => {
                crate::platform::host::wait_readable(fd, nap)?;
            }
            None => std::thread::sleep(nap.min(Duration::from_millis(1))),
        }
    }
    // Let every held packet go before leaving: nothing is lost to the revert.
    for (_, mut msg) in fifo {
        msg.set_verdict(nfq::Verdict::Accept);
        q.verdict(msg)?;
    }
    for mut h in heap {
        h.msg.set_verdict(nfq::Verdict::Accept);
        q.verdict(h.msg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_delete_name_the_same_rule() {
        let mut d = DelayerRecord {
            queue: 40123,
            marker: "faultline-net-abc".into(),
            placement: crate::fault::network::host_placement(),
            interface: Some("eth1".into()),
            rules: Vec::new(),
        };
        let (add, del) = (add_rule(&d), delete_rule(&d));
        // Regression: the rule had no `-o`, so a fault on eth1 delayed eth0 and loopback.
        assert_eq!(
            add.join(" "),
            "iptables -w -I OUTPUT -o eth1 -m comment --comment faultline-net-abc -j NFQUEUE --queue-num 40123 --queue-bypass"
        );
        assert_eq!(add[3..], del[3..]);
        assert_eq!(del[2], "-D");
        // A record journaled before the rule named its interface deletes the rule it added.
        d.interface = None;
        assert_eq!(
            delete_rule(&d).join(" "),
            "iptables -w -D OUTPUT -m comment --comment faultline-net-abc -j NFQUEUE --queue-num 40123 --queue-bypass"
        );
    }

    #[test]
    fn queue_numbers_avoid_bound_ones() {
        let listing = "40000  1234     0 2 65531     0     0        0  1\n";
        assert_eq!(bound_queues(listing), vec![40000]);
        for _ in 0..1000 {
            let q = pick_queue(&[40000]);
            assert!(QUEUE_RANGE.contains(&q) && q != 40000);
        }
    }

    #[test]
    fn jitter_spreads_around_the_delay() {
        let s = Shape {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(20),
            loss: 0.0,
        };
        assert_eq!(packet_delay(&s, 0.0), Duration::from_millis(30));
        assert_eq!(packet_delay(&s, 0.5), Duration::from_millis(50));
        assert_eq!(packet_delay(&s, 1.0), Duration::from_millis(70));
        let none = Shape {
            jitter: Duration::ZERO,
            ..s
        };
        assert_eq!(packet_delay(&none, 0.9), Duration::from_millis(50));
    }
}
