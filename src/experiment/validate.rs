//! Semantic checks on a typed document. Each problem names the path of the field it is
//! about; the loader turns paths into line and column through the source tree.

use std::collections::BTreeMap;

use super::model::*;
use super::node::PathSeg;
use super::selector::{check_field_selector, parse_label_selector};

/// A problem at a path of the document.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub path: Vec<PathSeg>,
    pub message: String,
}

#[derive(Default)]
struct Checker {
    path: Vec<PathSeg>,
    problems: Vec<Problem>,
}

impl Checker {
    fn at<R>(&mut self, seg: impl Into<Seg>, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(seg.into().0);
        let r = f(self);
        self.path.pop();
        r
    }

    fn err(&mut self, message: impl Into<String>) {
        self.problems.push(Problem {
            path: self.path.clone(),
            message: message.into(),
        });
    }

    fn err_at(&mut self, key: &str, message: impl Into<String>) {
        self.at(key, |c| c.err(message));
    }

    /// Two alternative keys, exactly one of which is given: `neither` is reported here,
    /// `both` at the second key. Whether exactly one was given.
    fn exactly_one(&mut self, given: [bool; 2], neither: &str, (key, both): (&str, &str)) -> bool {
        match given {
            [false, false] => self.err(neither),
            [true, true] => self.err_at(key, both),
            _ => return true,
        }
        false
    }

    /// Version 1 is the only one there is.
    fn version(&mut self, version: u32) {
        if version != 1 {
            self.err_at(
                "version",
                format!("unsupported version {version}: this faultline reads version 1"),
            );
        }
    }
}

struct Seg(PathSeg);
impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg(PathSeg::Key(s.to_string()))
    }
}
impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg(PathSeg::Index(i))
    }
}

const PROTECTED_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

pub fn check_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() {
        return Err(
            "the name is empty: use lowercase letters, digits and `-`, e.g. web-survives-pause"
                .into(),
        );
    }
    if !valid_chars || !valid_start {
        let suggestion: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_string();
        return Err(format!(
            "invalid name `{name}`: use lowercase letters, digits and `-`, starting with a letter or digit (e.g. `{suggestion}`)"
        ));
    }
    if name.len() > 63 {
        return Err(format!(
            "the name is {} characters long; at most 63 are allowed",
            name.len()
        ));
    }
    Ok(())
}

pub fn experiment(e: &Experiment) -> Vec<Problem> {
    let mut c = Checker::default();
    c.version(e.version);
    if e.kind == Some(DocumentKind::Scenario) {
        c.err_at(
            "kind",
            "this file is an experiment; `kind: scenario` files list `experiments:` instead",
        );
    }
    if let Err(m) = check_name(&e.name) {
        c.err_at("name", m);
    }
    c.at("vars", |c| {
        for name in e.vars.keys() {
            if !super::vars::valid_var_name(name) {
                c.err_at(
                    name,
                    format!("invalid variable name `{name}`: use letters, digits, `_` and `-`, starting with a letter or `_`"),
                );
            }
        }
    });
    targets(&mut c, e);
    let one_shot_only = !e.faults.is_empty() && e.faults.iter().all(|f| f.duration().is_none());
    c.at("steady_state", |c| {
        probes(c, &e.steady_state, Phase::SteadyState);
    });
    if let Some(d) = &e.during {
        c.at("during", |c| {
            if d.interval.as_millis() < 10 {
                c.err_at("interval", "the sampling interval must be at least 10ms");
            }
            if d.duration.is_some() && !one_shot_only {
                c.err_at(
                    "duration",
                    "during.duration applies when every fault is one-shot (a kill without `every`); with reversible faults the probes are sampled while a fault is active",
                );
            }
            if d.probes.is_empty() {
                c.err_at("probes", "`during` has no probes: add at least one, or remove the block");
            }
            c.at("probes", |c| probes(c, &d.probes, Phase::During));
        });
    }
    if e.faults.is_empty() {
        c.err_at("faults", "an experiment needs at least one fault");
    }
    c.at("faults", |c| {
        for (i, f) in e.faults.iter().enumerate() {
            c.at(i, |c| fault(c, e, f));
        }
    });
    if let Some(r) = &e.recovery {
        c.at("recovery", |c| {
            if r.timeout.as_millis() == 0 {
                c.err_at("timeout", "the recovery timeout must be longer than 0s");
            }
            if r.interval.as_millis() < 10 {
                c.err_at(
                    "interval",
                    "the recovery polling interval must be at least 10ms",
                );
            } else if r.interval > r.timeout {
                c.err_at(
                    "interval",
                    format!(
                        "the polling interval {} is longer than the timeout {}",
                        r.interval, r.timeout
                    ),
                );
            }
        });
    }
    c.problems
}

