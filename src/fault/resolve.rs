//! `hosts` in a network fault's scope, resolved as the target itself would: its own
//! `/etc/hosts`, then the name servers of its own `/etc/resolv.conf`, asked from inside
//! its network namespace (so Docker's embedded DNS at 127.0.0.11 answers as it does for
//! the target). The query is a plain DNS A question over UDP (`faultline resolve`, hidden,
//! run in the target's namespace).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::platform::{NetAccess, Peer, Platform, PlatformError, Target};

/// The name servers and search domains of a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> (Vec<IpAddr>, Vec<String>) {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("nameserver") => {
                if let Some(a) = w.next().and_then(|a| a.parse().ok()) {
                    servers.push(a);
                }
            }
            Some("search") | Some("domain") => search = w.map(str::to_string).collect(),
            _ => {}
        }
    }
    (servers, search)
}

/// The IPv4 addresses `/etc/hosts` gives `name`.
pub fn hosts_file_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut w = l.split_whitespace();
            let addr: IpAddr = w.next()?.parse().ok()?;
            (addr.is_ipv4() && w.any(|n| n.eq_ignore_ascii_case(name))).then_some(addr)
        })
        .collect()
}

/// A DNS question for the A records of `name`.
pub fn a_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Skips a (possibly compressed) name at `i`; returns the offset after it.
fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *m.get(i)?;
        if len & 0xc0 == 0xc0 {
            return Some(i + 2);
        }
        if len == 0 {
            return Some(i + 1);
        }
        i += 1 + usize::from(len);
    }
}

/// The A records of an answer to the question with `id`; `None` for a malformed answer
/// or another question's.
pub fn parse_a_answer(id: u16, m: &[u8]) -> Option<Vec<Ipv4Addr>> {
    if m.len() < 12 || m[0..2] != id.to_be_bytes() {
        return None;
    }
    let qd = u16::from_be_bytes([m[4], m[5]]);
    let an = u16::from_be_bytes([m[6], m[7]]);
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(m, i)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        i = skip_name(m, i)?;
        let rtype = u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]);
        let rdlen = usize::from(u16::from_be_bytes([*m.get(i + 8)?, *m.get(i + 9)?]));
        i += 10;
        if rtype == 1 && rdlen == 4 {
            let b = m.get(i..i + 4)?;
            out.push(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        }
        i += rdlen;
    }
    Some(out)
}

/// Asks `server` for the A records of `name` (three tries of one second).
pub fn query(server: IpAddr, name: &str) -> std::io::Result<Vec<Ipv4Addr>> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(bind)?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))?;
    sock.connect(SocketAddr::new(server, 53))?;
    let id: u16 = rand::random();
    let q = a_query(id, name);
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        sock.send(&q)?;
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    if let Some(a) = parse_a_answer(id, &buf[..n]) {
                        return Ok(a);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{server} did not answer"),
    ))
}

/// The body of the hidden `faultline resolve`: prints `NAME ADDRESS` lines for every
/// name, asking each server in turn (with the search domains for a name without a dot).
pub fn run_resolve(servers: &[IpAddr], search: &[String], names: &[String]) -> String {
    let mut out = String::new();
    for name in names {
        let mut candidates = vec![name.clone()];
        if !name.contains('.') {
            candidates.extend(search.iter().map(|d| format!("{name}.{d}")));
        }
        'name: for c in &candidates {
            for s in servers {
                if let Ok(addrs) = query(*s, c) {
                    if !addrs.is_empty() {
                        for a in addrs {
                            out.push_str(&format!("{name} {a}\n"));
                        }
                        break 'name;
                    }
                }
            }
        }
    }
    out
}

/// Resolves `names` as the target would, from its own files and name servers.
pub async fn resolve_in_target(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    names: &[String],
) -> Result<Vec<Peer>, PlatformError> {
    if *access != NetAccess::Host {
        return Err(PlatformError::Refused(
            "`hosts` in a network scope is resolved from the host in the target's namespace: use `strategy: host`, or name the addresses in `cidrs`".into(),
        ));
    }
    let root = platform.host_root(target).await?;
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
    let resolv = std::fs::read_to_string(root.join("etc/resolv.conf")).unwrap_or_default();
    let (servers, search) = parse_resolv_conf(&resolv);
    let exe = std::env::current_exe()
        .map_err(|e| PlatformError::Refused(format!("cannot find faultline's own binary: {e}")))?;
    let mut peers = Vec::new();
    let mut ask = Vec::new();
    for n in names {
        let local = hosts_file_lookup(&hosts, n);
        if local.is_empty() {
            ask.push(n.clone());
        } else {
            peers.push(Peer {
                name: n.clone(),
                addresses: local,
            });
        }
    }
    if !ask.is_empty() {
        if servers.is_empty() {
            return Err(PlatformError::Refused(format!(
                "`{}` has no name server in its /etc/resolv.conf: cannot resolve {}",
                target.name,
                ask.join(", ")
            )));
        }
        let mut argv = vec![exe.to_string_lossy().into_owned(), "resolve".into()];
        for s in &servers {
            argv.extend(["--nameserver".to_string(), s.to_string()]);
        }
        for d in &search {
            argv.extend(["--search".to_string(), d.clone()]);
        }
        argv.extend(ask.iter().cloned());
        let out = platform.netns_exec(target, access, &argv).await?;
        for n in &ask {
            let addresses: Vec<IpAddr> = out
                .stdout
                .lines()
                .filter_map(|l| {
                    let (name, addr) = l.split_once(' ')?;
                    (name == n).then(|| addr.trim().parse().ok()).flatten()
                })
                .collect();
            if addresses.is_empty() {
                return Err(PlatformError::Refused(format!(
                    "`{n}` does not resolve in `{}` (asked {}): a network scope on it would touch nothing",
                    target.name,
                    servers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            peers.push(Peer {
                name: n.clone(),
                addresses,
            });
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_hosts() {
        let (s, d) = parse_resolv_conf(
            "# Docker\nnameserver 127.0.0.11\nsearch svc.cluster.local cluster.local\noptions ndots:0\n",
        );
        assert_eq!(s, vec!["127.0.0.11".parse::<IpAddr>().unwrap()]);
        assert_eq!(d, vec!["svc.cluster.local", "cluster.local"]);
        let hosts =
            "127.0.0.1 localhost\n::1 localhost ip6-localhost\n172.17.0.2 db db.local # x\n";
        assert_eq!(
            hosts_file_lookup(hosts, "DB"),
            vec!["172.17.0.2".parse::<IpAddr>().unwrap()]
        );
        assert!(hosts_file_lookup(hosts, "cache").is_empty());
    }

    #[test]
    fn a_question_and_its_answer() {
        let q = a_query(0xabcd, "db.example");
        assert_eq!(
            q,
            b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02db\x07example\x00\x00\x01\x00\x01"
        );
        // The answer repeats the question, then a CNAME and an A record (names compressed).
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 2;
        a.extend_from_slice(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x02\xc0\x0f");
        a.extend_from_slice(b"\xc0\x0f\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x07");
        assert_eq!(
            parse_a_answer(0xabcd, &a),
            Some(vec![Ipv4Addr::new(10, 0, 0, 7)])
        );
        assert_eq!(parse_a_answer(0x1234, &a), None);
        assert_eq!(parse_a_answer(0xabcd, &a[..20]), None);
    }
}
