//! Podman, end to end: each test starts Podman's Docker-compatible API service on a socket
//! of its own (`podman system service --time=0 unix://…`, rootful here), loads the locally
//! built test images into Podman's storage from Docker (`docker save | podman load`), runs
//! containers there, and drives faultline at the socket with `target.docker.host`. The
//! effects are measured with Podman's own CLI (`podman inspect`), the host's `tc` in the
//! target's network namespace and the container's cgroup counters. Everything a test made —
//! containers, the images it loaded, the service and its socket — is removed, and checked
//! gone, at the end.
//!
//! This sandbox's hard file limit is below Podman's default (1048576), so every container
//! here runs with `--ulimit nofile=20000:20000 --ulimit nproc=20000:20000`; faultline's
//! own helpers take the target's limits.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use support::*;

/// Podman's storage is shared by every service on the machine: the tests load and remove
/// images there, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The limits every container of these tests runs with (see the module's comment).
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=20000:20000",
];

/// The `podman` program, or a recorded skip.
fn require_podman() -> Option<PathBuf> {
    require_program(
        "podman",
        "podman",
        "the Podman tests drive Podman's Docker-compatible API service",
    )
}

/// Podman's API service on a socket of this test, and what the test put into Podman.
struct Podman {
    service: Option<Child>,
    dir: tempfile::TempDir,
    /// The label on every container of this test (`fltest.podman=GROUP`).
    group: String,
    /// Images this test loaded (removed at the end); images that were there before stay.
    loaded: Vec<String>,
    _serial: MutexGuard<'static, ()>,
}

impl Podman {
    /// `None` (a recorded skip) without Docker (the images come from it) or Podman.
    fn start(test: &str) -> Option<Podman> {
        if !require_docker() {
            return None;
        }
        require_podman()?;
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("podman.sock");
        let log = std::fs::File::create(dir.path().join("service.log")).unwrap();
        let service = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("podman runs");
        let mut podman = Podman {
            service: Some(service),
            dir,
            group: format!("{test}-{}", std::process::id()),
            loaded: Vec::new(),
            _serial: serial,
        };
        assert!(
            wait_until(Duration::from_secs(20), || podman
                .podman(&["version"])
                .status
                .success()),
            "Podman's API service did not answer on {}: {}",
            socket.display(),
            podman.log()
        );
        for image in [IMAGE, TC_IMAGE] {
            let local = format!("localhost/{image}");
            if podman.podman(&["image", "exists", &local]).status.success() {
                continue;
            }
            let load = format!("docker save {image} | podman --url {} load", podman.host());
            must_succeed(Command::new("sh").args(["-c", &load]));
            podman.loaded.push(local);
        }
        Some(podman)
    }

    /// The service, and one web container in it (`None`: a recorded skip).
    fn with_web(test: &str) -> Option<(Podman, String)> {
        let podman = Podman::start(test)?;
        let web = podman.web(1);
        Some((podman, web))
    }

    /// `unix:///…/podman.sock`, as `target.docker.host` or DOCKER_HOST take it.
    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// `podman --url SOCKET ARGS`: Podman's own CLI, through this test's service.
    fn podman(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("podman runs")
    }

    fn podman_ok(&self, args: &[&str]) -> String {
        let out = must_succeed(&mut self.command(args));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--url").arg(self.host()).args(args);
        cmd
    }

    /// A busybox web server in Podman, labelled with this test's group; returns its name.
    fn web(&self, n: usize) -> String {
        let name = format!("fl-{}-web{n}", self.group);
        let group = format!("fltest.podman={}", self.group);
        let test = format!("{TEST_LABEL}=true");
        let mut args = vec!["run", "-d", "--name", &name, "--label", &group];
        args.extend(["--label", &test]);
        args.extend(ULIMITS);
        args.extend([IMAGE, "httpd", "-f", "-p", "8080"]);
        self.podman_ok(&args);
        name
    }

    /// An experiment on this test's Podman containers, through its socket.
    fn experiment(&self, name: &str) -> Experiment {
        Experiment::new(name)
            .docker(&format!("host: \"{}\"", self.host()))
            .on_label("fltest.podman", &self.group)
    }

