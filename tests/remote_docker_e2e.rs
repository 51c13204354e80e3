//! A remote Docker daemon over TLS, end to end: the tests make a CA and server and client
//! certificates with `openssl`, expose the local engine on 127.0.0.1:PORT through a
//! TLS-terminating proxy that verifies clients (stunnel, `verifyChain`/`requireCert`;
//! socat 1.7's OPENSSL-LISTEN with `verify=1` fails every resumed session with "session id
//! context uninitialized", and rustls resumes), and
//! run faults through it with DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, or a
//! docker context in a temporary DOCKER_CONFIG. The effects are measured with the docker
//! CLI on the local socket; the proxy's own log shows the connections went through it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

/// `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `name` in `dir`: `NAME-ca.pem`, `NAME-ca-key.pem`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=faultline test CA {name}"),
            "-keyout",
            &format!("{name}-ca-key.pem"),
            "-out",
            &format!("{name}-ca.pem"),
        ],
    );
}

/// A certificate `OUT.pem` / `OUT-key.pem` signed by CA `ca`, with extensions `ext`.
fn make_cert(dir: &Path, ca: &str, out: &str, cn: &str, ext: &str) {
    std::fs::write(dir.join(format!("{out}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{out}-key.pem"),
            "-out",
            &format!("{out}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{out}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca-key.pem"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{out}.ext"),
            "-out",
            &format!("{out}.pem"),
        ],
    );
}

/// The local engine behind a TLS proxy on 127.0.0.1 that verifies client certificates.
/// Killed (and waited for) on drop, also when the test panics.
struct TlsEngine {
    proxy: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TlsEngine {
    /// `None` (a recorded skip) without the engine, openssl or stunnel.
    fn start() -> Option<TlsEngine> {
        if !require_docker() {
            return None;
        }
        require_program(
            "openssl",
            "openssl",
            "the TLS tests make their certificates",
        )?;
        let stunnel = require_program(
            "stunnel4",
            "stunnel4",
            "the TLS tests expose the engine through a TLS proxy",
        )?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_ca(d, "good");
        make_ca(d, "wrong");
        make_cert(
            d,
            "good",
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        make_cert(
            d,
            "good",
            "client",
            "faultline",
            "extendedKeyUsage=clientAuth\n",
        );
        make_cert(
            d,
            "wrong",
            "stranger",
            "stranger",
            "extendedKeyUsage=clientAuth\n",
        );
        // The docker CLI's layout: ca.pem, cert.pem, key.pem in DOCKER_CERT_PATH.
        for (dir_name, ca, cert) in [
            ("certs", "good-ca", "client"),
            ("wrong-ca", "wrong-ca", "client"),
            ("stranger", "good-ca", "stranger"),
        ] {
            let to = d.join(dir_name);
            std::fs::create_dir_all(&to).unwrap();
            std::fs::copy(d.join(format!("{ca}.pem")), to.join("ca.pem")).unwrap();
            std::fs::copy(d.join(format!("{cert}.pem")), to.join("cert.pem")).unwrap();
            std::fs::copy(d.join(format!("{cert}-key.pem")), to.join("key.pem")).unwrap();
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(d.join("proxy.log")).unwrap();
        let conf = d.join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\nconnect = /var/run/docker.sock\ncert = {}\nkey = {}\nCAfile = {}\nverifyChain = yes\nrequireCert = yes\n",
                d.join("server.pem").display(),
                d.join("server-key.pem").display(),
                d.join("good-ca.pem").display(),
            ),
        )
        .unwrap();
        let proxy = Command::new(stunnel)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("stunnel starts");
        let engine = TlsEngine { proxy, port, dir };
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "the TLS proxy never listened on 127.0.0.1:{port}: {}",
            engine.proxy_log()
        );
        Some(engine)
    }

    /// The engine, and a fleet of one web container (`None`: a recorded skip).
    fn with_web(test: &str) -> Option<(TlsEngine, Fleet, String)> {
        let engine = TlsEngine::start()?;
        let mut fleet = Fleet::new(test);
        let web = fleet.web(&[]);
        Some((engine, fleet, web))
    }

    fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn proxy_log(&self) -> String {
        std::fs::read_to_string(self.path("proxy.log")).unwrap_or_default()
    }

    /// How many TLS connections the proxy accepted.
    fn connections(&self) -> usize {
        self.proxy_log().matches("accepted connection").count()
    }

    /// `run` reaching the engine as a docker CLI user would: DOCKER_HOST with TLS
    /// verification and the certificates in `certs` (a directory of this engine).
    fn env(&self, run: Run, certs: &str) -> Run {
        run.env("DOCKER_HOST", self.host())
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", self.path(certs))
            .env_remove("DOCKER_CONTEXT")
    }

    /// `plan` of `exp` through the engine (DOCKER_HOST with TLS) says every piece.
    fn plan_says(&self, exp: &Experiment, pieces: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let plan = self
            .env(Run::new(["plan"]).arg(exp.write(dir.path())), "certs")
            .output();
        plan.expect(0);
        assert_contains(&plan.stdout, pieces);
    }

    /// `run` reaching the engine through the docker CLI's flags only (`-H`, `--tlsverify`,
    /// `--tlscacert`, `--tlscert`, `--tlskey` with the files of `certs`): no DOCKER_*
    /// variable, and a DOCKER_CONFIG without a context.
    fn flags(&self, run: Run, certs: &str) -> Run {
        let file = |f: &str| self.path(certs).join(f);
        let run = run
            .args(["-H", &self.host(), "--tlsverify"])
            .arg("--tlscacert")
            .arg(file("ca.pem"))
            .arg("--tlscert")
            .arg(file("cert.pem"))
            .arg("--tlskey")
            .arg(file("key.pem"));
        self.without_docker_env(run)
    }

    /// `run` without any DOCKER_* variable, and a DOCKER_CONFIG without a context.
    fn without_docker_env(&self, run: Run) -> Run {
        run.env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.path("no-docker-config"))
    }

    /// Runs a 60 s pause of `web` with `run`, kills the run (without its dead-man's
    /// switch) once the pause holds, and returns its journal with the pause left in it.
    fn leave_a_pause(&self, run: Run, web: &str) -> StateDir {
        let state = run.sigkilled_once("the pause", || paused(web));
        assert!(paused(web), "the killed run left its pause");
        assert_eq!(state.open_entries(), 1);
        state
    }

    /// `recover` thaws `web`, through this engine's TLS proxy.
    fn recover_through(&self, recover: Run, web: &str, state: &StateDir) {
        let before = self.connections();
        recover.state(state).output().expect(0);
        assert!(!paused(web), "recover did not unpause the target");
        assert!(state.is_clean());
        assert!(
            self.connections() > before,
            "recover did not go through the TLS endpoint: {}",
            self.proxy_log()
        );
    }

    /// A docker context named `name` for this engine in a new DOCKER_CONFIG, laid out as
    /// `docker context create NAME --docker host=…,ca=…,cert=…,key=…` and `docker context
    /// use NAME` do, and returned.
    fn context_config(&self, name: &str) -> PathBuf {
        let config = self.path("docker-config");
        let id = sha256_hex(name);
        let meta = config.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{"Description":"faultline test"}},"Endpoints":{{"docker":{{"Host":"{}","SkipTLSVerify":false}}}}}}"#,
                self.host()
            ),
        )
        .unwrap();
        let tls = config.join("contexts/tls").join(&id).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(self.path("certs").join(f), tls.join(f)).unwrap();
        }
        std::fs::write(
            config.join("config.json"),
            format!(r#"{{"auths":{{}},"currentContext":"{name}"}}"#),
        )
        .unwrap();
        config
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// SHA-256 of `text` in hex, by `sha256sum` (the docker CLI names context directories so).
fn sha256_hex(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn pause_through_a_tls_verified_remote_engine() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-pause") else {
        return;
    };
    let exp = fleet.experiment("tls-pause").fault("pause: {duration: 2s}");
    let run = engine
        .env(Run::experiment(&exp), "certs")
        .json_report()
        .spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&web)),
        "the target was never paused through the TLS endpoint"
    );
    let r = run.wait().expect(0).report();
    assert_eq!(r["faults"][0]["type"], "pause");
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(!paused(&web));
    assert!(
        engine.connections() >= 1,
        "the run did not go through the TLS proxy: {}",
        engine.proxy_log()
    );
}

