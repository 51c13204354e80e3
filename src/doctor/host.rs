//! What this host's kernel offers the Docker faults. Every probe of the kernel runs in a
//! scratch network namespace: the host's own is never touched.

use super::{Check, Level};

pub(super) fn checks() -> Vec<Check> {
    let nfqueue = nfqueue();
    let nfq_ok = nfqueue.level == Level::Ok;
    vec![
        namespaces(),
        tbf(),
        netem().covered_by(
            nfq_ok,
            Some("delay, jitter and loss run on the nfqueue engine instead (`engine: auto`); `modprobe sch_netem` for netem"),
        ),
        nfqueue,
        scopes(),
        Check::new(
            "http fault (nat REDIRECT, original destination, mark)",
            crate::fault::http_proxy::self_check(),
            "the `http` fault is unavailable: run as root, install iptables and iproute2, and load iptable_nat (or nf_tables' nat), xt_REDIRECT, xt_mark, xt_comment",
        ),
        u32_scopes().covered_by(
            nfq_ok,
            Some("scoped delay, jitter and loss run on the nfqueue engine instead (`engine: auto`); a scoped `rate` is unavailable: load sch_prio and cls_u32"),
        ),
        ifb().covered_by(nfq_ok, None),
        Check::new("cgroups", Ok(cgroup_version()), ""),
    ]
}

fn namespaces() -> Check {
    let root = nix::unistd::geteuid().is_root();
    let proc_ok = std::path::Path::new("/proc/self/ns/net").exists();
    let detail = format!(
        "{}; /proc {}",
        if root { "running as root" } else { "not root" },
        if proc_ok { "visible" } else { "not visible" }
    );
    Check::new(
        "namespaces",
        if root && proc_ok {
            Ok(detail)
        } else {
            Err(detail)
        },
        "the `host` strategies (network, and kill that honours restart policies) are unavailable: run as root on the Docker host, or use `strategy: sidecar`",
    )
}

/// A check that asks the kernel by running a script in a scratch network namespace.
struct Probe {
    name: &'static str,
    script: &'static str,
    /// What success means for the faults.
    works: &'static str,
    /// What a failure disables, and how to fix it.
    fix: &'static str,
}

impl Probe {
    fn check(&self) -> Check {
        let works = self.works;
        Check::new(
            self.name,
            in_scratch_netns(self.script).map(|()| works.to_string()),
            self.fix,
        )
    }
}

fn tbf() -> Check {
    Probe {
        name: "tbf (rate)",
        script: "tc qdisc add dev lo root tbf rate 1mbit burst 5000 latency 400ms",
        works: "the kernel accepts a tbf qdisc",
        fix: "`network` faults with `rate` are unavailable: install iproute2 and load `sch_tbf`",
    }
    .check()
}

fn netem() -> Check {
    Check::new(
        "netem (delay, jitter, loss)",
        match in_scratch_netns("tc qdisc add dev lo root netem delay 1ms") {
            Ok(()) => Ok("the kernel accepts a netem qdisc".into()),
            Err(e) if e.contains("unknown") => Err("this kernel has no `sch_netem` module".into()),
            Err(e) => Err(e),
        },
        "`network` faults with delay, jitter or loss are unavailable: `modprobe sch_netem` (Debian/Ubuntu: linux-modules-extra-$(uname -r))",
    )
}

fn nfqueue() -> Check {
    let iptables = std::process::Command::new("iptables").arg("-V").output();
    let queue_module = std::path::Path::new("/proc/net/netfilter/nfnetlink_queue").exists()
        || std::process::Command::new("modprobe")
            .args(["-n", "nfnetlink_queue"])
            .status()
            .is_ok_and(|s| s.success());
    Check::new(
        "nfqueue engine (delay, jitter, loss without netem)",
        match (&iptables, queue_module) {
            (Ok(o), true) if o.status.success() => Ok(format!(
                "{} and nfnetlink_queue are available",
                String::from_utf8_lossy(&o.stdout).trim()
            )),
            (Ok(o), false) if o.status.success() => Err("nfnetlink_queue is not available".into()),
            _ => Err("iptables is not installed".into()),
        },
        "without netem too, delay/jitter/loss are unavailable: install iptables and load nfnetlink_queue and xt_NFQUEUE",
    )
}

fn scopes() -> Check {
    Probe {
        name: "network scopes and partitions (iptables)",
        script: "iptables -w -I OUTPUT -o lo -d 10.0.0.1/32 -p tcp -m multiport --dports 1,2:3 -m comment --comment faultline-doctor -j DROP \
         && iptables -w -I INPUT -i lo -s 10.0.0.0/24 -p udp -m comment --comment faultline-doctor -j DROP",
        works: "iptables accepts the matches of `to`/`from`/`direction` on the nfqueue engine and a partition's DROP rules",
        fix: "scoped nfqueue faults and `partition` are unavailable: install iptables and load xt_multiport, xt_comment (and iptable_filter / nf_tables)",
    }
    .check()
}

fn u32_scopes() -> Check {
    Probe {
        name: "netem scopes (prio bands, u32 filters)",
        script: "tc qdisc add dev lo root handle fa17: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 \
         && tc filter add dev lo parent fa17: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 match ip dport 80 0xffff flowid fa17:4",
        works: "the kernel accepts a prio root with four bands and u32 filters",
        fix: "scoped faults on netem and a scoped `rate` are unavailable: load sch_prio and cls_u32",
    }
    .check()
}

fn ifb() -> Check {
    Probe {
        name: "ingress on tc (IFB device, mirred)",
        script: "ip link add ifb-fa17 type ifb && ip link set dev ifb-fa17 up \
         && tc qdisc add dev lo handle ffff: ingress \
         && tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb-fa17",
        works: "an IFB device and an ingress qdisc redirecting to it: `rate`, and netem with `direction: ingress` or `both`",
        fix: "`rate` and `engine: netem` with `direction: ingress` or `both` are unavailable: load the ifb, sch_ingress and act_mirred modules (delay, jitter and loss on ingress still run on the nfqueue engine)",
    }
    .check()
}

fn cgroup_version() -> String {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2 (unified)".into()
    } else if std::path::Path::new("/sys/fs/cgroup/freezer").exists() {
        "v1 (freezer and cpu controllers mounted)".into()
    } else {
        "v1".into()
    }
}

/// Runs a shell command in a scratch network namespace (the host's is never touched).
fn in_scratch_netns(script: &str) -> Result<(), String> {
    match std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", script])
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run `unshare`: {e}")),
    }
}