    /// An experiment over two hosts, the local Docker engine and this service
    /// (`target.docker.hosts`), targeting this test's label `fltest.podman=GROUP`.
    fn with_docker_experiment(&self, name: &str) -> Experiment {
        Experiment::new(name)
            .docker(&format!(
                "hosts: [{{host: \"{DOCKER_SOCKET}\"}}, {{host: \"{}\"}}]",
                self.host()
            ))
            .on_label("fltest.podman", &self.group)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.podman_ok(&["inspect", "-f", format, name])
    }

    fn paused(&self, name: &str) -> bool {
        self.inspect(name, "{{.State.Status}}") == "paused"
    }

    fn pid(&self, name: &str) -> String {
        self.inspect(name, "{{.State.Pid}}")
    }

    /// The qdiscs in the container's network namespace, listed by the host's `tc`.
    fn qdiscs(&self, name: &str) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid(name), "-n", "tc", "qdisc", "show"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// faultline's helper containers sharing `name`'s namespace.
    fn helpers(&self, name: &str) -> usize {
        let id = self.inspect(name, "{{.Id}}");
        let filter = format!("label=faultline.target={id}");
        self.podman_ok(&["ps", "-aq", "--filter", &filter])
            .lines()
            .count()
    }

    /// The container's CPU time in nanoseconds, from its own cgroup (v1 cpuacct, or v2
    /// cpu.stat), found through its init process.
    fn cpu_ns(&self, name: &str) -> u64 {
        let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid(name))).unwrap();
        for line in cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (_, controllers, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
            if controllers.split(',').any(|c| c == "cpuacct") {
                for mount in ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"] {
                    let file = format!("/sys/fs/cgroup/{mount}{path}/cpuacct.usage");
                    if let Ok(v) = std::fs::read_to_string(file) {
                        return v.trim().parse().unwrap();
                    }
                }
            }
            if controllers.is_empty() {
                if let Ok(s) = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cpu.stat")) {
                    return cpu_stat_ns(&s);
                }
            }
        }
        panic!("no CPU accounting found for {name}:\n{cgroup}");
    }

    /// Removes this test's containers and the images it loaded, stops the service, and
    /// checks that nothing is left: no container, helper or pod, no loaded image, no
    /// service process, no socket.
    fn finish(mut self) {
        self.clean();
        let left = Command::new("podman")
            .args(["ps", "-a", "--format", "{{.Names}} {{.Labels}}"])
            .output()
            .unwrap();
        let left = String::from_utf8_lossy(&left.stdout);
        assert!(
            !left.contains(&self.group) && !left.contains("faultline.helper"),
            "containers left in Podman:\n{left}"
        );
        let pods = Command::new("podman")
            .args(["pod", "ls", "-q"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&pods.stdout).trim().is_empty(),
            "pods left"
        );
        for image in &self.loaded {
            let exists = Command::new("podman")
                .args(["image", "exists", image])
                .status()
                .unwrap();
            assert!(!exists.success(), "the loaded image {image} is left");
        }
        assert!(!self.socket().exists(), "the service's socket is left");
    }

    fn clean(&mut self) {
        if self.service.is_some() {
            let filter = format!("label=fltest.podman={}", self.group);
            let ids =
                String::from_utf8_lossy(&self.podman(&["ps", "-aq", "--filter", &filter]).stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-t", "0"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.podman(&args);
            }
            for image in std::mem::take(&mut self.loaded) {
                let _ = self.podman(&["rmi", "-f", &image]);
                self.loaded.push(image);
            }
        }
        if let Some(mut service) = self.service.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(service.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let ended = wait_until(Duration::from_secs(10), || {
                matches!(service.try_wait(), Ok(Some(_)))
            });
            if !ended {
                let _ = service.kill();
            }
            let _ = service.wait();
            let _ = std::fs::remove_file(self.socket());
        }
    }
}

/// `check` with this test's Podman service, one web container in it and an experiment
/// `test` on that container (for the test's fault); then the service is stopped and
/// checked clean. A recorded skip without Docker or Podman.
fn on_podman(test: &str, check: impl FnOnce(&Podman, &str, Experiment)) {
    let Some((podman, web)) = Podman::with_web(test) else {
        return;
    };
    check(&podman, &web, podman.experiment(test));
    podman.finish();
}