#[test]
fn kill_through_a_tls_verified_remote_engine_uses_the_api() {
    let Some(engine) = TlsEngine::start() else {
        return;
    };
    let mut fleet = Fleet::new("tls-kill");
    let web = fleet.web(&["--restart", "always"]);
    let exp = fleet
        .experiment("tls-kill")
        .fault("kill: {signal: SIGKILL}");
    engine.plan_says(
        &exp,
        &["fault 1 (kill): through the Docker API", "restart policy"],
    );
    let r = engine
        .env(Run::experiment(&exp), "certs")
        .json_report()
        .expect_report(0);
    assert_eq!(r["faults"][0]["type"], "kill");
    assert_eq!(r["faults"][0]["status"], "completed");
    // A remote daemon's containers are killed through its API, which Docker takes for a
    // manual stop: the run says so, and the restart policy indeed does not bring it back.
    let caveat = r["faults"][0]["effects"]["caveat"]
        .as_str()
        .unwrap_or_default();
    assert_contains(caveat, &["Docker API", "remote", "restart policy"]);
    assert_contains(&event_message(&r, "fault_effect"), &["restart policy"]);
    assert!(
        wait_until(Duration::from_secs(10), || !running(&web)),
        "the target still runs after a kill through the TLS endpoint"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(!running(&web), "restarted despite the API kill");
    assert_eq!(inspect(&web, "{{.State.ExitCode}}"), "137", "SIGKILL");
    assert!(engine.connections() >= 1, "{}", engine.proxy_log());
}

#[test]
fn network_through_a_tls_verified_remote_engine_uses_a_sidecar() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-net") else {
        return;
    };
    // No strategy: `auto` must pick the sidecar, since the daemon is remote.
    let exp = fleet
        .experiment("tls-net")
        .fault("network: {rate: 1mbit, duration: 3s}");
    engine.plan_says(&exp, &["fault 1 (network): sidecar"]);
    let run = engine
        .env(Run::with_tc_image(&exp), "certs")
        .json_report()
        .spawn();
    assert!(
        wait_until(Duration::from_secs(15), || qdiscs(&web).contains("tbf")),
        "no tbf qdisc in the target's namespace during the fault: {}",
        qdiscs(&web)
    );
    assert_eq!(helpers(&web), 1, "a sidecar shares the target's namespace");
    let r = run.wait().expect(0).report();
    assert_eq!(r["faults"][0]["type"], "network");
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(!qdiscs(&web).contains("tbf"), "{}", qdiscs(&web));
    assert!(
        wait_until(Duration::from_secs(10), || helpers(&web) == 0),
        "the sidecar is left"
    );
}

