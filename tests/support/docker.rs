//! The real Docker engine: locally built images, labelled containers removed even when a
//! test fails, and what a user would observe with the docker CLI, `tc`, `iptables` and
//! `/proc`, independently of faultline's own report.

use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::skip::{Skip, skip};

pub const IMAGE: &str = "faultline-test/busybox:1";
pub const TC_IMAGE: &str = "faultline-test/tc:2";
/// Every container a test creates carries this label, so CI can find leftovers.
pub const TEST_LABEL: &str = "faultline.test";

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = super::must_succeed(Command::new("docker").args(args));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the engine answers (the test images are built on first use); when it does not,
/// the skip is recorded, and under `CI=true` the test fails.
pub fn require_docker() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        let ok = Command::new("docker")
            .args(["info"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            super::must_succeed(
                Command::new("bash").arg(super::root().join("scripts/test-images.sh")),
            );
        }
        ok
    });
    if !ok {
        skip(
            Skip::Missing,
            "the Docker engine does not answer (`docker info` failed); end-to-end test not run",
        );
    }
    ok
}

/// Runs `check` once for each strategy of a stress fault (`host`, then `exec`) when the
/// Docker engine answers, else records the skip.
pub fn each_strategy(mut check: impl FnMut(&str)) {
    if require_docker() {
        for strategy in ["host", "exec"] {
            check(strategy);
        }
    }
}

/// A fleet for `test` when the Docker engine answers, else a recorded skip.
pub fn docker_fleet(test: &str) -> Option<Fleet> {
    require_docker().then(|| Fleet::new(test))
}

/// A fleet of one web container when the Docker engine answers, else a recorded skip.
pub fn one_web(test: &str) -> Option<(Fleet, String)> {
    let mut fleet = docker_fleet(test)?;
    let web = fleet.web(&[]);
    Some((fleet, web))
}

/// [`one_web`] and an experiment `test` of `fault` on the fleet.
pub fn one_web_with(test: &str, fault: &str) -> Option<(Fleet, String, super::Experiment)> {
    let (fleet, web) = one_web(test)?;
    let exp = fleet.experiment(test).fault(fault);
    Some((fleet, web, exp))
}

/// Containers of one test, removed on drop (also when the test panics).
pub struct Fleet {
    pub group: String,
    pub names: Vec<String>,
    /// Docker networks of this fleet, removed on drop after its containers.
    pub networks: Vec<String>,
}

impl Fleet {
    pub fn new(test: &str) -> Fleet {
        let group = format!("{test}-{}-{}", std::process::id(), rand_suffix());
        Fleet {
            group,
            names: Vec::new(),
            networks: Vec::new(),
        }
    }

    /// A user-defined Docker network of this fleet (its containers resolve each other's
    /// names through Docker's embedded DNS), removed on drop; returns its name.
    pub fn network(&mut self) -> String {
        let name = format!("fl-{}-net{}", self.group, self.networks.len() + 1);
        let label = format!("fltest.group={}", self.group);
        let test_label = format!("{TEST_LABEL}=true");
        docker_ok(&[
            "network",
            "create",
            "--label",
            &label,
            "--label",
            &test_label,
            &name,
        ]);
        self.networks.push(name.clone());
        name
    }

    /// Web containers named `{group}-a`, `-b`, ... on one new network of this fleet,
    /// each labelled `fltest.role=<letter>`; returns their names.
    pub fn trio(&mut self) -> [String; 3] {
        let net = self.network();
        ["a", "b", "c"].map(|r| {
            let role = format!("fltest.role={r}");
            self.web(&["--network", &net, "--label", &role])
        })
    }

    /// Starts a busybox httpd container published on a loopback port; returns its name.
    pub fn web(&mut self, extra: &[&str]) -> String {
        let name = format!("fl-{}-{}", self.group, self.names.len() + 1);
        let label = format!("fltest.group={}", self.group);
        let test_label = format!("{TEST_LABEL}=true");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            &label,
            "--label",
            &test_label,
            "-p",
            "127.0.0.1::80",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
        docker_ok(&args);
        self.names.push(name.clone());
        wait_until(Duration::from_secs(10), || http_ok(&self.url(&name)));
        name
    }