/// `check` with one web container on each of two hosts, this test's Podman service
/// (`pweb`) and the local Docker engine (`dweb`, with the same `fltest.podman` label), and
/// an experiment `test` over both; then the Docker container is removed, and the service
/// stopped and checked clean.
fn on_podman_and_docker(test: &str, check: impl FnOnce(&Podman, &str, &str, Experiment)) {
    let Some((podman, pweb)) = Podman::with_web(test) else {
        return;
    };
    let mut fleet = Fleet::new(test);
    let same = format!("fltest.podman={}", podman.group);
    let dweb = fleet.web(&["--label", &same]);
    check(&podman, &pweb, &dweb, podman.with_docker_experiment(test));
    drop(fleet);
    podman.finish();
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.clean();
    }
}

#[test]
fn doctor_says_the_engine_is_podman_and_what_works_there() {
    let Some(podman) = Podman::start("pm-doctor") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exp = podman
        .experiment("pm-doctor")
        .fault("pause: {duration: 1s}");
    let out = Run::new(["doctor"]).arg(exp.write(dir.path())).output();
    assert_contains(
        &out.stdout,
        &[
            &podman.host(),
            "engine Podman",
            "API 1.",
            "every Docker fault works",
        ],
    );
    podman.finish();
}

#[test]
fn pause_on_podman() {
    on_podman("pm-pause", |podman, web, exp| {
        let run = Run::experiment(&exp.fault("pause: {duration: 2s}"))
            .json_report()
            .spawn_until("the pause in Podman", || podman.paused(web));
        let r = run.wait().expect(0).report();
        assert_first_fault(&r, "pause", "reverted");
        assert_eq!(podman.inspect(web, "{{.State.Status}}"), "running");
    });
}

#[test]
fn kill_on_podman() {
    on_podman("pm-kill", |podman, web, exp| {
        let r = Run::experiment(&exp.fault("kill: {signal: SIGKILL}"))
            .json_report()
            .expect_report(0);
        assert_first_fault(&r, "kill", "completed");
        assert!(
            wait_until(Duration::from_secs(10), || podman
                .inspect(web, "{{.State.Status}}")
                == "exited"),
            "Podman still shows the target running"
        );
        assert_eq!(podman.inspect(web, "{{.State.ExitCode}}"), "137", "SIGKILL");
    });
}

/// The sidecar is a Podman container in the target's namespace, created with the target's
/// limits (Podman's default would not start here); the host's `tc` sees its qdisc.
#[test]
fn network_on_podman_through_a_sidecar() {
    on_podman("pm-net", |podman, web, exp| {
        let run = Run::with_tc_image(
            &exp.fault("network: {rate: 1mbit, duration: 3s, strategy: sidecar}"),
        )
        .json_report()
        .spawn_until("a tbf qdisc in the target's namespace", || {
            podman.qdiscs(web).contains("tbf")
        });
        assert_eq!(podman.helpers(web), 1, "one sidecar shares the namespace");
        let r = run.wait().expect(0).report();
        assert_first_fault(&r, "network", "reverted");
        assert!(
            !podman.qdiscs(web).contains("tbf"),
            "{}",
            podman.qdiscs(web)
        );
        assert!(
            wait_until(Duration::from_secs(10), || podman.helpers(web) == 0),
            "the sidecar is left"
        );
    });
}

#[test]
fn cpu_stress_on_podman_is_charged_to_the_container() {
    on_podman("pm-cpu", |podman, web, exp| {
        let before = podman.cpu_ns(web);
        let r = Run::experiment(
            &exp.fault("cpu_stress: {workers: 1, load: 80, duration: 3s, strategy: exec}"),
        )
        .json_report()
        .expect_report(0);
        let burnt = (podman.cpu_ns(web) - before) as f64 / 1e9;
        assert_first_fault(&r, "cpu_stress", "reverted");
        assert!(
            burnt > 0.8,
            "the container burnt {burnt:.2} s of CPU during a 3 s stress at 80%"
        );
        let left = podman.podman_ok(&["exec", web, "ps"]);
        assert!(
            !left.contains("faultline"),
            "a stress loop is left in the container:\n{left}"
        );
    });
}

/// The local Docker engine, named as a fleet host (DOCKER_HOST does not matter then).
const DOCKER_SOCKET: &str = "unix:///var/run/docker.sock";

