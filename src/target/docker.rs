//! The Docker platform on bollard: connect (with API version negotiation), discover
//! containers by labels and name, and the container operations faults are built from.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, ListContainersOptions,
};
use bollard::{API_DEFAULT_VERSION, Docker};

use super::{ExecOutput, NetAccess, Platform, PlatformError, Target};
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
    tc_image: Option<String>,
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
            tc_image: None,
        })
    }

    /// The default image with `tc` for sidecar network faults.
    pub fn with_tc_image(mut self, image: Option<String>) -> Self {
        self.tc_image = image;
        self
    }

    /// The daemon runs on this machine (a unix socket), so its containers' processes and
    /// namespaces are visible here.
    fn is_local(&self) -> bool {
        self.host.starts_with("unix://") || self.host.starts_with('/')
    }

    /// The host PID of the container's init process, when it is visible from here.
    async fn visible_pid(&self, target: &Target) -> Result<Option<i64>, PlatformError> {
        if !self.is_local() {
            return Ok(None);
        }
        let info = self
            .call(
                target,
                self.docker
                    .inspect_container(&target.id, None::<InspectContainerOptions>),
            )
            .await?;
        let pid = info.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
        Ok((pid > 0 && process_belongs_to(pid, &target.id)).then_some(pid))
    }

    async fn start_net_helper(
        &self,
        target: &Target,
        image: &str,
        interface: &str,
        lifetime: std::time::Duration,
    ) -> Result<String, PlatformError> {
        let del = format!(
            "tc qdisc del dev {interface} root handle {} 2>/dev/null",
            crate::fault::network::HANDLE
        );
        // The helper's own dead-man's switch: when its lifetime ends, or it is stopped,
        // it removes faultline's qdisc; it is then removed by the daemon (auto_remove).
        let script = format!(
            "trap '{del}; exit 0' TERM INT; sleep {} & wait $!; {del}",
            lifetime.as_secs().max(1)
        );
        let name = format!(
            "faultline-net-{}-{:08x}",
            &target.id[..target.id.len().min(12)],
            rand::random::<u32>()
        );
        let labels = HashMap::from([
            (HELPER_LABEL.to_string(), "network".to_string()),
            ("faultline.target".to_string(), target.id.clone()),
        ]);
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["sh".into(), "-c".into(), script]),
            labels: Some(labels),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some(format!("container:{}", target.id)),
                cap_add: Some(vec!["NET_ADMIN".into()]),
                auto_remove: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = bollard::query_parameters::CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = self
            .call(target, self.docker.create_container(Some(options), body))
            .await
            .map_err(|e| match e {
                PlatformError::Gone(_) => PlatformError::Refused(format!(
                    "cannot create the network helper from image `{image}`: the image does not exist here (build or load an image with `tc` and `sh`, and name it with `tc_image`, --tc-image or FAULTLINE_TC_IMAGE)"
                )),
                other => other,
            })?;
        self.call(
            target,
            self.docker.start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            ),
        )
        .await?;
        Ok(created.id)
    }

    async fn exec_in(&self, container: &str, argv: &[String]) -> Result<ExecOutput, PlatformError> {
        use futures::StreamExt;
        let helper = Target {
            platform: "docker".into(),
            id: container.to_string(),
            name: format!("helper {}", &container[..container.len().min(12)]),
            labels: Default::default(),
        };
        let exec = self
            .call(
                &helper,
                self.docker.create_exec(
                    container,
                    bollard::exec::CreateExecOptions {
                        cmd: Some(argv.to_vec()),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                ),
            )
            .await?;
        let started = self
            .call(&helper, self.docker.start_exec(&exec.id, None))
            .await?;
        let mut out = ExecOutput::default();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        out.stderr.push_str(&String::from_utf8_lossy(&message))
                    }
                    Ok(other) => out
                        .stdout
                        .push_str(&String::from_utf8_lossy(&other.into_bytes())),
                    Err(e) => return Err(PlatformError::Unavailable(describe(&self.host, &e))),
                }
            }
        }
        let inspect = self
            .call(&helper, self.docker.inspect_exec(&exec.id))
            .await?;
        out.code = inspect.exit_code.unwrap_or(-1);
        Ok(out)
    }
}

