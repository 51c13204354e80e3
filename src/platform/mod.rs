//! Targets and the platforms that hold them. The run lifecycle talks to a [`Platform`]
//! only; Docker and Kubernetes differences live in their own folders.

pub mod docker;
pub mod docker_endpoint;
pub mod docker_engine;
pub mod docker_fleet;
#[cfg(test)]
pub(crate) mod fake;
pub mod host;
pub mod kubernetes;
pub mod select;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::experiment::model::NetworkStrategy;
use crate::experiment::units::{Duration, Signal};

/// One container or pod a fault can be applied to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub platform: String,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What a platform says went wrong, in words a user can act on.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    /// The platform itself could not be reached or refused the request.
    #[error("{0}")]
    Unavailable(String),
    /// The target no longer exists (removed by someone else).
    #[error("target `{0}` no longer exists")]
    Gone(String),
    /// The operation was refused for this target.
    #[error("{0}")]
    Refused(String),
}

/// Where a platform is reached, so that a later process can connect to it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformRef {
    pub kind: String,
    /// The experiment's own endpoint setting (e.g. `target.docker.host`), if any.
    pub endpoint: Option<String>,
    /// The TLS files the endpoint was reached with (Docker over `tcp://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::experiment::model::DockerTls>,
}

/// How faultline reaches a target's network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum NetAccess {
    /// From the host: setns into the target's namespace, then the host's tools.
    Host,
    /// A short-lived helper container sharing the namespace, with the tools in its image.
    Sidecar { helper: String, image: String },
}

/// How to enter a target's network namespace ([`Platform::enter_netns`]).
#[derive(Clone, Debug)]
pub struct NetnsRequest<'a> {
    pub strategy: NetworkStrategy,
    /// The helper's image (with `sh` and the tools the fault runs), when one is needed.
    pub image: Option<&'a str>,
    /// A helper outlives this by nothing: it ends by itself after it, even if faultline died.
    pub lifetime: std::time::Duration,
    /// Shell commands a helper runs as it ends (stopped, or at the end of its lifetime):
    /// the fault's own cleanup, so that what it added goes with the helper.
    pub on_exit: String,
}

/// Where a process that carries a fault runs ([`Platform::start_process`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// faultline's own binary on the platform's host, started stopped, moved into the
    /// target's network namespace and/or cgroups, then let go; it dies with faultline.
    Host { netns: bool, cgroups: bool },
    /// A command inside the target itself (Docker: exec; Kubernetes: an ephemeral
    /// container sharing the pod's namespaces, from the helper image). `net_admin`: it
    /// changes the target's network namespace (root with NET_ADMIN; Kubernetes only);
    /// `image`: the helper image to use instead of the platform's default.
    InTarget {
        #[serde(default)]
        net_admin: bool,
        #[serde(default)]
        image: Option<String>,
    },
    /// A command inside the target's own container, from its own image, left running in
    /// the background: what it does is charged to that container's cgroups and sees its
    /// filesystem (Docker: a detached exec; Kubernetes: an exec into the pod's target
    /// container that starts it in the background).
    InContainer,
}

impl Placement {
    /// An unprivileged command in the target, from the platform's helper image.
    pub const IN_TARGET: Placement = Placement::InTarget {
        net_admin: false,
        image: None,
    };
}

/// A peer of a scoped network fault (a container or pod), with the addresses it had when
/// it was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub addresses: Vec<std::net::IpAddr>,
}

/// The result of a command run for a fault.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    /// The error for a command in `target` that did not do its job: the target gone when
    /// the engine says it no longer runs, else `what` refused, with the command's stderr.
    pub fn failure(&self, target: &Target, what: &str) -> PlatformError {
        if self.stderr.contains("is not running") {
            PlatformError::Gone(target.name.clone())
        } else {
            PlatformError::Refused(format!("{what}: {}", self.stderr.trim()))
        }
    }
}

/// A match of the target block that was not eligible, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedOver {
    pub name: String,
    pub why: String,
}

/// The primitives every fault is composed of. A platform knows nothing of faults: it
/// discovers targets, signals and freezes them, enters their network namespace, runs
/// processes attached to them, and says what its host supports.
#[async_trait]
pub trait Platform: Send + Sync {
    /// `docker` or `kubernetes`, as written in reports.
    fn kind(&self) -> &'static str;
    /// Where it is reached, for messages and the journal.
    fn endpoint(&self) -> String;
    /// What a later process needs to connect to it again.
    fn reference(&self) -> PlatformRef {
        PlatformRef {
            kind: self.kind().to_string(),
            endpoint: Some(self.endpoint()),
            tls: None,
        }
    }
    /// Why this endpoint was chosen (Docker: the experiment, DOCKER_HOST, a context, the
    /// local socket), for `plan` and `doctor`.
    fn endpoint_source(&self) -> Option<String> {
        None
    }
    /// Every eligible target that matches the experiment's target block (never a
    /// protected one nor a helper faultline created).
    async fn discover(&self) -> Result<Vec<Target>, PlatformError>;

