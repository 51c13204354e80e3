//! Which Docker daemon to talk to, decided the way the docker CLI decides it:
//!
//! 1. the experiment's `target.docker.host` (with `target.docker.tls`);
//! 2. the command line's `-H`/`--host` (with `--tlsverify`, `--tlscacert`, `--tlscert`,
//!    `--tlskey`, which also apply to a `tcp://` host from anywhere else);
//! 3. `DOCKER_HOST`, with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` for a `tcp://` host;
//! 4. `DOCKER_CONTEXT`;
//! 5. the `currentContext` of `$DOCKER_CONFIG/config.json` (default `~/.docker`): the
//!    context's endpoint from `contexts/meta/<sha256 of its name>/meta.json` and its TLS
//!    files from `contexts/tls/<sha256>/docker/`;
//! 6. the local socket.
//!
//! Pure but for reading the files it names: the environment is passed in ([`Env`]), so that
//! every rule is tested without touching the process's own.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::experiment::model::DockerTls;

/// The engine's socket when nothing else is said.
pub const LOCAL_SOCKET: &str = "unix:///var/run/docker.sock";

/// Reads one environment variable.
pub type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// The environment the resolution reads: variables, the home directory, and the command
/// line's connection flags.
pub struct Env<'a> {
    pub var: Lookup<'a>,
    pub home: Option<PathBuf>,
    pub flags: Flags,
}

/// The docker CLI's connection flags, as faultline's `run`, `plan`, `doctor`, `recover`
/// and `gameday` take them: `-H`/`--host`, `--tls`, `--tlsverify`, `--tlscacert`,
/// `--tlscert`, `--tlskey`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub host: Option<String>,
    /// `--tls`: TLS without verifying the daemon, which faultline refuses.
    pub tls: bool,
    pub tlsverify: bool,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

impl Flags {
    /// Whether any TLS flag asks for verified TLS (a certificate file implies
    /// `--tlsverify`: faultline always verifies the daemon).
    fn verify(&self) -> bool {
        self.tlsverify
            || self.tlscacert.is_some()
            || self.tlscert.is_some()
            || self.tlskey.is_some()
    }
}

static FLAGS: std::sync::OnceLock<Flags> = std::sync::OnceLock::new();

/// Sets the command line's connection flags for this process (once, before connecting).
pub fn set_flags(flags: Flags) {
    let _ = FLAGS.set(flags);
}

/// The command line's connection flags (none set: the default).
pub fn flags() -> Flags {
    FLAGS.get().cloned().unwrap_or_default()
}

impl Env<'_> {
    /// A variable, `None` when unset or empty (as the docker CLI reads them).
    fn get(&self, name: &str) -> Option<String> {
        (self.var)(name).filter(|v| !v.is_empty())
    }

    /// `$DOCKER_CONFIG`, else `~/.docker`.
    fn config_dir(&self) -> Result<PathBuf, String> {
        match self.get("DOCKER_CONFIG") {
            Some(d) => Ok(PathBuf::from(d)),
            None => self.home.as_ref().map(|h| h.join(".docker")).ok_or_else(|| {
                "neither DOCKER_CONFIG nor HOME is set, so the docker CLI's configuration cannot be found".to_string()
            }),
        }
    }
}

/// Resolves from this process's environment.
pub fn resolve_here(host: Option<&str>, tls: Option<&DockerTls>) -> Result<Endpoint, String> {
    let env = Env {
        var: Box::new(|k: &str| std::env::var(k).ok()),
        home: std::env::var_os("HOME").map(PathBuf::from),
        flags: flags(),
    };
    resolve(host, tls, &env)
}

/// PEM files of a TLS connection; the daemon's certificate is always verified against `ca`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    pub ca: PathBuf,
    /// Client certificate and key, when the daemon verifies its clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Why an endpoint was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `target.docker.host` (or a docker probe's `host`).
    Experiment,
    /// The command line's `-H`/`--host`.
    Flag,
    /// The `DOCKER_HOST` variable.
    DockerHost,
    /// The context named by `DOCKER_CONTEXT`.
    ContextVariable(String),
    /// The `currentContext` of the docker CLI's config.json.
    CurrentContext { name: String, config: PathBuf },
    /// Nothing else said where: the local socket.
    Default,
}

