//! Scopes of the `network` fault: which packets it touches (`to`, `from`, `direction`)
//! and the peers of a `partition`, resolved to addresses when the fault is injected, and
//! turned into iptables matches (the nfqueue engine, partitions) or `prio` + `u32` filters
//! (netem). Nothing outside the scope is touched: a scope whose peers resolve to no
//! address is refused, never widened to every address.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::experiment::model::{
    FaultProblems, NetDirection, NetProtocol, NetScope, NetworkFault, PartitionDirection,
};
use crate::platform::{NetAccess, Peer, Platform, PlatformError, Target};

/// Which end of the traffic a scope names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The peers are servers: their addresses, and ports on them (`to:`).
    To,
    /// The peers are clients: their addresses, and ports on the target (`from:`).
    From,
}

/// One scope resolved to addresses, as journaled (so that revert and `recover` remove
/// exactly the rules and filters that were added).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub side: Side,
    /// IPv4 networks (`a.b.c.d/len`); empty means any address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<String>,
    /// Inclusive port ranges; empty means any port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<(u16, u16)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<NetProtocol>,
}

impl Resolved {
    /// In words, for the report and the plan: `to 10.0.0.5/32 tcp ports 8080`.
    pub fn describe(&self) -> String {
        let mut s = match self.side {
            Side::To => "to".to_string(),
            Side::From => "from".to_string(),
        };
        if self.nets.is_empty() {
            s.push_str(" any address");
        } else {
            s.push_str(&format!(" {}", self.nets.join(", ")));
        }
        if let Some(p) = self.protocol {
            s.push_str(&format!(" {}", p.name()));
        }
        if !self.ports.is_empty() {
            let ports: Vec<String> = self.ports.iter().map(|r| port_text(*r, "-")).collect();
            s.push_str(&format!(" port {}", ports.join(", ")));
        }
        s
    }

    /// The protocols the rules name: the one given; tcp and udp when ports are given
    /// without one; none (every protocol) otherwise.
    fn protocols(&self) -> Vec<Option<NetProtocol>> {
        match (self.protocol, self.ports.is_empty()) {
            (Some(p), _) => vec![Some(p)],
            (None, false) => vec![Some(NetProtocol::Tcp), Some(NetProtocol::Udp)],
            (None, true) => vec![None],
        }
    }
}

fn port_text((a, b): (u16, u16), sep: &str) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}{sep}{b}")
    }
}

/// `10.0.0.5` or `10.0.0.0/24` as a normalized IPv4 network, or why not.
pub fn parse_cidr(s: &str) -> Result<String, String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| *l <= 32)),
        None => (s, Some(32)),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address or network (e.g. 10.0.0.0/24)"))?;
    let IpAddr::V4(v4) = addr else {
        return Err(format!(
            "`{s}` is an IPv6 address: network scopes cover IPv4 only for now"
        ));
    };
    let len = len.ok_or_else(|| format!("`{s}`: the prefix length must be 0..32"))?;
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    Ok(format!("{}/{len}", Ipv4Addr::from(u32::from(v4) & mask)))
}

/// The problems of one scope (`key` is `to`, `from` or `partition`).
pub fn validate_scope(key: &'static str, s: &NetScope, p: &mut FaultProblems) {
    for c in &s.cidrs {
        if let Err(e) = parse_cidr(c) {
            p.err_at(key, format!("`{key}.cidrs`: {e}"));
        }
    }
    for port in &s.ports {
        if let Err(e) = port.range() {
            p.err_at(key, format!("`{key}.ports`: {e}"));
        }
    }
    if s.ports.len() > 15 {
        p.err_at(
            key,
            format!(
                "`{key}.ports` lists {} entries: at most 15 (use ranges, \"8000-8100\")",
                s.ports.len()
            ),
        );
    }
    if s.protocol == Some(NetProtocol::Icmp) && !s.ports.is_empty() {
        p.err_at(
            key,
            format!("`{key}`: icmp has no ports: remove `ports` or name tcp or udp"),
        );
    }
    if let Some(c) = &s.containers {
        if c.names.is_empty() && c.labels.is_empty() {
            p.err_at(
                key,
                format!("`{key}.containers` selects every container: give `names` or `labels`"),
            );
        }
    }
    for h in &s.hosts {
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !ok {
            p.err_at(key, format!("`{key}.hosts`: `{h}` is not a DNS name"));
        }
    }
    if let Some(pods) = &s.pods {
        if pods.selector.trim().is_empty() {
            p.err_at(
                key,
                format!("`{key}.pods.selector` is empty: give a label selector, e.g. app=db"),
            );
        }
    }
    if *s == NetScope::default() {
        p.err_at(
            key,
            format!("`{key}` is empty: give `cidrs`, `ports`, `protocol`, `containers` or `hosts`"),
        );
    }
}

