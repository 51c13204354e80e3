//! Network faults that hit one dependency, not the whole interface: three web containers
//! A, B and C on one Docker network, a fault on A scoped to B (by container, by DNS name
//! and port, by address for ingress), measured from inside A's network namespace with
//! curl, against B and against C, which must stay as fast as it was. Then partitions:
//! who reaches whom, during and after, and that `loss: 100` on the same scope agrees.
//!
//! These run the nfqueue engine (this kernel may lack sch_netem; the netem filters are
//! checked command by command in the unit tests of `fault::net_scope` and `fault::network`).

mod support;

use std::time::Duration;

use support::*;

/// What curl measured from inside a container's network namespace.
#[derive(Clone, Copy, Debug)]
struct Timing {
    /// TCP connect, in milliseconds.
    connect: f64,
    /// From connected to the first byte of the answer: one request round trip.
    request: f64,
}

/// One HTTP GET from `from`'s network namespace (the host's curl there); `None` when it
/// failed within `limit` seconds.
fn get(from: &str, url: &str, limit: &str) -> Option<Timing> {
    let out = netns_command(from, &["curl", "-s", "-o", "/dev/null", "-m", limit])
        .args([
            "-w",
            "%{time_connect} %{time_starttransfer} %{http_code}",
            url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    if !out.status.success() || v.len() != 3 || v[2] != "200" {
        return None;
    }
    let connect: f64 = v[0].parse().ok()?;
    let first_byte: f64 = v[1].parse().ok()?;
    Some(Timing {
        connect: connect * 1000.0,
        request: (first_byte - connect) * 1000.0,
    })
}

/// The second-fastest of `n` GETs from `from` to `url` (connect and request apart): load
/// elsewhere on a shared machine only ever adds time, so the low end is the steady figure
/// for "as fast as before" (a quartile still moved by 5 ms on a machine loaded eight
/// times over), and a 200 ms delay lifts every sample, the fastest included.
fn low(from: &str, url: &str, n: usize) -> Timing {
    let mut all: Vec<Timing> = (0..n)
        .map(|_| get(from, url, "3").unwrap_or_else(|| panic!("{from} cannot reach {url}")))
        .collect();
    let mid = |v: &mut Vec<Timing>, f: fn(&Timing) -> f64| {
        v.sort_by(|a, b| f(a).partial_cmp(&f(b)).unwrap());
        f(&v[1])
    };
    Timing {
        connect: mid(&mut all, |t| t.connect),
        request: mid(&mut all, |t| t.request),
    }
}

fn ip(name: &str) -> String {
    container_addr(name).ip().to_string()
}

fn url(name: &str, port: u16) -> String {
    format!("http://{}:{port}/", ip(name))
}

/// The rules of one iptables chain in the container's namespace.
fn chain(name: &str, chain: &str) -> String {
    in_netns(name, &["iptables", "-S", chain])
}

fn faultline_rules(name: &str) -> String {
    format!("{}{}", chain(name, "OUTPUT"), chain(name, "INPUT"))
        .lines()
        .filter(|l| l.contains("faultline-"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Three web containers on one network, or a recorded skip.
fn trio(test: &str) -> Option<(Fleet, String, String, String)> {
    let (fleet, [a, b, c]) = trio_needing(
        test,
        &[
            ("iptables", "iptables", "the nfqueue engine cannot run"),
            ("curl", "curl", "latency cannot be measured"),
        ],
    )?;
    Some((fleet, a, b, c))
}

/// A fault on A alone, run in the background until its rules are in place.
fn start_on(fleet: &Fleet, a: &str, fault: &str, rule_in: &str) -> Running {
    let exp = fleet.experiment("scoped").only(a).fault(fault);
    Run::experiment(&exp)
        .json_report()
        .spawn_until(&format!("a faultline rule in {rule_in} of {a}"), || {
            chain(a, rule_in).contains("faultline-")
        })
}

/// A 12 s, 200 ms delay on A's traffic to `to` (the fault's `to:` mapping), run in the
/// background until its rule is in place; with A's OUTPUT chain then.
fn delay_to(fleet: &Fleet, a: &str, to: &str) -> (Running, String) {
    let fault = format!("network: {{delay: 200ms, engine: nfqueue, duration: 12s, to: {to}}}");
    let running = start_on(fleet, a, &fault, "OUTPUT");
    (running, chain(a, "OUTPUT"))
}

/// The delay added between two medians must be `want` ms ± 20%.
#[track_caller]
fn assert_added(what: &str, before: f64, during: f64, want: f64) {
    let added = during - before;
    assert!(
        (want * 0.8..=want * 1.2).contains(&added),
        "{what}: rose by {added:.1}ms ({before:.1} -> {during:.1}), expected {want}ms ± 20%"
    );
}

/// Within 5 ms of its baseline: traffic outside the scope is untouched.
#[track_caller]
fn assert_untouched(what: &str, before: f64, during: f64) {
    assert!(
        (during - before).abs() <= 5.0,
        "{what}: {before:.1}ms before, {during:.1}ms during: traffic outside the scope was touched"
    );
}

#[test]
fn a_delay_to_one_container_slows_only_that_peer() {
    let Some((fleet, a, b, c)) = trio("scope-to") else {
        return;
    };
    let (to_b, to_c) = (url(&b, 80), url(&c, 80));
    let (base_b, base_c) = (low(&a, &to_b, 15), low(&a, &to_c, 15));
    let (running, rules) = delay_to(&fleet, &a, &format!("{{containers: {{names: [{b}]}}}}"));
    assert!(
        rules.contains(&format!("-d {}/32", ip(&b))),
        "the rule does not name B's address: {rules}"
    );
    let (during_b, during_c) = (low(&a, &to_b, 15), low(&a, &to_c, 15));
    let out = running.wait();
    out.expect(0);
    assert_added("A→B connect", base_b.connect, during_b.connect, 200.0);
    assert_added("A→B HTTP request", base_b.request, during_b.request, 200.0);
    assert_untouched("A→C connect", base_c.connect, during_c.connect);
    assert_untouched("A→C HTTP request", base_c.request, during_c.request);
    // Reverted: no rule left, B as fast as before.
    assert_eq!(faultline_rules(&a), "", "rules left behind");
    assert_untouched("A→B after", base_b.connect, low(&a, &to_b, 5).connect);
    // The report names the peer and the address it resolved to.
    let r = out.report();
    let fx = &r["faults"][0]["effects"];
    assert_eq!(fx["peers"][0]["name"], b.as_str(), "{r}");
    assert_eq!(fx["peers"][0]["addresses"][0], ip(&b).as_str());
    assert_eq!(
        fx["scope"][0],
        format!("to {}/32 (egress)", ip(&b)).as_str()
    );
}

#[test]
fn a_delay_to_one_port_of_a_host_slows_only_that_port() {
    let Some((fleet, a, b, c)) = trio("scope-port") else {
        return;
    };
    for port in ["8080", "8081"] {
        docker_ok(&["exec", &b, "httpd", "-p", port, "-h", "/www"]);
    }
    let (p8080, p8081) = (url(&b, 8080), url(&b, 8081));
    assert!(wait_until(Duration::from_secs(5), || get(&a, &p8081, "1").is_some()));
    let (base80, base81) = (low(&a, &p8080, 15), low(&a, &p8081, 15));
    let base_c = low(&a, &url(&c, 80), 15);
    // B by its name, resolved through Docker's embedded DNS as A would resolve it.
    let to = format!("{{hosts: [{b}], ports: [8080], protocol: tcp}}");
    let (running, rules) = delay_to(&fleet, &a, &to);
    assert!(
        rules.contains(&format!("-d {}/32", ip(&b))) && rules.contains("--dports 8080"),
        "{rules}"
    );
    let (during80, during81) = (low(&a, &p8080, 15), low(&a, &p8081, 15));
    let during_c = low(&a, &url(&c, 80), 15);
    let out = running.wait();
    out.expect(0);
    assert_added("A→B:8080 connect", base80.connect, during80.connect, 200.0);
    assert_added(
        "A→B:8080 HTTP request",
        base80.request,
        during80.request,
        200.0,
    );
    assert_untouched("A→B:8081 connect", base81.connect, during81.connect);
    assert_untouched("A→B:8081 HTTP request", base81.request, during81.request);
    assert_untouched("A→C connect", base_c.connect, during_c.connect);
    assert_eq!(faultline_rules(&a), "", "rules left behind");
    let fx = &out.report()["faults"][0]["effects"];
    assert_eq!(fx["peers"][0]["name"], b.as_str());
    assert_eq!(
        fx["scope"][0],
        format!("to {}/32 tcp port 8080 (egress)", ip(&b)).as_str()
    );
}

/// A 200 ms delay on A, scoped so that it slows the traffic between A and B and not
/// between A and C, measured with curl before and during in the same test: with A as the
/// client (A→B against A→C) or as the server (B→A against C→A). `rule_has` are the parts
/// the rule in `rule_in` (and in no other chain) must show.
fn only_b_is_slowed(
    test: &str,
    a_is_client: bool,
    rule_in: &str,
    fault: impl Fn(&str) -> String,
    rule_has: impl Fn(&str) -> Vec<String>,
) {
    let Some((fleet, a, b, c)) = trio(test) else {
        return;
    };
    let measure = |peer: &str| {
        if a_is_client {
            low(&a, &url(peer, 80), 15)
        } else {
            low(peer, &url(&a, 80), 15)
        }
    };
    let pair = |peer: &str| {
        if a_is_client {
            format!("A→{peer}")
        } else {
            format!("{peer}→A")
        }
    };
    let (base_b, base_c) = (measure(&b), measure(&c));
    let running = start_on(&fleet, &a, &fault(&b), rule_in);
    let other = if rule_in == "INPUT" {
        "OUTPUT"
    } else {
        "INPUT"
    };
    assert!(
        !chain(&a, other).contains("faultline-"),
        "a rule in {other}"
    );
    let rules = chain(&a, rule_in);
    for part in rule_has(&ip(&b)) {
        assert!(rules.contains(&part), "no `{part}` in {rule_in}: {rules}");
    }
    let (during_b, during_c) = (measure(&b), measure(&c));
    running.wait().expect(0);
    assert_added(
        &format!("{} connect", pair("B")),
        base_b.connect,
        during_b.connect,
        200.0,
    );
    assert_added(
        &format!("{} HTTP request", pair("B")),
        base_b.request,
        during_b.request,
        200.0,
    );
    assert_untouched(
        &format!("{} connect", pair("C")),
        base_c.connect,
        during_c.connect,
    );
    assert_untouched(
        &format!("{} HTTP request", pair("C")),
        base_c.request,
        during_c.request,
    );
    assert_eq!(faultline_rules(&a), "", "rules left behind");
}

/// `to:` with `direction: ingress`: the answers B sends to A are held on their way in.
#[test]
fn an_ingress_delay_from_one_address_slows_only_its_answers() {
    only_b_is_slowed(
        "scope-in",
        true,
        "INPUT",
        |b| {
            let b = ip(b);
            format!(
                "network: {{delay: 200ms, duration: 12s, direction: ingress, to: {{cidrs: [\"{b}\"]}}}}"
            )
        },
        |b| vec![format!("-s {b}/32 -i eth0")],
    );
}

/// `from:` names the peers as clients of the target's own service: A's answers to B
/// (from its port 80) are delayed, so B's connect and requests to A slow down; C, another
/// client of A, does not.
#[test]
fn a_delay_from_one_client_slows_only_the_answers_to_it() {
    only_b_is_slowed(
        "scope-from",
        false,
        "OUTPUT",
        |b| {
            format!(
                "network: {{delay: 200ms, engine: nfqueue, duration: 12s, from: {{containers: {{names: [{b}]}}, ports: [80]}}}}"
            )
        },
        |b| vec![format!("-d {b}/32"), "--sports 80".into()],
    );
}

/// `from:` with `direction: ingress`: the requests B sends to A's port 80 are held on
/// their way in (INPUT, from B's address to port 80).
#[test]
fn an_ingress_delay_from_one_client_slows_only_its_requests() {
    only_b_is_slowed(
        "scope-from-in",
        false,
        "INPUT",
        |b| {
            format!(
                "network: {{delay: 200ms, duration: 12s, direction: ingress, from: {{containers: {{names: [{b}]}}, ports: [80]}}}}"
            )
        },
        |b| vec![format!("-s {b}/32"), "--dports 80".into()],
    );
}

#[test]
fn a_peer_that_matches_nothing_is_refused_not_widened() {
    let Some((fleet, a, _b, _c)) = trio("scope-none") else {
        return;
    };
    let exp = fleet.experiment("none").only(&a).fault(
        "network: {delay: 200ms, engine: nfqueue, duration: 3s, to: {containers: {names: [no-such-container]}}}",
    );
    Run::experiment(&exp)
        .output()
        .expect(4)
        .stdout_has("no running container is named `no-such-container`");
    assert_eq!(faultline_rules(&a), "");
}

/// Who reaches whom: (from, to, reached) for every ordered pair.
fn matrix(names: &[&str]) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for from in names {
        for to in names {
            if from != to {
                out.push((
                    from.to_string(),
                    to.to_string(),
                    get(from, &url(to, 80), "1").is_some(),
                ));
            }
        }
    }
    out
}

fn reached(m: &[(String, String, bool)], from: &str, to: &str) -> bool {
    m.iter()
        .find(|(f, t, _)| f == from && t == to)
        .map(|(_, _, r)| *r)
        .unwrap()
}

#[test]
fn a_partition_cuts_a_from_b_and_nothing_else_and_loss_100_agrees() {
    let Some((fleet, a, b, c)) = trio("partition") else {
        return;
    };
    let all = [a.as_str(), b.as_str(), c.as_str()];
    let before = matrix(&all);
    assert!(before.iter().all(|(_, _, r)| *r), "{before:?}");
    let running = start_on(
        &fleet,
        &a,
        &format!(
            "network: {{partition: {{with: {{containers: {{names: [{b}]}}}}}}, duration: 10s}}"
        ),
        "INPUT",
    );
    let rules = faultline_rules(&a);
    assert!(
        rules.contains(&format!("-A OUTPUT -d {}/32 -o eth0", ip(&b)))
            && rules.contains(&format!("-A INPUT -s {}/32 -i eth0", ip(&b)))
            && rules.matches("-j DROP").count() == 2,
        "{rules}"
    );
    let during = matrix(&all);
    let out = running.wait();
    out.expect(0);
    assert!(!reached(&during, &a, &b), "A reached B: {during:?}");
    assert!(!reached(&during, &b, &a), "B reached A: {during:?}");
    for (f, t) in [(&a, &c), (&c, &a), (&b, &c), (&c, &b)] {
        assert!(reached(&during, f, t), "{f} did not reach {t}: {during:?}");
    }
    assert_eq!(faultline_rules(&a), "", "rules left behind");
    assert_eq!(
        matrix(&all),
        before,
        "not every pair works after the revert"
    );
    assert_eq!(
        out.report()["faults"][0]["effects"]["scope"][0],
        format!("to {}/32 (both ways)", ip(&b)).as_str()
    );

    // The same cut as `loss: 100` on the same peer, both ways, on the nfqueue engine.
    let running = start_on(
        &fleet,
        &a,
        &format!(
            "network: {{loss: 100, engine: nfqueue, direction: both, duration: 10s, to: {{containers: {{names: [{b}]}}}}}}"
        ),
        "INPUT",
    );
    let lossy = matrix(&all);
    running.wait().expect(0);
    assert_eq!(lossy, during, "loss 100% and the partition disagree");
    assert_eq!(matrix(&all), before);
}

#[test]
fn partitioned_targets_still_reach_each_other() {
    if !require_docker()
        || require_program("iptables", "iptables", "partitions cannot run").is_none()
        || require_program("curl", "curl", "reachability cannot be measured").is_none()
    {
        return;
    }
    // Chaos Mesh's known bug: with targets A, B and peers C, A and B lost each other too.
    let mut fleet = Fleet::new("partition-set");
    let net = fleet.network();
    let a = fleet.web(&["--network", &net, "--label", "fltest.side=left"]);
    let b = fleet.web(&["--network", &net, "--label", "fltest.side=left"]);
    let c = fleet.web(&["--network", &net, "--label", "fltest.side=right"]);
    let exp = Experiment::new("partition-set")
        .docker(&format!(
            "labels: {{fltest.group: {}, fltest.side: left}}",
            fleet.group
        ))
        .select("{mode: all}")
        .fault(
            &format!("network: {{partition: {{with: {{containers: {{labels: {{fltest.group: {}, fltest.side: right}}}}}}}}, duration: 10s}}", fleet.group),
        );
    let running = Run::experiment(&exp).json_report().spawn();
    assert!(wait_until(Duration::from_secs(15), || {
        faultline_rules(&a).contains("DROP") && faultline_rules(&b).contains("DROP")
    }));
    let all = [a.as_str(), b.as_str(), c.as_str()];
    let during = matrix(&all);
    let out = running.wait();
    out.expect(0);
    assert!(
        reached(&during, &a, &b) && reached(&during, &b, &a),
        "{during:?}"
    );
    for (f, t) in [(&a, &c), (&c, &a), (&b, &c), (&c, &b)] {
        assert!(!reached(&during, f, t), "{f} reached {t}: {during:?}");
    }
    assert_eq!(faultline_rules(&a), "");
    assert_eq!(faultline_rules(&b), "");
    assert!(matrix(&all).iter().all(|(_, _, r)| *r));
    assert_eq!(out.report()["faults"].as_array().unwrap().len(), 2);
}

#[test]
fn sigkill_leaves_the_partition_to_recover_which_removes_exactly_it() {
    let Some((fleet, a, b, _c)) = trio("partition-kill") else {
        return;
    };
    // A rule of someone else's in the same chain must survive recover.
    let foreign = [
        "iptables",
        "-I",
        "OUTPUT",
        "-d",
        "192.0.2.1/32",
        "-j",
        "DROP",
    ];
    assert!(netns_command(&a, &foreign).status().unwrap().success());
    let exp = fleet.experiment("kill").only(&a).fault(&format!(
        "network: {{partition: {{with: {{containers: {{names: [{b}]}}}}, direction: to}}, duration: 30s}}"
    ));
    let state = Run::experiment(&exp)
        .sigkilled_once("the DROP rules", || faultline_rules(&a).contains("DROP"));
    // `direction: to`: only A's packets to B are dropped.
    assert!(!chain(&a, "INPUT").contains("faultline-"));
    assert!(
        get(&a, &url(&b, 80), "1").is_none(),
        "the partition went with faultline"
    );
    state.recover();
    assert_eq!(faultline_rules(&a), "", "recover left a rule");
    assert!(get(&a, &url(&b, 80), "2").is_some());
    assert!(
        chain(&a, "OUTPUT").contains("-d 192.0.2.1/32 -j DROP"),
        "recover removed a rule faultline did not add"
    );
}

#[test]
fn plan_shows_the_peers_resolved_now_and_touches_nothing() {
    let Some((fleet, a, b, c)) = trio("scope-plan") else {
        return;
    };
    let exp = fleet.experiment("plan").only(&a).fault(&format!(
        "network: {{delay: 200ms, duration: 5s, to: {{containers: {{names: [{b}]}}, hosts: [{c}]}}}}"
    ));
    let run = Run::new(["plan"]);
    let file = exp.write(run.dir());
    run.arg(file)
        .output()
        .expect(0)
        .stdout_has(&format!("`to.containers` resolve now to {b} ({})", ip(&b)))
        .stdout_has(&format!(
            "`to.hosts` in `{a}` resolve now to {c} ({})",
            ip(&c)
        ))
        .stdout_has("Nothing was touched");
    assert_eq!(faultline_rules(&a), "");
}

fn kernel_has_prio() -> bool {
    std::process::Command::new("unshare")
        .args(["--net", "tc", "qdisc", "add", "dev", "lo", "root", "prio"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A and B of [`trio`] when this kernel has sch_prio as the test needs (`prio`); otherwise
/// a recorded skip saying `why`.
fn trio_where_prio(prio: bool, test: &str, why: &str) -> Option<(Fleet, String, String)> {
    if !require_kernel(kernel_has_prio() == prio, why) {
        return None;
    }
    let (fleet, a, b, _c) = trio(test)?;
    Some((fleet, a, b))
}

#[test]
fn without_sch_prio_a_scoped_rate_is_refused_and_nothing_is_left() {
    let Some((fleet, a, b)) = trio_where_prio(
        false,
        "scope-noprio",
        "this kernel has sch_prio, so the refusal cannot be shown here \
         (a_scoped_rate_builds_prio_bands_and_u32_filters runs instead)",
    ) else {
        return;
    };
    let exp = fleet.experiment("noprio").only(&a).fault(&format!(
        "network: {{rate: 1mbit, duration: 3s, to: {{containers: {{names: [{b}]}}}}}}"
    ));
    Run::experiment(&exp)
        .output()
        .expect(4)
        .stdout_has("has no prio qdisc (module `sch_prio`)");
    assert!(!qdiscs(&a).contains("fa17:"), "{}", qdiscs(&a));
    assert_eq!(faultline_rules(&a), "");
}

#[test]
fn a_scoped_rate_builds_prio_bands_and_u32_filters() {
    let Some((fleet, a, b)) = trio_where_prio(
        true,
        "scope-prio",
        "no sch_prio in this kernel, so scoped tc cannot be shown here \
         (without_sch_prio_a_scoped_rate_is_refused_and_nothing_is_left runs instead)",
    ) else {
        return;
    };
    let exp = fleet.experiment("prio").only(&a).fault(&format!(
        "network: {{rate: 1mbit, duration: 6s, to: {{containers: {{names: [{b}]}}, ports: [80], protocol: tcp}}}}"
    ));
    let running = Run::experiment(&exp).spawn();
    assert!(wait_until(Duration::from_secs(10), || qdiscs(&a)
        .contains("prio fa17: root")));
    let filters = in_netns(&a, &["tc", "filter", "show", "dev", "eth0"]);
    assert!(filters.contains("flowid fa17:4"), "{filters}");
    assert!(
        qdiscs(&a).contains("tbf fa18: parent fa17:4"),
        "{}",
        qdiscs(&a)
    );
    running.wait().expect(0);
    assert!(!qdiscs(&a).contains("fa17:"));
}
