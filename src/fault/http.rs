//! `http`: aborts, delays or rewrites the HTTP requests arriving at a target's port,
//! through faultline's own transparent proxy ([`super::http_proxy`]) started in the
//! target's network namespace, with an iptables REDIRECT rule journaled and removed at
//! revert. No sidecar image on Docker.
//!
//! On Kubernetes (faultline does not run on the pod's node) the proxy runs as it does for
//! the nfqueue engine's delayer: `faultline http-proxy` as PID 1 of an ephemeral container
//! from the helper image (root with NET_ADMIN: it marks its upstream connections), and the
//! REDIRECT is added and removed through exec in the network helper, whose exit script
//! removes it too when the helper ends (its lifetime bound, should faultline die). The
//! proxy's counters are in its own container: revert reads them through exec there once
//! the redirect is gone, before it stops the proxy.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::http_proxy;
use super::{FaultEffects, FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, HttpDirection, HttpFault, NetworkStrategy, Target as TargetSpec,
    fault_timing,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{NetAccess, NetnsRequest, Placement, Platform, PlatformError, Target, host};

/// What revert needs: the redirect rule (as added) and the proxy (by its marker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyRecord {
    pub marker: String,
    pub port: u16,
    pub proxy_port: u16,
    /// The nat rule, as after `-I`/`-D`.
    pub rule: Vec<String>,
    pub access: NetAccess,
    pub placement: Placement,
    /// Where the proxy writes its counters (on Kubernetes, inside its own container).
    pub counters: std::path::PathBuf,
}

impl ProxyRecord {
    /// Whether the proxy runs beside the target in a container of its own (Kubernetes)
    /// rather than as a host process.
    fn in_target(&self) -> bool {
        matches!(self.placement, Placement::InTarget { .. })
    }
}

/// What a Kubernetes helper image must have for the `http` fault.
pub const K8S_IMAGE_NEEDS: &str =
    "`faultline`, `sh` and `iptables` (the `helper` target of deploy/Dockerfile)";

/// Ports the proxy listens on, picked at random.
const PROXY_PORTS: std::ops::Range<u16> = 40_000..60_000;

impl HttpFault {
    /// The proxy's rules, from the fault's parameters.
    pub fn rules(&self) -> http_proxy::Rules {
        let m = &self.matcher;
        http_proxy::Rules {
            method: m.method.clone(),
            path: m.path.clone(),
            headers: m.headers.clone(),
            percent: m.percent.map(|p| p.0 / 100.0).unwrap_or(1.0),
            abort_status: self.abort.as_ref().and_then(|a| a.status),
            reset: self.abort.as_ref().is_some_and(|a| a.reset),
            delay_ms: self.delay.map(|d| d.as_millis()),
            replace_status: self.replace.as_ref().and_then(|r| r.status),
            replace_headers: self
                .replace
                .as_ref()
                .map(|r| r.headers.clone())
                .unwrap_or_default(),
            replace_body: self.replace.as_ref().and_then(|r| r.body.clone()),
        }
    }

    /// What `plan` says, `proxy` saying where the proxy runs.
    fn describe_where(&self, proxy: &str) -> String {
        let mut acts = Vec::new();
        if let Some(d) = self.delay {
            acts.push(format!("delay {d}"));
        }
        if let Some(a) = &self.abort {
            match a.status {
                Some(s) => acts.push(format!("answer {s}")),
                None => acts.push("reset the connection".to_string()),
            }
        }
        if let Some(r) = &self.replace {
            let mut parts = Vec::new();
            if let Some(s) = r.status {
                parts.push(format!("status {s}"));
            }
            if !r.headers.is_empty() {
                parts.push("headers".to_string());
            }
            if r.body.is_some() {
                parts.push("body".to_string());
            }
            acts.push(format!("replace the answer's {}", parts.join(" and ")));
        }
        format!(
            "{} to {}, for {} ({proxy}; other requests pass untouched, HTTPS is not inspected)",
            acts.join(" then "),
            self.matches_words(),
            self.duration
        )
    }

