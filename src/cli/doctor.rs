//! `faultline doctor`: what works on this host, what does not, and how to fix it.

use crate::error::{Error, Exit};

struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    /// What a failure disables, and how to fix it.
    fix: &'static str,
}

fn line(c: &Check) -> String {
    let mark = if c.ok { "ok  " } else { "FAIL" };
    let mut s = format!("[{mark}] {}: {}", c.name, c.detail);
    if !c.ok && !c.fix.is_empty() {
        s.push_str(&format!("\n       {}", c.fix));
    }
    s
}

fn tc_in_scratch_netns(qdisc: &[&str]) -> Result<(), String> {
    let mut args = vec!["--net", "tc", "qdisc", "add", "dev", "lo", "root"];
    args.extend_from_slice(qdisc);
    match std::process::Command::new("unshare").args(&args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run `unshare`/`tc`: {e}")),
    }
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

pub fn run() -> Result<Exit, Error> {
    let rt = super::run::runtime();
    let mut checks = Vec::new();
    let docker = rt.block_on(async {
        match crate::platform::docker::connect(None).await {
            Ok(d) => match d.version().await {
                Ok(v) => Ok(format!(
                    "engine {} (API {}, faultline speaks {})",
                    v.version.unwrap_or_default(),
                    v.api_version.unwrap_or_default(),
                    d.client_version()
                )),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        }
    });
    checks.push(Check {
        name: "Docker",
        ok: docker.is_ok(),
        detail: docker.clone().unwrap_or_else(|e| e),
        fix: "Docker targets and the docker probe are unavailable: start the daemon, or set DOCKER_HOST",
    });
    let root = nix::unistd::geteuid().is_root();
    let proc_ok = std::path::Path::new("/proc/self/ns/net").exists();
    checks.push(Check {
        name: "namespaces",
        ok: root && proc_ok,
        detail: format!(
            "{}; /proc {}",
            if root { "running as root" } else { "not root" },
            if proc_ok { "visible" } else { "not visible" }
        ),
        fix: "the `host` strategies (network, and kill that honours restart policies) are unavailable: run as root on the Docker host, or use `strategy: sidecar`",
    });
    let tbf = tc_in_scratch_netns(&["tbf", "rate", "1mbit", "burst", "5000", "latency", "400ms"]);
    checks.push(Check {
        name: "tbf (rate)",
        ok: tbf.is_ok(),
        detail: tbf
            .clone()
            .err()
            .unwrap_or_else(|| "the kernel accepts a tbf qdisc".into()),
        fix: "`network` faults with `rate` are unavailable: install iproute2 and load `sch_tbf`",
    });
    let netem = tc_in_scratch_netns(&["netem", "delay", "1ms"]);
    checks.push(Check {
        name: "netem (delay, jitter, loss)",
        ok: netem.is_ok(),
        detail: match &netem {
            Ok(()) => "the kernel accepts a netem qdisc".into(),
            Err(e) if e.contains("unknown") => "this kernel has no `sch_netem` module".into(),
            Err(e) => e.clone(),
        },
        fix: "`network` faults with delay, jitter or loss are unavailable: `modprobe sch_netem` (Debian/Ubuntu: linux-modules-extra-$(uname -r))",
    });
    let iptables = std::process::Command::new("iptables").arg("-V").output();
    let queue_module = std::path::Path::new("/proc/net/netfilter/nfnetlink_queue").exists()
        || std::process::Command::new("modprobe")
            .args(["-n", "nfnetlink_queue"])
            .status()
            .is_ok_and(|s| s.success());
    let nfq_ok = iptables.as_ref().is_ok_and(|o| o.status.success()) && queue_module;
    checks.push(Check {
        name: "nfqueue engine (delay, jitter, loss without netem)",
        ok: nfq_ok,
        detail: match (&iptables, queue_module) {
            (Ok(o), true) if o.status.success() => format!(
                "{} and nfnetlink_queue are available",
                String::from_utf8_lossy(&o.stdout).trim()
            ),
            (Ok(o), false) if o.status.success() => "nfnetlink_queue is not available".into(),
            _ => "iptables is not installed".into(),
        },
        fix: "without netem too, delay/jitter/loss are unavailable: install iptables and load nfnetlink_queue and xt_NFQUEUE",
    });
    // Reads the kubeconfig only; the cluster itself is reached when an experiment runs.
    let kube = match kube::config::Kubeconfig::read() {
        Ok(k) => Ok(format!(
            "kubeconfig found, current context `{}`",
            k.current_context.unwrap_or_else(|| "(none)".into())
        )),
        Err(_) if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            Ok("running in a cluster (in-cluster config)".into())
        }
        Err(e) => Err(format!("no kubeconfig ({e}) and not in a cluster")),
    };
    checks.push(Check {
        name: "Kubernetes",
        ok: kube.is_ok(),
        detail: kube.unwrap_or_else(|e| e),
        fix: "Kubernetes targets are unavailable: set KUBECONFIG or run in a cluster; `faultline rbac FILE` prints the Role an experiment needs",
    });
    checks.push(Check {
        name: "cgroups",
        ok: true,
        detail: cgroup_version(),
        fix: "",
    });
    let mut out = String::from("faultline doctor\n");
    for c in &checks {
        out.push_str(&line(c));
        out.push('\n');
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&if failed == 0 {
        "Everything faultline needs works here.\n".to_string()
    } else {
        format!("{failed} check(s) failed; the faults they disable are named above.\n")
    });
    super::print_stdout(&out);
    Ok(if docker.is_ok() {
        Exit::Passed
    } else {
        Exit::Error
    })
}