fn target(c: &mut Checker, t: &Target) {
    c.exactly_one(
        [t.docker.is_some(), t.kubernetes.is_some()],
        "target needs exactly one platform block: add `docker:` or `kubernetes:`",
        (
            "kubernetes",
            "target has two platform blocks (`docker` and `kubernetes`): keep exactly one; for both, name two targets under `targets:`",
        ),
    );
    if let Some(d) = &t.docker {
        c.at("docker", |c| {
            if let Some(h) = &d.host {
                if let Err(m) = check_docker_host(h) {
                    c.err_at("host", m);
                }
            }
            if let Some(tls) = &d.tls {
                match &d.host {
                    None => c.err_at(
                        "tls",
                        "`tls` needs `host`: name the tcp:// endpoint the certificates are for (without `host`, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply)",
                    ),
                    Some(h) if !(h.starts_with("tcp://") || h.starts_with("https://")) => c.err_at(
                        "tls",
                        format!("`tls` applies to a tcp:// host, not `{h}`"),
                    ),
                    Some(_) => {}
                }
                if tls.cert.is_some() != tls.key.is_some() {
                    c.err_at(
                        "tls",
                        "`tls` needs `cert` and `key` together (the client certificate and its key), or neither",
                    );
                }
            }
            docker_hosts(c, d);
            if d.labels.keys().any(String::is_empty) {
                c.err_at("labels", "a label key is empty");
            }
            if let Some(compose) = &d.compose {
                c.at("compose", |c| {
                    if compose.project.trim().is_empty() {
                        c.err_at("project", "the compose project name is empty");
                    }
                    if compose.service.as_deref().is_some_and(|s| s.trim().is_empty()) {
                        c.err_at("service", "the compose service name is empty: remove `service` to select every service of the project");
                    }
                });
                for key in [
                    COMPOSE_PROJECT_LABEL,
                    COMPOSE_SERVICE_LABEL,
                ] {
                    if d.labels.contains_key(key) {
                        c.err_at(
                            "labels",
                            format!("`labels` sets `{key}`, which `compose` already sets: keep `compose` and remove the label"),
                        );
                    }
                }
            }
            let narrowed = !d.labels.is_empty() || d.name.is_some() || d.compose.is_some();
            if !narrowed && !d.all_containers {
                c.err(
                    "target.docker selects every container on the host: add `labels:` or `name:` to pick the containers, or `all_containers: true` if every container is really meant",
                );
            } else if narrowed && d.all_containers {
                c.err_at(
                    "all_containers",
                    "`all_containers: true` contradicts `labels`/`name`: remove `all_containers`, or the `labels` and `name`",
                );
            }
        });
    }
    if let Some(k) = &t.kubernetes {
        c.at("kubernetes", |c| kubernetes_target(c, k));
    }
    c.at("select", |c| select(c, &t.select));
}

/// `hosts` (a fleet) and `min_hosts`.
fn docker_hosts(c: &mut Checker, d: &DockerTarget) {
    if !d.hosts.is_empty() && d.host.is_some() {
        c.err_at(
            "hosts",
            "`hosts` and `host` both name the endpoint: keep `hosts` for a fleet, or `host` for one daemon",
        );
    }
    c.at("hosts", |c| {
        let mut seen = std::collections::BTreeSet::new();
        for (i, h) in d.hosts.iter().enumerate() {
            c.at(i, |c| {
                if let Err(m) = check_docker_host(&h.host) {
                    c.err_at("host", m);
                } else if !seen.insert(h.host.as_str()) {
                    c.err_at("host", format!("`{}` is listed twice in `hosts`", h.host));
                }
                if let Some(tls) = &h.tls {
                    if !(h.host.starts_with("tcp://") || h.host.starts_with("https://")) {
                        c.err_at("tls", format!("`tls` applies to a tcp:// host, not `{}`", h.host));
                    } else if tls.cert.is_some() != tls.key.is_some() {
                        c.err_at(
                            "tls",
                            "`tls` needs `cert` and `key` together (the client certificate and its key), or neither",
                        );
                    }
                }
            });
        }
    });
    match d.min_hosts {
        Some(_) if d.hosts.is_empty() => c.err_at(
            "min_hosts",
            "`min_hosts` needs `hosts`: list the fleet's endpoints",
        ),
        Some(0) => c.err_at(
            "min_hosts",
            "`min_hosts` must be at least 1 (a run needs a host to act on)",
        ),
        Some(n) if n > d.hosts.len() => c.err_at(
            "min_hosts",
            format!(
                "`min_hosts: {n}` is more than the {} host(s) in `hosts`",
                d.hosts.len()
            ),
        ),
        _ => {}
    }
}

