//! The `nfqueue` engine of the `network` fault: delay, jitter and loss without netem.
//!
//! An iptables rule in the target's network namespace sends its outgoing packets to an
//! NFQUEUE with `--queue-bypass`, and a delayer (`faultline delayer`, hidden, started in
//! that namespace) holds each packet for the delay before accepting it, or drops it with
//! the loss probability. It fails open: if the delayer dies, `--queue-bypass` lets traffic
//! flow untouched, never black-holed. The rule carries a comment naming the injection, so
//! that revert deletes exactly it.

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

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
    ["iptables", "-w", "-S", chain].map(String::from).to_vec()
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
    /// Probability of flipping one bit of a packet (past its IP header).
    pub corrupt: f64,
    /// Probability of sending a packet twice (outgoing packets only).
    pub duplicate: f64,
    /// Probability that a packet skips the delay and overtakes held ones.
    pub reorder: f64,
    /// With `reorder`: only every `gap`th packet may skip the delay (0: any).
    pub gap: u32,
}

/// The mark on faultline's own copies of duplicated packets: they pass the queue's rule
/// again, and the delayer lets them through at once.
pub const COPY_MARK: u32 = 0xfa17_d0b1;

/// Flips bit `bit` (0..8) of the byte at `pick` (a fraction 0..1) of the packet past
/// its IPv4 header, or of the whole packet when it has nothing past it.
pub fn corrupt_packet(p: &mut [u8], pick: f64, bit: u8) {
    if p.is_empty() {
        return;
    }
    let header = usize::from(p[0] & 0x0f) * 4;
    let start = if p.len() > header { header } else { 0 };
    let span = p.len() - start;
    let i = start + ((pick * span as f64) as usize).min(span - 1);
    p[i] ^= 1 << (bit % 8);
}

/// Whether packet number `n` (from 1) skips the delay: with `gap`, only every gapth
/// one, taken with the reorder probability (`uniform` in 0..1).
pub fn skips_delay(shape: &Shape, n: u64, uniform: f64) -> bool {
    if shape.reorder <= 0.0 {
        return false;
    }
    if shape.gap > 0 && n % u64::from(shape.gap) != 0 {
        return false;
    }
    uniform < shape.reorder
}

/// Sends copies of outgoing IPv4 packets as they are (a raw socket, header included),
/// marked with [`COPY_MARK`].
struct Copier(std::os::fd::OwnedFd);

impl Copier {
    fn open() -> std::io::Result<Copier> {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockProtocol, SockType, setsockopt, socket, sockopt,
        };
        let fd = socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::Raw,
        )?;
        setsockopt(&fd, sockopt::Mark, &COPY_MARK)?;
        Ok(Copier(fd))
    }

    fn send(&self, packet: &[u8]) {
        use std::os::fd::AsRawFd;
        if packet.len() < 20 || packet[0] >> 4 != 4 {
            return;
        }
        let dst = std::net::Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let to = nix::sys::socket::SockaddrIn::from(std::net::SocketAddrV4::new(dst, 0));
        // A copy that cannot be sent is one duplicate less, never a failure.
        let _ = nix::sys::socket::sendto(
            self.0.as_raw_fd(),
            packet,
            &to,
            nix::sys::socket::MsgFlags::empty(),
        );
    }
}

