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

/// A DNS question for the A records of `name` (hickory-proto builds it); `None` for a
/// name that is not a valid DNS name.
pub fn a_query(id: u16, name: &str) -> Option<Vec<u8>> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let name = Name::from_ascii(name).ok()?;
    let mut m = Message::new();
    m.set_id(id)
        .set_recursion_desired(true)
        .add_query(Query::query(name, RecordType::A));
    m.to_vec().ok()
}

/// The A records of an answer to the question with `id` (CNAMEs followed by the server
/// are skipped); `None` for a malformed answer or another question's.
pub fn parse_a_answer(id: u16, m: &[u8]) -> Option<Vec<Ipv4Addr>> {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::RData;
    let msg = Message::from_vec(m).ok()?;
    if msg.id() != id || msg.message_type() != MessageType::Response {
        return None;
    }
    Some(
        msg.answers()
            .iter()
            .filter_map(|r| match r.data() {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect(),
    )
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
    let q = a_query(id, name).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{name}` is not a DNS name"),
        )
    })?;
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

/// What the network helper runs to resolve `hosts` on Kubernetes (the names follow as
/// `$1`…): `getent ahostsv4`, the libc resolver, one `NAME ADDRESS` line per address.
///
/// Why there: the helper is an ephemeral container of the target pod, so it shares the
/// pod's network namespace (the cluster DNS answers it as it answers the target), and the
/// kubelet and the container runtime mount the pod's own `/etc/hosts` (with its
/// `hostAliases`) and `/etc/resolv.conf` (search domains, `ndots:5`) into it as into every
/// container of the pod: `getent` resolves exactly as a libc program in the target does.
/// The target's own image may have no shell or no resolver tool (distroless); the helper
/// image is faultline's (the `helper` target of deploy/Dockerfile, Debian: `getent` is in
/// libc-bin). An exec is not expanded by Kubernetes: the script goes as written.
pub const GETENT_SCRIPT: &str = "command -v getent >/dev/null 2>&1 || { echo 'getent: not found' >&2; exit 127; }; for n do getent ahostsv4 \"$n\" | while read -r a _; do echo \"$n $a\"; done; done";

/// The exec that resolves `names` in the network helper.
pub fn getent_command(names: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = ["sh", "-c", GETENT_SCRIPT, "sh"].map(String::from).into();
    argv.extend(names.iter().cloned());
    argv
}

/// The IPv4 addresses `GETENT_SCRIPT` printed for `name`, in order, each once.
pub fn parse_getent(stdout: &str, name: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for l in stdout.lines() {
        let Some((n, a)) = l.split_once(' ') else {
            continue;
        };
        if let Ok(a) = a.trim().parse::<IpAddr>() {
            if n == name && a.is_ipv4() && !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// How [`GETENT_SCRIPT`] is named in `plan`.
pub const GETENT_SHOWN: &str = "getent ahostsv4";

/// Resolves `names` with [`GETENT_SCRIPT`] in the network helper (see there why).
async fn resolve_in_helper(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    names: &[String],
) -> Result<Vec<Peer>, PlatformError> {
    let out = platform
        .netns_exec(target, access, &getent_command(names))
        .await?;
    if out.code != 0 {
        let image = match access {
            NetAccess::Sidecar { image, .. } => image.as_str(),
            NetAccess::Host => "",
        };
        return Err(PlatformError::Refused(format!(
            "`hosts` are resolved with `getent` in the network helper, which failed there (exit {}: {}): its image `{image}` needs `sh` and glibc's `getent` (the `helper` target of deploy/Dockerfile has them)",
            out.code,
            out.stderr.trim()
        )));
    }
    names
        .iter()
        .map(|n| {
            let addresses = parse_getent(&out.stdout, n);
            if addresses.is_empty() {
                return Err(PlatformError::Refused(format!(
                    "`{n}` does not resolve in pod `{}` ({GETENT_SHOWN}, with the pod's /etc/hosts and resolv.conf): a network scope on it would touch nothing",
                    target.name
                )));
            }
            Ok(Peer {
                name: n.clone(),
                addresses,
            })
        })
        .collect()
}

/// Resolves `names` as the target would, from its own files and name servers.
pub async fn resolve_in_target(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    names: &[String],
) -> Result<Vec<Peer>, PlatformError> {
    if matches!(access, NetAccess::Sidecar { .. }) && platform.in_target_from_helper_image() {
        return resolve_in_helper(platform, target, access, names).await;
    }
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

    /// What glibc's `getent ahostsv4` prints (one line per address and socket type), as
    /// the script passes it on; the script itself runs in tests/kubernetes_mock.rs.
    #[test]
    fn getent_lines_give_each_names_addresses_once() {
        let names: Vec<String> = ["db", "cache"].map(String::from).into();
        assert_eq!(
            getent_command(&names),
            ["sh", "-c", GETENT_SCRIPT, "sh", "db", "cache"]
        );
        let out =
            "db 10.96.0.20\ndb 10.96.0.20\ncache 10.244.1.7\ncache 10.244.2.9\ncache fd00::1\n";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_getent(out, "db"), [ip("10.96.0.20")]);
        assert_eq!(
            parse_getent(out, "cache"),
            [ip("10.244.1.7"), ip("10.244.2.9")]
        );
        assert!(parse_getent(out, "nowhere").is_empty());
    }

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
        use hickory_proto::op::{Message, MessageType};
        use hickory_proto::rr::{Name, RData, Record, rdata::A, rdata::CNAME};
        let q = a_query(0xabcd, "db.example").unwrap();
        // The wire form a resolver sends: id, RD, one question for A IN.
        assert_eq!(
            q,
            b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02db\x07example\x00\x00\x01\x00\x01"
        );
        assert_eq!(a_query(1, "bad..name"), None);
        // The answer repeats the question, then a CNAME and an A record.
        let mut answer = Message::from_vec(&q).unwrap();
        let alias = Name::from_ascii("db-1.example").unwrap();
        answer
            .set_message_type(MessageType::Response)
            .add_answer(Record::from_rdata(
                Name::from_ascii("db.example").unwrap(),
                60,
                RData::CNAME(CNAME(alias.clone())),
            ))
            .add_answer(Record::from_rdata(alias, 60, RData::A(A::new(10, 0, 0, 7))));
        let a = answer.to_vec().unwrap();
        assert_eq!(
            parse_a_answer(0xabcd, &a),
            Some(vec![Ipv4Addr::new(10, 0, 0, 7)])
        );
        assert_eq!(parse_a_answer(0x1234, &a), None, "another question's");
        assert_eq!(parse_a_answer(0xabcd, &a[..20]), None, "truncated");
        assert_eq!(parse_a_answer(0xabcd, &q), None, "a query, not an answer");
    }
}