pub fn check_docker_host(h: &str) -> Result<(), String> {
    const SCHEMES: &[&str] = &[
        "unix://", "tcp://", "http://", "https://", "npipe://", "ssh://",
    ];
    if SCHEMES
        .iter()
        .any(|s| h.starts_with(s) && h.len() > s.len())
    {
        Ok(())
    } else {
        Err(format!(
            "invalid Docker host `{h}`: write unix:///var/run/docker.sock or tcp://HOST:2376"
        ))
    }
}

fn kubernetes_target(c: &mut Checker, k: &KubernetesTarget) {
    if let Err(m) = check_namespace(&k.namespace) {
        c.err_at("namespace", m);
    } else if PROTECTED_NAMESPACES.contains(&k.namespace.as_str()) && !k.allow_protected_namespaces
    {
        c.err_at(
            "namespace",
            format!(
                "`{}` is a protected system namespace: set `allow_protected_namespaces: true` under target.kubernetes if you really mean it",
                k.namespace
            ),
        );
    }
    if let Some(s) = &k.selector {
        if let Err(m) = parse_label_selector(s) {
            c.err_at("selector", m);
        }
    }
    if let Some(s) = &k.field_selector {
        if let Err(m) = check_field_selector(s) {
            c.err_at("field_selector", m);
        }
    }
}

fn check_namespace(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid namespace `{ns}`: a DNS label (lowercase letters, digits, `-`, at most 63)"
        ))
    }
}