/// The daemon to talk to, and why it is that one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///…`, `tcp://HOST:PORT`, `ssh://…`, as a user would write it.
    pub host: String,
    pub tls: Option<TlsFiles>,
    pub source: Source,
}

impl Endpoint {
    /// The daemon is reached through a socket on this machine, so its containers'
    /// processes, namespaces and cgroups are here too. Any network endpoint is remote,
    /// even one on 127.0.0.1 (it may be forwarded anywhere).
    pub fn is_local(&self) -> bool {
        self.host.starts_with("unix://") || self.host.starts_with('/')
    }

    /// Why this endpoint, in words.
    pub fn why(&self) -> String {
        let tls = match &self.tls {
            Some(t) => format!(", TLS verified against {}", t.ca.display()),
            None => String::new(),
        };
        let source = match &self.source {
            Source::Experiment => "from the experiment (target.docker.host)".to_string(),
            Source::Flag => "from the command line (-H/--host)".to_string(),
            Source::DockerHost => "from DOCKER_HOST".to_string(),
            Source::ContextVariable(n) => format!("from docker context `{n}` (DOCKER_CONTEXT)"),
            Source::CurrentContext { name, config } => format!(
                "from docker context `{name}` (currentContext of {})",
                config.display()
            ),
            Source::Default => {
                "the local socket (no DOCKER_HOST, DOCKER_CONTEXT nor current context)".to_string()
            }
        };
        format!("{source}{tls}")
    }

    /// The TLS files as the experiment's `tls` block, to connect again later.
    pub fn tls_block(&self) -> Option<DockerTls> {
        self.tls.as_ref().map(|t| DockerTls {
            ca: t.ca.display().to_string(),
            cert: t.client.as_ref().map(|c| c.0.display().to_string()),
            key: t.client.as_ref().map(|c| c.1.display().to_string()),
        })
    }
}

fn is_tcp(host: &str) -> bool {
    host.starts_with("tcp://") || host.starts_with("https://")
}

/// Decides the endpoint; `host` and `tls` are the experiment's own settings.
pub fn resolve(
    host: Option<&str>,
    tls: Option<&DockerTls>,
    env: &Env<'_>,
) -> Result<Endpoint, String> {
    if let Some(h) = host {
        let tls = match tls {
            Some(t) => Some(files_of_block(t)?),
            None if is_tcp(h) => tls_from_variables(env)?,
            None => None,
        };
        return Ok(Endpoint {
            host: h.to_string(),
            tls,
            source: Source::Experiment,
        });
    }
    if tls.is_some() {
        return Err("target.docker.tls needs target.docker.host: name the tcp:// endpoint the certificates are for".into());
    }
    let given = [
        (env.flags.host.clone(), Source::Flag),
        (env.get("DOCKER_HOST"), Source::DockerHost),
    ];
    if let Some((Some(h), source)) = given.into_iter().find(|(h, _)| h.is_some()) {
        let tls = if is_tcp(&h) {
            tls_from_variables(env)?
        } else {
            None
        };
        return Ok(Endpoint {
            host: h,
            tls,
            source,
        });
    }
    if let Some(name) = env.get("DOCKER_CONTEXT") {
        return from_context(&name, Source::ContextVariable(name.clone()), env);
    }
    let config_dir = env.config_dir();
    if let Ok(dir) = &config_dir {
        let file = dir.join("config.json");
        if let Some(name) = current_context(&file)? {
            let source = Source::CurrentContext {
                name: name.clone(),
                config: file,
            };
            return from_context(&name, source, env);
        }
    }
    Ok(Endpoint {
        host: LOCAL_SOCKET.to_string(),
        tls: None,
        source: Source::Default,
    })
}