    /// What matches the target block but cannot be a target now (a paused container),
    /// with why: a run reports it as skipped rather than "no target matched".
    async fn passed_over(&self) -> Result<Vec<PassedOver>, PlatformError> {
        Ok(Vec::new())
    }

    /// Stops the target the platform's way: a signal to the container's init process
    /// (Docker), a pod delete with a grace period (Kubernetes).
    async fn signal(
        &self,
        target: &Target,
        signal: Signal,
        grace: Option<Duration>,
    ) -> Result<(), PlatformError>;

    /// Whether targets can be frozen here at all (e.g. not on a rootless engine on cgroup
    /// v1), asked at preflight; `Err` says why not.
    async fn freeze_support(&self) -> Result<(), String> {
        Ok(())
    }

    /// Freezes every process of the target (the cgroup freezer). A platform whose freeze
    /// is held by a helper (Kubernetes) has it thaw by itself after `lifetime`. A target
    /// that is frozen already is refused (Docker: [`already_frozen`]; Kubernetes: the
    /// helper there already): thawing it at revert would undo that other freeze.
    async fn freeze(
        &self,
        target: &Target,
        lifetime: std::time::Duration,
    ) -> Result<(), PlatformError>;
    /// Thaws the target and returns once the platform has answered for it (Docker: the
    /// daemon's answer to the unpause, given after the runtime resumed it; Kubernetes:
    /// the helper that held the freeze is gone, its exit being what thaws). A target that
    /// is not frozen is fine.
    async fn thaw(&self, target: &Target) -> Result<(), PlatformError>;
    /// Whether the target is frozen now.
    async fn is_frozen(&self, target: &Target) -> Result<bool, PlatformError>;

    /// Stops the target the way its platform does (Docker: SIGTERM, SIGKILL after
    /// `timeout`) and returns when it is stopped.
    async fn stop_target(
        &self,
        _target: &Target,
        _timeout: std::time::Duration,
    ) -> Result<(), PlatformError> {
        Err(self.no_stop_start())
    }
    /// Starts a stopped target again.
    async fn start_target(&self, _target: &Target) -> Result<(), PlatformError> {
        Err(self.no_stop_start())
    }
    /// Stops and starts the target in one operation.
    async fn restart_target(
        &self,
        _target: &Target,
        _timeout: std::time::Duration,
    ) -> Result<(), PlatformError> {
        Err(self.no_stop_start())
    }
    /// Whether the target is running now.
    async fn is_running(&self, _target: &Target) -> Result<bool, PlatformError> {
        Err(self.no_stop_start())
    }
    /// Why [`Platform::stop_target`] and its kin are not available here.
    fn no_stop_start(&self) -> PlatformError {
        self.not_available("stopping and starting a target is")
    }
    /// The refusal of what this platform does not do (`what`: "X is", "Xs are").
    fn not_available(&self, what: &str) -> PlatformError {
        PlatformError::Refused(format!("{what} not available on {}", self.kind()))
    }

    /// What a [`Platform::signal`] to `target` means beyond ending it, when it is more than
    /// a signal (a kill through the Docker API, which then ignores the restart policy).
    async fn signal_caveat(&self, _target: &Target) -> Option<String> {
        None
    }

    /// Signals every process of the container `container` of the target (one container
    /// of a pod; Kubernetes: from a helper pod on its node) and returns that container's
    /// restart count from just before the signal.
    async fn signal_container(
        &self,
        _target: &Target,
        _container: &str,
        _signal: Signal,
    ) -> Result<i32, PlatformError> {
        Err(self.not_available("signalling one container of a target is"))
    }
    /// How many times the container `container` of the target has been restarted.
    async fn restart_count(
        &self,
        _target: &Target,
        _container: &str,
    ) -> Result<i32, PlatformError> {
        Err(self.not_available("restart counts of containers are"))
    }

    /// Waits until a target that was told to go (a deleted pod) is gone from the
    /// platform, up to `timeout`. `Ok(true)` once it is gone; `Ok(false)` where a stop
    /// is over when the call returns (a signal), so there is nothing to wait for.
    async fn until_gone(
        &self,
        _target: &Target,
        _timeout: std::time::Duration,
    ) -> Result<bool, PlatformError> {
        Ok(false)
    }

