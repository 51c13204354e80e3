//! DNS faults against real name servers: Docker's embedded DNS (127.0.0.11 on a user
//! network) and Debian's dnsmasq in a locally built image. A query from inside the
//! target's namespace for the matching name fails as asked, another name resolves, and
//! after the revert both resolve.

mod support;

use std::time::Duration;

use support::*;

/// One DNS A question, asked from inside a namespace: prints `RCODE ANSWERS` or `timeout`.
const ASK: &str = r#"
import socket, struct, sys, random
srv, name = sys.argv[1], sys.argv[2]
q = struct.pack("!HHHHHH", random.randint(0, 65535), 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(q, (srv, 53))
try:
    d = s.recv(2048)
    print(d[3] & 15, struct.unpack("!H", d[6:8])[0])
except socket.timeout:
    print("timeout")
"#;

#[derive(Debug, PartialEq)]
enum Answer {
    /// rcode 0 with at least one record.
    Resolved,
    Rcode(u8),
    Timeout,
}

fn ask(from: &str, server: &str, name: &str) -> Answer {
    let out = netns_command(from, &["python3", "-c", ASK, server, name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text == "timeout" {
        return Answer::Timeout;
    }
    let v: Vec<u8> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match v.as_slice() {
        [0, n] if *n > 0 => Answer::Resolved,
        [rcode, _] => Answer::Rcode(*rcode),
        _ => panic!(
            "no answer from {server}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn setup(test: &str) -> Option<(Fleet, [String; 3])> {
    trio_needing(
        test,
        &[
            ("iptables", "iptables", "the nfqueue engine cannot run"),
            ("python3", "python3", "DNS cannot be asked"),
        ],
    )
}

/// A DNS fault on `target`, in the background until its rule is in place.
fn dns_fault(fleet: &Fleet, target: &str, dns: &str) -> Running {
    let exp = fleet
        .experiment("dns")
        .only(target)
        .fault(&format!("network: {{dns: {dns}, duration: 8s}}"));
    Run::experiment(&exp).spawn_until("a rule in INPUT", || !no_rules_left(target))
}

fn no_rules_left(name: &str) -> bool {
    !in_netns(name, &["iptables", "-S", "INPUT"]).contains("faultline-")
}

#[test]
fn nxdomain_for_one_container_name_through_dockers_embedded_dns() {
    let Some((fleet, names)) = setup("dns-embedded") else {
        return;
    };
    let (a, b, c) = (&names[0], &names[1], &names[2]);
    let dns = "127.0.0.11";
    assert_eq!(ask(a, dns, b), Answer::Resolved);
    assert_eq!(ask(a, dns, c), Answer::Resolved);
    let running = dns_fault(&fleet, a, &format!("{{names: [{b}], mode: nxdomain}}"));
    let (during_b, during_c) = (ask(a, dns, b), ask(a, dns, c));
    running.wait().expect(0);
    assert_eq!(during_b, Answer::Rcode(3), "the matching name");
    assert_eq!(during_c, Answer::Resolved, "another name");
    assert!(no_rules_left(a));
    assert_eq!(ask(a, dns, b), Answer::Resolved, "after the revert");
    assert_eq!(ask(a, dns, c), Answer::Resolved);
}

#[test]
fn servfail_and_timeout_for_a_glob_on_a_dnsmasq_server() {
    let Some((fleet, names)) = setup("dns-dnsmasq") else {
        return;
    };
    let a = &names[0];
    let net = fleet.networks[0].clone();
    let server = format!("fl-{}-dnsmasq", fleet.group);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &server,
        "--network",
        &net,
        "--label",
        &format!("fltest.group={}", fleet.group),
        "--label",
        "faultline.test=true",
        "faultline-test/dnsmasq:1",
        "/usr/sbin/dnsmasq",
        "-k",
        "--user=root",
        "--no-resolv",
        "--no-hosts",
        "--pid-file",
        "--address=/db.shop.test/10.0.0.5",
        "--address=/cache.shop.test/10.0.0.6",
    ]);
    let ip = container_addr(&server).ip().to_string();
    assert!(wait_until(Duration::from_secs(10), || ask(
        a,
        &ip,
        "db.shop.test"
    )
        == Answer::Resolved));
    assert_eq!(ask(a, &ip, "cache.shop.test"), Answer::Resolved);
    for (mode, want) in [("servfail", Answer::Rcode(2)), ("timeout", Answer::Timeout)] {
        let running = dns_fault(&fleet, a, &format!("{{names: [\"db.*\"], mode: {mode}}}"));
        let (db, cache) = (ask(a, &ip, "db.shop.test"), ask(a, &ip, "cache.shop.test"));
        running.wait().expect(0);
        assert_eq!(db, want, "{mode}: the matching name");
        assert_eq!(cache, Answer::Resolved, "{mode}: another name");
        assert!(no_rules_left(a));
        assert_eq!(
            ask(a, &ip, "db.shop.test"),
            Answer::Resolved,
            "after {mode}"
        );
        assert_eq!(ask(a, &ip, "cache.shop.test"), Answer::Resolved);
    }
}