/// `DOCKER_TLS_VERIFY` (any non-empty value, as the docker CLI reads it) with the files of
/// `DOCKER_CERT_PATH` (default: the docker CLI's config directory).
/// The flags `--tlsverify`, `--tlscacert`, `--tlscert` and `--tlskey` count as well: each
/// file flag replaces that file of the directory.
fn tls_from_variables(env: &Env<'_>) -> Result<Option<TlsFiles>, String> {
    let f = &env.flags;
    if env.get("DOCKER_TLS_VERIFY").is_none() && !f.verify() {
        if env.get("DOCKER_TLS").is_some() || f.tls {
            return Err("--tls (or DOCKER_TLS) asks for TLS without verifying the daemon's certificate, which faultline does not do: use --tlsverify with --tlscacert (or DOCKER_TLS_VERIFY=1 with the daemon's CA in DOCKER_CERT_PATH/ca.pem)".into());
        }
        return Ok(None);
    }
    if f.tlscert.is_some() != f.tlskey.is_some() {
        return Err(
            "--tlscert and --tlskey go together (the client certificate and its key)".into(),
        );
    }
    if let (Some(ca), true) = (&f.tlscacert, f.tlscert.is_some()) {
        let client = f.tlscert.clone().zip(f.tlskey.clone());
        return Ok(Some(TlsFiles {
            ca: ca.clone(),
            client,
        }));
    }
    let dir = match env.get("DOCKER_CERT_PATH") {
        Some(d) => PathBuf::from(d),
        None => env.config_dir()?,
    };
    let asked = if f.verify() {
        "--tlsverify is given"
    } else {
        "DOCKER_TLS_VERIFY is set"
    };
    let what = format!("{asked}; DOCKER_CERT_PATH {}", dir.display());
    let mut files = match &f.tlscacert {
        // The CA from the flag; the client files from the directory, if there.
        Some(ca) => TlsFiles {
            ca: ca.clone(),
            client: client_in_dir(&dir, &what)?,
        },
        None => files_in_dir(&dir, &what)?,
    };
    if let Some(pair) = f.tlscert.clone().zip(f.tlskey.clone()) {
        files.client = Some(pair);
    }
    Ok(Some(files))
}

/// `ca.pem`, and `cert.pem` with `key.pem` when both are there.
fn files_in_dir(dir: &Path, what: &str) -> Result<TlsFiles, String> {
    let ca = dir.join("ca.pem");
    if !ca.is_file() {
        return Err(format!(
            "{what} has no ca.pem: put the CA that signed the daemon's certificate there"
        ));
    }
    Ok(TlsFiles {
        ca,
        client: client_in_dir(dir, what)?,
    })
}

/// `cert.pem` with `key.pem`, when both are there.
fn client_in_dir(dir: &Path, what: &str) -> Result<Option<(PathBuf, PathBuf)>, String> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    match (cert.is_file(), key.is_file()) {
        (true, true) => Ok(Some((cert, key))),
        (false, false) => Ok(None),
        (true, false) => Err(format!("{what} has cert.pem but no key.pem")),
        (false, true) => Err(format!("{what} has key.pem but no cert.pem")),
    }
}

fn files_of_block(t: &DockerTls) -> Result<TlsFiles, String> {
    let client = match (&t.cert, &t.key) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        _ => {
            return Err(
                "target.docker.tls needs `cert` and `key` together (or neither)".to_string(),
            );
        }
    };
    Ok(TlsFiles {
        ca: PathBuf::from(&t.ca),
        client,
    })
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

/// The `currentContext` of the docker CLI's config.json; `None` without the file, the key,
/// or when it names the `default` context.
fn current_context(file: &Path) -> Result<Option<String>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let config: ConfigFile = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not the docker CLI's config: {e}", file.display()))?;
    Ok(config
        .current_context
        .filter(|c| !c.is_empty() && c != "default"))
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::BTreeMap<String, ContextEndpoint>,
}