    /// When the target's current process started, if it runs now (`None`: it does not
    /// run). A kill that left the start time as it was did not end the target. `Refused`
    /// where the platform cannot tell (a pod delete is not a signal).
    async fn running_since(
        &self,
        target: &Target,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PlatformError> {
        Err(PlatformError::Refused(format!(
            "{} cannot tell whether `{}` still runs",
            self.kind(),
            target.name
        )))
    }

    /// Whether faultline can reach the target's namespaces and cgroups from where it
    /// runs (a local daemon, root, the target's processes visible); the reason if not.
    async fn host_reach(&self, _target: &Target) -> Result<(), String> {
        Err(format!(
            "faultline does not run on the {} host of its targets",
            self.kind()
        ))
    }

    /// Enters the target's network namespace, from the host or through a helper.
    async fn enter_netns(
        &self,
        _target: &Target,
        _request: &NetnsRequest<'_>,
    ) -> Result<NetAccess, PlatformError> {
        Err(self.not_available("network faults are"))
    }
    /// Runs `argv` inside the target's network namespace.
    async fn netns_exec(
        &self,
        _target: &Target,
        _access: &NetAccess,
        _argv: &[String],
    ) -> Result<ExecOutput, PlatformError> {
        Err(self.not_available("network faults are"))
    }
    /// Removes what `enter_netns` started (a helper, which runs its `on_exit` as it
    /// goes); a no-op for host access.
    async fn leave_netns(&self, _access: &NetAccess) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Starts a process that carries `marker` on its command line, attached to the
    /// target as `placement` says: for [`Placement::Host`], `argv` are arguments of
    /// faultline's own binary; for [`Placement::InTarget`], a command. It must end by
    /// itself after `lifetime` (the process's own deadline).
    async fn start_process(
        &self,
        _target: &Target,
        placement: Placement,
        _argv: &[String],
        _marker: &str,
        _lifetime: std::time::Duration,
    ) -> Result<(), PlatformError> {
        Err(self.not_available(&format!("processes {placement:?} are")))
    }
    /// Stops every process carrying `marker` that `start_process` started and confirms
    /// none is left. `gentle` sends SIGTERM first (a delayer lets its packets go).
    async fn stop_process(
        &self,
        _target: &Target,
        placement: Placement,
        _marker: &str,
        _gentle: bool,
    ) -> Result<(), PlatformError> {
        Err(self.not_available(&format!("processes {placement:?} are")))
    }

    /// Whether [`Platform::exec`] can run a command inside a target here.
    fn can_exec(&self) -> bool {
        false
    }

    /// Runs `argv` inside the target (Docker: exec) and waits for it.
    async fn exec(&self, _target: &Target, _argv: &[String]) -> Result<ExecOutput, PlatformError> {
        Err(self.not_available("running a command inside a target is"))
    }

    /// The target's cgroup directories as seen from this host (every hierarchy, v1 and
    /// v2), when [`Platform::host_reach`] holds.
    async fn cgroups(&self, target: &Target) -> Result<Vec<std::path::PathBuf>, PlatformError> {
        Err(PlatformError::Refused(
            self.host_reach(target).await.err().unwrap_or_else(|| {
                format!(
                    "the cgroups of {} targets are not read from here",
                    self.kind()
                )
            }),
        ))
    }

    /// The target's root directory as seen from this host (`/proc/PID/root`), when
    /// [`Platform::host_reach`] holds: its files through its own mounts.
    async fn host_root(&self, target: &Target) -> Result<std::path::PathBuf, PlatformError> {
        Err(PlatformError::Refused(
            self.host_reach(target).await.err().unwrap_or_else(|| {
                format!(
                    "the files of {} targets are not reached from here",
                    self.kind()
                )
            }),
        ))
    }

    /// Whether [`Placement::InTarget`] runs from faultline's helper image beside the target
    /// (Kubernetes: an ephemeral container), so that faultline's own subcommands
    /// (`faultline delayer`) can run there when the image carries the binary; `false`
    /// where it runs in the target's own image (Docker: an exec). Such a helper, the
    /// network one of [`NetAccess::Sidecar`] too, sees the target's own `/etc/hosts` and
    /// `/etc/resolv.conf` in its network namespace: names resolve there as in the target
    /// (`hosts` in a network scope, with `getent`).
    fn in_target_from_helper_image(&self) -> bool {
        false
    }

    /// The helper image [`Placement::InTarget`] runs from when a fault names none
    /// (`--tc-image`, `FAULTLINE_TC_IMAGE`), where [`Platform::in_target_from_helper_image`].
    fn helper_image(&self) -> Option<String> {
        None
    }

    /// Runs `argv` beside a process `start_process` started with `placement` and `marker`
    /// (Kubernetes: an exec into its ephemeral container, which sees its files).
    async fn process_exec(
        &self,
        _target: &Target,
        placement: Placement,
        _marker: &str,
        _argv: &[String],
    ) -> Result<ExecOutput, PlatformError> {
        Err(self.not_available(&format!("commands beside processes {placement:?} are")))
    }

    /// The containers or pods `peers` selects, with their addresses now (every running
    /// one, protected ones too: they are only named, never touched).
    async fn peers(
        &self,
        _peers: &crate::experiment::model::PeerSelector,
    ) -> Result<Vec<Peer>, PlatformError> {
        Err(self.not_available("network scopes by `containers` are"))
    }

    /// The pods `peers` selects, with their pod IPs now (Kubernetes).
    async fn peer_pods(
        &self,
        _peers: &crate::experiment::model::PodPeers,
    ) -> Result<Vec<Peer>, PlatformError> {
        Err(PlatformError::Refused(format!(
            "network scopes by `pods` are for Kubernetes targets, not {}: use `containers` or `cidrs`",
            self.kind()
        )))
    }

    /// Whether the targets' kernel has netem; `None` when it cannot be told from here
    /// (a remote daemon): the add itself then says so.
    async fn netem_supported(&self) -> Option<bool> {
        None
    }
}

/// The refusal of a freeze of a target that someone else has frozen.
pub fn already_frozen(target: &Target) -> PlatformError {
    PlatformError::Refused(format!(
        "container `{}` is already paused by someone else; refusing to take it over",
        target.name
    ))
}

/// Settings of a platform that come from the command line rather than the experiment.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Image with `tc` for sidecar network faults (`--tc-image`, `FAULTLINE_TC_IMAGE`).
    pub tc_image: Option<String>,
}