#[test]
fn cpu_through_a_tls_verified_remote_engine_uses_exec() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-cpu") else {
        return;
    };
    let id = fleet.id(&web);
    let before = cpu_ns(&id);
    // No strategy: `auto` must pick exec, since the daemon is remote.
    let exp = fleet
        .experiment("tls-cpu")
        .fault("cpu_stress: {workers: 1, load: 80, duration: 3s}");
    engine.plan_says(&exp, &["fault 1 (cpu_stress): exec"]);
    let r = engine
        .env(Run::experiment(&exp), "certs")
        .json_report()
        .expect_report(0);
    let burnt = (cpu_ns(&id) - before) as f64 / 1e9;
    assert_eq!(r["faults"][0]["type"], "cpu_stress");
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(
        burnt > 0.8,
        "the container burnt {burnt:.2} s of CPU during a 3 s stress at 80%"
    );
    let left = docker_ok(&["exec", &web, "ps"]);
    assert!(
        !left.contains("faultline"),
        "a stress loop is left in the container:\n{left}"
    );
}

/// The docker CLI's flags on `plan`, `doctor` and `run`: the endpoint is the flags' own
/// (each command says so), and the pause goes through the TLS proxy.
#[test]
fn the_docker_cli_flags_reach_a_tls_verified_engine() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-flags") else {
        return;
    };
    let exp = fleet.experiment("tls-flags").fault("pause: {duration: 2s}");
    let dir = tempfile::tempdir().unwrap();
    let file = exp.write(dir.path());
    let plan = engine
        .flags(Run::new(["plan"]).arg(&file), "certs")
        .output();
    plan.expect(0);
    assert_contains(&plan.stdout, &[&engine.host(), &web]);
    let doctor = engine
        .flags(Run::new(["doctor"]).arg(&file), "certs")
        .output();
    assert_contains(
        &doctor.stdout,
        &[
            &engine.host(),
            "from the command line (-H/--host)",
            "engine Docker",
        ],
    );
    let before = engine.connections();
    let run = engine
        .flags(Run::experiment(&exp), "certs")
        .json_report()
        .spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&web)),
        "the target was never paused through the flags' endpoint"
    );
    let r = run.wait().expect(0).report();
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(!paused(&web));
    assert!(
        engine.connections() > before,
        "the run did not go through the TLS proxy: {}",
        engine.proxy_log()
    );
    // A certificate without its key, and TLS without verification, stop before anything.
    let half = Run::experiment(&exp)
        .args(["-H", &engine.host(), "--tlscert"])
        .arg(engine.path("certs/cert.pem"))
        .json_report()
        .output();
    half.expect(4);
    assert_contains(&half.stderr, &["--tlscert and --tlskey"]);
    let unverified = Run::experiment(&exp)
        .args(["-H", &engine.host(), "--tls"])
        .env_remove("DOCKER_TLS_VERIFY")
        .output();
    unverified.expect(4);
    assert_contains(&unverified.stderr, &["--tlsverify"]);
    assert!(!paused(&web));
}

