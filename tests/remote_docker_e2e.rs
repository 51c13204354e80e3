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
    must_succeed(Command::new("openssl").args(args).current_dir(dir));
}

/// A program of the test listening on 127.0.0.1:PORT, with its files (its log among them)
/// in a temporary directory. Killed (and waited for) on drop, also when the test panics.
struct Daemon {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// The name of its log (its stderr) in `dir`.
    log: &'static str,
}

impl Daemon {
    /// Starts `cmd CONFIG`, CONFIG being the file `config` writes into `dir` for a free
    /// port, with its stderr in `dir/LOG`, and waits (10 s at most) until it listens on
    /// that port; `what` names it when it does not.
    fn start(
        mut cmd: Command,
        dir: tempfile::TempDir,
        config: impl FnOnce(&Path, u16) -> PathBuf,
        log: &'static str,
        what: &str,
    ) -> Daemon {
        let port = free_port();
        cmd.arg(config(dir.path(), port));
        let file = std::fs::File::create(dir.path().join(log)).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        let daemon = Daemon {
            child,
            port,
            dir,
            log,
        };
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "{what} never listened on 127.0.0.1:{port}: {}",
            daemon.log()
        );
        daemon
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path(self.log)).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
struct TlsEngine {
    proxy: Daemon,
}

impl TlsEngine {
    /// `None` (a recorded skip) without the engine, openssl or stunnel.
    fn start() -> Option<TlsEngine> {
        let [_, stunnel] = docker_and([
            (
                "openssl",
                "openssl",
                "the TLS tests make their certificates",
            ),
            (
                "stunnel4",
                "stunnel4",
                "the TLS tests expose the engine through a TLS proxy",
            ),
        ])?;
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
        let config = |d: &Path, port| {
            let tmp = d.display();
            write(
                d,
                "stunnel.conf",
                &format!(
                    "foreground = yes\npid =\n[docker]\naccept = 127.0.0.1:{port}\nconnect = /var/run/docker.sock\ncert = {tmp}/server.pem\nkey = {tmp}/server-key.pem\nCAfile = {tmp}/good-ca.pem\nverifyChain = yes\nrequireCert = yes\n"
                ),
            )
        };
        Some(TlsEngine {
            proxy: Daemon::start(
                Command::new(stunnel),
                dir,
                config,
                "proxy.log",
                "the TLS proxy",
            ),
        })
    }

    fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.proxy.port)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.proxy.path(rel)
    }

    fn proxy_log(&self) -> String {
        self.proxy.log()
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

    /// Runs `run`, a short pause of `web` reaching the engine through `endpoint` (named in
    /// the messages): the target is paused while it runs and thawed after, and the run went
    /// through this engine's TLS proxy.
    fn pause_through(&self, run: Run, web: &str, endpoint: &str) {
        let before = self.connections();
        let run = run.json_report().spawn();
        assert!(
            wait_until(Duration::from_secs(10), || paused(web)),
            "the target was never paused through {endpoint}"
        );
        let r = run.wait().expect(0).report();
        assert_first_fault(&r, "pause", "reverted");
        assert!(!paused(web));
        assert!(
            self.connections() > before,
            "the run did not go through {endpoint}'s TLS proxy: {}",
            self.proxy_log()
        );
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

/// What most TLS tests work with: the engine, one web container of a fleet, and an
/// experiment on it.
struct TlsLab {
    engine: TlsEngine,
    fleet: Fleet,
    web: String,
    exp: Experiment,
}

impl TlsLab {
    /// The lab of `test`, its experiment (named `test`) with `fault` (`None`: a recorded
    /// skip).
    fn new(test: &str, fault: &str) -> Option<TlsLab> {
        let engine = TlsEngine::start()?;
        let mut fleet = Fleet::new(test);
        let web = fleet.web(&[]);
        let exp = fleet.experiment(test).fault(fault);
        Some(TlsLab {
            engine,
            fleet,
            web,
            exp,
        })
    }

    /// `run` of the experiment through the engine with the certificates in `certs`
    /// (DOCKER_HOST with TLS verification).
    fn run(&self, certs: &str) -> Run {
        self.engine.env(Run::experiment(&self.exp), certs)
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
    let Some(lab) = TlsLab::new("tls-pause", "pause: {duration: 2s}") else {
        return;
    };
    lab.engine
        .pause_through(lab.run("certs"), &lab.web, "the TLS endpoint");
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
    assert_first_fault(&r, "kill", "completed");
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
    let Some(lab) = TlsLab::new("tls-net", "network: {rate: 1mbit, duration: 3s}") else {
        return;
    };
    // No strategy: `auto` must pick the sidecar, since the daemon is remote.
    lab.engine
        .plan_says(&lab.exp, &["fault 1 (network): sidecar"]);
    let run = lab
        .engine
        .env(Run::with_tc_image(&lab.exp), "certs")
        .json_report()
        .spawn();
    assert!(
        wait_until(Duration::from_secs(15), || qdiscs(&lab.web).contains("tbf")),
        "no tbf qdisc in the target's namespace during the fault: {}",
        qdiscs(&lab.web)
    );
    assert_eq!(
        helpers(&lab.web),
        1,
        "a sidecar shares the target's namespace"
    );
    let r = run.wait().expect(0).report();
    assert_first_fault(&r, "network", "reverted");
    assert!(!qdiscs(&lab.web).contains("tbf"), "{}", qdiscs(&lab.web));
    assert!(
        wait_until(Duration::from_secs(10), || helpers(&lab.web) == 0),
        "the sidecar is left"
    );
}

#[test]
fn cpu_through_a_tls_verified_remote_engine_uses_exec() {
    let Some(lab) = TlsLab::new(
        "tls-cpu",
        "cpu_stress: {workers: 1, load: 80, duration: 3s}",
    ) else {
        return;
    };
    let id = lab.fleet.id(&lab.web);
    let before = cpu_ns(&id);
    // No strategy: `auto` must pick exec, since the daemon is remote.
    lab.engine
        .plan_says(&lab.exp, &["fault 1 (cpu_stress): exec"]);
    let r = lab.run("certs").json_report().expect_report(0);
    let burnt = (cpu_ns(&id) - before) as f64 / 1e9;
    assert_first_fault(&r, "cpu_stress", "reverted");
    assert!(
        burnt > 0.8,
        "the container burnt {burnt:.2} s of CPU during a 3 s stress at 80%"
    );
    let left = docker_ok(&["exec", &lab.web, "ps"]);
    assert!(
        !left.contains("faultline"),
        "a stress loop is left in the container:\n{left}"
    );
}

/// The docker CLI's flags on `plan`, `doctor` and `run`: the endpoint is the flags' own
/// (each command says so), and the pause goes through the TLS proxy.
#[test]
fn the_docker_cli_flags_reach_a_tls_verified_engine() {
    let Some(lab) = TlsLab::new("tls-flags", "pause: {duration: 2s}") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = lab.exp.write(dir.path());
    let plan = lab
        .engine
        .flags(Run::new(["plan"]).arg(&file), "certs")
        .output();
    plan.expect(0);
    assert_contains(&plan.stdout, &[&lab.engine.host(), &lab.web]);
    let doctor = lab
        .engine
        .flags(Run::new(["doctor"]).arg(&file), "certs")
        .output();
    assert_contains(
        &doctor.stdout,
        &[
            &lab.engine.host(),
            "from the command line (-H/--host)",
            "engine Docker",
        ],
    );
    let run = lab.engine.flags(Run::experiment(&lab.exp), "certs");
    lab.engine
        .pause_through(run, &lab.web, "the flags' endpoint");
    // A certificate without its key, and TLS without verification, stop before anything.
    let half = Run::experiment(&lab.exp)
        .args(["-H", &lab.engine.host(), "--tlscert"])
        .arg(lab.engine.path("certs/cert.pem"))
        .json_report()
        .output();
    half.expect(4);
    assert_contains(&half.stderr, &["--tlscert and --tlskey"]);
    let unverified = Run::experiment(&lab.exp)
        .args(["-H", &lab.engine.host(), "--tls"])
        .env_remove("DOCKER_TLS_VERIFY")
        .output();
    unverified.expect(4);
    assert_contains(&unverified.stderr, &["--tlsverify"]);
    assert!(!paused(&lab.web));
}

/// `recover -H …` reaches the daemon where the flags say, over the endpoint the journal
/// recorded: a pause left on the local socket is thawed through the TLS proxy.
#[test]
fn recover_with_the_host_flag_goes_where_the_flags_say() {
    let Some(lab) = TlsLab::new("tls-flag-recover", "pause: {duration: 60s}") else {
        return;
    };
    let local = Run::experiment(&lab.exp).env("DOCKER_HOST", "unix:///var/run/docker.sock");
    let state = lab.engine.leave_a_pause(local, &lab.web);
    lab.engine.recover_through(
        lab.engine.flags(Run::new(["recover"]), "certs"),
        &lab.web,
        &state,
    );
}

/// The journal keeps the endpoint and its TLS files: `recover`, in an environment without
/// any DOCKER_* variable, reverts a killed run's pause through the same TLS endpoint.
#[test]
fn recover_reaches_the_tls_endpoint_from_the_journal() {
    let Some(lab) = TlsLab::new("tls-recover", "pause: {duration: 60s}") else {
        return;
    };
    let state = lab.engine.leave_a_pause(lab.run("certs"), &lab.web);
    let recover = lab.engine.without_docker_env(Run::new(["recover"]));
    lab.engine.recover_through(recover, &lab.web, &state);
}

#[test]
fn a_wrong_ca_exits_4_before_anything_is_touched() {
    let Some(lab) = TlsLab::new("tls-wrong-ca", "pause: {duration: 2s}") else {
        return;
    };
    let state = StateDir::new();
    // Exit 4, and nothing paused.
    let refused = |certs: &str| {
        let out = lab.run(certs).state(&state).output();
        out.expect(4);
        assert!(!paused(&lab.web));
        out.stderr
    };
    assert_contains(
        &refused("wrong-ca"),
        &[
            "invalid peer certificate",
            "not trusted by the CA",
            &lab.engine.path("wrong-ca/ca.pem").display().to_string(),
            "DOCKER_HOST",
        ],
    );
    assert_eq!(state.open_entries(), 0, "nothing was journaled");

    // A client certificate the daemon does not trust: refused, and nothing touched.
    assert_contains(&refused("stranger"), &["refused the TLS connection"]);
}

#[test]
fn a_docker_context_in_a_temporary_config_is_followed() {
    let Some(lab) = TlsLab::new("tls-context", "pause: {duration: 2s}") else {
        return;
    };
    let config = lab.engine.context_config("tls-lab");
    let with_context = |run: Run| {
        run.env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
    };

    // doctor and plan say which endpoint, why, and what a remote daemon means.
    let dir = tempfile::tempdir().unwrap();
    let file = lab.exp.write(dir.path());
    let doctor = with_context(Run::new(["doctor"]).arg(&file)).output();
    assert_contains(
        &doctor.stdout,
        &[
            &lab.engine.host(),
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
            &format!("Endpoint: {}", lab.engine.host()),
            "docker context `tls-lab`",
            "From this host: no",
            "fault 1 (pause): the Docker API's pause",
        ],
    );
    assert!(!paused(&lab.web), "plan touches nothing");

    let run = with_context(Run::experiment(&lab.exp));
    lab.engine
        .pause_through(run, &lab.web, "the context's endpoint");
}

/// An sshd on 127.0.0.1 with its own host key, accepting one client key made by the test,
/// and an `ssh` wrapper (first on PATH) that uses the test's client configuration: nothing
/// is written outside the temporary directory. Killed on drop.
struct SshEngine {
    sshd: Daemon,
}

impl SshEngine {
    fn start() -> Option<SshEngine> {
        let [sshd, real_ssh] = docker_and([
            ("sshd", "openssh-server", "the ssh:// test runs an sshd"),
            ("ssh", "openssh-client", "the ssh:// test connects with ssh"),
        ])?;
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
            must_succeed(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key)),
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let tmp = d.display();
        let ssh_config = write(
            d,
            "ssh_config",
            &format!(
                "Host 127.0.0.1\n  IdentityFile {tmp}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {tmp}/known_hosts\n  StrictHostKeyChecking yes\n"
            ),
        );
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let wrapper = write(
            &bin,
            "ssh",
            &format!(
                "#!/bin/sh\nexec {} -F {} \"$@\"\n",
                real_ssh.display(),
                ssh_config.display()
            ),
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = |d: &Path, port| {
            let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
            write(d, "known_hosts", &format!("[127.0.0.1]:{port} {host_pub}"));
            let tmp = d.display();
            write(
                d,
                "sshd_config",
                &format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp}/host_key\nAuthorizedKeysFile {tmp}/authorized_keys\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowStreamLocalForwarding yes\n"
                ),
            )
        };
        let mut sshd = Command::new(sshd);
        sshd.args(["-D", "-e", "-f"]);
        Some(SshEngine {
            sshd: Daemon::start(sshd, dir, config, "sshd.log", "sshd"),
        })
    }

    fn log(&self) -> String {
        self.sshd.log()
    }

    fn port(&self) -> u16 {
        self.sshd.port
    }

    /// `run` with DOCKER_HOST=ssh://root@127.0.0.1:PORT and the test's `ssh` first on PATH.
    fn env(&self, run: Run) -> Run {
        let path = format!(
            "{}:{}",
            self.sshd.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        run.env(
            "DOCKER_HOST",
            format!("ssh://root@127.0.0.1:{}", self.port()),
        )
        .env("PATH", path)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CONTEXT")
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
    let marker = format!("-p\0{}\0127.0.0.1", engine.port());
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
    let Some((_fleet, web, exp)) = one_web_with("flag-elsewhere", "pause: {duration: 60s}") else {
        return;
    };
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
