//! The Docker platform on bollard: connect (with API version negotiation), discover
//! containers by labels and name, and the container operations faults are built from.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, ListContainersOptions,
};
use bollard::{API_DEFAULT_VERSION, Docker};

use super::docker_endpoint::{Endpoint, TlsFiles};
use super::docker_engine::Engine;
use super::{
    ExecOutput, NetAccess, NetnsRequest, PassedOver, Placement, Platform, PlatformError, Target,
    host,
};
use crate::experiment::model::{DockerTarget, NetworkStrategy};
use crate::experiment::units::{Duration, Signal};

/// Containers with this label set to `true` are never selected.
pub const PROTECTED_LABEL: &str = "faultline.protected";
/// Helpers faultline creates carry this label and are never selected.
pub const HELPER_LABEL: &str = "faultline.helper";

/// Bound on every Docker API call (bollard's default is two minutes).
pub const API_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// Connects to the resolved endpoint and negotiates the API version, since the engine may
/// be older than bollard's default. Over TLS the certificate files are read and checked
/// first, so that a wrong file is named rather than failing the handshake.
pub async fn connect(ep: &Endpoint) -> Result<Docker, String> {
    connect_engine(ep).await.map(|(docker, _)| docker)
}

/// [`connect`], and whether the engine is Podman when its ping said so already (a unix
/// socket: Podman's service names its own API in a `Libpod-Api-Version` header).
async fn connect_engine(ep: &Endpoint) -> Result<(Docker, Option<bool>), String> {
    let shown = ep.host.as_str();
    let h = shown;
    let connected = if let Some(tls) = &ep.tls {
        if !(h.starts_with("tcp://") || h.starts_with("https://")) {
            return Err(format!(
                "TLS settings apply to a tcp:// Docker host, not `{h}`: remove target.docker.tls (or DOCKER_TLS_VERIFY), or use tcp://HOST:2376"
            ));
        }
        check_tls_files(tls)?;
        // bollard signs with the process-wide provider: ring, as everywhere in faultline.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (cert, key) = match &tls.client {
            Some((c, k)) => (c.clone(), k.clone()),
            // No client certificate: paths that do not exist send none.
            None => (
                tls.ca.with_extension("no-cert"),
                tls.ca.with_extension("no-key"),
            ),
        };
        Docker::connect_with_ssl(
            h,
            &key,
            &cert,
            &tls.ca,
            API_TIMEOUT.as_secs(),
            API_DEFAULT_VERSION,
        )
    } else if h.starts_with("ssh://") {
        let socket = ssh_forward(h).await?;
        Docker::connect_with_unix(&socket, API_TIMEOUT.as_secs(), API_DEFAULT_VERSION)
    } else if h.starts_with("unix://") || h.starts_with('/') {
        Docker::connect_with_unix(h, API_TIMEOUT.as_secs(), API_DEFAULT_VERSION)
    } else if h.starts_with("tcp://") || h.starts_with("http://") {
        Docker::connect_with_http(h, API_TIMEOUT.as_secs(), API_DEFAULT_VERSION)
    } else {
        return Err(format!(
            "unsupported Docker host `{h}` ({}): use unix://PATH, ssh://USER@HOST[:PORT], or tcp://HOST:PORT (with TLS: DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, or target.docker.tls)",
            ep.why()
        ));
    };
    let docker = connected.map_err(|e| describe_tls(ep, &e))?;
    // On a unix socket, `/_ping` names the daemon's API version in a header at once; the
    // `/version` that bollard's negotiation asks gathers component versions first (3.4 ms
    // against 0.14 ms on the bench machine, most of the connect step of a ~45 ms run).
    // Any doubt about the ping's answer falls back to the full negotiation.
    if let Some(path) = unix_socket_path(h) {
        if let Some((server, podman)) = ping_api_version(&path).await {
            let version = if server < *API_DEFAULT_VERSION {
                server
            } else {
                *API_DEFAULT_VERSION
            };
            return Docker::connect_with_unix(&path, API_TIMEOUT.as_secs(), &version)
                .map(|d| (d, Some(podman)))
                .map_err(|e| describe(shown, &e));
        }
    }
    match tokio::time::timeout(API_TIMEOUT, docker.negotiate_version()).await {
        Err(_) => Err(format!(
            "cannot reach Docker at {shown}: no answer within {}s",
            API_TIMEOUT.as_secs()
        )),
        Ok(r) => r.map(|d| (d, None)).map_err(|e| describe_tls(ep, &e)),
    }
}

/// The daemon's socket on an `ssh://` host.
const REMOTE_SOCKET: &str = "/var/run/docker.sock";