    fn matches_words(&self) -> String {
        let m = &self.matcher;
        let mut w = Vec::new();
        if let Some(method) = &m.method {
            w.push(method.to_ascii_uppercase());
        }
        w.push(self.direction_words());
        if let Some(p) = &m.path {
            w.push(format!("on paths {p}"));
        }
        for (k, v) in &m.headers {
            w.push(format!("with {k}: {v}"));
        }
        let mut s = w.join(" ");
        if let Some(p) = m.percent {
            s = format!("{p} of {s}");
        }
        s
    }

    fn way(&self) -> http_proxy::Way {
        match self.direction {
            HttpDirection::Inbound => http_proxy::Way::Inbound,
            HttpDirection::Outbound => http_proxy::Way::Outbound,
        }
    }

    /// Which requests to `port` the fault sees, in words.
    fn direction_words(&self) -> String {
        match (self.direction, &self.to) {
            (HttpDirection::Inbound, _) => format!("requests to port {}", self.port),
            (HttpDirection::Outbound, None) => format!(
                "requests the target makes to port {} on other hosts",
                self.port
            ),
            (HttpDirection::Outbound, Some(to)) => format!(
                "requests the target makes to port {} on {}",
                self.port,
                super::network::describe_scope(to)
            ),
        }
    }
}

impl FaultSpec for HttpFault {
    fault_timing!("http");

    fn describe(&self) -> String {
        self.describe_where("faultline's HTTP/1.1 proxy in the target's network namespace")
    }

    fn describe_on(&self, target: &TargetSpec) -> String {
        if target.kubernetes.is_none() {
            return self.describe();
        }
        self.describe_where(&format!(
            "faultline's HTTP/1.1 proxy in an ephemeral container of the pod, behind an iptables REDIRECT added and removed through exec; the helper image needs {K8S_IMAGE_NEEDS}"
        ))
    }

    fn validate(&self, target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        if self.port == 0 {
            p.err_at("port", "`port` must be a TCP port, 1..65535");
        }
        if let Some(to) = &self.to {
            if self.direction != HttpDirection::Outbound {
                p.err_at(
                    "to",
                    "`to` scopes the servers of `direction: outbound`: an inbound fault's server is the target itself (remove `to`, or add `direction: outbound`)",
                );
            }
            super::net_scope::validate_scope("to", to, p);
            if !to.ports.is_empty() || to.protocol.is_some() {
                p.err_at(
                    "to",
                    "`to` of the `http` fault takes `cidrs`, `containers` or `hosts`: its port is the fault's `port`, its protocol TCP",
                );
            }
            if to.pods.is_some() && target.docker.is_some() {
                p.err_at(
                    "to",
                    "`to.pods` names Kubernetes pods: on Docker name servers with `containers`, `hosts` or `cidrs`",
                );
            }
            if target.kubernetes.is_some() && to.containers.is_some() {
                p.err_at(
                    "to",
                    "`to.containers` names Docker containers: on Kubernetes name the servers with `pods: {selector: ...}`, `hosts` or `cidrs`",
                );
            }
        }
        if let Some(a) = &self.abort {
            match (a.status, a.reset) {
                (Some(_), true) => p.err_at(
                    "abort",
                    "`abort` takes either `status` or `reset: true`, not both",
                ),
                (None, false) => p.err_at(
                    "abort",
                    "`abort` needs `status` (e.g. 503) or `reset: true`",
                ),
                (Some(s), false) if !(100..=599).contains(&s) => p.err_at(
                    "abort",
                    format!("`abort.status` {s} is not an HTTP status (100..599)"),
                ),
                _ => {}
            }
        }
        if let Some(r) = &self.replace {
            if r.status.is_some_and(|s| !(100..=599).contains(&s)) {
                p.err_at(
                    "replace",
                    "`replace.status` must be an HTTP status (100..599)",
                );
            }
            if r.status.is_none() && r.body.is_none() && r.headers.is_empty() {
                p.err_at("replace", "`replace` needs `status`, `headers` or `body`");
            }
            for (k, v) in &r.headers {
                if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || hyper::header::HeaderValue::from_str(v).is_err()
                {
                    p.err_at(
                        "replace",
                        format!("`replace.headers` has an invalid header `{k}`"),
                    );
                }
            }
        }
        if self.abort.is_some() && self.replace.is_some() {
            p.err("`abort` and `replace` cannot both act on a request: keep one");
        }
        if self.abort.is_none() && self.delay.is_none() && self.replace.is_none() {
            p.err("the `http` fault needs `abort`, `delay` or `replace`");
        }
        if let Some(d) = self.delay {
            p.positive("delay", d);
        }
    }
}

