//! `faultline doctor [FILE]`: what works on this host, what does not, and how to fix it.
//! Given an experiment (or scenario), only what it needs is checked, and on Kubernetes the
//! API server is asked (SelfSubjectAccessReview) whether each call it makes is allowed.
//! Exits 1 when a check fails.

use std::collections::BTreeMap;
use std::time::Duration;

use super::args::DoctorArgs;
use crate::error::{Error, Exit};
use crate::experiment::model::{Experiment, ProbeKind};
use crate::experiment::{self, Loaded};
use crate::platform::kubernetes::api::{Failure, classify, shown_cluster};
use crate::platform::kubernetes::rbac::{self, Needs, Permission};

/// Bound on each Kubernetes API call of a check.
const API_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Ok,
    /// Works, with a limitation worth knowing.
    Warn,
    Fail,
}

struct Check {
    name: String,
    level: Level,
    detail: String,
    /// What a failure disables, and how to fix it.
    fix: String,
}

impl Check {
    fn new(name: impl Into<String>, r: Result<String, String>, fix: impl Into<String>) -> Check {
        let (level, detail) = match r {
            Ok(d) => (Level::Ok, d),
            Err(d) => (Level::Fail, d),
        };
        Check {
            name: name.into(),
            level,
            detail,
            fix: fix.into(),
        }
    }
}