/// Runs `argv` from the host inside the network namespace of process `pid`. The namespace
/// is entered in the forked child before exec, never on one of tokio's threads.
async fn exec_in_netns(pid: i64, argv: &[String]) -> Result<ExecOutput, PlatformError> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| {
        PlatformError::Refused(format!(
            "cannot open the network namespace of pid {pid}: {e}"
        ))
    })?;
    let fd = ns.as_raw_fd();
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: setns is a plain system call, safe between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().await.map_err(|e| {
        PlatformError::Refused(format!(
            "cannot run `{}` on this host: {e} (install iproute2, or use `strategy: sidecar`)",
            argv[0]
        ))
    })?;
    drop(ns);
    Ok(ExecOutput {
        code: out.status.code().map(i64::from).unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Whether this kernel accepts a netem qdisc, tried in a throwaway network namespace.
pub async fn host_has_netem() -> Option<bool> {
    let out = tokio::process::Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .await
        .ok()?;
    if out.status.success() {
        return Some(true);
    }
    String::from_utf8_lossy(&out.stderr)
        .contains("Specified qdisc kind is unknown")
        .then_some(false)
}

impl DockerPlatform {
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

    async fn net_access(
        &self,
        target: &Target,
        strategy: crate::experiment::model::NetworkStrategy,
        image: Option<&str>,
        interface: &str,
        lifetime: std::time::Duration,
    ) -> Result<NetAccess, PlatformError> {
        use crate::experiment::model::NetworkStrategy;
        let root = nix::unistd::geteuid().is_root();
        let host_ok = root && self.visible_pid(target).await?.is_some();
        let use_host = match strategy {
            NetworkStrategy::Host if !host_ok => {
                return Err(PlatformError::Refused(if !self.is_local() {
                    format!(
                        "strategy `host` needs a local Docker daemon; {} is remote: use `strategy: sidecar`",
                        self.host
                    )
                } else if !root {
                    "strategy `host` needs root to enter the container's network namespace: run faultline as root, or use `strategy: sidecar`".to_string()
                } else {
                    format!(
                        "the processes of `{}` are not visible from here: use `strategy: sidecar`",
                        target.name
                    )
                }));
            }
            NetworkStrategy::Host => true,
            NetworkStrategy::Sidecar => false,
            NetworkStrategy::Auto => host_ok,
        };
        if use_host {
            return Ok(NetAccess::Host);
        }
        let image = image.map(str::to_string).or_else(|| self.tc_image.clone()).ok_or_else(|| {
            PlatformError::Refused(
                "the sidecar strategy needs an image with `tc` and `sh`: set `tc_image` on the fault, --tc-image, or FAULTLINE_TC_IMAGE".into(),
            )
        })?;
        let helper = self
            .start_net_helper(target, &image, interface, lifetime)
            .await?;
        Ok(NetAccess::Sidecar { helper, image })
    }

    async fn net_exec(
        &self,
        target: &Target,
        access: &NetAccess,
        argv: &[String],
    ) -> Result<ExecOutput, PlatformError> {
        match access {
            NetAccess::Host => {
                let pid = self
                    .visible_pid(target)
                    .await?
                    .ok_or_else(|| PlatformError::Gone(target.name.clone()))?;
                exec_in_netns(pid, argv).await
            }
            NetAccess::Sidecar { helper, .. } => self.exec_in(helper, argv).await,
        }
    }

    async fn net_release(&self, access: &NetAccess) -> Result<(), PlatformError> {
        let NetAccess::Sidecar { helper, .. } = access else {
            return Ok(());
        };
        let options = bollard::query_parameters::RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self.docker.remove_container(helper, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(e) => Err(PlatformError::Unavailable(describe(&self.host, &e))),
        }
    }

    async fn netem_supported(&self) -> Option<bool> {
        if self.is_local() {
            host_has_netem().await
        } else {
            None
        }
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