fn select(c: &mut Checker, s: &Select) {
    match (s.mode, s.value) {
        (SelectMode::Count, None) => c.err_at(
            "value",
            "mode `count` needs `value`: how many targets to pick",
        ),
        (SelectMode::Count, Some(0)) => {
            c.err_at("value", "mode `count` needs a value of at least 1");
        }
        (SelectMode::Percent, None) => {
            c.err_at("value", "mode `percent` needs `value` between 1 and 100");
        }
        (SelectMode::Percent, Some(v)) if !(1..=100).contains(&v) => {
            c.err_at("value", format!("percent {v} is outside 1..100"));
        }
        // The contract's own example writes `mode: one` with `value: 1`: redundant, not wrong.
        (SelectMode::One, Some(1)) => {}
        (SelectMode::One | SelectMode::All, Some(_)) => c.err_at(
            "value",
            "`value` is only used with mode `count` or `percent`: remove it, or change the mode",
        ),
        _ => {}
    }
    if let Some(min) = s.min {
        match (s.mode, s.value) {
            _ if min == 0 => c.err_at(
                "min",
                "`min: 0` would accept a run without targets: use 1 or more, or remove `min`",
            ),
            (SelectMode::One, _) if min > 1 => c.err_at(
                "min",
                format!("mode `one` selects a single target, so `min: {min}` can never be met: use mode `count` or `all`"),
            ),
            (SelectMode::Count, Some(v)) if min > v => c.err_at(
                "min",
                format!("`min: {min}` is more than `value: {v}`, so it can never be met: lower `min` or raise `value`"),
            ),
            _ => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    SteadyState,
    During,
}

fn probes(c: &mut Checker, list: &[ProbeSpec], phase: Phase) {
    let mut seen = std::collections::HashSet::new();
    for (i, p) in list.iter().enumerate() {
        c.at(i, |c| {
            if p.name.trim().is_empty() {
                c.err_at("name", "a probe needs a name");
            } else if !seen.insert(p.name.as_str()) {
                c.err_at(
                    "name",
                    format!(
                        "two probes are named `{}`: names must be unique in a phase",
                        p.name
                    ),
                );
            }
            probe(c, p, phase);
        });
    }
}

const PROBE_KINDS: &str = "http, tcp, command, docker, kubernetes, prometheus";

fn probe(c: &mut Checker, p: &ProbeSpec, phase: Phase) {
    match phase {
        Phase::SteadyState => {
            if p.min_success.is_some() {
                c.err_at(
                    "min_success",
                    "min_success applies to `during` probes; a steady-state probe must pass (use `retries` to tolerate a blip)",
                );
            }
            if p.latency.is_some() {
                c.err_at(
                    "latency",
                    "latency bounds (p50, p95, p99) apply to `during` probes, over the samples of the fault window; move this probe under `during.probes` (or use an http probe's `max_latency` for one request)",
                );
            }
        }
        Phase::During => {
            if p.retries > 0 {
                c.err_at(
                    "retries",
                    "retries apply to steady-state probes; a during probe is sampled every interval and judged by `min_success`",
                );
            }
            if let Some(m) = p.min_success {
                if !(0.0..=1.0).contains(&m) {
                    c.err_at(
                        "min_success",
                        format!(
                            "min_success {m} is outside 0.0..1.0 (it is a ratio: 0.9 means 90%)"
                        ),
                    );
                }
            }
            if let Some(l) = &p.latency {
                c.at("latency", |c| latency_bounds(c, l));
            }
        }
    }
    let kinds = p.kinds();
    match kinds.len() {
        0 => c.err(format!(
            "probe `{}` needs exactly one kind: add one of {PROBE_KINDS}",
            p.name
        )),
        1 => {}
        _ => {
            let names: Vec<&str> = kinds.iter().map(ProbeKind::name).collect();
            c.err_at(
                names[1],
                format!(
                    "probe `{}` has {} kinds ({}): a probe has exactly one; split it into several probes",
                    p.name,
                    names.len(),
                    names.join(", ")
                ),
            );
        }
    }
    for kind in kinds {
        c.at(kind.name(), |c| match kind {
            ProbeKind::Http(h) => http(c, h),
            ProbeKind::Tcp(t) => {
                if let Err(m) = check_address(&t.address) {
                    c.err_at("address", m);
                }
            }
            ProbeKind::Command(cmd) => command(c, cmd),
            ProbeKind::Docker(d) => {
                if d.running.is_none() && d.healthy.is_none() {
                    c.err(
                        "a docker probe needs `running` and/or `healthy`, e.g. running: \">= 2\"",
                    );
                }
                if let Some(h) = &d.host {
                    if let Err(m) = check_docker_host(h) {
                        c.err_at("host", m);
                    }
                }
            }
            ProbeKind::Kubernetes(k) => kubernetes_probe(c, k),
            ProbeKind::Prometheus(pr) => {
                if let Err(m) = check_url(&pr.url) {
                    c.err_at("url", m);
                }
                if pr.query.trim().is_empty() {
                    c.err_at("query", "the PromQL query is empty");
                }
                match (pr.min, pr.max) {
                    (None, None) => c.err("a prometheus probe needs `min` and/or `max`"),
                    (Some(lo), Some(hi)) if lo > hi => {
                        c.err_at("min", format!("min {lo} is greater than max {hi}"));
                    }
                    _ => {}
                }
            }
        });
    }
}

fn latency_bounds(c: &mut Checker, l: &LatencyBounds) {
    let bounds = l.bounds();
    if bounds.is_empty() {
        c.err("`latency` has no bound: give at least one of p50, p95, p99 (e.g. p95: 300ms)");
    }
    for (name, _, d) in &bounds {
        if d.as_millis() == 0 {
            c.err_at(name, format!("`{name}` must be longer than 0s"));
        }
    }
    // A higher percentile can never be below a lower one: such bounds contradict.
    for pair in bounds.windows(2) {
        let ((lo, _, lo_d), (hi, _, hi_d)) = (pair[0], pair[1]);
        if hi_d < lo_d {
            c.err_at(
                hi,
                format!("`{hi}: {hi_d}` is below `{lo}: {lo_d}`; a {hi} is never lower than the {lo}, so no window could meet both"),
            );
        }
    }
}

fn http(c: &mut Checker, h: &HttpProbe) {
    if let Err(m) = check_url(&h.url) {
        c.err_at("url", m);
    }
    let method_ok = !h.method.is_empty() && h.method.chars().all(|ch| ch.is_ascii_uppercase());
    if !method_ok {
        c.err_at(
            "method",
            format!(
                "invalid HTTP method `{}`: write it in capitals, e.g. GET or POST",
                h.method
            ),
        );
    }
    if let Some(s) = &h.status {
        if s.is_empty() {
            c.err_at(
                "status",
                "the status list is empty: remove it for the default 200..399, or list codes",
            );
        }
    }
    if h.timeout.as_millis() == 0 {
        c.err_at("timeout", "the timeout must be longer than 0s");
    }
    if let Some(m) = h.max_latency {
        if m > h.timeout {
            c.err_at(
                "max_latency",
                format!("max_latency {m} is longer than the timeout {}", h.timeout),
            );
        }
    }
}

fn check_url(url: &str) -> Result<(), String> {
    // `localhost:8080/health` parses as scheme `localhost`; `127.0.0.1:80/` not at all.
    if !url.contains("://") {
        return Err(format!(
            "URL `{url}` has no scheme: add http:// or https:// (e.g. `http://{url}`)"
        ));
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
            if u.host_str().is_none_or(str::is_empty) {
                Err(format!("URL `{url}` has no host"))
            } else {
                Ok(())
            }
        }
        Ok(u) => Err(format!(
            "unsupported URL scheme `{}` in `{url}`: use http or https",
            u.scheme()
        )),
        Err(e) => Err(format!("invalid URL `{url}`: {e}")),
    }
}

fn check_address(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid address `{addr}`: write host:port, e.g. 127.0.0.1:5432"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("address `{addr}` has no host: write host:port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!(
            "invalid port `{port}` in `{addr}`: a number from 1 to 65535"
        )),
    }
}