fn line(c: &Check) -> String {
    let mark = match c.level {
        Level::Ok => "ok  ",
        Level::Warn => "warn",
        Level::Fail => "FAIL",
    };
    let mut s = format!("[{mark}] {}: {}", c.name, c.detail);
    if c.level != Level::Ok && !c.fix.is_empty() {
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

/// What an experiment file needs checked.
struct Wanted {
    docker: bool,
    /// The Docker endpoints the experiments name (`host` and `tls`); `None`: the default.
    docker_endpoints: Vec<(Option<String>, Option<experiment::model::DockerTls>)>,
    kubernetes: Needs,
}

fn wanted(a: &DoctorArgs, file: &std::path::Path) -> Result<Wanted, Error> {
    let overrides = a.vars.overrides()?;
    let loaded = experiment::load(file, &overrides).map_err(Error::Invalid)?;
    let experiments: Vec<&Experiment> = match &loaded {
        Loaded::Experiment(e) => vec![&e.experiment],
        Loaded::Scenario(s) => s.experiments.iter().map(|e| &e.experiment).collect(),
    };
    let mut w = Wanted {
        docker: false,
        docker_endpoints: Vec::new(),
        kubernetes: Needs::new(),
    };
    for e in experiments {
        let during = e.during.iter().flat_map(|d| d.probes.iter());
        let docker_probe = e
            .steady_state
            .iter()
            .chain(during)
            .flat_map(experiment::model::ProbeSpec::kinds)
            .any(|k| matches!(k, ProbeKind::Docker(_)));
        let targets = e.named_targets();
        w.docker |= targets.iter().any(|(_, t)| t.docker.is_some()) || docker_probe;
        let mut endpoints = Vec::new();
        for d in targets.iter().filter_map(|(_, t)| t.docker.as_ref()) {
            if d.hosts.is_empty() {
                endpoints.push((d.host.clone(), d.tls.clone()));
            }
            // A fleet: every host is checked.
            endpoints.extend(
                d.hosts
                    .iter()
                    .map(|h| (Some(h.host.clone()), h.tls.clone())),
            );
        }
        let during = e.during.iter().flat_map(|d| d.probes.iter());
        for k in e
            .steady_state
            .iter()
            .chain(during)
            .flat_map(experiment::model::ProbeSpec::kinds)
        {
            if let ProbeKind::Docker(p) = k {
                endpoints.push((p.host.clone(), None));
            }
        }
        for ep in endpoints {
            if !w.docker_endpoints.contains(&ep) {
                w.docker_endpoints.push(ep);
            }
        }
        for (scope, perms) in crate::fault::kubernetes_needs(e) {
            let into = w.kubernetes.entry(scope).or_default();
            for (perm, why) in perms {
                into.entry(perm).or_default().extend(why);
            }
        }
    }
    Ok(w)
}

pub(super) fn run(a: &DoctorArgs) -> Result<Exit, Error> {
    let wanted = a.file.as_deref().map(|f| wanted(a, f)).transpose()?;
    let rt = super::run::runtime();
    let mut checks = Vec::new();
    if wanted.as_ref().is_none_or(|w| w.docker) {
        let endpoints = match &wanted {
            Some(w) if !w.docker_endpoints.is_empty() => w.docker_endpoints.clone(),
            _ => vec![(None, None)],
        };
        for (host, tls) in &endpoints {
            docker_check(&rt, host.as_deref(), tls.as_ref(), &mut checks);
        }
        host_checks(&mut checks);
    }
    match &wanted {
        None => rt.block_on(kubernetes_default(&mut checks)),
        Some(w) if !w.kubernetes.is_empty() => {
            let file = a.file.as_deref().unwrap_or(std::path::Path::new("FILE"));
            rt.block_on(kubernetes_needs(&w.kubernetes, file, &mut checks));
        }
        Some(_) => {}
    }
    let mut out = match &a.file {
        Some(f) => format!("faultline doctor {}\n", f.display()),
        None => String::from("faultline doctor\n"),
    };
    for c in &checks {
        out.push_str(&line(c));
        out.push('\n');
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    out.push_str(&if failed == 0 {
        match &a.file {
            Some(_) => "Everything this experiment needs works here.\n".to_string(),
            None => "Everything faultline needs works here.\n".to_string(),
        }
    } else {
        format!("{failed} check(s) failed; the faults they disable are named above.\n")
    });
    super::print_stdout(&out);
    Ok(if failed == 0 {
        Exit::Passed
    } else {
        Exit::Failed
    })
}

/// Which Docker endpoint is used and why (the experiment, DOCKER_HOST, a context, the
/// local socket), whether the engine answers there, and what a remote one means.
fn docker_check(
    rt: &tokio::runtime::Runtime,
    host: Option<&str>,
    tls: Option<&experiment::model::DockerTls>,
    checks: &mut Vec<Check>,
) {
    let fix = "Docker targets and the docker probe are unavailable: start the daemon, or set DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for tcp://), DOCKER_CONTEXT, or target.docker.host";
    let endpoint = match crate::platform::docker_endpoint::resolve_here(host, tls) {
        Ok(e) => e,
        Err(e) => {
            checks.push(Check::new("Docker endpoint", Err(e), fix));
            return;
        }
    };
    let reach = if endpoint.is_local() {
        "local: every strategy is available (host strategies need root)"
    } else {
        "remote: faults act through the Docker API (pause, kill through the API, network through a sidecar, cpu/memory/disk through exec); the host checks below are about this machine, not the daemon's"
    };
    checks.push(Check::new(
        "Docker endpoint",
        Ok(format!("{} {}; {reach}", endpoint.host, endpoint.why())),
        "",
    ));
    let docker = rt.block_on(async {
        let d = crate::platform::docker::connect(&endpoint).await?;
        match crate::platform::docker_engine::engine(&d).await {
            Ok(engine) => Ok(format!(
                "engine {} {} (API {}, faultline speaks {}{}) at {}; {}",
                engine.name(),
                engine.version,
                engine.api_version,
                d.client_version(),
                if engine.rootless { ", rootless" } else { "" },
                endpoint.host,
                engine.works(&endpoint.host)
            )),
            Err(e) => Err(crate::platform::docker::describe(&endpoint.host, &e)),
        }
    });
    checks.push(Check::new("Docker", docker, fix));
}

/// What this host's kernel offers the Docker faults.
fn host_checks(checks: &mut Vec<Check>) {
    let root = nix::unistd::geteuid().is_root();
    let proc_ok = std::path::Path::new("/proc/self/ns/net").exists();
    let detail = format!(
        "{}; /proc {}",
        if root { "running as root" } else { "not root" },
        if proc_ok { "visible" } else { "not visible" }
    );
    checks.push(Check::new(
        "namespaces",
        if root && proc_ok { Ok(detail) } else { Err(detail) },
        "the `host` strategies (network, and kill that honours restart policies) are unavailable: run as root on the Docker host, or use `strategy: sidecar`",
    ));
    let tbf = tc_in_scratch_netns(&["tbf", "rate", "1mbit", "burst", "5000", "latency", "400ms"]);
    checks.push(Check::new(
        "tbf (rate)",
        tbf.map(|()| "the kernel accepts a tbf qdisc".to_string()),
        "`network` faults with `rate` are unavailable: install iproute2 and load `sch_tbf`",
    ));
    let iptables = std::process::Command::new("iptables").arg("-V").output();
    let queue_module = std::path::Path::new("/proc/net/netfilter/nfnetlink_queue").exists()
        || std::process::Command::new("modprobe")
            .args(["-n", "nfnetlink_queue"])
            .status()
            .is_ok_and(|s| s.success());
    let nfq_ok = iptables.as_ref().is_ok_and(|o| o.status.success()) && queue_module;
    let netem = tc_in_scratch_netns(&["netem", "delay", "1ms"]);
    let mut netem_check = Check::new(
        "netem (delay, jitter, loss)",
        match &netem {
            Ok(()) => Ok("the kernel accepts a netem qdisc".into()),
            Err(e) if e.contains("unknown") => Err("this kernel has no `sch_netem` module".into()),
            Err(e) => Err(e.clone()),
        },
        "`network` faults with delay, jitter or loss are unavailable: `modprobe sch_netem` (Debian/Ubuntu: linux-modules-extra-$(uname -r))",
    );
    if netem_check.level == Level::Fail && nfq_ok {
        // `engine: auto` falls back to the nfqueue engine.
        netem_check.level = Level::Warn;
        netem_check.fix = "delay, jitter and loss run on the nfqueue engine instead (`engine: auto`); `modprobe sch_netem` for netem".into();
    }
    checks.push(netem_check);
    checks.push(Check::new(
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
    ));
    let scopes = in_scratch_netns(
        "iptables -w -I OUTPUT -o lo -d 10.0.0.1/32 -p tcp -m multiport --dports 1,2:3 -m comment --comment faultline-doctor -j DROP \
         && iptables -w -I INPUT -i lo -s 10.0.0.0/24 -p udp -m comment --comment faultline-doctor -j DROP",
    );
    checks.push(Check::new(
        "network scopes and partitions (iptables)",
        scopes.map(|()| {
            "iptables accepts the matches of `to`/`from`/`direction` on the nfqueue engine and a partition's DROP rules".to_string()
        }),
        "scoped nfqueue faults and `partition` are unavailable: install iptables and load xt_multiport, xt_comment (and iptable_filter / nf_tables)",
    ));
    checks.push(Check::new(
        "http fault (nat REDIRECT, original destination, mark)",
        crate::fault::http_proxy::self_check(),
        "the `http` fault is unavailable: run as root, install iptables and iproute2, and load iptable_nat (or nf_tables' nat), xt_REDIRECT, xt_mark, xt_comment",
    ));
    let u32 = in_scratch_netns(
        "tc qdisc add dev lo root handle fa17: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 \
         && tc filter add dev lo parent fa17: protocol ip prio 1 u32 match ip dst 10.0.0.1/32 match ip dport 80 0xffff flowid fa17:4",
    );
    let mut u32_check = Check::new(
        "netem scopes (prio bands, u32 filters)",
        u32.map(|()| "the kernel accepts a prio root with four bands and u32 filters".to_string()),
        "scoped faults on netem and a scoped `rate` are unavailable: load sch_prio and cls_u32",
    );
    if u32_check.level == Level::Fail && nfq_ok {
        // Scoped delay, jitter and loss run on the nfqueue engine.
        u32_check.level = Level::Warn;
        u32_check.fix = "scoped delay, jitter and loss run on the nfqueue engine instead (`engine: auto`); a scoped `rate` is unavailable: load sch_prio and cls_u32".into();
    }
    checks.push(u32_check);
    let ifb = in_scratch_netns(
        "ip link add ifb-fa17 type ifb && ip link set dev ifb-fa17 up \
         && tc qdisc add dev lo handle ffff: ingress \
         && tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb-fa17",
    );
    let mut ifb_check = Check::new(
        "ingress on tc (IFB device, mirred)",
        ifb.map(|()| {
            "an IFB device and an ingress qdisc redirecting to it: `rate`, and netem with `direction: ingress` or `both`".to_string()
        }),
        "`rate` and `engine: netem` with `direction: ingress` or `both` are unavailable: load the ifb, sch_ingress and act_mirred modules (delay, jitter and loss on ingress still run on the nfqueue engine)",
    );
    if ifb_check.level == Level::Fail && nfq_ok {
        ifb_check.level = Level::Warn;
    }
    checks.push(ifb_check);
    checks.push(Check::new("cgroups", Ok(cgroup_version()), ""));
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

/// Without a file: the current context (or in-cluster), and whether its API server answers.
/// Not having Kubernetes configured at all is no failure.
async fn kubernetes_default(checks: &mut Vec<Check>) {
    let configured = kube::config::Kubeconfig::read().is_ok()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    if !configured {
        checks.push(Check {
            name: "Kubernetes".into(),
            level: Level::Warn,
            detail: "no kubeconfig and not in a cluster".into(),
            fix: "Kubernetes targets are unavailable: set KUBECONFIG or run in a cluster; `faultline rbac FILE` prints the Role an experiment needs".into(),
        });
        return;
    }
    checks.push(reachable(None).await.0);
}

/// The API server of `context` (`None`: the current one, or in-cluster) answers `/version`
/// with faultline's credentials. Returns the client when it does.
async fn reachable(context: Option<&str>) -> (Check, Option<Connected>) {
    let fix = "Kubernetes targets in this cluster are unavailable: check the kubeconfig's server and credentials (`kubectl version`)";
    let (client, used) = match crate::platform::kubernetes::client_for(context).await {
        Ok(c) => c,
        Err(e) => return (Check::new("Kubernetes", Err(e), fix), None),
    };
    let cluster = shown_cluster(used.as_deref());
    let name = match &used {
        Some(c) => format!("Kubernetes (context `{c}`)"),
        None => "Kubernetes (in-cluster)".into(),
    };
    let version = tokio::time::timeout(API_TIMEOUT, client.apiserver_version()).await;
    match version {
        Err(_) => (
            Check::new(
                name,
                Err(format!(
                    "the Kubernetes API ({cluster}) did not answer within {}s",
                    API_TIMEOUT.as_secs()
                )),
                fix,
            ),
            None,
        ),
        Ok(Err(e)) => {
            let why = match classify(&e, rbac::LIST_PODS, "", &cluster) {
                Failure::NotFound => format!("the Kubernetes API ({cluster}) has no /version"),
                Failure::Refused(m) | Failure::Unavailable(m) => m,
            };
            (Check::new(name, Err(why), fix), None)
        }
        Ok(Ok(v)) => (
            Check::new(
                name,
                Ok(format!("API server {} answers", v.git_version)),
                fix,
            ),
            Some(Connected { client, used }),
        ),
    }
}

/// A client, and the context it uses (`None`: in-cluster).
#[derive(Clone)]
struct Connected {
    client: kube::Client,
    used: Option<String>,
}

/// With a file: each cluster it uses answers, and each permission it needs is allowed.
async fn kubernetes_needs(needs: &Needs, file: &std::path::Path, checks: &mut Vec<Check>) {
    let mut clients: BTreeMap<Option<String>, Option<Connected>> = BTreeMap::new();
    for (scope, perms) in needs {
        if !clients.contains_key(&scope.context) {
            let (check, client) = reachable(scope.context.as_deref()).await;
            checks.push(check);
            clients.insert(scope.context.clone(), client);
        }
        let Some(Connected { client, used }) = clients.get(&scope.context).cloned().flatten()
        else {
            continue;
        };
        let wanted: Vec<Permission> = perms.keys().copied().collect();
        let name = format!("Kubernetes permissions in namespace `{}`", scope.namespace);
        let fix = format!(
            "grant them: `faultline rbac {}` prints the Role and RoleBinding",
            file.display()
        );
        let reviewed = tokio::time::timeout(
            API_TIMEOUT,
            rbac::review(&client, &scope.namespace, &wanted),
        )
        .await;
        let cluster = shown_cluster(used.as_deref());
        let result = match reviewed {
            Err(_) => Err(format!(
                "the Kubernetes API ({cluster}) did not answer within {}s",
                API_TIMEOUT.as_secs()
            )),
            Ok(Err(e)) => Err(classify(&e, rbac::CREATE_SSAR, &scope.namespace, &cluster)
                .message("selfsubjectaccessreviews")),
            Ok(Ok(reviews)) => {
                let missing: Vec<String> = reviews
                    .iter()
                    .filter(|r| !r.allowed)
                    .map(|r| {
                        let p = r.permission;
                        let resource = if p.group.is_empty() {
                            p.resource.to_string()
                        } else {
                            format!("{}.{}", p.resource, p.group)
                        };
                        let why: Vec<&str> = perms[&p].iter().map(String::as_str).collect();
                        format!("`{}` `{resource}` (for {})", p.verb, why.join(", "))
                    })
                    .collect();
                if missing.is_empty() {
                    Ok(format!("all {} allowed ({cluster})", wanted.len()))
                } else {
                    Err(format!(
                        "{} of {} not allowed ({cluster}): {}",
                        missing.len(),
                        wanted.len(),
                        missing.join("; ")
                    ))
                }
            }
        };
        checks.push(Check::new(name, result, fix));
    }
}