#[async_trait]
impl FaultKind for HttpFault {
    async fn preflight(&self, platform: &dyn Platform) -> Result<(), String> {
        if platform.in_target_from_helper_image() {
            // Kubernetes: the proxy runs in an ephemeral container from the helper image.
            if platform.helper_image().is_none() {
                return Err(format!(
                    "the `http` fault on {} runs its proxy in an ephemeral container from faultline's helper image: name an image with {K8S_IMAGE_NEEDS} with --tc-image or FAULTLINE_TC_IMAGE",
                    platform.kind()
                ));
            }
            return Ok(());
        }
        if platform.kind() != "docker" {
            return Err(format!(
                "the `http` fault is not available on {}: it runs on Docker and Kubernetes targets",
                platform.kind()
            ));
        }
        Ok(())
    }

    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared {
        let marker = format!("faultline-http-{:016x}", rand::random::<u64>());
        // Where faultline cannot reach the target from the host but a helper image runs
        // beside it (Kubernetes), the proxy runs there.
        let reach = platform.host_reach(target).await;
        let beside = platform.in_target_from_helper_image() && reach.is_err();
        if let (Err(e), false) = (reach, beside) {
            return Err(PlatformError::Refused(format!(
                "the `http` fault runs its proxy from the host: {e}"
            )));
        }
        let access = platform
            .enter_netns(
                target,
                &NetnsRequest {
                    strategy: if beside {
                        NetworkStrategy::Sidecar
                    } else {
                        NetworkStrategy::Host
                    },
                    image: None,
                    lifetime: super::helper_lifetime(self.duration.std()),
                    // The helper takes the redirect with it when it ends (faultline died).
                    on_exit: if beside {
                        http_proxy::delete_rules_script(&marker)
                    } else {
                        String::new()
                    },
                },
            )
            .await?;
        // The servers an outbound fault is limited to, resolved now (their addresses
        // are journaled with the rule).
        let mut to = Vec::new();
        if let Some(scope) = &self.to {
            let scopes = [(super::net_scope::Side::To, &**scope)];
            match super::net_scope::resolve(platform, target, &access, &scopes).await {
                Ok((resolved, _)) => to = resolved.into_iter().flat_map(|r| r.nets).collect(),
                Err(e) => {
                    let _ = platform.leave_netns(&access).await;
                    return Err(e);
                }
            }
        }
        let (placement, counters) = match (&access, beside) {
            (NetAccess::Sidecar { image, .. }, true) => (
                Placement::InTarget {
                    net_admin: true,
                    image: Some(image.clone()),
                },
                std::path::PathBuf::from(format!("/tmp/{marker}.json")),
            ),
            _ => (
                Placement::Host {
                    netns: true,
                    cgroups: false,
                },
                crate::state_dir::state_dir().join(format!("{marker}.json")),
            ),
        };
        let proxy_port =
            PROXY_PORTS.start + rand::random::<u16>() % (PROXY_PORTS.end - PROXY_PORTS.start);
        Ok(Some(Undo::new(UndoRecord::RemoveHttpProxy {
            target: target.clone(),
            proxy: ProxyRecord {
                rule: http_proxy::redirect_spec(self.way(), self.port, proxy_port, &marker, &to),
                counters,
                marker,
                port: self.port,
                proxy_port,
                access,
                placement,
            },
        })))
    }