/// Connects to the platform an experiment's target block names.
pub async fn connect(
    t: &crate::experiment::model::Target,
    opts: &ConnectOptions,
) -> Result<Box<dyn Platform>, PlatformError> {
    if let Some(d) = t.docker.as_ref().filter(|d| !d.hosts.is_empty()) {
        let fleet = docker_fleet::FleetPlatform::connect(d, opts.tc_image.clone()).await;
        return Ok(Box::new(fleet));
    }
    if let Some(d) = &t.docker {
        let p = docker::DockerPlatform::connect(d).await?;
        return Ok(Box::new(p.with_tc_image(opts.tc_image.clone())));
    }
    if let Some(k) = &t.kubernetes {
        let p = kubernetes::KubernetesPlatform::connect(k).await?;
        return Ok(Box::new(p.with_tc_image(opts.tc_image.clone())));
    }
    Err(PlatformError::Refused(
        "the target names no platform: add `docker:` or `kubernetes:`".into(),
    ))
}

/// Connects again to a platform recorded in the journal.
pub async fn reconnect(r: &PlatformRef) -> Result<Box<dyn Platform>, PlatformError> {
    match r.kind.as_str() {
        "docker" => {
            // `recover -H …`: the daemon is reached another way now than the journal says.
            let flagged = docker_endpoint::flags().host.is_some();
            let spec = crate::experiment::model::DockerTarget {
                host: r.endpoint.clone().filter(|_| !flagged),
                tls: r.tls.clone().filter(|_| !flagged),
                ..Default::default()
            };
            let tc_image = std::env::var("FAULTLINE_TC_IMAGE").ok();
            Ok(Box::new(
                docker::DockerPlatform::connect(&spec)
                    .await?
                    .with_tc_image(tc_image),
            ))
        }
        docker_fleet::KIND => Ok(Box::new(
            docker_fleet::FleetPlatform::reconnect(r.endpoint.as_deref().unwrap_or("[]")).await?,
        )),
        "kubernetes" => {
            let endpoint = r.endpoint.as_deref().ok_or_else(|| {
                PlatformError::Refused("the journal entry names no Kubernetes namespace".into())
            })?;
            let tc_image = std::env::var("FAULTLINE_TC_IMAGE").ok();
            Ok(Box::new(
                kubernetes::KubernetesPlatform::reconnect(endpoint)
                    .await?
                    .with_tc_image(tc_image),
            ))
        }
        other => Err(PlatformError::Refused(format!(
            "this build of faultline cannot reach `{other}` platforms"
        ))),
    }
}