/// Docker and Podman as two hosts of one experiment: `count: 2` over the union takes one
/// container on each, each is paused by its own engine (as that engine's CLI shows) and
/// thawed there, and every report names both hosts.
#[test]
fn a_fleet_of_docker_and_podman_pauses_one_container_on_each() {
    on_podman_and_docker("pm-fleet", |podman, pweb, dweb, exp| {
        let exp = exp
            .select("{mode: count, value: 2}")
            .fault("pause: {duration: 3s}");
        let reports = tempfile::tempdir().unwrap();
        let file = |f: &str| reports.path().join(f).display().to_string();
        let run = Run::experiment(&exp)
            .json_report()
            .args(["--report", "table"])
            .args(["--report", &format!("markdown:{}", file("r.md"))])
            .args(["--report", &format!("junit:{}", file("r.xml"))])
            .args(["--report", &format!("html:{}", file("r.html"))])
            .spawn_until("a pause on each engine", || {
                paused(dweb) && podman.paused(pweb)
            });
        let out = run.wait();
        out.expect(0);
        let r = out.report();
        let names: Vec<String> = r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.contains(&format!("{dweb}@{DOCKER_SOCKET}")),
            "{names:?}"
        );
        assert!(
            names.contains(&format!("{pweb}@{}", podman.host())),
            "{names:?}"
        );
        for f in r["faults"].as_array().unwrap() {
            assert_eq!(f["status"], "reverted", "{f}");
        }
        // Every report format names both hosts.
        assert_contains(&out.stdout, &[DOCKER_SOCKET, &podman.host()]);
        for f in ["r.md", "r.xml", "r.html"] {
            let text = std::fs::read_to_string(file(f)).unwrap();
            assert_contains(&text, &[DOCKER_SOCKET, &podman.host()]);
        }
        assert!(!paused(dweb), "Docker's container is still paused");
        assert_eq!(podman.inspect(pweb, "{{.State.Status}}"), "running");
    });
}

/// The journal keeps each entry's host: a killed fleet run leaves one pause on each
/// engine, and `recover` thaws each on its own.
#[test]
fn recover_reaches_each_fleet_host_from_the_journal() {
    on_podman_and_docker("pm-fleet-rec", |podman, pweb, dweb, exp| {
        let exp = exp.select("{mode: all}").fault("pause: {duration: 60s}");
        let state = Run::experiment(&exp)
            .sigkilled_once("both paused", || paused(dweb) && podman.paused(pweb));
        assert_eq!(state.open_entries(), 2);
        Run::new(["recover"]).state(&state).output().expect(0);
        assert!(!paused(dweb), "recover did not thaw Docker's container");
        assert!(
            !podman.paused(pweb),
            "recover did not thaw Podman's container"
        );
        assert!(state.is_clean());
    });
}

/// A fleet host that does not answer stops the run before anything is injected (exit 3,
/// naming it); with `min_hosts: 1` it is skipped and the report says so.
#[test]
fn an_unreachable_fleet_host_stops_the_run_unless_min_hosts_allows_it() {
    let Some((fleet, web)) = one_web("fleet-gone") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let gone = format!("unix://{}/no-engine.sock", scratch.path().display());
    let exp = Experiment::new("fleet-gone")
        .docker(&format!(
            "hosts: [{{host: \"{DOCKER_SOCKET}\"}}, {{host: \"{gone}\"}}]"
        ))
        .on(&fleet)
        .fault("pause: {duration: 1s}");
    // doctor checks every host of the fleet.
    let dir = tempfile::tempdir().unwrap();
    let doctor = Run::new(["doctor"]).arg(exp.write(dir.path())).output();
    assert_contains(
        &doctor.stdout,
        &["engine Docker", &gone, "cannot reach Docker"],
    );
    let out = Run::experiment(&exp).json_report().output();
    out.expect(3);
    let r = out.report();
    assert_eq!(r["verdict"], "no_targets");
    assert_contains(&r.to_string(), &[&gone, "unreachable"]);
    assert!(!paused(&web));
    let allowed = Experiment::new("fleet-gone-ok")
        .docker(&format!(
            "hosts: [{{host: \"{DOCKER_SOCKET}\"}}, {{host: \"{gone}\"}}], min_hosts: 1"
        ))
        .on(&fleet)
        .fault("pause: {duration: 1s}");
    let r = Run::experiment(&allowed).json_report().expect_report(0);
    assert_eq!(r["faults"][0]["status"], "reverted");
    assert_eq!(
        r["targets"][0]["name"],
        format!("{web}@{DOCKER_SOCKET}").as_str()
    );
    let skipped = r["selection"]["skipped"].to_string();
    assert_contains(&skipped, &[&gone, "skipped (min_hosts 1)"]);
}