/// The `ssh -L` forwards of this process: host, local socket, the ssh process.
static FORWARDS: std::sync::Mutex<Vec<(String, String, std::process::Child)>> =
    std::sync::Mutex::new(Vec::new());

/// Ends every `ssh` forward of this process and removes its socket's directory (the
/// forwards also end with the process, but their directories would stay).
pub fn close_ssh_forwards() {
    let mut forwards = FORWARDS.lock().unwrap_or_else(|e| e.into_inner());
    for (_, socket, mut child) in forwards.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
        if let Some(dir) = std::path::Path::new(&socket).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `ssh://[user@]host[:port]` as `ssh` arguments: `[-l user] [-p port] host`.
fn ssh_args(h: &str) -> Result<Vec<String>, String> {
    let rest = h.strip_prefix("ssh://").unwrap_or(h);
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, hp)) => (Some(u), hp),
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.starts_with('[') => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("invalid port in Docker host `{h}`"))?;
            (
                host.trim_start_matches('[').trim_end_matches(']'),
                Some(port),
            )
        }
        _ => (hostport, None),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!(
            "invalid Docker host `{h}`: write ssh://USER@HOST or ssh://USER@HOST:PORT"
        ));
    }
    let mut args = Vec::new();
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        args.extend(["-l".to_string(), u.to_string()]);
    }
    if let Some(p) = port {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    args.push(host.to_string());
    Ok(args)
}

/// The local socket that `ssh -L` forwards to the daemon's socket on an `ssh://` host, one
/// per host for the whole process; `ssh` reads the user's ssh configuration and keys (no
/// password prompt) and ends with faultline.
async fn ssh_forward(h: &str) -> Result<String, String> {
    {
        let mut forwards = FORWARDS.lock().expect("not poisoned");
        // A forward whose ssh has ended is started again.
        forwards.retain_mut(|(_, _, c)| matches!(c.try_wait(), Ok(None)));
        if let Some((_, socket, _)) = forwards.iter().find(|(host, _, _)| host == h) {
            return Ok(socket.clone());
        }
    }
    let args = ssh_args(h)?;
    let dir = std::env::temp_dir().join(format!(
        "faultline-ssh-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let socket = dir.join("docker.sock");
    let mut cmd = std::process::Command::new("ssh");
    cmd.args([
        "-nNT",
        "-o",
        "BatchMode=yes",
        "-o",
        "ExitOnForwardFailure=yes",
    ])
    .args(["-o", "ConnectTimeout=10", "-L"])
    .arg(format!("{}:{REMOTE_SOCKET}", socket.display()))
    .args(&args)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = host::spawn_dying_with_parent(&mut cmd)
        .map_err(|e| format!("cannot run `ssh` for Docker at {h}: {e} (install openssh-client)"))?;
    let deadline = std::time::Instant::now() + API_TIMEOUT;
    loop {
        if socket.exists() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "cannot reach Docker at {h}: ssh ended ({status}): {} (faultline runs `ssh` without a terminal: the key must be usable without a prompt, e.g. through ssh-agent or ~/.ssh/config)",
                err.trim()
            ));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "cannot reach Docker at {h}: ssh did not forward the daemon's socket within {}s",
                API_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let shown = socket.display().to_string();
    FORWARDS
        .lock()
        .expect("not poisoned")
        .push((h.to_string(), shown.clone(), child));
    Ok(shown)
}

/// Reads the CA, client certificate and key, and says which one is missing or not PEM.
fn check_tls_files(tls: &TlsFiles) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fix = "(target.docker.tls, DOCKER_CERT_PATH, or the context's TLS files)";
    let certs = |path: &std::path::Path, what: &str| -> Result<(), String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the {what} {}: {e} {fix}", path.display()))?;
        let n = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the {what} {} is not PEM: {e} {fix}", path.display()))?
            .len();
        if n == 0 {
            return Err(format!(
                "the {what} {} holds no certificate {fix}",
                path.display()
            ));
        }
        Ok(())
    };
    certs(&tls.ca, "CA")?;
    if let Some((cert, key)) = &tls.client {
        certs(cert, "client certificate")?;
        let bytes = std::fs::read(key)
            .map_err(|e| format!("cannot read the client key {}: {e} {fix}", key.display()))?;
        let key_der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
            format!(
                "the client key {} is not a PEM private key: {e} {fix}",
                key.display()
            )
        })?;
        rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| format!("the client key {} cannot be used: {e} {fix}", key.display()))?;
    }
    Ok(())
}