/// A packet held until its release time. Ordered by release, then arrival, so that with
/// no jitter the order of packets is kept.
struct Held {
    release: Instant,
    seq: u64,
    msg: nfq::Message,
    copy: Option<Vec<u8>>,
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
pub fn run_delayer(
    queue: u16,
    shape: Shape,
    until: u64,
    dns: Option<super::dns::DnsRewrite>,
) -> std::io::Result<()> {
    crate::platform::host::flag_on_sigterm(&STOP)?;
    // nfq does not expose its netlink socket: find it as the descriptor `open` adds, so
    // that the loop can sleep in poll(2) until a packet arrives or one is due.
    let before = crate::platform::host::open_fds();
    let mut q = nfq::Queue::open()?;
    let socket = crate::platform::host::open_fds()
        .into_iter()
        .find(|fd| !before.contains(fd));
    q.bind(queue)?;
    // Only the metadata, unless packets are rewritten or copied.
    let whole = shape.corrupt > 0.0 || shape.duplicate > 0.0 || dns.is_some();
    q.set_copy_range(queue, if whole { u16::MAX } else { 0 })?;
    q.set_fail_open(queue, true)?;
    q.set_nonblocking(true);
    let copier = if shape.duplicate > 0.0 {
        Some(Copier::open()?)
    } else {
        None
    };
    let mut d = Delayer {
        q,
        shape,
        dns,
        copier,
        held: BinaryHeap::new(),
        seq: 0,
        count: 0,
    };
    while !crate::platform::host::past(until) && !STOP.load(std::sync::atomic::Ordering::SeqCst) {
        d.take_arrived()?;
        let next = d.release_due()?;
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
    d.release_all()
}

/// The queue, and the packets it holds until their release time.
struct Delayer {
    q: nfq::Queue,
    shape: Shape,
    dns: Option<super::dns::DnsRewrite>,
    copier: Option<Copier>,
    /// Ordered by release, then arrival: without jitter the order of packets is kept.
    held: BinaryHeap<Held>,
    seq: u64,
    count: u64,
}

impl Delayer {
    fn release(&mut self, mut msg: nfq::Message, copy: Option<Vec<u8>>) -> std::io::Result<()> {
        msg.set_verdict(nfq::Verdict::Accept);
        self.q.verdict(msg)?;
        if let (Some(c), Some(copy)) = (&self.copier, copy) {
            c.send(&copy);
        }
        Ok(())
    }

    fn drop_packet(&mut self, mut msg: nfq::Message) -> std::io::Result<()> {
        msg.set_verdict(nfq::Verdict::Drop);
        self.q.verdict(msg)
    }

    /// Takes every packet that has arrived, until the queue would block.
    fn take_arrived(&mut self) -> std::io::Result<()> {
        loop {
            match self.q.recv() {
                Ok(msg) => self.take(msg)?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// What happens to one packet: passed, dropped, rewritten, or held.
    fn take(&mut self, mut msg: nfq::Message) -> std::io::Result<()> {
        // faultline's own copy of a packet already let through.
        if self.copier.is_some() && msg.get_nfmark() == COPY_MARK {
            return self.release(msg, None);
        }
        if let Some(rw) = &self.dns {
            match super::dns::act(msg.get_payload(), rw, rand::random::<f64>()) {
                super::dns::Action::Pass => {}
                super::dns::Action::Drop => return self.drop_packet(msg),
                super::dns::Action::Rewrite(p) => msg.set_payload(p),
            }
            return self.release(msg, None);
        }
        let shape = &self.shape;
        if shape.loss > 0.0 && rand::random::<f64>() < shape.loss {
            return self.drop_packet(msg);
        }
        if shape.corrupt > 0.0 && rand::random::<f64>() < shape.corrupt {
            let mut p = msg.get_payload().to_vec();
            corrupt_packet(&mut p, rand::random::<f64>(), rand::random::<u8>());
            msg.set_payload(p);
        }
        let copy = (shape.duplicate > 0.0 && rand::random::<f64>() < shape.duplicate)
            .then(|| msg.get_payload().to_vec());
        self.count += 1;
        if skips_delay(shape, self.count, rand::random::<f64>()) {
            return self.release(msg, copy);
        }
        let release = Instant::now() + packet_delay(shape, rand::random::<f64>());
        self.seq += 1;
        let seq = self.seq;
        self.held.push(Held {
            release,
            seq,
            msg,
            copy,
        });
        Ok(())
    }

    /// Lets go of every held packet that is due; returns when the next one is.
    fn release_due(&mut self) -> std::io::Result<Option<Instant>> {
        let now = Instant::now();
        while self.held.peek().is_some_and(|h| h.release <= now) {
            let h = self.held.pop().expect("checked");
            self.release(h.msg, h.copy)?;
        }
        Ok(self.held.peek().map(|h| h.release))
    }

    fn release_all(mut self) -> std::io::Result<()> {
        while let Some(h) = self.held.pop() {
            self.release(h.msg, h.copy)?;
        }
        Ok(())
    }
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
    fn corruption_flips_one_bit_past_the_ip_header() {
        let mut p = vec![0x45u8; 20];
        p.extend_from_slice(&[0u8; 10]);
        let before = p.clone();
        corrupt_packet(&mut p, 0.0, 3);
        assert_eq!(p[..20], before[..20], "the IP header is left alone");
        assert_eq!(p[20], 0b1000);
        let mut q = before.clone();
        corrupt_packet(&mut q, 0.9999, 0);
        assert_eq!(q[29], 1);
        let diff: u32 = q
            .iter()
            .zip(&before)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1);
    }

    #[test]
    fn reorder_with_a_gap_picks_only_every_nth_packet() {
        let s = Shape {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            corrupt: 0.0,
            duplicate: 0.0,
            reorder: 1.0,
            gap: 5,
        };
        let picked: Vec<u64> = (1..=20).filter(|n| skips_delay(&s, *n, 0.5)).collect();
        assert_eq!(picked, vec![5, 10, 15, 20]);
        let half = Shape {
            gap: 0,
            reorder: 0.25,
            ..s
        };
        assert!(skips_delay(&half, 1, 0.2) && !skips_delay(&half, 1, 0.3));
        let none = Shape { reorder: 0.0, ..s };
        assert!(!skips_delay(&none, 5, 0.0));
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
            corrupt: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            gap: 0,
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