/// `recover -H …` reaches the daemon where the flags say, over the endpoint the journal
/// recorded: a pause left on the local socket is thawed through the TLS proxy.
#[test]
fn recover_with_the_host_flag_goes_where_the_flags_say() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-flag-recover") else {
        return;
    };
    let exp = fleet
        .experiment("tls-flag-recover")
        .fault("pause: {duration: 60s}");
    let local = Run::experiment(&exp).env("DOCKER_HOST", "unix:///var/run/docker.sock");
    let state = engine.leave_a_pause(local, &web);
    engine.recover_through(engine.flags(Run::new(["recover"]), "certs"), &web, &state);
}

/// The journal keeps the endpoint and its TLS files: `recover`, in an environment without
/// any DOCKER_* variable, reverts a killed run's pause through the same TLS endpoint.
#[test]
fn recover_reaches_the_tls_endpoint_from_the_journal() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-recover") else {
        return;
    };
    let exp = fleet
        .experiment("tls-recover")
        .fault("pause: {duration: 60s}");
    let state = engine.leave_a_pause(engine.env(Run::experiment(&exp), "certs"), &web);
    let recover = engine.without_docker_env(Run::new(["recover"]));
    engine.recover_through(recover, &web, &state);
}

#[test]
fn a_wrong_ca_exits_4_before_anything_is_touched() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-wrong-ca") else {
        return;
    };
    let exp = fleet
        .experiment("tls-wrong-ca")
        .fault("pause: {duration: 2s}");
    let state = StateDir::new();
    let out = engine
        .env(Run::experiment(&exp), "wrong-ca")
        .state(&state)
        .output();
    out.expect(4);
    let err = &out.stderr;
    assert_contains(
        err,
        &[
            "invalid peer certificate",
            "not trusted by the CA",
            &engine.path("wrong-ca/ca.pem").display().to_string(),
            "DOCKER_HOST",
        ],
    );
    assert!(!paused(&web));
    assert_eq!(state.open_entries(), 0, "nothing was journaled");

    // A client certificate the daemon does not trust: refused, and nothing touched.
    let out = engine
        .env(Run::experiment(&exp), "stranger")
        .state(&state)
        .output();
    out.expect(4);
    assert_contains(&out.stderr, &["refused the TLS connection"]);
    assert!(!paused(&web));
}

#[test]
fn a_docker_context_in_a_temporary_config_is_followed() {
    let Some((engine, fleet, web)) = TlsEngine::with_web("tls-context") else {
        return;
    };
    let config = engine.context_config("tls-lab");
    let exp = fleet
        .experiment("tls-context")
        .fault("pause: {duration: 2s}");
    let with_context = |run: Run| {
        run.env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
    };

    // doctor and plan say which endpoint, why, and what a remote daemon means.
    let dir = tempfile::tempdir().unwrap();
    let file = exp.write(dir.path());
    let doctor = with_context(Run::new(["doctor"]).arg(&file)).output();
    assert_contains(
        &doctor.stdout,
        &[
            &engine.host(),
            "docker context `tls-lab`",
            "currentContext",
            "remote",
        ],
    );
    let plan = with_context(Run::new(["plan"]).arg(&file)).output();
    plan.expect(0);
    assert_contains(
        &plan.stdout,
        &[
            &format!("Endpoint: {}", engine.host()),
            "docker context `tls-lab`",
            "From this host: no",
            "fault 1 (pause): the Docker API's pause",
        ],
    );
    assert!(!paused(&web), "plan touches nothing");

    let before = engine.connections();
    let run = with_context(Run::experiment(&exp)).json_report().spawn();
    assert!(
        wait_until(Duration::from_secs(10), || paused(&web)),
        "the target was never paused through the context's endpoint"
    );
    let r = run.wait().expect(0).report();
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(!paused(&web));
    assert!(
        engine.connections() > before,
        "the run did not go through the context's TLS endpoint: {}",
        engine.proxy_log()
    );
}