/// Podman's API service run rootless, as the user `nobody` (`setpriv`), on a socket in a
/// directory of its own; stopped, with the user namespace's pause process, on drop.
struct RootlessPodman {
    service: Child,
    dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl RootlessPodman {
    const NOBODY: u32 = 65534;

    fn start() -> Option<RootlessPodman> {
        require_podman()?;
        require_program(
            "setpriv",
            "util-linux",
            "the rootless service runs as nobody",
        )?;
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let nobody = Some(nix::unistd::Uid::from_raw(Self::NOBODY));
        let group = Some(nix::unistd::Gid::from_raw(Self::NOBODY));
        for d in [dir.path(), &run] {
            nix::unistd::chown(d, nobody, group).unwrap();
        }
        let log = std::fs::File::create(dir.path().join("service.log")).unwrap();
        let service = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "env",
                "-i",
            ])
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg(format!("HOME={}", dir.path().display()))
            .arg(format!("XDG_RUNTIME_DIR={}", run.display()))
            .args(["podman", "system", "service", "--time=0"])
            .arg(format!("unix://{}/podman.sock", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("setpriv runs");
        let podman = RootlessPodman {
            service,
            dir,
            _serial: serial,
        };
        let socket = podman.dir.path().join("podman.sock");
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            }),
            "the rootless service did not listen: {}",
            std::fs::read_to_string(podman.dir.path().join("service.log")).unwrap_or_default()
        );
        Some(podman)
    }

    fn host(&self) -> String {
        format!("unix://{}/podman.sock", self.dir.path().display())
    }
}

impl Drop for RootlessPodman {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.service.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        if !wait_until(Duration::from_secs(10), || {
            matches!(self.service.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.service.kill();
        }
        let _ = self.service.wait();
        // The service re-executes itself inside the user namespace, and the process that
        // holds that namespace outlives it: both are ended by their own pids (the
        // service's names this test's socket; the other's pid is in pause.pid).
        let mut left = processes_naming(&self.dir.path().display().to_string());
        let pause = self.dir.path().join("run/libpod/tmp/pause.pid");
        left.extend(
            std::fs::read_to_string(pause)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok()),
        );
        for pid in &left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        wait_until(Duration::from_secs(5), || {
            processes_naming(&self.dir.path().display().to_string()).is_empty()
        });
    }
}

/// The live processes whose command line contains `text` (zombies are gone already).
fn processes_naming(text: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'));
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !zombie && String::from_utf8_lossy(&cmdline).contains(text)
        })
        .collect()
}

/// A rootless Podman on cgroup v1 has no freezer to pause with: `pause` is refused at
/// preflight, before any target is even listed (exit 4, nothing touched), and `doctor`
/// says that Podman is rootless there and that pause is refused.
#[test]
fn pause_on_a_rootless_podman_on_cgroup_v1_is_refused_at_preflight() {
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !require_kernel(
        v1,
        "cgroup v2 here: a rootless Podman can pause there (the refusal is for cgroup v1)",
    ) {
        return;
    }
    let Some(podman) = RootlessPodman::start() else {
        return;
    };
    let exp = Experiment::new("pm-rootless")
        .docker(&format!("host: \"{}\"", podman.host()))
        .on_label("fltest.podman", "rootless")
        .fault("pause: {duration: 1s}");
    let dir = tempfile::tempdir().unwrap();
    let doctor = Run::new(["doctor"]).arg(exp.write(dir.path())).output();
    assert_contains(
        &doctor.stdout,
        &["engine Podman", "rootless", "pause is refused"],
    );
    let out = Run::experiment(&exp).json_report().output();
    out.expect(4);
    let r = out.report();
    assert_eq!(r["verdict"], "error");
    assert_contains(
        &r.to_string(),
        &[
            "rootless on cgroup v1",
            "cannot be paused",
            "nothing was touched",
        ],
    );
    let dir = podman.dir.path().display().to_string();
    drop(podman);
    assert_eq!(
        processes_naming(&dir),
        Vec::<i32>::new(),
        "the rootless service is left"
    );
}