/// Whether a scope names addresses (so that resolving to none must be refused).
fn names_addresses(s: &NetScope) -> bool {
    !s.cidrs.is_empty() || s.containers.is_some() || s.pods.is_some() || !s.hosts.is_empty()
}

/// The fault's scopes, resolved now: the peers by `containers` through the platform, the
/// `hosts` by the target's own resolver. Returns the scopes and the peers named, for the
/// journal and the report.
pub async fn resolve(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    scopes: &[(Side, &NetScope)],
) -> Result<(Vec<Resolved>, Vec<Peer>), PlatformError> {
    let mut out = Vec::new();
    let mut peers: Vec<Peer> = Vec::new();
    for (side, s) in scopes {
        let mut nets: Vec<String> = Vec::new();
        for c in &s.cidrs {
            nets.push(parse_cidr(c).map_err(PlatformError::Refused)?);
        }
        if let Some(sel) = &s.containers {
            let found = platform.peers(sel).await?;
            for n in &sel.names {
                if !found.iter().any(|p| &p.name == n) {
                    return Err(PlatformError::Refused(format!(
                        "no running container is named `{n}` (named in the network fault's `containers`)"
                    )));
                }
            }
            if found.is_empty() {
                return Err(PlatformError::Refused(
                    "the network fault's `containers` match no running container".into(),
                ));
            }
            for peer in found {
                for a in peer.addresses.iter().filter(|a| a.is_ipv4()) {
                    nets.push(format!("{a}/32"));
                }
                peers.push(peer);
            }
        }
        if let Some(sel) = &s.pods {
            let found = platform.peer_pods(sel).await?;
            if found.is_empty() {
                return Err(PlatformError::Refused(format!(
                    "the network fault's `pods` (`{}`) match no pod with an address",
                    sel.selector
                )));
            }
            for peer in found {
                for a in peer.addresses.iter().filter(|a| a.is_ipv4()) {
                    nets.push(format!("{a}/32"));
                }
                peers.push(peer);
            }
        }
        if !s.hosts.is_empty() {
            let resolved =
                super::resolve::resolve_in_target(platform, target, access, &s.hosts).await?;
            for peer in resolved {
                for a in peer.addresses.iter().filter(|a| a.is_ipv4()) {
                    nets.push(format!("{a}/32"));
                }
                peers.push(peer);
            }
        }
        nets.sort();
        nets.dedup();
        if names_addresses(s) && nets.is_empty() {
            return Err(PlatformError::Refused(
                "the network fault's scope resolves to no IPv4 address: nothing would be touched"
                    .into(),
            ));
        }
        let mut ports: Vec<(u16, u16)> = s
            .ports
            .iter()
            .map(|p| p.range().map_err(PlatformError::Refused))
            .collect::<Result<_, _>>()?;
        ports.sort();
        ports.dedup();
        out.push(Resolved {
            side: *side,
            nets,
            ports,
            protocol: s.protocol,
        });
    }
    Ok((out, peers))
}