/// [`describe`], with what a TLS failure means and which file to look at.
fn describe_tls(ep: &Endpoint, e: &bollard::errors::Error) -> String {
    let text = describe(&ep.host, e);
    let Some(tls) = &ep.tls else {
        return text;
    };
    let hint = if text.contains("invalid peer certificate") {
        format!(
            "the daemon's certificate is not trusted by the CA {} (or does not name the host): use the CA that signed the daemon's certificate",
            tls.ca.display()
        )
    } else if text.contains("TLS error")
        || text.contains("alert")
        || text.contains("connection reset")
    {
        match &tls.client {
            Some((cert, _)) => format!(
                "the daemon refused the TLS connection: check that it trusts the CA of the client certificate {}",
                cert.display()
            ),
            None => "the daemon refused the TLS connection: it may require a client certificate (cert.pem and key.pem)".to_string(),
        }
    } else {
        return format!("{text} ({})", ep.why());
    };
    format!(
        "{text}: {hint} ({}); see docs/format.md, \"Troubleshooting TLS\"",
        ep.why()
    )
}

/// The socket path when the daemon is reached over a unix socket.
fn unix_socket_path(h: &str) -> Option<String> {
    if let Some(path) = h.strip_prefix("unix://") {
        Some(path.to_string())
    } else {
        h.starts_with('/').then(|| h.to_string())
    }
}

/// The API version in the `Api-Version` header of the daemon's `/_ping` answer, and
/// whether it is Podman's; None when anything about the exchange is not as expected.
async fn ping_api_version(path: &str) -> Option<(bollard::ClientVersion, bool)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::UnixStream::connect(path).await.ok()?;
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::with_capacity(512);
        s.take(64 * 1024).read_to_end(&mut answer).await.ok()?;
        ping_head(&String::from_utf8_lossy(&answer))
    };
    tokio::time::timeout(API_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

/// `Api-Version` of a 200 answer's head, as `major.minor`, and whether the head names
/// Podman's own API (`Libpod-Api-Version`).
fn ping_head(answer: &str) -> Option<(bollard::ClientVersion, bool)> {
    let head = answer.split("\r\n\r\n").next()?;
    let mut lines = head.lines();
    let status = lines.next()?;
    if !status.starts_with("HTTP/1.") || status.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let (major, minor) = header("api-version")?.split_once('.')?;
    let version = bollard::ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    };
    Some((version, header("libpod-api-version").is_some()))
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
            let why = match crate::causes::find_io_error(e) {
                Some(io) => crate::causes::describe_io(io),
                None => crate::causes::error_chain(e),
            };
            format!("cannot reach Docker at {host}: {why}")
        }
    }
}

pub struct DockerPlatform {
    docker: Docker,
    host: String,
    /// Which daemon, why that one, and its TLS files.
    endpoint: Endpoint,
    spec: DockerTarget,
    tc_image: Option<String>,
    /// Host stressors started by this process, reaped when they are stopped.
    stressors: std::sync::Mutex<Vec<std::process::Child>>,
    /// What the last `discover` passed over, from the same listing.
    passed_over: std::sync::Mutex<Option<Vec<PassedOver>>>,
    /// Which engine answers (Docker or Podman), asked once when first needed.
    engine: tokio::sync::OnceCell<Engine>,
    /// Whether it is Podman, when the ping at connect said so (no `/version` needed).
    podman: Option<bool>,
}

impl DockerPlatform {
    pub async fn connect(spec: &DockerTarget) -> Result<Self, PlatformError> {
        let endpoint =
            super::docker_endpoint::resolve_here(spec.host.as_deref(), spec.tls.as_ref())
                .map_err(PlatformError::Unavailable)?;
        let (docker, podman) = connect_engine(&endpoint)
            .await
            .map_err(PlatformError::Unavailable)?;
        Ok(DockerPlatform {
            docker,
            host: endpoint.host.clone(),
            endpoint,
            spec: spec.clone(),
            tc_image: None,
            stressors: std::sync::Mutex::new(Vec::new()),
            passed_over: std::sync::Mutex::new(None),
            engine: tokio::sync::OnceCell::new(),
            podman,
        })
    }

    /// The engine behind the endpoint (Docker or Podman), asked once.
    pub async fn engine(&self) -> Result<&Engine, PlatformError> {
        self.engine
            .get_or_try_init(|| self.ask(super::docker_engine::engine(&self.docker)))
            .await
    }