    /// `n` web containers started with the same flags.
    pub fn webs(&mut self, n: usize, extra: &[&str]) -> Vec<String> {
        (0..n).map(|_| self.web(extra)).collect()
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/", self.host_port(name))
    }

    /// `127.0.0.1:PORT` the container's port 80 is published on.
    pub fn host_port(&self, name: &str) -> String {
        let port = docker_ok(&["port", name, "80/tcp"]);
        let port = port
            .lines()
            .next()
            .unwrap_or("")
            .rsplit(':')
            .next()
            .unwrap_or("");
        format!("127.0.0.1:{port}")
    }

    pub fn id(&self, name: &str) -> String {
        inspect(name, "{{.Id}}")
    }

    pub fn label(&self) -> String {
        self.group.clone()
    }

    /// An experiment on this fleet's containers.
    pub fn experiment(&self, name: &str) -> super::Experiment {
        super::Experiment::new(name).on(self)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let filter = format!("label=fltest.group={}", self.group);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker(&["unpause", id]);
            // With its anonymous volumes (`--mount type=volume,dst=...`).
            let _ = docker(&["rm", "-f", "-v", id]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (h.finish() % 100_000) as u32
}

pub fn http_ok(url: &str) -> bool {
    let hostport = url.trim_start_matches("http://").trim_end_matches('/');
    let Ok(addr) = hostport.parse::<std::net::SocketAddr>() else {
        return false;
    };
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200"
}

/// The paths of every program of `needs` (program, Debian package, what cannot be done
/// without it) once Docker answers and each is installed; otherwise the skips are recorded
/// and there is nothing.
pub fn docker_and<const N: usize>(
    needs: [(&str, &str, &str); N],
) -> Option<[std::path::PathBuf; N]> {
    if !require_docker() {
        return None;
    }
    let mut found = Vec::with_capacity(N);
    for (program, package, what) in needs {
        found.push(super::skip::require_program(program, package, what)?);
    }
    found.try_into().ok()
}

/// Three web containers on one new network (see [`Fleet::trio`]) once Docker answers and
/// every program of `needs` (program, Debian package, what cannot be done without it) is
/// installed; otherwise the skips are recorded and there is nothing.
pub fn trio_needing(test: &str, needs: &[(&str, &str, &str)]) -> Option<(Fleet, [String; 3])> {
    if !require_docker() {
        return None;
    }
    for (program, package, what) in needs {
        super::skip::require_program(program, package, what)?;
    }
    let mut fleet = Fleet::new(test);
    let names = fleet.trio();
    Some((fleet, names))
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `docker inspect -f FORMAT name`.
pub fn inspect(name: &str, format: &str) -> String {
    docker_ok(&["inspect", "-f", format, name])
}

pub fn paused(name: &str) -> bool {
    inspect(name, "{{.State.Paused}}") == "true"
}

pub fn running(name: &str) -> bool {
    inspect(name, "{{.State.Running}}") == "true"
}

/// The container's address on its Docker network, port 80.
pub fn container_addr(name: &str) -> std::net::SocketAddr {
    let ip = inspect(
        name,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    format!("{ip}:80").parse().unwrap()
}

/// Runs `argv` on the host inside the container's network namespace; returns stdout.
pub fn in_netns(name: &str, argv: &[&str]) -> String {
    let out = netns_command(name, argv).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nsenter -t PID -n ARGV` for the container, to run or to check its status.
pub fn netns_command(name: &str, argv: &[&str]) -> Command {
    let pid = inspect(name, "{{.State.Pid}}");
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid, "-n"]).args(argv);
    cmd
}

/// The qdiscs on the container's eth0, read from the host.
pub fn qdiscs(name: &str) -> String {
    in_netns(name, &["tc", "qdisc", "show", "dev", "eth0"])
}

/// The container's iptables OUTPUT chain, read from the host.
pub fn nfqueue_rules(name: &str) -> String {
    in_netns(name, &["iptables", "-S", "OUTPUT"])
}

/// Helpers faultline started for this container.
pub fn helpers(name: &str) -> usize {
    let id = inspect(name, "{{.Id}}");
    docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        "label=faultline.helper",
        "--filter",
        &format!("label=faultline.target={id}"),
    ])
    .lines()
    .count()
}

/// Host processes whose command line contains `marker`, with their /proc entries.
pub fn host_processes(marker: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .map(|e| e.path())
        .filter(|p| {
            std::fs::read(p.join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

/// Host processes whose command line contains `marker` and that run in the container's
/// network namespace (other tests run their own).
pub fn netns_processes(name: &str, marker: &str) -> Vec<std::path::PathBuf> {
    let pid = inspect(name, "{{.State.Pid}}");
    let Ok(netns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
        return Vec::new();
    };
    host_processes(marker)
        .into_iter()
        .filter(|p| std::fs::read_link(p.join("ns/net")).is_ok_and(|n| n == netns))
        .collect()
}

/// A fault that changes a container's network namespace with iptables.
pub struct NetnsFault {
    /// The experiment's name.
    pub name: &'static str,
    /// The entry of `faults:` for these parameters and duration.
    pub entry: fn(params: &str, duration: &str) -> String,
    /// Whether the fault's rule is in place in the container.
    pub in_place: fn(&str) -> bool,
    /// What cannot be tested without iptables.
    pub why: &'static str,
}

/// One web container whose network namespace a fault changes with iptables.
pub struct NetnsWeb {
    pub fleet: Fleet,
    pub web: String,
    /// Its address on its Docker network, port 80.
    pub addr: std::net::SocketAddr,
    fault: &'static NetnsFault,
}

/// Docker and iptables and one web container for `fault`, or a recorded skip.
pub fn netns_web(test: &str, fault: &'static NetnsFault) -> Option<NetnsWeb> {
    if !require_docker() || super::require_program("iptables", "iptables", fault.why).is_none() {
        return None;
    }
    let mut fleet = Fleet::new(test);
    let web = fleet.web(&[]);
    let addr = container_addr(&web);
    Some(NetnsWeb {
        fleet,
        web,
        addr,
        fault,
    })
}

impl NetnsWeb {
    /// An experiment of the fault on this container.
    pub fn experiment(&self, params: &str, duration: &str) -> super::Experiment {
        super::Experiment::new(self.fault.name)
            .on(&self.fleet)
            .fault(&(self.fault.entry)(params, duration))
    }

    /// Starts the run and waits until the fault's rule is in place in the container.
    #[track_caller]
    pub fn start(&self, run: super::Run) -> super::Running {
        run.spawn_until(&format!("the fault's rule in {}", self.web), || {
            (self.fault.in_place)(&self.web)
        })
    }

    /// Starts `exp` with a journal of its own and no dead-man's switch (a SIGKILL leaves
    /// its faults to `recover` through the returned state dir), once its rule is in place.
    #[track_caller]
    pub fn start_recoverable(&self, exp: &super::Experiment) -> (super::StateDir, super::Running) {
        let state = super::StateDir::new();
        let run = super::Run::experiment(exp)
            .state(&state)
            .no_dead_mans_switch();
        let running = self.start(run);
        (state, running)
    }
}

/// Marker every CPU stressor carries in its command line.
pub const STRESS_MARKER: &str = "faultline-stress-";

/// Stressor processes inside the container, from its own /proc.
pub fn stressors_inside(name: &str) -> usize {
    marked_inside(name, STRESS_MARKER)
        .unwrap_or_else(|| panic!("cannot list the processes in {name}"))
}

/// Processes inside the container whose command line (arguments joined by spaces)
/// carries `marker`, from its own /proc; `None` when the container cannot run a command
/// (stopped, gone).
pub fn marked_inside(name: &str, marker: &str) -> Option<usize> {
    // The checking shell's own command line names no marker.
    let inside = docker(&[
        "exec",
        name,
        "sh",
        "-c",
        "cat /proc/[0-9]*/cmdline 2>/dev/null",
    ]);
    inside.status.success().then(|| {
        String::from_utf8_lossy(&inside.stdout)
            .replace('\0', " ")
            .matches(marker)
            .count()
    })
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Now, as `docker events --since/--until` takes it.
pub fn now_secs() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .to_string()
}

/// The actions `docker events` saw between `since` and now, under `filters`.
pub fn docker_events(since: &str, filters: &[String]) -> Vec<String> {
    let until = now_secs();
    let mut args = vec!["events", "--since", since, "--until", &until];
    for f in filters {
        args.extend(["--filter", f.as_str()]);
    }
    args.extend(["--format", "{{.Action}}"]);
    docker_ok(&args).lines().map(str::to_string).collect()
}

/// The whole disk (`/dev/NAME`) that holds Docker's volumes: where a throttle rule
/// (`--device-write-bps`) must name to act on a volume's I/O.
pub fn docker_disk() -> String {
    use std::os::unix::fs::MetadataExt;
    let root = docker_ok(&["info", "-f", "{{.DockerRootDir}}"]);
    let dev = std::fs::metadata(root.trim())
        .expect("Docker's root dir")
        .dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let mut sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"))
        .expect("Docker's root is on a block device");
    // A partition's disk is its parent directory.
    if sys.join("partition").exists() {
        sys.pop();
    }
    let uevent = std::fs::read_to_string(sys.join("uevent")).unwrap();
    let name = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .expect("DEVNAME in uevent");
    format!("/dev/{name}")
}

/// The bytes the container's blkio (v1) / io (v2) cgroup read and wrote, summed over
/// devices, as its own counters say.
pub fn io_counters(id: &str) -> (u64, u64) {
    let v1 = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/blkio/docker/{id}/blkio.throttle.io_service_bytes"
    ));
    if let Ok(text) = v1 {
        let sum = |op: &str| -> u64 {
            text.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() == 3 && f[1] == op).then(|| f[2].parse::<u64>().unwrap())
                })
                .sum()
        };
        return (sum("Read"), sum("Write"));
    }
    for p in [
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/io.stat"),
        format!("/sys/fs/cgroup/docker/{id}/io.stat"),
    ] {
        if let Ok(text) = std::fs::read_to_string(&p) {
            let sum = |key: &str| -> u64 {
                text.split_whitespace()
                    .filter_map(|kv| kv.strip_prefix(key)?.parse::<u64>().ok())
                    .sum()
            };
            return (sum("rbytes="), sum("wbytes="));
        }
    }
    panic!("no blkio/io cgroup found for container {id}");
}

/// The container's CPU time in nanoseconds, from its cgroup (v1 cpuacct or v2 cpu.stat).
pub fn cpu_ns(id: &str) -> u64 {
    for p in [
        format!("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage"),
        format!("/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpuacct.usage"),
    ] {
        if let Ok(v) = std::fs::read_to_string(&p) {
            return v.trim().parse().unwrap();
        }
    }
    for p in [
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat"),
        format!("/sys/fs/cgroup/docker/{id}/cpu.stat"),
    ] {
        if let Ok(s) = std::fs::read_to_string(&p) {
            return cpu_stat_ns(&s);
        }
    }
    panic!("no CPU accounting found for container {id}");
}

/// The CPU time a cgroup v2 `cpu.stat` gives (`usage_usec`), in nanoseconds.
pub fn cpu_stat_ns(cpu_stat: &str) -> u64 {
    let usec: u64 = cpu_stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .expect("cpu.stat has usage_usec")
        .trim()
        .parse()
        .unwrap();
    usec * 1000
}