fn command(c: &mut Checker, cmd: &CommandProbe) {
    let one = c.exactly_one(
        [cmd.run.is_some(), cmd.shell.is_some()],
        "a command probe needs `run` (an argv list) or `shell` (one string for sh -c)",
        (
            "shell",
            "a command probe takes `run` or `shell`, not both: keep `run: [prog, arg]` for argv, or `shell: \"...\"` for sh -c",
        ),
    );
    match (&cmd.run, &cmd.shell) {
        (Some(run), _) if one && (run.is_empty() || run[0].is_empty()) => {
            c.err_at(
                "run",
                "`run` is empty: give the program and its arguments, e.g. [curl, -f, http://x/]",
            );
        }
        (_, Some(s)) if one && s.trim().is_empty() => c.err_at("shell", "`shell` is empty"),
        _ => {}
    }
    if cmd.timeout.as_millis() == 0 {
        c.err_at("timeout", "the timeout must be longer than 0s");
    }
}

fn kubernetes_probe(c: &mut Checker, k: &KubernetesProbe) {
    if let Err(m) = check_namespace(&k.namespace) {
        c.err_at("namespace", m);
    }
    if let Some(s) = &k.selector {
        if let Err(m) = parse_label_selector(s) {
            c.err_at("selector", m);
        }
    }
    let pods = k.selector.is_some() || k.ready.is_some();
    let deploy = k.deployment.is_some() || k.available.is_some();
    match (pods, deploy) {
        (true, true) => c.err(
            "a kubernetes probe counts either Ready pods (`selector` + `ready`) or a deployment's replicas (`deployment` + `available`), not both",
        ),
        (false, false) => c.err("a kubernetes probe needs `selector` + `ready`, or `deployment` + `available`"),
        (true, false) => {
            if k.ready.is_none() {
                c.err("`selector` needs `ready`, the count of Ready pods that must hold, e.g. ready: \">= 2\"");
            }
            if k.selector.is_none() {
                c.err("`ready` needs `selector`, the label selector of the pods to count");
            }
        }
        (false, true) => {
            if k.available.is_none() {
                c.err("`deployment` needs `available`, e.g. available: \">= 2\"");
            }
            if k.deployment.is_none() {
                c.err("`available` needs `deployment`, the deployment's name");
            }
        }
    }
}

