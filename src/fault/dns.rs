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

/// The fate of one IPv4 packet the rule queued (`uniform` in 0..1 decides `percent`).
/// The packet is read with etherparse and the DNS message with hickory-proto; a
/// rewritten answer keeps its header (id, flags) and question, takes the new rcode and
/// loses its records.
pub fn act(packet: &[u8], rw: &DnsRewrite, uniform: f64) -> Action {
    use etherparse::{IpNumber, Ipv4Header, UdpHeader};
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    let Ok((ip, rest)) = Ipv4Header::from_slice(packet) else {
        return Action::Pass;
    };
    if ip.protocol != IpNumber::UDP {
        return Action::Pass;
    }
    let Ok((udp, payload)) = UdpHeader::from_slice(rest) else {
        return Action::Pass;
    };
    let Ok(message) = Message::from_vec(payload) else {
        return Action::Pass;
    };
    let Some(query) = message.queries().first() else {
        return Action::Pass;
    };
    // Answers only: a query is never touched.
    if message.message_type() != MessageType::Response {
        return Action::Pass;
    }
    let name = query.name().to_ascii();
    let name = name.trim_end_matches('.');
    if !rw.names.iter().any(|g| glob_match(g, name)) || uniform >= rw.percent {
        return Action::Pass;
    }
    let rcode = match rw.mode {
        DnsMode::Timeout => return Action::Drop,
        DnsMode::Nxdomain => ResponseCode::NXDomain,
        DnsMode::Servfail => ResponseCode::ServFail,
    };
    let mut failed = Message::new();
    failed
        .set_header(*message.header())
        .add_query(query.clone())
        .set_response_code(rcode);
    let Ok(dns) = failed.to_vec() else {
        return Action::Pass;
    };
    let mut ip = ip.clone();
    if ip.set_payload_len(UdpHeader::LEN + dns.len()).is_err() {
        return Action::Pass;
    }
    ip.header_checksum = ip.calc_header_checksum();
    let Ok(udp) = UdpHeader::with_ipv4_checksum(udp.source_port, udp.destination_port, &ip, &dns)
    else {
        return Action::Pass;
    };
    let mut out = ip.to_bytes().to_vec();
    out.extend_from_slice(&udp.to_bytes());
    out.extend_from_slice(&dns);
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

    use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};

    /// An IPv4/UDP DNS message for `name`: an answer with one A record, as a server sends
    /// it, or the query.
    fn packet(name: &str, answer: bool) -> Vec<u8> {
        let qname = Name::from_ascii(name).unwrap();
        let mut m = Message::new();
        m.set_id(0x1234)
            .set_recursion_desired(true)
            .add_query(Query::query(qname.clone(), RecordType::A));
        if answer {
            m.set_message_type(MessageType::Response)
                .set_recursion_available(true)
                .add_answer(Record::from_rdata(qname, 60, RData::A(A::new(10, 0, 0, 5))));
        }
        let dns = m.to_vec().unwrap();
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([127, 0, 0, 11], [127, 0, 0, 1], 64)
            .udp(53, 40000)
            .write(&mut out, &dns)
            .unwrap();
        out
    }

    fn answer(name: &str) -> Vec<u8> {
        packet(name, true)
    }

    /// The DNS message of a rewritten packet, checked to be a well-formed IPv4/UDP packet.
    fn dns_of(out: &[u8]) -> Message {
        let (ip, rest) = etherparse::Ipv4Header::from_slice(out).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(usize::from(ip.total_len), out.len());
        let (udp, payload) = etherparse::UdpHeader::from_slice(rest).unwrap();
        assert_eq!(usize::from(udp.length), rest.len());
        assert_eq!(
            udp.checksum,
            udp.calc_checksum_ipv4(&ip, payload).unwrap(),
            "a valid UDP checksum"
        );
        Message::from_vec(payload).unwrap()
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
        let m = dns_of(&out);
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert_eq!(m.id(), 0x1234, "the resolver matches it to its query");
        assert_eq!(m.message_type(), MessageType::Response);
        assert!(
            m.recursion_desired() && m.recursion_available(),
            "flags kept"
        );
        assert_eq!(m.queries().len(), 1);
        assert_eq!(m.queries()[0].name().to_ascii(), "db.test.");
        assert!(m.answers().is_empty() && m.additionals().is_empty());
        let Action::Rewrite(sf) = act(&p, &rw(DnsMode::Servfail), 0.0) else {
            panic!()
        };
        assert_eq!(dns_of(&sf).response_code(), ResponseCode::ServFail);
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
        let q = packet("db.test", false);
        assert_eq!(act(&q, &rw(DnsMode::Nxdomain), 0.0), Action::Pass);
        assert_eq!(
            act(&[0x45, 0, 0], &rw(DnsMode::Nxdomain), 0.0),
            Action::Pass
        );
    }
}
