//! The Docker platform on bollard: connect (with API version negotiation), discover
//! containers by labels and name, and the container operations faults are built from.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, ListContainersOptions,
};
use bollard::{API_DEFAULT_VERSION, Docker};

use super::{Platform, PlatformError, Target};
use crate::experiment::model::DockerTarget;
use crate::experiment::units::{Duration, Signal};

/// Containers with this label set to `true` are never selected.
pub const PROTECTED_LABEL: &str = "faultline.protected";
/// Helpers faultline creates carry this label and are never selected.
pub const HELPER_LABEL: &str = "faultline.helper";

/// Bound on every Docker API call (bollard's default is two minutes).
pub const API_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The endpoint as a user would write it: the experiment's, DOCKER_HOST, or the socket.
pub fn shown_host(host: Option<&str>) -> String {
    match host {
        Some(h) => h.to_string(),
        None => std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string()),
    }
}

/// Connects to `host` (or DOCKER_HOST, or the local socket) and negotiates the API
/// version, since the engine may be older than bollard's default.
pub async fn connect(host: Option<&str>) -> Result<Docker, String> {
    let shown = shown_host(host);
    let connected = match host {
        None => Docker::connect_with_defaults().map(|d| d.with_timeout(API_TIMEOUT)),
        Some(h) if h.starts_with("unix://") || h.starts_with('/') => {
            Docker::connect_with_unix(h, API_TIMEOUT.as_secs(), API_DEFAULT_VERSION)
        }
        Some(h) if h.starts_with("tcp://") || h.starts_with("http://") => {
            Docker::connect_with_http(h, API_TIMEOUT.as_secs(), API_DEFAULT_VERSION)
        }
        Some(h) => {
            return Err(format!(
                "unsupported Docker host `{h}`: use unix://PATH, tcp://HOST:PORT or http://HOST:PORT"
            ));
        }
    };
    let docker = connected.map_err(|e| describe(&shown, &e))?;
    match tokio::time::timeout(API_TIMEOUT, docker.negotiate_version()).await {
        Err(_) => Err(format!(
            "cannot reach Docker at {shown}: no answer within {}s",
            API_TIMEOUT.as_secs()
        )),
        Ok(r) => r.map_err(|e| describe(&shown, &e)),
    }
}

/// A bollard error in words: the daemon's own message, or why it could not be reached.
pub fn describe(host: &str, e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            format!("Docker at {host} answered {status_code}: {message}")
        }
        _ => {
            let why = match crate::probe::find_io_error(e) {
                Some(io) => crate::probe::describe_io(io),
                None => crate::probe::error_chain(e),
            };
            format!("cannot reach Docker at {host}: {why}")
        }
    }
}

pub struct DockerPlatform {
    docker: Docker,
    host: String,
    spec: DockerTarget,
}

impl DockerPlatform {
    pub async fn connect(spec: &DockerTarget) -> Result<Self, PlatformError> {
        let docker = connect(spec.host.as_deref())
            .await
            .map_err(PlatformError::Unavailable)?;
        Ok(DockerPlatform {
            docker,
            host: shown_host(spec.host.as_deref()),
            spec: spec.clone(),
        })
    }

    fn error(&self, target: &Target, e: bollard::errors::Error) -> PlatformError {
        match &e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => PlatformError::Gone(target.name.clone()),
            bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            } => PlatformError::Refused(format!("container `{}`: {message}", target.name)),
            bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message,
            } if message.contains("freezer") || message.contains("cgroup") => {
                PlatformError::Refused(format!(
                    "container `{}` cannot be frozen: {message} (pause needs the cgroup freezer: rootless Docker on cgroup v2 and containers without a cgroup cannot be paused)",
                    target.name
                ))
            }
            _ => PlatformError::Unavailable(describe(&self.host, &e)),
        }
    }

    async fn call<T>(
        &self,
        target: &Target,
        fut: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, PlatformError> {
        match tokio::time::timeout(API_TIMEOUT, fut).await {
            Err(_) => Err(PlatformError::Unavailable(format!(
                "Docker at {} did not answer within {}s",
                self.host,
                API_TIMEOUT.as_secs()
            ))),
            Ok(r) => r.map_err(|e| self.error(target, e)),
        }
    }
}

/// Whether a container listed with these labels and names may be a target.
pub fn eligible(spec: &DockerTarget, names: &[String], labels: &HashMap<String, String>) -> bool {
    if labels.get(PROTECTED_LABEL).is_some_and(|v| v == "true") || labels.contains_key(HELPER_LABEL)
    {
        return false;
    }
    if !spec.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return false;
    }
    match &spec.name {
        None => true,
        Some(m) => names.iter().any(|n| m.matches(n)),
    }
}

#[async_trait]
impl Platform for DockerPlatform {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn endpoint(&self) -> String {
        self.host.clone()
    }

