//! `doctor`: what works on this host, what does not, and how to fix it. Given experiments,
//! only what they need is checked, and on Kubernetes the API server is asked
//! (SelfSubjectAccessReview) whether each call they make is allowed. The command line
//! renders the checks.

mod docker;
mod host;
mod kubernetes;

use std::path::Path;

use crate::experiment::model::{DockerTls, Experiment, ProbeKind, ProbeSpec};
use crate::platform::kubernetes::rbac::Needs;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Works, with a limitation worth knowing.
    Warn,
    Fail,
}

/// One thing checked, its outcome, and what a failure disables and how to fix it.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
    /// What a failure disables, and how to fix it.
    pub fix: String,
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

    /// A failure that a fallback covers: shown as a warning, with the fallback as its fix.
    fn covered_by(mut self, fallback: bool, fix: Option<&str>) -> Check {
        if self.level == Level::Fail && fallback {
            self.level = Level::Warn;
            if let Some(fix) = fix {
                self.fix = fix.to_string();
            }
        }
        self
    }
}

/// What a set of experiments needs checked.
#[derive(Debug)]
pub struct Wanted {
    docker: bool,
    /// The Docker endpoints the experiments name (`host` and `tls`); `None`: the default.
    docker_endpoints: Vec<(Option<String>, Option<DockerTls>)>,
    kubernetes: Needs,
}

impl Wanted {
    pub fn of(experiments: &[&Experiment]) -> Wanted {
        let mut w = Wanted {
            docker: false,
            docker_endpoints: Vec::new(),
            kubernetes: Needs::new(),
        };
        for e in experiments {
            let probes = || {
                let during = e.during.iter().flat_map(|d| d.probes.iter());
                e.steady_state
                    .iter()
                    .chain(during)
                    .flat_map(ProbeSpec::kinds)
            };
            let targets = e.named_targets();
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
            for k in probes() {
                if let ProbeKind::Docker(p) = k {
                    endpoints.push((p.host.clone(), None));
                }
            }
            w.docker |= targets.iter().any(|(_, t)| t.docker.is_some())
                || probes().any(|k| matches!(k, ProbeKind::Docker(_)));
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
        w
    }
}

/// Every check `wanted` calls for (`None`: everything faultline can use here). `file`
/// names the experiment in the fixes it suggests.
pub async fn checks(wanted: Option<&Wanted>, file: Option<&Path>) -> Vec<Check> {
    let mut checks = Vec::new();
    if wanted.is_none_or(|w| w.docker) {
        let endpoints = match wanted {
            Some(w) if !w.docker_endpoints.is_empty() => w.docker_endpoints.clone(),
            _ => vec![(None, None)],
        };
        for (host, tls) in &endpoints {
            checks.extend(docker::check(host.as_deref(), tls.as_ref()).await);
        }
        checks.extend(host::checks());
    }
    match wanted {
        None => checks.extend(kubernetes::default().await),
        Some(w) if !w.kubernetes.is_empty() => {
            let file = file.unwrap_or(Path::new("FILE"));
            checks.extend(kubernetes::needs(&w.kubernetes, file).await);
        }
        Some(_) => {}
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::experiment;

    #[test]
    fn every_docker_endpoint_once_and_nothing_of_kubernetes_for_a_docker_experiment() {
        let a = experiment(
            "version: 1\nname: a\ntargets:\n  web: {docker: {labels: {app: web}, host: \"tcp://10.0.0.1:2376\"}}\n  db: {docker: {labels: {app: db}}}\nfaults:\n  - pause: {target: web, duration: 1s}\n",
        );
        let b = experiment(
            "version: 1\nname: b\ntarget: {docker: {labels: {app: web}, host: \"tcp://10.0.0.1:2376\"}}\nfaults:\n  - pause: {duration: 1s}\n",
        );
        let w = Wanted::of(&[&a, &b]);
        assert!(w.docker);
        let hosts: Vec<Option<&str>> = w
            .docker_endpoints
            .iter()
            .map(|(h, _)| h.as_deref())
            .collect();
        // Named targets in name order: db (the local socket), then web.
        assert_eq!(hosts, vec![None, Some("tcp://10.0.0.1:2376")]);
        assert!(w.kubernetes.is_empty());
    }

    #[test]
    fn a_kubernetes_experiment_wants_its_permissions_and_no_docker() {
        let e = experiment(
            "version: 1\nname: k\ntarget: {kubernetes: {namespace: shop, selector: \"app=web\"}}\nfaults:\n  - kill: {}\n",
        );
        let w = Wanted::of(&[&e]);
        assert!(!w.docker && w.docker_endpoints.is_empty());
        let (scope, perms) = w.kubernetes.iter().next().expect("one namespace");
        assert_eq!(scope.namespace, "shop");
        assert!(
            perms
                .keys()
                .any(|p| p.verb == "delete" && p.resource == "pods"),
            "{perms:?}"
        );
    }

    #[test]
    fn a_failure_a_fallback_covers_is_a_warning_with_the_fallback_as_its_fix() {
        let failed = || Check::new("netem", Err("no sch_netem".into()), "modprobe sch_netem");
        let covered = failed().covered_by(true, Some("runs on nfqueue"));
        assert_eq!(
            (covered.level, covered.fix.as_str()),
            (Level::Warn, "runs on nfqueue")
        );
        assert_eq!(failed().covered_by(false, Some("x")).level, Level::Fail);
        let kept = failed().covered_by(true, None);
        assert_eq!(
            (kept.level, kept.fix.as_str()),
            (Level::Warn, "modprobe sch_netem")
        );
        let ok = Check::new("tbf", Ok("fine".into()), "").covered_by(true, Some("x"));
        assert_eq!((ok.level, ok.fix.as_str()), (Level::Ok, ""));
    }
}
