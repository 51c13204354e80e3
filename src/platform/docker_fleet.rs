//! A fleet of Docker endpoints (`target.docker.hosts`): every host is connected to and
//! searched at once, the targets of all of them are one set to select from, and each
//! operation goes to its target's own host. A target carries its host in the label
//! [`HOST_LABEL`] (so the journal, and `recover`, know it) and in its name
//! (`NAME@HOST`, so every report shows it). An unreachable host is passed over, named
//! with why; when fewer hosts answer than `min_hosts` (default: all), no target is
//! offered at all, so the run stops before anything is injected (exit 3, naming them).

use async_trait::async_trait;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::docker::DockerPlatform;
use super::{
    ExecOutput, NetAccess, NetnsRequest, PassedOver, Placement, Platform, PlatformError,
    PlatformRef, Target,
};
use crate::experiment::model::{DockerHost, DockerTarget};
use crate::experiment::units::{Duration, Signal};

/// The label a fleet's target carries with its host's endpoint.
pub const HOST_LABEL: &str = "faultline.host";
/// The journal's platform kind of a fleet; its endpoint is the hosts as JSON.
pub const KIND: &str = "docker-fleet";

/// The hosts of a fleet, as the journal keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Hosts(Vec<DockerHost>);

pub struct FleetPlatform {
    /// The hosts that answered, in the experiment's order.
    hosts: Vec<(String, DockerPlatform)>,
    /// The hosts that did not, with why.
    unreachable: std::sync::Mutex<Vec<(String, String)>>,
    all: Vec<DockerHost>,
    /// How many hosts must answer.
    min_hosts: usize,
}

impl FleetPlatform {
    /// Connects to every host at once. Never fails for an unreachable host: it is passed
    /// over, and [`Platform::discover`] offers nothing when too few answered.
    pub async fn connect(spec: &DockerTarget, tc_image: Option<String>) -> FleetPlatform {
        let connects = spec.hosts.iter().map(|h| {
            let one = DockerTarget {
                host: Some(h.host.clone()),
                tls: h.tls.clone(),
                hosts: Vec::new(),
                min_hosts: None,
                ..spec.clone()
            };
            async move { DockerPlatform::connect(&one).await }
        });
        let mut hosts = Vec::new();
        let mut unreachable = Vec::new();
        for (h, connected) in spec.hosts.iter().zip(join_all(connects).await) {
            match connected {
                Ok(p) => hosts.push((h.host.clone(), p.with_tc_image(tc_image.clone()))),
                Err(e) => unreachable.push((h.host.clone(), e.to_string())),
            }
        }
        FleetPlatform {
            hosts,
            unreachable: std::sync::Mutex::new(unreachable),
            all: spec.hosts.clone(),
            min_hosts: spec.min_hosts.unwrap_or(spec.hosts.len()),
        }
    }

    /// Connects again to the fleet a journal entry names; every host that answers can be
    /// reverted on.
    pub async fn reconnect(endpoint: &str) -> Result<FleetPlatform, PlatformError> {
        let hosts: Hosts = serde_json::from_str(endpoint).map_err(|e| {
            PlatformError::Refused(format!("the journal's fleet entry is not readable: {e}"))
        })?;
        let spec = DockerTarget {
            hosts: hosts.0,
            min_hosts: Some(1),
            ..Default::default()
        };
        let tc_image = std::env::var("FAULTLINE_TC_IMAGE").ok();
        Ok(FleetPlatform::connect(&spec, tc_image).await)
    }