/// An sshd on 127.0.0.1 with its own host key, accepting one client key made by the test,
/// and an `ssh` wrapper (first on PATH) that uses the test's client configuration: nothing
/// is written outside the temporary directory. Killed on drop.
struct SshEngine {
    sshd: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SshEngine {
    fn start() -> Option<SshEngine> {
        if !require_docker() {
            return None;
        }
        let sshd = require_program("sshd", "openssh-server", "the ssh:// test runs an sshd")?;
        require_program("ssh", "openssh-client", "the ssh:// test connects with ssh")?;
        if !Path::new("/run/sshd").is_dir() {
            skip(
                Skip::Missing,
                "sshd needs its privilege separation directory /run/sshd (scripts/install-test-deps.sh creates it)",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .output()
                .expect("ssh-keygen runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowStreamLocalForwarding yes\n",
                d.join("host_key").display(),
                d.join("authorized_keys").display(),
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .unwrap();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host 127.0.0.1\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
                d.join("client_key").display(),
                d.join("known_hosts").display(),
            ),
        )
        .unwrap();
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let real_ssh = require_program("ssh", "openssh-client", "")?;
        std::fs::write(
            bin.join("ssh"),
            format!(
                "#!/bin/sh\nexec {} -F {} \"$@\"\n",
                real_ssh.display(),
                d.join("ssh_config").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let engine = SshEngine {
            sshd: child,
            port,
            dir,
        };
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "sshd never listened on 127.0.0.1:{port}: {}",
            engine.log()
        );
        Some(engine)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `run` with DOCKER_HOST=ssh://root@127.0.0.1:PORT and the test's `ssh` first on PATH.
    fn env(&self, run: Run) -> Run {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        run.env("DOCKER_HOST", format!("ssh://root@127.0.0.1:{}", self.port))
            .env("PATH", path)
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CONTEXT")
    }
}

impl Drop for SshEngine {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

/// The directories of faultline's ssh forwards in the temporary directory.
fn forward_dirs() -> std::collections::BTreeSet<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("faultline-ssh-"))
        .collect()
}

#[test]
fn pause_through_docker_host_ssh() {
    let Some(engine) = SshEngine::start() else {
        return;
    };
    let mut fleet = Fleet::new("ssh-pause");
    let web = fleet.web(&[]);
    let exp = fleet.experiment("ssh-pause").fault("pause: {duration: 2s}");
    let before = forward_dirs();
    let run = engine.env(Run::experiment(&exp)).json_report().spawn();
    assert!(
        wait_until(Duration::from_secs(15), || paused(&web)),
        "the target was never paused through ssh: {}",
        engine.log()
    );
    let r = run.wait().expect(0).report();
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert!(!paused(&web));
    assert_contains(&engine.log(), &["Accepted publickey for root"]);
    // The forwarding ssh ended with faultline (its command line names the port).
    let marker = format!("-p\0{}\0127.0.0.1", engine.port);
    assert!(
        wait_until(Duration::from_secs(5), || host_processes(&marker)
            .is_empty()),
        "the forwarding ssh outlived faultline"
    );
    let left: Vec<_> = forward_dirs().difference(&before).cloned().collect();
    assert!(left.is_empty(), "forward directories left: {left:?}");
}

/// `recover -H` does not close an entry it cannot find through the flag's daemon: the run
/// may have used another one. Only a `recover` through the run's own endpoint may say the
/// target is gone.
#[test]
fn recover_through_another_host_keeps_an_entry_it_cannot_find() {
    let Some((fleet, web)) = one_web("flag-elsewhere") else {
        return;
    };
    let exp = fleet
        .experiment("flag-elsewhere")
        .fault("pause: {duration: 60s}");
    let state = Run::experiment(&exp)
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .sigkilled_once("the pause", || paused(&web));
    // The container goes; the entry is for a target no daemon has now.
    docker_ok(&["rm", "-f", &web]);
    // The same daemon by another path, as a different daemon would look to faultline.
    let out = Run::new(["recover", "-H", "unix:///run/docker.sock"])
        .state(&state)
        .output();
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert_contains(
        &format!("{}{}", out.stdout, out.stderr),
        &[
            "not found through -H unix:///run/docker.sock",
            "the entry stays open",
        ],
    );
    assert_eq!(state.open_entries(), 1, "the entry was closed unreverted");
    // Through the run's own endpoint the target is known to be gone: closed.
    Run::new(["recover"])
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .state(&state)
        .output()
        .expect(0);
    assert!(state.is_clean());
}
