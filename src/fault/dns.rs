//! `dns` in a network fault: the nfqueue delayer sees the DNS answers the target receives
//! (an INPUT rule on UDP source port 53, whatever the server: Docker's embedded DNS at
//! 127.0.0.11 or one on the network) and, for a question whose name matches, rewrites the
//! answer's rcode (NXDOMAIN, SERVFAIL: no records left) or drops it (the resolver times
//! out). Other answers pass untouched.

use crate::experiment::model::DnsMode;

/// What the delayer does to DNS answers.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsRewrite {
    /// Lowercase globs (`*` any run of characters).
    pub names: Vec<String>,
    pub mode: DnsMode,
    /// 0.0..=1.0.
    pub percent: f64,
}

/// What becomes of one packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Pass,
    Drop,
    Rewrite(Vec<u8>),
}

/// Whether `name` matches `glob` (`*` any run of characters, case-insensitive).
pub fn glob_match(glob: &str, name: &str) -> bool {
    let (g, n) = (glob.to_ascii_lowercase(), name.to_ascii_lowercase());
    let parts: Vec<&str> = g.split('*').collect();
    if parts.len() == 1 {
        return g == n;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !n.starts_with(first) || n.len() < first.len() + last.len() || !n.ends_with(last) {
        return false;
    }
    let mut rest = &n[first.len()..n.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// The question name of a DNS message and the offset just past the question, or `None`
/// when it is not a message with one uncompressed question.
fn question(dns: &[u8]) -> Option<(String, usize)> {
    if dns.len() < 12 || u16::from_be_bytes([dns[4], dns[5]]) == 0 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*dns.get(i)?);
        if len == 0 {
            i += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(dns.get(i + 1..i + 1 + len)?).into_owned());
        i += 1 + len;
    }
    dns.get(i..i + 4)?;
    Some((labels.join("."), i + 4))
}

/// The IPv4 header checksum.
fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, c) in h.chunks(2).enumerate() {
        if i == 5 {
            continue;
        }
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The fate of one IPv4 packet the rule queued (`uniform` in 0..1 decides `percent`).
pub fn act(packet: &[u8], rw: &DnsRewrite, uniform: f64) -> Action {
    let Some(&v) = packet.first() else {
        return Action::Pass;
    };
    let ihl = usize::from(v & 0x0f) * 4;
    if v >> 4 != 4 || packet.len() < ihl + 8 + 12 || packet[9] != 17 {
        return Action::Pass;
    }
    let dns = &packet[ihl + 8..];
    // Answers only (QR set).
    if dns[2] & 0x80 == 0 {
        return Action::Pass;
    }
    let Some((name, end)) = question(dns) else {
        return Action::Pass;
    };
    if !rw.names.iter().any(|g| glob_match(g, &name)) || uniform >= rw.percent {
        return Action::Pass;
    }
    let rcode = match rw.mode {
        DnsMode::Timeout => return Action::Drop,
        DnsMode::Nxdomain => 3,
        DnsMode::Servfail => 2,
    };
    // The header and the question only: no records, the new rcode.
    let mut out_dns = dns[..end].to_vec();
    out_dns[3] = (out_dns[3] & 0xf0) | rcode;
    out_dns[4..6].copy_from_slice(&1u16.to_be_bytes());
    out_dns[6..12].fill(0);
    let mut out = packet[..ihl + 8].to_vec();
    out.extend_from_slice(&out_dns);
    let total = out.len() as u16;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    let sum = ip_checksum(&out[..ihl]);
    out[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp_len = (out.len() - ihl) as u16;
    out[ihl + 4..ihl + 6].copy_from_slice(&udp_len.to_be_bytes());
    // No UDP checksum (allowed over IPv4): the payload changed.
    out[ihl + 6..ihl + 8].fill(0);
    Action::Rewrite(out)
}

/// The iptables match of the answers the delayer looks at.
pub fn answer_matches() -> Vec<String> {
    ["INPUT", "-p", "udp", "-m", "udp", "--sport", "53"]
        .map(String::from)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/UDP DNS answer for `name` with one A record, as a server sends it.
    fn answer(name: &str) -> Vec<u8> {
        let mut dns = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        for l in name.split('.') {
            dns.push(l.len() as u8);
            dns.extend_from_slice(l.as_bytes());
        }
        dns.extend_from_slice(&[0, 0, 1, 0, 1]);
        dns.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 5]);
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 11, 127, 0, 0, 1,
        ];
        p.extend_from_slice(&[0, 53, 0x9c, 0x40, 0, 0, 0xab, 0xcd]);
        p.extend_from_slice(&dns);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let udp = (p.len() - 20) as u16;
        p[24..26].copy_from_slice(&udp.to_be_bytes());
        let sum = ip_checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    }

    fn rw(mode: DnsMode) -> DnsRewrite {
        DnsRewrite {
            names: vec!["db.test".into(), "*.cache.test".into()],
            mode,
            percent: 1.0,
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("db.test", "DB.test"));
        assert!(glob_match("*.cache.test", "a.b.cache.test"));
        assert!(!glob_match("*.cache.test", "cache.test"));
        assert!(glob_match("db*", "db-1.svc"));
        assert!(glob_match("a*b*c", "aXbYc") && !glob_match("a*b*c", "aXcYb"));
        assert!(!glob_match("db.test", "db.test.evil"));
    }

    #[test]
    fn a_matching_answer_loses_its_records_and_takes_the_rcode() {
        let p = answer("db.test");
        let Action::Rewrite(out) = act(&p, &rw(DnsMode::Nxdomain), 0.5) else {
            panic!("not rewritten");
        };
        let dns = &out[28..];
        assert_eq!(dns[3] & 0x0f, 3, "rcode NXDOMAIN");
        assert_eq!(dns[2], 0x81, "still an answer, flags kept");
        assert_eq!(&dns[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(out.len(), 28 + 12 + 9 + 4, "header and question only");
        assert_eq!(u16::from_be_bytes([out[2], out[3]]) as usize, out.len());
        assert_eq!(
            u16::from_be_bytes([out[24], out[25]]) as usize,
            out.len() - 20
        );
        assert_eq!(
            ip_checksum(&out[..20]),
            u16::from_be_bytes([out[10], out[11]])
        );
        let Action::Rewrite(sf) = act(&p, &rw(DnsMode::Servfail), 0.0) else {
            panic!()
        };
        assert_eq!(sf[28 + 3] & 0x0f, 2);
        assert_eq!(act(&p, &rw(DnsMode::Timeout), 0.0), Action::Drop);
    }

    #[test]
    fn other_names_queries_and_the_unlucky_share_pass() {
        assert_eq!(
            act(&answer("web.test"), &rw(DnsMode::Nxdomain), 0.0),
            Action::Pass
        );
        assert!(matches!(
            act(&answer("x.cache.test"), &rw(DnsMode::Nxdomain), 0.0),
            Action::Rewrite(_)
        ));
        let mut half = rw(DnsMode::Nxdomain);
        half.percent = 0.5;
        assert_eq!(act(&answer("db.test"), &half, 0.7), Action::Pass);
        // A query (QR clear) is never touched.
        let mut q = answer("db.test");
        q[30] = 0x01;
        assert_eq!(act(&q, &rw(DnsMode::Nxdomain), 0.0), Action::Pass);
        assert_eq!(
            act(&[0x45, 0, 0], &rw(DnsMode::Nxdomain), 0.0),
            Action::Pass
        );
    }
}