    /// The host a target lives on.
    fn on(&self, target: &Target) -> Result<&DockerPlatform, PlatformError> {
        let host = target.labels.get(HOST_LABEL).ok_or_else(|| {
            PlatformError::Refused(format!(
                "target `{}` names no host of the fleet",
                target.name
            ))
        })?;
        if let Some((_, p)) = self.hosts.iter().find(|(h, _)| h == host) {
            return Ok(p);
        }
        let why = self
            .unreachable
            .lock()
            .expect("not poisoned")
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| "not a host of this fleet".into());
        Err(PlatformError::Unavailable(format!(
            "the host {host} of `{}` cannot be reached: {why}",
            target.name
        )))
    }

    fn unreachable_text(&self) -> String {
        let list = self.unreachable.lock().expect("not poisoned");
        list.iter()
            .map(|(h, why)| format!("{h} ({why})"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The fleet's [`Platform`]: the methods listed first go to their target's own host as
/// they are; the others are written out after them.
macro_rules! fleet_platform {
    (
        on_its_host { $( fn $name:ident(target $(, $arg:ident: $ty:ty)*) -> $ret:ty; )* }
        $($rest:tt)*
    ) => {
        #[async_trait]
        impl Platform for FleetPlatform {
            $(
                async fn $name(&self, target: &Target $(, $arg: $ty)*) -> $ret {
                    self.on(target)?.$name(target $(, $arg)*).await
                }
            )*
            $($rest)*
        }
    };
}

fleet_platform! {
    on_its_host {
        fn signal(target, signal: Signal, grace: Option<Duration>) -> Result<(), PlatformError>;
        fn freeze(target, lifetime: std::time::Duration) -> Result<(), PlatformError>;
        fn thaw(target) -> Result<(), PlatformError>;
        fn is_frozen(target) -> Result<bool, PlatformError>;
        fn stop_target(target, timeout: std::time::Duration) -> Result<(), PlatformError>;
        fn start_target(target) -> Result<(), PlatformError>;
        fn restart_target(target, timeout: std::time::Duration) -> Result<(), PlatformError>;
        fn is_running(target) -> Result<bool, PlatformError>;
        fn running_since(target) -> Result<Option<chrono::DateTime<chrono::Utc>>, PlatformError>;
        fn enter_netns(target, request: &NetnsRequest<'_>) -> Result<NetAccess, PlatformError>;
        fn netns_exec(target, access: &NetAccess, argv: &[String]) -> Result<ExecOutput, PlatformError>;
        fn start_process(target, placement: Placement, argv: &[String], marker: &str, lifetime: std::time::Duration) -> Result<(), PlatformError>;
        fn stop_process(target, placement: Placement, marker: &str, gentle: bool) -> Result<(), PlatformError>;
        fn exec(target, argv: &[String]) -> Result<ExecOutput, PlatformError>;
        fn cgroups(target) -> Result<Vec<std::path::PathBuf>, PlatformError>;
        fn host_root(target) -> Result<std::path::PathBuf, PlatformError>;
    }

    fn kind(&self) -> &'static str {
        "docker"
    }

    fn endpoint(&self) -> String {
        self.all
            .iter()
            .map(|h| h.host.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn reference(&self) -> PlatformRef {
        PlatformRef {
            kind: KIND.into(),
            endpoint: Some(serde_json::to_string(&Hosts(self.all.clone())).expect("plain data")),
            tls: None,
        }
    }

    fn endpoint_source(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .hosts
            .iter()
            .map(|(h, p)| format!("{h}: {}", p.endpoint_source().unwrap_or_default()))
            .collect();
        let unreachable = self.unreachable_text();
        if !unreachable.is_empty() {
            parts.push(format!("unreachable: {unreachable}"));
        }
        Some(format!(
            "a fleet of {} host(s) (target.docker.hosts, at least {} must answer): {}",
            self.all.len(),
            self.min_hosts,
            parts.join("; ")
        ))
    }

    /// Every answering host at once; a host whose listing fails counts as unreachable.
    async fn discover(&self) -> Result<Vec<Target>, PlatformError> {
        let found = join_all(self.hosts.iter().map(|(_, p)| p.discover())).await;
        let mut targets = Vec::new();
        let mut answered = 0;
        for ((host, _), listed) in self.hosts.iter().zip(found) {
            match listed {
                Ok(list) => {
                    answered += 1;
                    targets.extend(list.into_iter().map(|mut t| {
                        t.name = format!("{}@{host}", t.name);
                        t.labels.insert(HOST_LABEL.into(), host.clone());
                        t
                    }));
                }
                Err(e) => {
                    let mut list = self.unreachable.lock().expect("not poisoned");
                    if !list.iter().any(|(h, _)| h == host) {
                        list.push((host.clone(), e.to_string()));
                    }
                }
            }
        }
        if answered < self.min_hosts {
            // Nothing is offered: the run stops before injecting, naming the hosts.
            return Ok(Vec::new());
        }
        Ok(targets)
    }

    /// The passed-over containers of every host, and every unreachable host with why.
    async fn passed_over(&self) -> Result<Vec<PassedOver>, PlatformError> {
        let mut out = Vec::new();
        for (host, p) in &self.hosts {
            for mut o in p.passed_over().await.unwrap_or_default() {
                o.name = format!("{}@{host}", o.name);
                out.push(o);
            }
        }
        let unreachable = self.unreachable.lock().expect("not poisoned").clone();
        let answered = self.all.len() - unreachable.len();
        for (host, why) in unreachable {
            out.push(PassedOver {
                name: format!("host {host}"),
                why: if answered < self.min_hosts {
                    format!(
                        "unreachable: {why}; only {answered} of {} hosts answered, fewer than min_hosts {}",
                        self.all.len(),
                        self.min_hosts
                    )
                } else {
                    format!("unreachable, skipped (min_hosts {}): {why}", self.min_hosts)
                },
            });
        }
        Ok(out)
    }

    async fn signal_caveat(&self, target: &Target) -> Option<String> {
        self.on(target).ok()?.signal_caveat(target).await
    }

    async fn freeze_support(&self) -> Result<(), String> {
        let answers = join_all(self.hosts.iter().map(|(_, p)| p.freeze_support())).await;
        answers.into_iter().collect()
    }

    async fn host_reach(&self, target: &Target) -> Result<(), String> {
        self.on(target)
            .map_err(|e| e.to_string())?
            .host_reach(target)
            .await
    }

    /// A helper is known by its id only: every host is asked to remove it (a host that
    /// does not have it answers that it is gone).
    async fn leave_netns(&self, access: &NetAccess) -> Result<(), PlatformError> {
        let answers = join_all(self.hosts.iter().map(|(_, p)| p.leave_netns(access))).await;
        answers.into_iter().collect()
    }

    fn can_exec(&self) -> bool {
        true
    }

    /// Peers on every host (a scope names containers wherever they run).
    async fn peers(
        &self,
        peers: &crate::experiment::model::PeerSelector,
    ) -> Result<Vec<super::Peer>, PlatformError> {
        let mut all = Vec::new();
        for listed in join_all(self.hosts.iter().map(|(_, p)| p.peers(peers))).await {
            all.extend(listed?);
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Known only when every host agrees.
    async fn netem_supported(&self) -> Option<bool> {
        let answers = join_all(self.hosts.iter().map(|(_, p)| p.netem_supported())).await;
        let first = *answers.first()?;
        answers
            .iter()
            .all(|a| *a == first)
            .then_some(first)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_keeps_every_host_with_its_tls() {
        let hosts = Hosts(vec![
            DockerHost {
                host: "unix:///run/podman/podman.sock".into(),
                tls: None,
            },
            DockerHost {
                host: "tcp://10.0.0.5:2376".into(),
                tls: Some(crate::experiment::model::DockerTls {
                    ca: "/certs/ca.pem".into(),
                    cert: None,
                    key: None,
                }),
            },
        ]);
        let text = serde_json::to_string(&hosts).unwrap();
        assert_eq!(serde_json::from_str::<Hosts>(&text).unwrap(), hosts);
    }
}