#[derive(Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The directory name the docker CLI stores a context under: the SHA-256 of its name.
pub fn context_dir_name(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn from_context(name: &str, source: Source, env: &Env<'_>) -> Result<Endpoint, String> {
    if name == "default" {
        return Ok(Endpoint {
            host: LOCAL_SOCKET.to_string(),
            tls: None,
            source,
        });
    }
    let dir = env.config_dir()?.join("contexts");
    let id = context_dir_name(name);
    let meta_file = dir.join("meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta_file).map_err(|e| {
        format!(
            "docker context `{name}` is not there ({}: {e}): create it with `docker context create {name} --docker host=…`, or pick another with `docker context use`",
            meta_file.display()
        )
    })?;
    let meta: ContextMeta = serde_json::from_str(&text).map_err(|e| {
        format!(
            "docker context `{name}`: {} is not a context's meta.json: {e}",
            meta_file.display()
        )
    })?;
    let endpoint = meta.endpoints.get("docker");
    let host = endpoint
        .and_then(|e| e.host.clone())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            format!(
                "docker context `{name}` names no Docker endpoint ({})",
                meta_file.display()
            )
        })?;
    let tls_dir = dir.join("tls").join(&id).join("docker");
    let tls = if is_tcp(&host) && tls_dir.join("ca.pem").is_file() {
        if endpoint.is_some_and(|e| e.skip_tls_verify) {
            return Err(format!(
                "docker context `{name}` skips verifying the daemon's certificate (SkipTLSVerify), which faultline does not do: recreate it with `--docker host=…,ca=…`"
            ));
        }
        Some(files_in_dir(
            &tls_dir,
            &format!("docker context `{name}`: {}", tls_dir.display()),
        )?)
    } else {
        None
    };
    Ok(Endpoint { host, tls, source })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of<'a>(vars: &'a HashMap<&'a str, String>, home: &Path) -> Env<'a> {
        Env {
            var: Box::new(move |k: &str| vars.get(k).cloned()),
            home: Some(home.to_path_buf()),
            flags: Flags::default(),
        }
    }

    /// Environment variables by name.
    fn env_vars(pairs: &[(&'static str, &str)]) -> HashMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    /// The endpoint these variables and this home give, without experiment settings.
    fn resolved(vars: &HashMap<&str, String>, home: &Path) -> Result<Endpoint, String> {
        resolve(None, None, &env_of(vars, home))
    }

    /// The endpoint these variables give in a home without Docker configuration.
    fn resolved_without_config(vars: &[(&'static str, &str)]) -> Result<Endpoint, String> {
        let home = tempfile::tempdir().unwrap();
        resolved(&env_vars(vars), home.path())
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn certs_in(dir: &Path) {
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            write(&dir.join(f), "pem");
        }
    }

    /// A context laid out as `docker context create NAME --docker host=HOST,ca=…` does.
    fn context(config: &Path, name: &str, host: &str, tls: bool) {
        let id = context_dir_name(name);
        write(
            &config.join("contexts/meta").join(&id).join("meta.json"),
            &format!(
                r#"{{"Name":"{name}","Metadata":{{"Description":""}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
            ),
        );
        if tls {
            certs_in(&config.join("contexts/tls").join(&id).join("docker"));
        }
    }

    #[test]
    fn the_context_directory_is_the_sha256_of_its_name() {
        // `printf remote | sha256sum`, as `docker context create remote` names its directories.
        assert_eq!(
            context_dir_name("remote"),
            "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a"
        );
    }

    #[test]
    fn the_local_socket_when_nothing_says_otherwise() {
        let ep = resolved_without_config(&[]).unwrap();
        assert_eq!(ep.host, LOCAL_SOCKET);
        assert_eq!(ep.source, Source::Default);
        assert!(ep.is_local());
        assert!(ep.why().contains("local socket"));
    }

    #[test]
    fn docker_host_with_tls_verify_takes_the_cert_path_files() {
        let home = tempfile::tempdir().unwrap();
        let certs = home.path().join("certs");
        certs_in(&certs);
        let vars = env_vars(&[
            ("DOCKER_HOST", "tcp://staging:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", &certs.display().to_string()),
        ]);
        let ep = resolved(&vars, home.path()).unwrap();
        assert_eq!(ep.host, "tcp://staging:2376");
        assert_eq!(ep.source, Source::DockerHost);
        let tls = ep.tls.clone().unwrap();
        assert_eq!(tls.ca, certs.join("ca.pem"));
        assert_eq!(
            tls.client,
            Some((certs.join("cert.pem"), certs.join("key.pem")))
        );
        assert!(!ep.is_local());
        assert!(ep.why().contains("DOCKER_HOST"), "{}", ep.why());
    }

    #[test]
    fn the_host_flag_comes_after_the_experiment_and_before_docker_host() {
        let home = tempfile::tempdir().unwrap();
        let vars = env_vars(&[("DOCKER_HOST", "unix:///from/env.sock")]);
        let mut env = env_of(&vars, home.path());
        env.flags.host = Some("unix:///from/flag.sock".into());
        let ep = resolve(None, None, &env).unwrap();
        assert_eq!(ep.host, "unix:///from/flag.sock");
        assert_eq!(ep.source, Source::Flag);
        assert!(ep.why().contains("-H/--host"), "{}", ep.why());
        let ep = resolve(Some("unix:///from/experiment.sock"), None, &env).unwrap();
        assert_eq!(ep.source, Source::Experiment);
    }

    #[test]
    fn tls_flags_name_their_files_and_imply_verification() {
        let home = tempfile::tempdir().unwrap();
        let certs = home.path().join("certs");
        certs_in(&certs);
        let vars = env_vars(&[("DOCKER_CERT_PATH", &certs.display().to_string())]);
        let mut env = env_of(&vars, home.path());
        env.flags.host = Some("tcp://staging:2376".into());
        // No TLS flag, no DOCKER_TLS_VERIFY: plain tcp.
        assert_eq!(resolve(None, None, &env).unwrap().tls, None);
        // --tlsverify: the directory's files.
        env.flags.tlsverify = true;
        let tls = resolve(None, None, &env).unwrap().tls.unwrap();
        assert_eq!(tls.ca, certs.join("ca.pem"));
        assert_eq!(
            tls.client,
            Some((certs.join("cert.pem"), certs.join("key.pem")))
        );
        // Every file named: the directory is not read.
        env.flags = Flags {
            host: Some("tcp://staging:2376".into()),
            tlscacert: Some("/x/ca.pem".into()),
            tlscert: Some("/x/c.pem".into()),
            tlskey: Some("/x/k.pem".into()),
            ..Flags::default()
        };
        let tls = resolve(None, None, &env).unwrap().tls.unwrap();
        assert_eq!(tls.ca, PathBuf::from("/x/ca.pem"));
        assert_eq!(
            tls.client,
            Some((PathBuf::from("/x/c.pem"), PathBuf::from("/x/k.pem")))
        );
        // The CA alone: the client pair from the directory.
        env.flags.tlscert = None;
        env.flags.tlskey = None;
        let tls = resolve(None, None, &env).unwrap().tls.unwrap();
        assert_eq!(tls.ca, PathBuf::from("/x/ca.pem"));
        assert_eq!(tls.client.unwrap().0, certs.join("cert.pem"));
        // A certificate without its key, and TLS without verification, are refused.
        env.flags.tlscert = Some("/x/c.pem".into());
        let e = resolve(None, None, &env).unwrap_err();
        assert!(e.contains("--tlscert and --tlskey"), "{e}");
        env.flags = Flags {
            host: Some("tcp://staging:2376".into()),
            tls: true,
            ..Flags::default()
        };
        let e = resolve(None, None, &env).unwrap_err();
        assert!(e.contains("--tlsverify"), "{e}");
    }

    #[test]
    fn tls_verify_without_a_cert_path_reads_the_config_directory() {
        let home = tempfile::tempdir().unwrap();
        certs_in(&home.path().join(".docker"));
        let vars = env_vars(&[
            ("DOCKER_HOST", "tcp://staging:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
        ]);
        let ep = resolved(&vars, home.path()).unwrap();
        assert_eq!(ep.tls.unwrap().ca, home.path().join(".docker/ca.pem"));
    }

    #[test]
    fn missing_tls_files_are_named() {
        let e = resolved_without_config(&[
            ("DOCKER_HOST", "tcp://staging:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/nonexistent/certs"),
        ])
        .unwrap_err();
        assert!(
            e.contains("/nonexistent/certs") && e.contains("ca.pem"),
            "{e}"
        );
        let e =
            resolved_without_config(&[("DOCKER_HOST", "tcp://staging:2376"), ("DOCKER_TLS", "1")])
                .unwrap_err();
        assert!(e.contains("DOCKER_TLS_VERIFY"), "{e}");
    }

    #[test]
    fn a_unix_docker_host_ignores_tls_variables() {
        let ep = resolved_without_config(&[
            ("DOCKER_HOST", "unix:///run/other.sock"),
            ("DOCKER_TLS_VERIFY", "1"),
        ])
        .unwrap();
        assert_eq!(ep.host, "unix:///run/other.sock");
        assert_eq!(ep.tls, None);
        assert!(ep.is_local());
    }

    #[test]
    fn the_experiment_overrides_everything() {
        let home = tempfile::tempdir().unwrap();
        context(&home.path().join(".docker"), "ctx", "tcp://ctx:2376", false);
        let vars = env_vars(&[("DOCKER_HOST", "tcp://env:2376"), ("DOCKER_CONTEXT", "ctx")]);
        let block = DockerTls {
            ca: "/x/ca.pem".into(),
            cert: Some("/x/cert.pem".into()),
            key: Some("/x/key.pem".into()),
        };
        let ep = resolve(
            Some("tcp://mine:2376"),
            Some(&block),
            &env_of(&vars, home.path()),
        )
        .unwrap();
        assert_eq!(ep.host, "tcp://mine:2376");
        assert_eq!(ep.source, Source::Experiment);
        assert_eq!(ep.tls_block(), Some(block.clone()));
        let half = DockerTls {
            key: None,
            ..block.clone()
        };
        let e = resolve(
            Some("tcp://mine:2376"),
            Some(&half),
            &env_of(&vars, home.path()),
        )
        .unwrap_err();
        assert!(e.contains("`cert` and `key`"), "{e}");
        let e = resolve(None, Some(&block), &env_of(&vars, home.path())).unwrap_err();
        assert!(e.contains("needs target.docker.host"), "{e}");
    }

    #[test]
    fn docker_host_wins_over_contexts() {
        let home = tempfile::tempdir().unwrap();
        context(&home.path().join(".docker"), "ctx", "tcp://ctx:2376", false);
        let vars = env_vars(&[("DOCKER_HOST", "tcp://env:2375"), ("DOCKER_CONTEXT", "ctx")]);
        let ep = resolved(&vars, home.path()).unwrap();
        assert_eq!(ep.host, "tcp://env:2375");
        assert_eq!(ep.tls, None);
    }

    #[test]
    fn docker_context_names_a_context_with_its_tls_files() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("cfg");
        context(&config, "staging", "tcp://staging:2376", true);
        write(&config.join("config.json"), r#"{"currentContext":"other"}"#);
        let vars = env_vars(&[
            ("DOCKER_CONTEXT", "staging"),
            ("DOCKER_CONFIG", &config.display().to_string()),
        ]);
        let ep = resolved(&vars, home.path()).unwrap();
        assert_eq!(ep.host, "tcp://staging:2376");
        assert_eq!(ep.source, Source::ContextVariable("staging".into()));
        let tls_dir = config
            .join("contexts/tls")
            .join(context_dir_name("staging"))
            .join("docker");
        assert_eq!(ep.tls.as_ref().unwrap().ca, tls_dir.join("ca.pem"));
        assert!(ep.why().contains("context `staging`"), "{}", ep.why());
    }

    #[test]
    fn the_current_context_of_config_json_is_followed() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join(".docker");
        context(&config, "lab", "tcp://lab:2375", false);
        write(
            &config.join("config.json"),
            r#"{"auths":{},"currentContext":"lab"}"#,
        );
        let vars = HashMap::new();
        let ep = resolved(&vars, home.path()).unwrap();
        assert_eq!(ep.host, "tcp://lab:2375");
        assert_eq!(ep.tls, None);
        assert!(matches!(ep.source, Source::CurrentContext { ref name, .. } if name == "lab"));
        // `default` is the local socket, as with the docker CLI.
        write(
            &config.join("config.json"),
            r#"{"currentContext":"default"}"#,
        );
        let ep = resolved(&vars, home.path()).unwrap();
        assert_eq!(ep.host, LOCAL_SOCKET);
    }

    #[test]
    fn a_missing_context_is_an_error_that_names_it() {
        let home = tempfile::tempdir().unwrap();
        let vars = env_vars(&[("DOCKER_CONTEXT", "nowhere")]);
        let e = resolved(&vars, home.path()).unwrap_err();
        assert!(
            e.contains("`nowhere`") && e.contains("docker context"),
            "{e}"
        );
    }
}