    async fn inject(&self, platform: &dyn Platform, target: &Target, u: Option<&Undo>) -> Injected {
        let proxy = super::undo_part!(u, RemoveHttpProxy { proxy }, self);
        let lifetime = self.duration.std() + super::cpu_stress::DEADLINE_MARGIN;
        let rules = serde_json::to_string(&self.rules()).expect("serializable");
        let mut args: Vec<String> = vec![
            "http-proxy".into(),
            "--listen".into(),
            proxy.proxy_port.to_string(),
            "--upstream".into(),
            proxy.port.to_string(),
            "--rules".into(),
            rules,
            "--until".into(),
            // Beside the pod the proxy starts after the helper containers do, on the node's
            // clock: its deadline counts from its own start there.
            if proxy.in_target() {
                format!("+{}", lifetime.as_secs())
            } else {
                host::deadline(lifetime).to_string()
            },
            "--parent".into(),
            // In its own container the proxy has no parent to watch (its parent PID is 0).
            if proxy.in_target() {
                "0".into()
            } else {
                std::process::id().to_string()
            },
            "--counters".into(),
            proxy.counters.display().to_string(),
            "--marker".into(),
            proxy.marker.clone(),
        ];
        if proxy.in_target() {
            // A command in the helper image rather than faultline's own arguments.
            args.insert(0, "faultline".into());
        } else {
            let _ = std::fs::remove_file(&proxy.counters);
        }
        platform
            .start_process(
                target,
                proxy.placement.clone(),
                &args,
                &proxy.marker,
                lifetime,
            )
            .await?;
        // The proxy writes its first counters once it listens.
        let mut listening = false;
        for _ in 0..200 {
            if proxy.in_target() {
                match read_in_target(platform, target, proxy).await {
                    Ok(Some(_)) => listening = true,
                    Ok(None) => {}
                    Err(_) => break,
                }
            } else if proxy.counters.exists() {
                listening = true;
            } else if host::pids_with_marker(&proxy.marker).is_empty() {
                break;
            }
            if listening {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        if !listening {
            let _ = stop(platform, target, proxy).await;
            return Err(PlatformError::Refused(format!(
                "faultline's HTTP proxy did not start listening on port {} in `{}`",
                proxy.proxy_port, target.name
            )));
        }
        let out = platform
            .netns_exec(target, &proxy.access, &http_proxy::nat("-I", &proxy.rule))
            .await?;
        if out.code != 0 {
            let _ = stop(platform, target, proxy).await;
            return Err(PlatformError::Refused(format!(
                "cannot add the redirect `{}` in `{}`: {} (the `http` fault needs iptables with the nat table {})",
                proxy.rule.join(" "),
                target.name,
                out.stderr.trim(),
                if proxy.in_target() {
                    "in the helper image"
                } else {
                    "on the host"
                }
            )));
        }
        Ok(())
    }

    /// Kubernetes: the network helper and the proxy are ephemeral containers; the
    /// redirect and the counters go through exec.
    fn rbac(&self) -> &'static [Permission] {
        // Peer pods are resolved to their IPs through the API: listing pods.
        if self.to.as_ref().is_some_and(|t| t.pods.is_some()) {
            return rbac::EPHEMERAL_HELPERS_AND_PEERS;
        }
        rbac::EPHEMERAL_HELPERS
    }
}

/// The fault's redirect rules still in the target's nat table (one per destination).
async fn rules_left(
    platform: &dyn Platform,
    target: &Target,
    proxy: &ProxyRecord,
) -> Result<Vec<Vec<String>>, PlatformError> {
    let out = match platform
        .netns_exec(target, &proxy.access, &http_proxy::list_nat())
        .await
    {
        // The network helper beside the pod has ended, and its exit script removed the
        // rules: none left, and the proxy's own container is still to be stopped.
        Err(PlatformError::Gone(_)) if proxy.in_target() => return Ok(Vec::new()),
        other => other?,
    };
    Ok(http_proxy::own_rules(&out.stdout, &proxy.marker))
}

/// The counters a proxy in its own container wrote, read there through exec; `None`
/// before it wrote any.
async fn read_in_target(
    platform: &dyn Platform,
    target: &Target,
    proxy: &ProxyRecord,
) -> Result<Option<crate::report::HttpCounts>, PlatformError> {
    let cat = vec!["cat".to_string(), proxy.counters.display().to_string()];
    let out = platform
        .process_exec(target, proxy.placement.clone(), &proxy.marker, &cat)
        .await?;
    Ok((out.code == 0)
        .then(|| serde_json::from_str(&out.stdout).ok())
        .flatten())
}

/// Removes the redirect (confirmed gone), then stops the proxy; says what the proxy did
/// (on Kubernetes read before it stops: its counters go with its container).
async fn stop(
    platform: &dyn Platform,
    target: &Target,
    proxy: &ProxyRecord,
) -> Result<Option<crate::report::HttpCounts>, PlatformError> {
    for _ in 0..5 {
        let left = rules_left(platform, target, proxy).await?;
        if left.is_empty() {
            break;
        }
        for rule in left {
            platform
                .netns_exec(target, &proxy.access, &http_proxy::nat("-D", &rule))
                .await?;
        }
    }
    if !rules_left(platform, target, proxy).await?.is_empty() {
        return Err(PlatformError::Refused(format!(
            "faultline's redirect ({}) is still in `{}` after delete",
            proxy.marker, target.name
        )));
    }
    // With the rule gone new connections reach the server directly; SIGTERM ends the proxy.
    let counts = if proxy.in_target() {
        // A proxy already ended (its deadline) has nothing left to read.
        read_in_target(platform, target, proxy)
            .await
            .unwrap_or_else(|e| {
                tracing::debug!("the HTTP proxy's counters in `{}`: {e}", target.name);
                None
            })
    } else {
        None
    };
    platform
        .stop_process(target, proxy.placement.clone(), &proxy.marker, true)
        .await?;
    if proxy.in_target() {
        return Ok(counts);
    }
    let counts = http_proxy::read_counters(&proxy.counters);
    let _ = std::fs::remove_file(&proxy.counters);
    Ok(counts)
}

/// Removes the redirect and the proxy, and confirms both are gone; says what the proxy
/// did (the counters it wrote as it ended).
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    proxy: &ProxyRecord,
) -> Result<Option<FaultEffects>, PlatformError> {
    let counts = stop(platform, target, proxy).await?;
    platform.leave_netns(&proxy.access).await?;
    Ok(counts.map(|c| FaultEffects {
        http: Some(c),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(yaml: &str) -> HttpFault {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    /// What `plan` says of the fault in `yaml` starts with `words`.
    fn plan_starts(yaml: &str, words: &str) {
        let said = fault(yaml).describe();
        assert!(said.starts_with(words), "{said}");
    }

    #[test]
    fn the_plan_says_what_happens_to_which_requests() {
        plan_starts(
            "{port: 8080, match: {path: /api/*, percent: 30}, abort: {status: 503}, duration: 30s}",
            "answer 503 to 30% of requests to port 8080 on paths /api/*, for 30s",
        );
        plan_starts(
            "{port: 80, match: {method: post}, delay: 500ms, replace: {status: 418, body: x}, duration: 5s}",
            "delay 500ms then replace the answer's status 418 and body to POST requests to port 80, for 5s",
        );
    }

    #[test]
    fn the_plan_says_which_way_the_requests_go() {
        plan_starts(
            "{port: 8080, direction: outbound, abort: {status: 503}, duration: 5s}",
            "answer 503 to requests the target makes to port 8080 on other hosts, for 5s",
        );
        plan_starts(
            "{port: 80, direction: outbound, to: {cidrs: [10.0.0.0/8]}, match: {method: GET}, delay: 1s, duration: 5s}",
            "delay 1s to GET requests the target makes to port 80 on 10.0.0.0/8, for 5s",
        );
    }

    #[test]
    fn the_proxy_is_given_every_parameter() {
        let f = fault(
            "{port: 80, match: {method: GET, headers: {X-A: b}}, delay: 250ms, abort: {reset: true}, duration: 5s}",
        );
        let r = f.rules();
        assert_eq!(r.method.as_deref(), Some("GET"));
        assert_eq!(r.headers.get("X-A").map(String::as_str), Some("b"));
        assert_eq!(
            (r.percent, r.reset, r.abort_status, r.delay_ms),
            (1.0, true, None, Some(250))
        );
        // What the proxy parses is what the fault wrote.
        let back: http_proxy::Rules =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