/// `target` or `targets`, exactly one of them, and each target's own checks.
fn targets(c: &mut Checker, e: &Experiment) {
    match &e.target {
        Some(t) if e.targets.is_some() => {
            c.err_at(
                "targets",
                "both `target` and `targets` are given: keep `target` for one unnamed target, or move it into `targets` under a name",
            );
            c.at("target", |c| target(c, t));
        }
        Some(t) => c.at("target", |c| target(c, t)),
        None if e.targets.is_none() => c.err(
            "missing required key `target` (or `targets` for named targets, e.g. `targets: {api: {docker: {labels: {app: api}}}}`)",
        ),
        None => {}
    }
    if e.targets.as_ref().is_some_and(BTreeMap::is_empty) {
        c.err_at(
            "targets",
            "`targets` is empty: name at least one target, e.g. `targets: {api: {docker: {labels: {app: api}}}}`",
        );
    }
    c.at("targets", |c| {
        for (name, t) in e.targets.iter().flatten() {
            if let Err(m) = check_name(name) {
                c.err_at(name, m.replace("name", "target name"));
            }
            c.at(name.as_str(), |c| target(c, t));
        }
    });
}

/// The fault's `target: NAME` against the experiment's targets, then its own checks
/// against the target it acts on.
fn fault(c: &mut Checker, e: &Experiment, f: &Fault) {
    let names: Vec<&str> = e
        .targets
        .iter()
        .flatten()
        .map(|(n, _)| n.as_str())
        .collect();
    let named = f.spec().target();
    let missing = match named {
        Some(n) if e.target.is_some() => Some(format!(
            "this fault names target `{n}`, but the experiment has one unnamed `target`: remove `target: {n}`, or name the targets under `targets:`"
        )),
        Some(n) if !names.is_empty() && !names.contains(&n) => {
            let hint = match super::node::nearest(n, &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("the targets are {}", quoted(&names)),
            };
            Some(format!("unknown target `{n}`: {hint}"))
        }
        None if e.target.is_none() && names.len() > 1 => Some(format!(
            "this fault names no target, and the experiment has several: add `target:` with one of {}",
            quoted(&names)
        )),
        _ => None,
    };
    if let Some(m) = missing {
        c.at(f.type_name(), |c| match named {
            Some(_) => c.err_at("target", m),
            None => c.err(m),
        });
    }
    let Some((_, t)) = e.target_of(f) else {
        return;
    };
    let mut found = FaultProblems::default();
    f.spec().validate(t, &mut found);
    c.at(f.type_name(), |c| {
        for (key, message) in found.0 {
            match key {
                Some(k) => c.err_at(k, message),
                None => c.err(message),
            }
        }
    });
}

/// `a`, `b` and `c`, each in backquotes.
fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => q.join(""),
    }
}

pub fn scenario(s: &Scenario) -> Vec<Problem> {
    let mut c = Checker::default();
    c.version(s.version);
    if let Err(m) = check_name(&s.name) {
        c.err_at("name", m);
    }
    if s.experiments.is_empty() {
        c.err_at("experiments", "a scenario needs at least one experiment");
    }
    c.at("experiments", |c| {
        for (i, entry) in s.experiments.iter().enumerate() {
            c.at(i, |c| {
                let one = c.exactly_one(
                    [entry.file.is_some(), entry.parallel.is_some()],
                    "an entry needs `file` (one experiment) or `parallel` (a group started together)",
                    (
                        "parallel",
                        "an entry is either one experiment (`file`) or a `parallel` group, not both: move the file into the group",
                    ),
                );
                let Some(group) = entry.parallel.as_ref().filter(|_| one) else {
                    return;
                };
                if !entry.vars.is_empty() {
                    c.err_at(
                        "vars",
                        "`vars` of a `parallel` group belong to its experiments: give each entry of the group its own `vars`",
                    );
                }
                if group.len() < 2 {
                    c.err_at(
                        "parallel",
                        "a `parallel` group needs at least two experiments; a single one is a plain `file` entry",
                    );
                }
            });
        }
    });
    if let Some(cron) = &s.schedule {
        if let Err(m) = super::schedule_text::parse_cron(cron) {
            c.err_at("schedule", m);
        }
    }
    if let Some(w) = &s.window {
        c.at("window", |c| {
            if let Some(h) = &w.hours {
                if let Err(m) = super::schedule_text::parse_hours(h) {
                    c.err_at("hours", m);
                }
            }
            if let Some(tz) = &w.timezone {
                if let Err(m) = super::schedule_text::parse_timezone(tz) {
                    c.err_at("timezone", m);
                }
            }
        });
    }
    c.problems
}