    /// The limits a helper container needs on this engine: on Podman the target's own
    /// (Podman's default file limit can exceed the host's hard limit), else the engine's
    /// defaults.
    async fn helper_ulimits(
        &self,
        target: &Target,
    ) -> Result<Option<Vec<bollard::models::ResourcesUlimits>>, PlatformError> {
        let podman = match self.podman {
            Some(known) => known,
            None => self.engine().await?.podman,
        };
        if !podman {
            return Ok(None);
        }
        let info = self.inspect(target).await?;
        let own = info.host_config.and_then(|h| h.ulimits).unwrap_or_default();
        let limits = super::docker_engine::helper_ulimits(&own);
        Ok((!limits.is_empty()).then_some(limits))
    }

    /// A daemon call that concerns no target, bounded by [`API_TIMEOUT`].
    async fn ask<T>(
        &self,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, PlatformError> {
        tokio::time::timeout(API_TIMEOUT, fut)
            .await
            .map_err(|_| {
                PlatformError::Unavailable(format!(
                    "Docker at {} did not answer within {}s",
                    self.host,
                    API_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| PlatformError::Unavailable(describe(&self.host, &e)))
    }

    /// The containers the filters match (`all`: stopped and paused ones too).
    async fn list(
        &self,
        all: bool,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, PlatformError> {
        let options = ListContainersOptions {
            all,
            filters: Some(filters),
            ..Default::default()
        };
        self.ask(self.docker.list_containers(Some(options))).await
    }

    /// The host PID of the target's init process, when faultline can reach its
    /// namespaces and cgroups from here ([`Platform::host_reach`]).
    async fn reached_pid(&self, target: &Target) -> Result<i64, PlatformError> {
        self.host_reach(target)
            .await
            .map_err(PlatformError::Refused)?;
        self.visible_pid(target)
            .await?
            .ok_or_else(|| PlatformError::Gone(target.name.clone()))
    }

    /// The container's inspect answer.
    async fn inspect(
        &self,
        target: &Target,
    ) -> Result<bollard::models::ContainerInspectResponse, PlatformError> {
        self.call(
            target,
            self.docker
                .inspect_container(&target.id, None::<InspectContainerOptions>),
        )
        .await
    }

    /// The container's state (running, paused, its process, when it started).
    async fn state(
        &self,
        target: &Target,
    ) -> Result<bollard::models::ContainerState, PlatformError> {
        Ok(self.inspect(target).await?.state.unwrap_or_default())
    }

    /// The default image with `tc` for sidecar network faults.
    pub fn with_tc_image(mut self, image: Option<String>) -> Self {
        self.tc_image = image;
        self
    }

    /// The daemon runs on this machine (a unix socket), so its containers' processes and
    /// namespaces are visible here.
    fn is_local(&self) -> bool {
        self.endpoint.is_local()
    }

    /// The host PID of the container's init process, when it is visible from here.
    async fn visible_pid(&self, target: &Target) -> Result<Option<i64>, PlatformError> {
        if !self.is_local() {
            return Ok(None);
        }
        let info = self.inspect(target).await?;
        let pid = info.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
        Ok((pid > 0 && host::process_belongs_to(pid, &target.id)).then_some(pid))
    }

    async fn start_net_helper(
        &self,
        target: &Target,
        image: &str,
        on_exit: &str,
        lifetime: std::time::Duration,
    ) -> Result<String, PlatformError> {
        // The helper's own dead-man's switch: when its lifetime ends, or it is stopped,
        // it runs the fault's cleanup; it is then removed by the daemon (auto_remove).
        let script = format!(
            "trap '{on_exit}; exit 0' TERM INT; sleep {} & wait $!; {on_exit}",
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
                ulimits: self.helper_ulimits(target).await?,
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
        if let Err(e) = self.start_container(target, &created.id).await {
            // Created but never started: `auto_remove` would not take it away.
            let force = bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            let _ = self.docker.remove_container(&created.id, Some(force)).await;
            return Err(e);
        }
        Ok(created.id)
    }

    /// Starts `argv` in the target and returns without waiting for it.
    async fn exec_detached(&self, target: &Target, argv: &[String]) -> Result<(), PlatformError> {
        let exec = self
            .call(
                target,
                self.docker.create_exec(
                    &target.id,
                    bollard::exec::CreateExecOptions {
                        cmd: Some(argv.to_vec()),
                        ..Default::default()
                    },
                ),
            )
            .await?;
        let options = bollard::exec::StartExecOptions {
            detach: true,
            ..Default::default()
        };
        self.call(target, self.docker.start_exec(&exec.id, Some(options)))
            .await?;
        Ok(())
    }

    /// The containers in one of `states` that match the target block, with their state.
    async fn matching(&self, states: &[&str]) -> Result<Vec<(Target, String)>, PlatformError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        // States are filtered here, not with the daemon's `status` filter: Podman refuses
        // one naming a state it does not have (`restarting`).
        let labels = self.spec.selector_labels();
        if !labels.is_empty() {
            filters.insert(
                "label".into(),
                labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            );
        }
        // `all`: paused and restarting containers too.
        let list = self.list(true, filters).await?;
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
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                if !states.contains(&state.as_str()) {
                    return None;
                }
                Some((
                    Target {
                        platform: "docker".into(),
                        id,
                        name,
                        labels: labels.into_iter().collect(),
                    },
                    state,
                ))
            })
            .collect())
    }

    async fn stop_host_processes(&self, marker: &str, gentle: bool) -> bool {
        for round in 0..50 {
            let pids = host::pids_with_marker(marker);
            if pids.is_empty() {
                self.reap_stressors();
                return true;
            }
            let signal = if gentle && round < 10 {
                nix::sys::signal::Signal::SIGTERM
            } else {
                nix::sys::signal::Signal::SIGKILL
            };
            for pid in pids {
                // A helper inside a paused target ends on its own schedule.
                host::unfreeze_helper(pid);
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
            self.reap_stressors();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// Collects the exit status of host stressors that have ended, so none is a zombie.
    fn reap_stressors(&self) {
        let mut children = self.stressors.lock().expect("not poisoned");
        children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
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
                        out.stderr.push_str(&String::from_utf8_lossy(&message));
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

    /// A call the daemon answers only when it is done (a stop or restart: up to the
    /// container's own `timeout` later, which `call` is given in whole seconds), bounded
    /// by that plus [`API_TIMEOUT`].
    async fn call_taking<T, F>(
        &self,
        target: &Target,
        what: &str,
        timeout: std::time::Duration,
        call: impl FnOnce(Docker, Option<i32>) -> F,
    ) -> Result<T, PlatformError>
    where
        F: Future<Output = Result<T, bollard::errors::Error>>,
    {
        let bound = API_TIMEOUT + timeout;
        let docker = self.docker.clone().with_timeout(bound);
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        tokio::time::timeout(bound, call(docker, Some(seconds)))
            .await
            .map_err(|_| {
                PlatformError::Unavailable(format!(
                    "Docker at {} did not {what} `{}` within {}s",
                    self.host,
                    target.name,
                    bound.as_secs()
                ))
            })?
            .map_err(|e| self.error(target, e))
    }

    /// Starts the container `id` (the target or a helper of it), reporting errors as of `target`.
    async fn start_container(&self, target: &Target, id: &str) -> Result<(), PlatformError> {
        let options = None::<bollard::query_parameters::StartContainerOptions>;
        self.call(target, self.docker.start_container(id, options))
            .await
    }

    async fn call<T>(
        &self,
        target: &Target,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
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
    if !spec
        .selector_labels()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
    {
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

    fn reference(&self) -> super::PlatformRef {
        super::PlatformRef {
            kind: "docker".into(),
            endpoint: Some(self.host.clone()),
            tls: self.endpoint.tls_block(),
        }
    }

    fn endpoint_source(&self) -> Option<String> {
        let remote = if self.is_local() {
            ""
        } else {
            "; remote: faults act through the Docker API only (sidecar, exec, API kill)"
        };
        Some(format!("{}{remote}", self.endpoint.why()))
    }

    /// One listing gives the running containers and those passed over.
    async fn discover(&self) -> Result<Vec<Target>, PlatformError> {
        let found = self.matching(&["running", "paused", "restarting"]).await?;
        let (running, other): (Vec<_>, Vec<_>) =
            found.into_iter().partition(|(_, state)| state == "running");
        let passed_over = other
            .into_iter()
            .map(|(t, state)| PassedOver {
                name: t.name,
                why: match state.as_str() {
                    "paused" => "paused (unpause it to make it a target)".into(),
                    _ => format!("{state}, not running"),
                },
            })
            .collect();
        *self.passed_over.lock().expect("not poisoned") = Some(passed_over);
        Ok(running.into_iter().map(|(t, _)| t).collect())
    }

    async fn passed_over(&self) -> Result<Vec<PassedOver>, PlatformError> {
        let last = self.passed_over.lock().expect("not poisoned").clone();
        match last {
            Some(list) => Ok(list),
            None => {
                self.discover().await?;
                Ok(self
                    .passed_over
                    .lock()
                    .expect("not poisoned")
                    .clone()
                    .unwrap_or_default())
            }
        }
    }

    async fn signal(
        &self,
        target: &Target,
        signal: Signal,
        _grace: Option<Duration>,
    ) -> Result<(), PlatformError> {
        // Docker records a kill through its API as a manual stop and then ignores the
        // restart policy; a crash is a signal the daemon did not send. So when the
        // container's init process is visible here, signal it directly.
        if let Some(pid) = self.visible_pid(target).await? {
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

    async fn signal_caveat(&self, target: &Target) -> Option<String> {
        match self.visible_pid(target).await {
            Ok(Some(_)) => None,
            _ => Some(format!(
                "sent through the Docker API at {}{}: Docker records it as a manual stop, so the container's restart policy does not restart it",
                self.host,
                if self.is_local() {
                    ""
                } else {
                    " (a remote daemon)"
                }
            )),
        }
    }

    async fn freeze_support(&self) -> Result<(), String> {
        // An engine on this host's socket that runs as root always has the freezer:
        // `/info`, which tells a rootless engine's cgroups, costs Docker 10 ms or more.
        if self.endpoint.is_local() {
            let path = self.host.trim_start_matches("unix://");
            if host::unix_peer_uid(std::path::Path::new(path)).is_ok_and(|uid| uid == 0) {
                return Ok(());
            }
        }
        let engine = self.engine().await.map_err(|e| e.to_string())?;
        match engine.freeze_refusal(&self.host) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    async fn freeze(
        &self,
        target: &Target,
        _lifetime: std::time::Duration,
    ) -> Result<(), PlatformError> {
        match self
            .call(target, self.docker.pause_container(&target.id))
            .await
        {
            // The daemon refuses a second pause (409): someone else paused it.
            Err(PlatformError::Refused(m)) if m.contains("already paused") => {
                Err(super::already_frozen(target))
            }
            other => other,
        }
    }

    async fn thaw(&self, target: &Target) -> Result<(), PlatformError> {
        match self
            .call(target, self.docker.unpause_container(&target.id))
            .await
        {
            // Unpause is idempotent: if the container is not paused (thawed by someone
            // else, or restarted), the goal holds. Docker answers that with a 409 or a 500.
            Err(PlatformError::Gone(n)) => Err(PlatformError::Gone(n)),
            Err(e) => match self.is_frozen(target).await {
                Ok(false) => Ok(()),
                _ => Err(e),
            },
            Ok(()) => Ok(()),
        }
    }

    async fn is_frozen(&self, target: &Target) -> Result<bool, PlatformError> {
        Ok(self.state(target).await?.paused == Some(true))
    }

    async fn stop_target(
        &self,
        target: &Target,
        timeout: std::time::Duration,
    ) -> Result<(), PlatformError> {
        use bollard::query_parameters::StopContainerOptions as Options;
        let stopped = self
            .call_taking(target, "stop", timeout, |docker, t| async move {
                let options = Options { t, signal: None };
                docker.stop_container(&target.id, Some(options)).await
            })
            .await;
        match stopped {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(e) => match self.is_running(target).await {
                Ok(false) => Ok(()),
                _ => Err(e),
            },
        }
    }

    async fn start_target(&self, target: &Target) -> Result<(), PlatformError> {
        match self.start_container(target, &target.id).await {
            Ok(()) => Ok(()),
            Err(PlatformError::Gone(n)) => Err(PlatformError::Gone(n)),
            // 304: already running.
            Err(e) => match self.is_running(target).await {
                Ok(true) => Ok(()),
                _ => Err(e),
            },
        }
    }

    async fn restart_target(
        &self,
        target: &Target,
        timeout: std::time::Duration,
    ) -> Result<(), PlatformError> {
        use bollard::query_parameters::RestartContainerOptions as Options;
        self.call_taking(target, "restart", timeout, |docker, t| async move {
            docker
                .restart_container(&target.id, Some(Options { t, signal: None }))
                .await
        })
        .await
    }

    async fn is_running(&self, target: &Target) -> Result<bool, PlatformError> {
        Ok(self.state(target).await?.running == Some(true))
    }

    async fn running_since(
        &self,
        target: &Target,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PlatformError> {
        let state = self.state(target).await?;
        if state.running != Some(true) {
            return Ok(None);
        }
        Ok(state
            .started_at
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)))
    }

    async fn host_reach(&self, target: &Target) -> Result<(), String> {
        if !self.is_local() {
            return Err(format!(
                "the Docker daemon at {} is remote: its containers' namespaces and cgroups are not on this machine",
                self.host
            ));
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(
                "entering a container's namespaces and cgroups needs root: run faultline as root"
                    .into(),
            );
        }
        match self.visible_pid(target).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!(
                "the processes of `{}` are not visible from here",
                target.name
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn enter_netns(
        &self,
        target: &Target,
        request: &NetnsRequest<'_>,
    ) -> Result<NetAccess, PlatformError> {
        let reach = self.host_reach(target).await;
        let use_host = match (request.strategy, reach) {
            (NetworkStrategy::Host, Err(why)) => {
                return Err(PlatformError::Refused(format!(
                    "strategy `host` cannot be used: {why}; use `strategy: sidecar`"
                )));
            }
            (NetworkStrategy::Host, Ok(())) => true,
            (NetworkStrategy::Sidecar, _) => false,
            (NetworkStrategy::Auto, reach) => reach.is_ok(),
        };
        if use_host {
            return Ok(NetAccess::Host);
        }
        let image = request.image.map(str::to_string).or_else(|| self.tc_image.clone()).ok_or_else(|| {
            PlatformError::Refused(
                "the sidecar strategy needs an image with `tc` and `sh`: set `tc_image` on the fault, --tc-image, or FAULTLINE_TC_IMAGE".into(),
            )
        })?;
        let helper = self
            .start_net_helper(target, &image, &request.on_exit, request.lifetime)
            .await?;
        Ok(NetAccess::Sidecar { helper, image })
    }

    async fn netns_exec(
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
                host::exec_in_netns(pid, argv).await
            }
            NetAccess::Sidecar { helper, .. } => self.exec_in(helper, argv).await,
        }
    }

    async fn leave_netns(&self, access: &NetAccess) -> Result<(), PlatformError> {
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

    async fn peers(
        &self,
        peers: &crate::experiment::model::PeerSelector,
    ) -> Result<Vec<crate::platform::Peer>, PlatformError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert("status".into(), vec!["running".into()]);
        if !peers.labels.is_empty() {
            filters.insert(
                "label".into(),
                peers
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            );
        }
        let list = self.list(false, filters).await?;
        let mut found: Vec<crate::platform::Peer> = list
            .into_iter()
            .filter_map(|c| {
                let name = c
                    .names
                    .unwrap_or_default()
                    .first()?
                    .trim_start_matches('/')
                    .to_string();
                if !peers.names.is_empty() && !peers.names.contains(&name) {
                    return None;
                }
                let mut addresses: Vec<std::net::IpAddr> = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .unwrap_or_default()
                    .values()
                    .filter_map(|e| e.ip_address.as_deref()?.parse().ok())
                    .collect();
                addresses.sort();
                addresses.dedup();
                Some(crate::platform::Peer { name, addresses })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    async fn netem_supported(&self) -> Option<bool> {
        if self.is_local() {
            host::has_netem().await
        } else {
            None
        }
    }

    fn can_exec(&self) -> bool {
        true
    }

    async fn exec(&self, target: &Target, argv: &[String]) -> Result<ExecOutput, PlatformError> {
        self.exec_in(&target.id, argv).await.map_err(|e| match e {
            PlatformError::Gone(_) => PlatformError::Gone(target.name.clone()),
            other => other,
        })
    }

    async fn cgroups(&self, target: &Target) -> Result<Vec<std::path::PathBuf>, PlatformError> {
        let pid = self.reached_pid(target).await?;
        host::cgroup_dirs(pid).map_err(PlatformError::Refused)
    }

    async fn host_root(&self, target: &Target) -> Result<std::path::PathBuf, PlatformError> {
        let pid = self.reached_pid(target).await?;
        Ok(std::path::PathBuf::from(format!("/proc/{pid}/root")))
    }

    async fn start_process(
        &self,
        target: &Target,
        placement: Placement,
        argv: &[String],
        _marker: &str,
        _lifetime: std::time::Duration,
    ) -> Result<(), PlatformError> {
        match placement {
            Placement::Host { netns, cgroups } => {
                let pid = self.reached_pid(target).await?;
                let child = host::spawn_attached(pid, netns, cgroups, argv)?;
                self.stressors.lock().expect("not poisoned").push(child);
                Ok(())
            }
            Placement::InTarget {
                net_admin: false, ..
            }
            | Placement::InContainer => self.exec_detached(target, argv).await,
            // An exec runs from the target's own image, without faultline's binary.
            Placement::InTarget { net_admin: true, .. } => Err(PlatformError::Refused(
                "a process that changes a container's network runs from the host on Docker: use `strategy: host`".into(),
            )),
        }
    }

    async fn stop_process(
        &self,
        target: &Target,
        placement: Placement,
        marker: &str,
        gentle: bool,
    ) -> Result<(), PlatformError> {
        match placement {
            Placement::Host { .. } => {
                if self.stop_host_processes(marker, gentle).await {
                    return Ok(());
                }
                Err(PlatformError::Refused(format!(
                    "a process of faultline ({marker}) for `{}` is still running after SIGKILL",
                    target.name
                )))
            }
            // `docker exec` cannot run in a paused container, and the pause may outlast
            // this process's fault: from this host the process is ended all the same.
            Placement::InTarget { .. } | Placement::InContainer
                if self.is_frozen(target).await.unwrap_or(false)
                    && self.host_reach(target).await.is_ok() =>
            {
                if self.stop_host_processes(marker, gentle).await {
                    return Ok(());
                }
                Err(PlatformError::Refused(format!(
                    "a process of faultline ({marker}) in the paused `{}` is still running after SIGKILL",
                    target.name
                )))
            }
            Placement::InTarget { .. } | Placement::InContainer => {
                let argv = vec![
                    "sh".to_string(),
                    "-c".to_string(),
                    host::kill_by_marker_script(marker),
                ];
                let out = self.exec_in(&target.id, &argv).await.map_err(|e| match e {
                    PlatformError::Gone(_) => PlatformError::Gone(target.name.clone()),
                    other => other,
                })?;
                match host::remaining(&out.stdout) {
                    Some(0) => Ok(()),
                    Some(n) => Err(PlatformError::Refused(format!(
                        "{n} process(es) of faultline ({marker}) still run in `{}`",
                        target.name
                    ))),
                    None => Err(out.failure(
                        target,
                        &format!("cannot check faultline's processes in `{}`", target.name),
                    )),
                }
            }
        }
    }
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

    /// The platform's freeze primitive refuses a container someone else paused (Docker's
    /// own 409 for a second pause), so the pause fault needs no inspect before it.
    #[tokio::test]
    async fn a_second_freeze_is_refused_as_someone_elses() {
        if !crate::test_support::require_docker() {
            return;
        }
        struct Removed(String);
        impl Drop for Removed {
            fn drop(&mut self) {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f", &self.0])
                    .output();
            }
        }
        let name = format!("fl-lib-freeze-{}", std::process::id());
        let started = std::process::Command::new("docker")
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--label",
                "faultline.test=true",
            ])
            .args(["faultline-test/busybox:1", "sleep", "60"])
            .output()
            .unwrap();
        let _removed = Removed(name.clone());
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
        let spec: DockerTarget = crate::test_support::from_json(serde_json::json!({"name": name}));
        let p = DockerPlatform::connect(&spec).await.unwrap();
        let t = p.discover().await.unwrap().remove(0);
        let hour = std::time::Duration::from_secs(3600);
        p.freeze(&t, hour).await.unwrap();
        let refused = p.freeze(&t, hour).await.unwrap_err().to_string();
        assert!(
            refused.contains("already paused by someone else"),
            "{refused}"
        );
        assert!(p.is_frozen(&t).await.unwrap());
        p.thaw(&t).await.unwrap();
        assert!(!p.is_frozen(&t).await.unwrap());
    }

    #[test]
    fn the_api_version_comes_from_the_ping_header() {
        let ok = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\nContent-Length: 2\r\n\r\nOK";
        let (v, podman) = ping_head(ok).unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(!podman);
        assert!(
            ping_head("HTTP/1.1 500 Internal Server Error\r\nApi-Version: 1.41\r\n\r\n").is_none()
        );
        assert!(ping_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK").is_none());
        assert!(ping_head("HTTP/1.1 200 OK\r\napi-version: x\r\n\r\n").is_none());
        assert_eq!(
            unix_socket_path("unix:///run/d.sock").as_deref(),
            Some("/run/d.sock")
        );
        assert_eq!(unix_socket_path("tcp://127.0.0.1:2375"), None);
        // Podman 4's Docker-compatible service answers its ping so (its own libpod API
        // version in another header): faultline speaks Docker API 1.41 to it.
        let podman = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nBuildkit-Version: \r\nLibpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\nContent-Length: 2\r\n\r\nOK";
        let (v, podman) = ping_head(podman).unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(podman, "the Libpod header names Podman");
    }

    #[test]
    fn ssh_hosts_become_ssh_arguments() {
        assert_eq!(
            ssh_args("ssh://ops@box:2222").unwrap(),
            ["-l", "ops", "-p", "2222", "box"]
        );
        assert_eq!(ssh_args("ssh://box").unwrap(), ["box"]);
        assert_eq!(
            ssh_args("ssh://me@10.0.0.5/").unwrap(),
            ["-l", "me", "10.0.0.5"]
        );
        assert!(ssh_args("ssh://me@box:port").is_err());
        assert!(ssh_args("ssh://").is_err());
    }

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
