//! `faultline demo`: a small service to break, built on this machine without a registry.
//!
//! Three web replicas of faultline's own binary (`demo-serve`) sit behind a balancer
//! (`demo-balance`, also faultline) on a private bridge network; only the balancer is
//! published, on 127.0.0.1. The image is imported from a root filesystem holding the
//! binary and the shared libraries it links, so nothing is ever pulled.

mod balance;
mod http;
mod serve;

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, HostConfig, Network, NetworkCreateRequest, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions, RemoveImageOptions,
};
use futures::StreamExt;

/// The demo image; rebuilt when the binary it was built from changes.
pub(crate) const IMAGE: &str = concat!("faultline-demo:", env!("CARGO_PKG_VERSION"));
/// Every container and network of the demo carries `faultline.demo=true`.
pub(crate) const LABEL: &str = "faultline.demo";
/// Label of the web replicas: the experiment's target.
pub(crate) const WEB_APP: &str = "faultline-demo-web";
pub(crate) const NETWORK: &str = "faultline-demo";
pub(crate) const BALANCER: &str = "faultline-demo-lb";
const REPLICAS: usize = 3;
/// The port every demo process listens on inside its container.
const PORT: u16 = 8080;
/// Identifies the binary an image was built from (size and modification time).
const BINARY_LABEL: &str = "faultline.demo.binary";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const EXPERIMENT: &str = include_str!("experiment.yaml");
const URL_PLACEHOLDER: &str = "@url@";

/// `faultline demo-serve`: one web replica.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Port to listen on, on every interface.
    #[arg(long, default_value_t = PORT)]
    pub port: u16,
    /// Name to put in every answer (`hello from NAME`).
    #[arg(long, default_value = "web")]
    pub name: String,
}

/// `faultline demo-balance`: the round-robin balancer in front of the replicas.
#[derive(Debug, Clone, clap::Args)]
pub struct BalanceArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// A backend as HOST:PORT, resolved on every attempt (repeatable).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub backend: Vec<String>,
    /// How long one backend may take to answer before the next is tried.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub try_timeout_ms: u64,
}

/// Runs the demo web server until it fails or receives SIGINT/SIGTERM.
pub(crate) fn serve_main(args: ServeArgs) -> ExitCode {
    run_until_signal("demo-serve", async move {
        let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.port));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("faultline demo-serve: {} listening on {addr}", args.name);
        serve::serve_on(listener, args.name).await
    })
}

/// Runs the demo balancer until it fails or receives SIGINT/SIGTERM.
pub(crate) fn balance_main(args: BalanceArgs) -> ExitCode {
    run_until_signal("demo-balance", async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        eprintln!(
            "faultline demo-balance: listening on {}, backends {}, {}ms per try",
            args.listen,
            args.backend.join(", "),
            args.try_timeout_ms
        );
        let try_timeout = Duration::from_millis(args.try_timeout_ms);
        balance::balance_on(listener, args.backend, try_timeout).await
    })
}

/// As PID 1 in a container a process gets no default SIGTERM action, so it is handled
/// here; otherwise `docker stop` would wait for its timeout.
fn run_until_signal(what: &str, task: impl Future<Output = std::io::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline {what}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            r = task => r,
            _ = term.recv() => Ok(()),
            _ = int.recv() => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A running demo service. Call [`Environment::teardown`] to remove it.
pub(crate) struct Environment {
    docker: Docker,
    port: u16,
    containers: Vec<String>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("port", &self.port)
            .field("containers", &self.containers)
            .finish()
    }
}