/// The scopes a fault declares, in order: `to`, `from`; a partition's `with` (its peers
/// are servers and clients alike: their addresses, ports on them).
pub fn declared(f: &NetworkFault) -> Vec<(Side, &NetScope)> {
    if let Some(part) = &f.partition {
        return vec![(Side::To, &part.with)];
    }
    let mut v = Vec::new();
    if let Some(s) = &f.to {
        v.push((Side::To, &**s));
    }
    if let Some(s) = &f.from {
        v.push((Side::From, &**s));
    }
    v
}

/// The iptables chains a direction covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    Output,
    Input,
}

impl Chain {
    pub fn name(self) -> &'static str {
        match self {
            Chain::Output => "OUTPUT",
            Chain::Input => "INPUT",
        }
    }
}

pub fn chains(direction: NetDirection) -> Vec<Chain> {
    match direction {
        NetDirection::Egress => vec![Chain::Output],
        NetDirection::Ingress => vec![Chain::Input],
        NetDirection::Both => vec![Chain::Output, Chain::Input],
    }
}

pub fn partition_chains(direction: PartitionDirection) -> Vec<Chain> {
    match direction {
        PartitionDirection::To => vec![Chain::Output],
        PartitionDirection::From => vec![Chain::Input],
        PartitionDirection::Both => vec![Chain::Output, Chain::Input],
    }
}

/// The iptables rule specs (chain first, without `-I`/`-D` and without the comment and
/// target) that select the scoped packets on `interface`. No scope: every packet through
/// the interface in those chains.
pub fn iptables_matches(
    scopes: &[Resolved],
    chains: &[Chain],
    interface: &str,
) -> Vec<Vec<String>> {
    let any = [Resolved {
        side: Side::To,
        nets: Vec::new(),
        ports: Vec::new(),
        protocol: None,
    }];
    let scopes = if scopes.is_empty() { &any[..] } else { scopes };
    let mut rules = Vec::new();
    for &chain in chains {
        for s in scopes {
            // Outgoing packets go to the peer; incoming ones come from it.
            let (iface_flag, addr_flag) = match chain {
                Chain::Output => ("-o", "-d"),
                Chain::Input => ("-i", "-s"),
            };
            // Ports on the peer are its packets' source ports when they come in.
            let port_flag = match (chain, s.side) {
                (Chain::Output, Side::To) | (Chain::Input, Side::From) => "--dports",
                (Chain::Output, Side::From) | (Chain::Input, Side::To) => "--sports",
            };
            let nets: Vec<Option<&String>> = if s.nets.is_empty() {
                vec![None]
            } else {
                s.nets.iter().map(Some).collect()
            };
            for net in &nets {
                for proto in s.protocols() {
                    let mut r: Vec<String> =
                        vec![chain.name().into(), iface_flag.into(), interface.into()];
                    if let Some(net) = net {
                        r.extend([addr_flag.to_string(), (*net).clone()]);
                    }
                    if let Some(p) = proto {
                        r.extend(["-p".to_string(), p.name().into()]);
                        if !s.ports.is_empty() {
                            let list: Vec<String> =
                                s.ports.iter().map(|r| port_text(*r, ":")).collect();
                            r.extend([
                                "-m".into(),
                                "multiport".into(),
                                port_flag.into(),
                                list.join(","),
                            ]);
                        }
                    }
                    rules.push(r);
                }
            }
        }
    }
    rules
}

/// A port range as the fewest `u32` (value, mask) pairs that cover exactly it.
pub fn port_blocks((lo, hi): (u16, u16)) -> Vec<(u16, u16)> {
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    let mut out = Vec::new();
    while lo <= hi {
        let mut size = 1u32;
        while lo % (size * 2) == 0 && lo + size * 2 - 1 <= hi && size < 0x10000 {
            size *= 2;
        }
        out.push((lo as u16, (0xffff ^ (size - 1)) as u16));
        lo += size;
    }
    out
}