    async fn discover(&self) -> Result<Vec<Target>, PlatformError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert("status".into(), vec!["running".into()]);
        if !self.spec.labels.is_empty() {
            filters.insert(
                "label".into(),
                self.spec
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            );
        }
        let options = ListContainersOptions {
            all: false,
            filters: Some(filters),
            ..Default::default()
        };
        let list = tokio::time::timeout(API_TIMEOUT, self.docker.list_containers(Some(options)))
            .await
            .map_err(|_| {
                PlatformError::Unavailable(format!("Docker at {} did not answer", self.host))
            })?
            .map_err(|e| PlatformError::Unavailable(describe(&self.host, &e)))?;
        let own = own_container_id();
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let id = c.id?;
                let names = c.names.unwrap_or_default();
                let labels = c.labels.unwrap_or_default();
                if !eligible(&self.spec, &names, &labels)
                    || own.as_deref().is_some_and(|o| id.starts_with(o))
                {
                    return None;
                }
                let name = names
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| id[..12].to_string());
                Some(Target {
                    platform: "docker".into(),
                    id,
                    name,
                    labels: labels.into_iter().collect(),
                })
            })
            .collect())
    }

    async fn kill(
        &self,
        target: &Target,
        signal: Signal,
        _grace: Option<Duration>,
    ) -> Result<(), PlatformError> {
        // Docker records a kill through its API as a manual stop and then ignores the
        // restart policy; a crash is a signal the daemon did not send. So when the
        // container's init process is visible here, signal it directly.
        let info = self
            .call(
                target,
                self.docker
                    .inspect_container(&target.id, None::<InspectContainerOptions>),
            )
            .await?;
        let pid = info.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
        if pid > 0 && process_belongs_to(pid, &target.id) {
            let sig = nix::sys::signal::Signal::try_from(signal.0)
                .map_err(|e| PlatformError::Refused(e.to_string()))?;
            return nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).map_err(
                |e| match e {
                    nix::errno::Errno::ESRCH => PlatformError::Gone(target.name.clone()),
                    other => PlatformError::Refused(format!(
                        "cannot signal container `{}`: {other}",
                        target.name
                    )),
                },
            );
        }
        tracing::debug!(
            "signalling {} through the Docker API: Docker then ignores its restart policy",
            target.name
        );
        let options = KillContainerOptionsBuilder::new()
            .signal(&signal.name())
            .build();
        self.call(
            target,
            self.docker.kill_container(&target.id, Some(options)),
        )
        .await
    }

    async fn pause(&self, target: &Target) -> Result<(), PlatformError> {
        self.call(target, self.docker.pause_container(&target.id))
            .await
    }

    async fn unpause(&self, target: &Target) -> Result<(), PlatformError> {
        match self
            .call(target, self.docker.unpause_container(&target.id))
            .await
        {
            // Unpause is idempotent: if the container is not paused (thawed by someone
            // else, or restarted), the goal holds. Docker answers that with a 409 or a 500.
            Err(PlatformError::Gone(n)) => Err(PlatformError::Gone(n)),
            Err(e) => match self.is_paused(target).await {
                Ok(false) => Ok(()),
                _ => Err(e),
            },
            Ok(()) => Ok(()),
        }
    }

    async fn is_paused(&self, target: &Target) -> Result<bool, PlatformError> {
        let info = self
            .call(
                target,
                self.docker
                    .inspect_container(&target.id, None::<InspectContainerOptions>),
            )
            .await?;
        Ok(info.state.and_then(|s| s.paused).unwrap_or(false))
    }
}

/// Whether host PID `pid` is a process of the container (its cgroup names the container),
/// which guards against a recycled PID and tells a local daemon from a remote one.
fn process_belongs_to(pid: i64, container_id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(container_id))
}

/// faultline's own container id when it runs inside Docker, so it never targets itself.
fn own_container_id() -> Option<String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|s| s.trim_start_matches("docker-").trim_end_matches(".scope"))
        .find(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_protected_nor_helpers() {
        let spec = DockerTarget {
            labels: [("app".to_string(), "web".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let names = vec!["/web-1".to_string()];
        let mut labels: HashMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        assert!(eligible(&spec, &names, &labels));
        labels.insert(PROTECTED_LABEL.into(), "true".into());
        assert!(!eligible(&spec, &names, &labels));
        labels.remove(PROTECTED_LABEL);
        labels.insert(HELPER_LABEL.into(), "netem".into());
        assert!(!eligible(&spec, &names, &labels));
    }

    #[test]
    fn every_label_pair_and_the_name_must_match() {
        let spec = DockerTarget {
            labels: [
                ("app".to_string(), "web".to_string()),
                ("tier".to_string(), "a".to_string()),
            ]
            .into_iter()
            .collect(),
            name: Some("/^web-[0-9]$/".parse().unwrap()),
            ..Default::default()
        };
        let labels: HashMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        assert!(
            !eligible(&spec, &["/web-1".into()], &labels),
            "tier is missing"
        );
        let mut all = labels.clone();
        all.insert("tier".into(), "a".into());
        assert!(eligible(&spec, &["/web-1".into()], &all));
        assert!(!eligible(&spec, &["/web-10".into()], &all));
    }
}