impl Environment {
    /// Builds the image if needed (from `binary`, the faultline executable), removes what
    /// an interrupted demo left behind, starts the network, three replicas and the
    /// balancer, and waits until the balancer answers on 127.0.0.1.
    pub(crate) async fn start(docker: &Docker, binary: &Path) -> Result<Environment, String> {
        cleanup_leftovers(docker).await?;
        ensure_image(docker, binary).await?;
        let mut env = Environment {
            docker: docker.clone(),
            port: 0,
            containers: Vec::new(),
        };
        match env.start_containers().await {
            Ok(()) => Ok(env),
            Err(e) => {
                if let Err(cleanup) = cleanup_leftovers(docker).await {
                    return Err(format!("{e}; cleaning up also failed: {cleanup}"));
                }
                Err(e)
            }
        }
    }

    async fn start_containers(&mut self) -> Result<(), String> {
        let docker = &self.docker;
        docker
            .create_network(NetworkCreateRequest {
                name: NETWORK.into(),
                driver: Some("bridge".into()),
                labels: Some(labels(&[])),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot create network {NETWORK}: {e}"))?;
        let mut backends = Vec::new();
        for i in 1..=REPLICAS {
            let name = format!("{WEB_APP}-{i}");
            let cmd = vec![
                "/faultline".into(),
                "demo-serve".into(),
                "--port".into(),
                PORT.to_string(),
                "--name".into(),
                format!("web-{i}"),
            ];
            let body = container_body(cmd, labels(&[("app", WEB_APP)]), None);
            run_container(docker, &name, body).await?;
            backends.push(format!("{name}:{PORT}"));
            self.containers.push(name);
        }
        let mut cmd: Vec<String> = vec![
            "/faultline".into(),
            "demo-balance".into(),
            "--listen".into(),
            format!("0.0.0.0:{PORT}"),
        ];
        for backend in backends {
            cmd.extend(["--backend".into(), backend]);
        }
        let balancer_labels = labels(&[
            ("app", "faultline-demo-lb"),
            ("faultline.protected", "true"),
        ]);
        // The free port is found by binding and releasing it; another process can take
        // it before Docker binds it, so a conflict is retried on a new port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let body = container_body(cmd.clone(), balancer_labels.clone(), Some(port));
            match run_container(docker, BALANCER, body).await {
                Ok(()) => {
                    self.port = port;
                    self.containers.push(BALANCER.into());
                    break;
                }
                Err(e) if attempt < 3 && e.contains("already") => {
                    remove_container(docker, BALANCER).await?;
                }
                Err(e) => return Err(e),
            }
        }
        self.wait_ready().await
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let last = match http::get(addr, "/", Duration::from_secs(1)).await {
                Ok((200, _)) => return Ok(()),
                Ok((status, _)) => format!("status {status}"),
                Err(e) => e.to_string(),
            };
            if let Some(why) = self.exited().await {
                return Err(why);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the demo did not answer 200 on {} within {READY_TIMEOUT:?} (last: {last})",
                    self.url()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Describes the first demo container that is no longer running, with its last logs.
    async fn exited(&self) -> Option<String> {
        for name in &self.containers {
            let Ok(info) = self.docker.inspect_container(name, None).await else {
                continue;
            };
            let state = info.state.unwrap_or_default();
            if state.running == Some(true) {
                continue;
            }
            let mut logs = self.docker.logs(
                name,
                Some(LogsOptions {
                    stdout: true,
                    stderr: true,
                    tail: "5".into(),
                    ..Default::default()
                }),
            );
            let mut tail = String::new();
            while let Some(Ok(line)) = logs.next().await {
                tail.push_str(&line.to_string());
            }
            return Some(format!(
                "demo container {name} stopped (exit code {}): {}",
                state.exit_code.unwrap_or(-1),
                tail.trim()
            ));
        }
        None
    }

    /// The balancer's address on this machine, e.g. `http://127.0.0.1:34567/`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The names of the demo's containers: the replicas, then the balancer.
    pub(crate) fn containers(&self) -> &[String] {
        &self.containers
    }

    /// The bundled experiment, pointed at this demo's balancer.
    pub(crate) fn experiment_yaml(&self) -> String {
        experiment_for(&self.url())
    }

    /// Removes the containers (unpausing any that are paused) and the network; keeps
    /// the image for next time.
    pub(crate) async fn teardown(self) -> Result<(), String> {
        let removals = self
            .containers
            .iter()
            .map(|name| remove_container(&self.docker, name));
        let mut errors: Vec<String> = futures::future::join_all(removals)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        // The network cannot go while a container is still attached to it.
        if errors.is_empty() {
            if let Err(e) = remove_network(&self.docker, NETWORK).await {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// The next connection on `listener`. Per-connection failures (ECONNABORTED, EMFILE) must
/// not end a server: they are logged and accepting goes on.
pub(crate) async fn accept(listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return stream,
            Err(e) => {
                tracing::debug!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Every container (running or not) and network labelled `faultline.demo=true`.
pub(crate) async fn list_demo_objects(
    docker: &Docker,
) -> Result<(Vec<ContainerSummary>, Vec<Network>), DockerError> {
    let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL}=true")])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await?;
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await?;
    Ok((containers, networks))
}

/// Removes every container and network labelled `faultline.demo=true`, e.g. those of a
/// demo that was interrupted.
pub(crate) async fn cleanup_leftovers(docker: &Docker) -> Result<(), String> {
    let (containers, networks) = list_demo_objects(docker)
        .await
        .map_err(|e| format!("cannot list demo containers and networks: {e}"))?;
    let removals = containers
        .iter()
        .filter_map(|c| c.id.as_deref())
        .map(|id| remove_container(docker, id));
    let mut errors: Vec<String> = futures::future::join_all(removals)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    for id in networks.iter().filter_map(|n| n.id.as_deref()) {
        if let Err(e) = remove_network(docker, id).await {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The bundled experiment with `url` as the default of its `url` var.
fn experiment_for(url: &str) -> String {
    EXPERIMENT.replace(URL_PLACEHOLDER, url)
}

fn labels(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut labels = HashMap::from([(LABEL.to_string(), "true".to_string())]);
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    labels
}

fn container_body(
    cmd: Vec<String>,
    labels: HashMap<String, String>,
    published: Option<u16>,
) -> ContainerCreateBody {
    let port_key = format!("{PORT}/tcp");
    let port_bindings = published.map(|host_port| {
        let binding = PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(host_port.to_string()),
        };
        HashMap::from([(port_key.clone(), Some(vec![binding]))])
    });
    ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(cmd),
        labels: Some(labels),
        exposed_ports: published.map(|_| vec![port_key.clone()]),
        host_config: Some(HostConfig {
            network_mode: Some(NETWORK.into()),
            port_bindings,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run_container(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<(), String> {
    let options = CreateContainerOptions {
        name: Some(name.into()),
        ..Default::default()
    };
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("cannot create container {name}: {e}"))?;
    docker
        .start_container(name, None)
        .await
        .map_err(|e| format!("cannot start container {name}: {e}"))
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Force-removes a container, unpausing it first; a container that is gone is fine.
async fn remove_container(docker: &Docker, name: &str) -> Result<(), String> {
    match docker.inspect_container(name, None).await {
        Ok(info) => {
            if info.state.and_then(|s| s.paused) == Some(true) {
                // Best effort: a failure here still leaves the forced removal to try.
                let _ = docker.unpause_container(name).await;
            }
        }
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(format!("cannot inspect container {name}: {e}")),
    }
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(format!("cannot remove container {name}: {e}")),
    }
}

async fn remove_network(docker: &Docker, name: &str) -> Result<(), String> {
    match docker.remove_network(name).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(format!("cannot remove network {name}: {e}")),
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Size and modification time: cheap, and changes on every rebuild.
fn binary_identity(binary: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(binary)
        .map_err(|e| format!("cannot read the faultline binary {}: {e}", binary.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    Ok(format!(
        "{}-{}.{:09}",
        meta.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    ))
}

/// Imports [`IMAGE`] unless it exists and was built from this very binary.
async fn ensure_image(docker: &Docker, binary: &Path) -> Result<(), String> {
    let identity = binary_identity(binary)?;
    let old = match docker.inspect_image(IMAGE).await {
        Ok(image) => {
            let built_from = image
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(BINARY_LABEL).cloned());
            if built_from.as_deref() == Some(identity.as_str()) {
                return Ok(());
            }
            image.id
        }
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(format!("cannot inspect image {IMAGE}: {e}")),
    };
    let owned = binary.to_path_buf();
    let rootfs = tokio::task::spawn_blocking(move || rootfs_tar(&owned))
        .await
        .map_err(|e| format!("building the demo image's file system failed: {e}"))??;
    let (repo, tag) = IMAGE.split_once(':').unwrap_or((IMAGE, "latest"));
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag.into()),
        changes: vec![
            format!(r#"CMD ["/faultline","demo-serve","--port","{PORT}","--name","web"]"#),
            format!("LABEL {LABEL}=true {BINARY_LABEL}={identity}"),
        ],
        ..Default::default()
    };
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| format!("cannot import image {IMAGE}: {e}"))?;
    }
    // The previous build is now untagged; drop it unless a container still uses it.
    if let Some(old) = old {
        let _ = docker
            .remove_image(&old, None::<RemoveImageOptions>, None)
            .await;
    }
    Ok(())
}

/// A root file system: `/faultline`, the shared libraries and loader it needs at their
/// own paths, `/etc/nsswitch.conf` (so container names resolve) and `/tmp`.
fn rootfs_tar(binary: &Path) -> Result<Vec<u8>, String> {
    let libraries = shared_libraries(binary)?;
    let mut dirs = BTreeSet::from([PathBuf::from("etc"), PathBuf::from("tmp")]);
    for lib in &libraries {
        let relative = lib.strip_prefix("/").unwrap_or(lib);
        dirs.extend(
            relative
                .ancestors()
                .skip(1)
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf),
        );
    }
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    // Docker's importer rejects GNU sparse entries (type `S`), which the linker's
    // output often qualifies for.
    tar.sparse(false);
    let io = |what: &dyn std::fmt::Display, e: std::io::Error| {
        format!("cannot add {what} to the demo image: {e}")
    };
    for dir in &dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(if dir == Path::new("tmp") {
            0o1777
        } else {
            0o755
        });
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())
            .map_err(|e| io(&dir.display(), e))?;
    }
    tar.append_path_with_name(binary, "faultline")
        .map_err(|e| io(&binary.display(), e))?;
    for lib in &libraries {
        // Follows symlinks: the loader's path is usually one.
        tar.append_path_with_name(lib, lib.strip_prefix("/").unwrap_or(lib))
            .map_err(|e| io(&lib.display(), e))?;
    }
    let nsswitch = b"hosts: files dns\n";
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(nsswitch.len() as u64);
    tar.append_data(&mut header, "etc/nsswitch.conf", &nsswitch[..])
        .map_err(|e| io(&"/etc/nsswitch.conf", e))?;
    tar.into_inner().map_err(|e| io(&"the archive end", e))
}

/// The absolute paths `ldd` resolves for `binary`; none for a static binary.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("cannot run ldd to find the libraries faultline needs: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let text = format!("{stdout}{stderr}");
        if text.contains("not a dynamic executable") || text.contains("statically linked") {
            return Ok(Vec::new());
        }
        return Err(format!("ldd {} failed: {}", binary.display(), text.trim()));
    }
    parse_ldd(&stdout)
}

fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = BTreeSet::new();
    for line in output.lines().map(str::trim) {
        let target = line.split_once("=>").map_or(line, |(_, t)| t.trim());
        if target.starts_with("not found") {
            return Err(format!("a library faultline needs is missing: {line}"));
        }
        // `/lib/x.so (0x...)`; skips the vDSO, which has no file.
        let path = target.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            paths.insert(PathBuf::from(path));
        }
    }
    Ok(paths.into_iter().collect())
}

#[cfg(test)]
mod tests;