/// The `u32` match arguments (after `u32`) of the tc filters for scopes, one filter each:
/// on egress (`Chain::Output`, the prio root's filters) the peer is the destination, on
/// ingress (`Chain::Input`, the filters that redirect to the IFB device) the source. No
/// scope: none (the qdisc then takes everything).
pub fn u32_matches(scopes: &[Resolved], chain: Chain) -> Vec<Vec<String>> {
    let addr_key = match chain {
        Chain::Output => "dst",
        Chain::Input => "src",
    };
    let mut out = Vec::new();
    for s in scopes {
        let nets: Vec<Option<&String>> = if s.nets.is_empty() {
            vec![None]
        } else {
            s.nets.iter().map(Some).collect()
        };
        // Ports on the peer (`to`) are the ports packets go to on egress and come from on
        // ingress; ports on the target (`from`) the other way round.
        let port_key = match (chain, s.side) {
            (Chain::Output, Side::To) | (Chain::Input, Side::From) => "dport",
            (Chain::Output, Side::From) | (Chain::Input, Side::To) => "sport",
        };
        let blocks: Vec<Option<(u16, u16)>> = if s.ports.is_empty() {
            vec![None]
        } else {
            s.ports
                .iter()
                .flat_map(|r| port_blocks(*r))
                .map(Some)
                .collect()
        };
        for net in &nets {
            for proto in s.protocols() {
                for block in &blocks {
                    let mut m: Vec<String> = Vec::new();
                    if let Some(net) = net {
                        m.extend(["match", "ip", addr_key, net.as_str()].map(String::from));
                    }
                    if let Some(p) = proto {
                        let num = match p {
                            NetProtocol::Tcp => "6",
                            NetProtocol::Udp => "17",
                            NetProtocol::Icmp => "1",
                        };
                        m.extend(["match", "ip", "protocol", num, "0xff"].map(String::from));
                    }
                    if let Some((value, mask)) = block {
                        m.extend([
                            "match".to_string(),
                            "ip".into(),
                            port_key.into(),
                            value.to_string(),
                            format!("0x{mask:04x}"),
                        ]);
                    }
                    out.push(m);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(nets: &[&str], ports: &[(u16, u16)], protocol: Option<NetProtocol>) -> Resolved {
        Resolved {
            side: Side::To,
            nets: nets.iter().map(|s| s.to_string()).collect(),
            ports: ports.to_vec(),
            protocol,
        }
    }

    fn joined(v: Vec<Vec<String>>) -> Vec<String> {
        v.into_iter().map(|r| r.join(" ")).collect()
    }

    #[test]
    fn cidrs_are_normalized_and_ipv6_refused() {
        assert_eq!(parse_cidr("10.0.0.5").unwrap(), "10.0.0.5/32");
        assert_eq!(parse_cidr("10.1.2.3/16").unwrap(), "10.1.0.0/16");
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert!(parse_cidr("fd00::1").unwrap_err().contains("IPv4 only"));
        assert!(parse_cidr("10.0.0.1/33").is_err());
        assert!(parse_cidr("db").is_err());
    }

    #[test]
    fn egress_to_a_peer_port_matches_its_destination_port() {
        let s = [to(
            &["172.17.0.3/32"],
            &[(8080, 8080)],
            Some(NetProtocol::Tcp),
        )];
        assert_eq!(
            joined(iptables_matches(&s, &[Chain::Output], "eth0")),
            vec!["OUTPUT -o eth0 -d 172.17.0.3/32 -p tcp -m multiport --dports 8080"]
        );
        // Ingress from the same peer: its packets come from that port.
        assert_eq!(
            joined(iptables_matches(&s, &[Chain::Input], "eth0")),
            vec!["INPUT -i eth0 -s 172.17.0.3/32 -p tcp -m multiport --sports 8080"]
        );
    }

    #[test]
    fn from_scopes_name_ports_on_the_target() {
        let s = [Resolved {
            side: Side::From,
            ..to(&["10.0.0.0/24"], &[(80, 80), (9000, 9100)], None)
        }];
        assert_eq!(
            joined(iptables_matches(&s, &chains(NetDirection::Both), "eth1")),
            vec![
                "OUTPUT -o eth1 -d 10.0.0.0/24 -p tcp -m multiport --sports 80,9000:9100",
                "OUTPUT -o eth1 -d 10.0.0.0/24 -p udp -m multiport --sports 80,9000:9100",
                "INPUT -i eth1 -s 10.0.0.0/24 -p tcp -m multiport --dports 80,9000:9100",
                "INPUT -i eth1 -s 10.0.0.0/24 -p udp -m multiport --dports 80,9000:9100",
            ]
        );
    }

    #[test]
    fn no_scope_is_the_whole_interface() {
        assert_eq!(
            joined(iptables_matches(&[], &[Chain::Output], "eth0")),
            vec!["OUTPUT -o eth0"]
        );
        let icmp = [to(
            &["10.0.0.1/32", "10.0.0.2/32"],
            &[],
            Some(NetProtocol::Icmp),
        )];
        assert_eq!(
            joined(iptables_matches(&icmp, &[Chain::Input], "eth0")),
            vec![
                "INPUT -i eth0 -s 10.0.0.1/32 -p icmp",
                "INPUT -i eth0 -s 10.0.0.2/32 -p icmp"
            ]
        );
    }

    #[test]
    fn port_ranges_become_exact_u32_blocks() {
        assert_eq!(port_blocks((8080, 8080)), vec![(8080, 0xffff)]);
        assert_eq!(port_blocks((8000, 8015)), vec![(8000, 0xfff0)]);
        assert_eq!(
            port_blocks((7999, 8001)),
            vec![(7999, 0xffff), (8000, 0xfffe)]
        );
        assert_eq!(port_blocks((1, 65535)).len(), 16);
        // Every port of a range, and only those, falls in one block.
        for (lo, hi) in [(1u16, 1000u16), (8080, 8089), (65000, 65535)] {
            let blocks = port_blocks((lo, hi));
            for p in 0..=65535u16 {
                let hits = blocks.iter().filter(|(v, m)| p & m == *v).count();
                assert_eq!(hits, usize::from((lo..=hi).contains(&p)), "port {p}");
            }
        }
    }

    #[test]
    fn netem_filters_for_each_address_protocol_and_port_block() {
        let s = [to(&["172.17.0.3/32"], &[(8080, 8081)], None)];
        assert_eq!(
            joined(u32_matches(&s, Chain::Output)),
            vec![
                "match ip dst 172.17.0.3/32 match ip protocol 6 0xff match ip dport 8080 0xfffe",
                "match ip dst 172.17.0.3/32 match ip protocol 17 0xff match ip dport 8080 0xfffe",
            ]
        );
        let from = [Resolved {
            side: Side::From,
            ..to(&[], &[(5432, 5432)], Some(NetProtocol::Tcp))
        }];
        assert_eq!(
            joined(u32_matches(&from, Chain::Output)),
            vec!["match ip protocol 6 0xff match ip sport 5432 0xffff"]
        );
        // Ingress: the same peers are the packets' source, and the ports turn round.
        assert_eq!(
            joined(u32_matches(&s, Chain::Input)),
            vec![
                "match ip src 172.17.0.3/32 match ip protocol 6 0xff match ip sport 8080 0xfffe",
                "match ip src 172.17.0.3/32 match ip protocol 17 0xff match ip sport 8080 0xfffe",
            ]
        );
        assert_eq!(
            joined(u32_matches(&from, Chain::Input)),
            vec!["match ip protocol 6 0xff match ip dport 5432 0xffff"]
        );
    }

    #[test]
    fn described_for_the_report() {
        let s = to(
            &["172.17.0.3/32"],
            &[(8080, 8080), (9000, 9010)],
            Some(NetProtocol::Tcp),
        );
        assert_eq!(s.describe(), "to 172.17.0.3/32 tcp port 8080, 9000-9010");
    }
}
