//! Chaos on the chaos tool: faultline is killed (SIGKILL) or interrupted (SIGINT) at
//! random moments while its faults are active, and nothing may be left behind.
//!
//! Each fault kind is one [`Scenario`]; a later fault adds itself with a few lines (its
//! YAML and what "left behind" means for it). Trials per case: `FAULTLINE_CHAOS_TRIALS`
//! (default 10). A summary of trials and leftovers is appended to
//! `target/chaos-summary.txt`, which `.ci/run` prints.

mod support;

use std::io::Write;
use std::time::Duration;

use rand::Rng;
use support::*;

/// One fault kind under attack: its faults, its targets, and what "left behind" means.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    Pause,
    ProcessPause,
    RepeatedKill,
    NetworkHost,
    NetworkNfqueue,
    NetworkSidecar,
    NetworkScoped,
    NetworkImpair,
    NetworkIngress,
    Dns,
    Partition,
    CpuHost,
    CpuExec,
    MemoryHost,
    MemoryExec,
    DiskHost,
    DiskExec,
    IoHost,
    IoExec,
    Stop,
    Command,
    Http,
    HttpOutbound,
    /// Two named targets, a fault on each on its own schedule.
    TwoTargets,
}

use Scenario::*;

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Pause => "pause",
            ProcessPause => "process_pause",
            RepeatedKill => "repeated kill",
            NetworkHost => "network (host)",
            NetworkNfqueue => "network (nfqueue)",
            NetworkSidecar => "network (sidecar)",
            NetworkScoped => "network (scoped, both directions)",
            NetworkImpair => "network corrupt/duplicate/reorder (nfqueue)",
            NetworkIngress => "network rate both ways (tc + IFB)",
            Dns => "network dns",
            Partition => "network partition",
            CpuHost => "cpu_stress (host)",
            CpuExec => "cpu_stress (exec)",
            MemoryHost => "memory_stress (host)",
            MemoryExec => "memory_stress (exec)",
            DiskHost => "disk_fill (host)",
            DiskExec => "disk_fill (exec)",
            IoHost => "io_stress (host)",
            IoExec => "io_stress (exec)",
            Stop => "stop",
            Command => "command",
            Http => "http",
            HttpOutbound => "http (outbound)",
            TwoTargets => "two targets (pause + network)",
        }
    }

    /// Where a stress fault's worker runs: `host` or `exec`.
    fn strategy(self) -> &'static str {
        match self {
            CpuExec | MemoryExec | DiskExec | IoExec => "exec",
            _ => "host",
        }
    }

    /// The entries of `faults:`, for containers labelled `fltest.group=GROUP`.
    fn faults(self) -> Vec<String> {
        let fixed =
            |entries: &[&str]| -> Vec<String> { entries.iter().map(|e| e.to_string()).collect() };
        // The two scenarios of each stress fault differ only in where its worker runs.
        let stress = |kind: &str, params: &str| {
            vec![format!(
                "{kind}: {{{params}, strategy: {}}}",
                self.strategy()
            )]
        };
        match self {
            Pause => fixed(&["pause: {duration: 4s}"]),
            ProcessPause => fixed(&["process_pause: {process: \"^httpd \", duration: 4s}"]),
            RepeatedKill => fixed(&[
                "kill: {every: 300ms, duration: 3s}",
                "pause: {duration: 3s, after: 100ms}",
            ]),
            NetworkHost => fixed(&["network: {rate: 1mbit, duration: 4s, strategy: host}"]),
            NetworkNfqueue => {
                fixed(&["network: {delay: 50ms, loss: 5, duration: 4s, engine: nfqueue}"])
            }
            NetworkSidecar => fixed(&[
                "network: {rate: 1mbit, duration: 4s, strategy: sidecar, tc_image: \"faultline-test/tc:2\"}",
            ]),
            NetworkScoped => fixed(&[
                "network: {delay: 50ms, loss: 5, duration: 4s, engine: nfqueue, direction: both, to: {cidrs: [\"172.16.0.0/12\"], ports: [\"1-65535\"], protocol: tcp}}",
            ]),
            NetworkImpair => fixed(&[
                "network: {delay: 20ms, corrupt: 1, duplicate: 5, reorder: {percent: 20}, duration: 4s, engine: nfqueue}",
            ]),
            NetworkIngress => {
                fixed(&["network: {rate: 1mbit, direction: both, duration: 4s, strategy: host}"])
            }
            Dns => fixed(&["network: {duration: 4s, dns: {names: [\"*.test\"], mode: timeout}}"]),
            Partition => fixed(&[
                "network: {duration: 4s, partition: {with: {cidrs: [\"192.0.2.0/24\", \"198.51.100.7\"]}}}",
            ]),
            CpuHost | CpuExec => stress("cpu_stress", "workers: 1, load: 30, duration: 4s"),
            MemoryHost | MemoryExec => {
                stress("memory_stress", "size: 64MiB, ramp: 1s, duration: 4s")
            }
            DiskHost | DiskExec => stress("disk_fill", "size: 16MiB, path: /fill, duration: 4s"),
            IoHost | IoExec => stress(
                "io_stress",
                "workers: 2, size: 4MiB, path: /io, mode: mixed, duration: 4s",
            ),
            Stop => fixed(&["stop: {duration: 4s, timeout: 1s}"]),
            // Each run and rollback counts itself inside the target.
            Command => fixed(&[
                "command: {where: target, duration: 4s, run: [sh, -c, \"echo r >> /tmp/runs; touch /tmp/flag\"], rollback: [sh, -c, \"echo r >> /tmp/rollbacks; rm -f /tmp/flag\"]}",
            ]),
            Http => fixed(&["http: {port: 80, abort: {status: 503}, duration: 4s}"]),
            // Each target's calls to the other's port 80.
            HttpOutbound => fixed(&[
                "http: {port: 80, direction: outbound, abort: {status: 503}, duration: 4s}",
            ]),
            // The targets `a` and `b` are the fleet's two containers (see `experiment`).
            TwoTargets => fixed(&[
                "pause: {target: a, duration: 4s}",
                "network: {target: b, after: 300ms, rate: 1mbit, duration: 4s, strategy: host}",
            ]),
        }
    }

    /// Extra `docker run` flags for the targets.
    fn container_flags(self) -> &'static [&'static str] {
        match self {
            RepeatedKill => &["--restart", "always"],
            DiskHost | DiskExec => &["--tmpfs", "/fill:size=64m"],
            // A volume: io_stress refuses tmpfs and FUSE.
            IoHost | IoExec => &["--mount", "type=volume,dst=/io"],
            _ => &[],
        }
    }

    /// How long after the first injection a signal may land (the fault window).
    fn window(self) -> Duration {
        Duration::from_millis(2500)
    }

    /// Names what is left behind on these containers (empty: nothing).
    fn leftovers(self, fleet: &Fleet) -> Vec<String> {
        match self {
            Pause | RepeatedKill => paused_containers(fleet),
            ProcessPause => stopped_processes(fleet),
            NetworkHost | NetworkSidecar | NetworkIngress => network_leftovers(fleet),
            NetworkNfqueue => nfqueue_leftovers(fleet),
            NetworkScoped | NetworkImpair | Dns | Partition => scoped_leftovers(fleet),
            CpuHost | CpuExec => stressors(fleet),
            MemoryHost | MemoryExec => memory_allocators(fleet),
            DiskHost | DiskExec => fill_files(fleet),
            IoHost | IoExec => io_leftovers(fleet),
            Stop => stopped_containers(fleet),
            Command => rollbacks_not_once(fleet),
            Http => http_leftovers(fleet),
            HttpOutbound => http_outbound_leftovers(fleet),
            TwoTargets => {
                let mut left = paused_containers(fleet);
                left.extend(network_leftovers(fleet));
                left
            }
        }
    }

    /// The experiment on the fleet: every container, or for [`TwoTargets`] each of the
    /// two containers a named target of its own.
    fn experiment(self, fleet: &Fleet) -> Experiment {
        let base = match self {
            TwoTargets => Experiment::new("chaos")
                .target("a", &format!("docker: {{name: {}}}", fleet.names[0]))
                .target("b", &format!("docker: {{name: {}}}", fleet.names[1])),
            _ => Experiment::new("chaos").on(fleet).select("{mode: all}"),
        };
        self.faults().iter().fold(base, |e, f| e.fault(f))
    }

    /// For faults that end by themselves: how long after the start they are surely over.
    fn self_healing(self) -> Option<Duration> {
        match self {
            // The exec loops remove their files at their deadline; a host stressor dies
            // with faultline and leaves them to recover.
            CpuHost | CpuExec | MemoryHost | MemoryExec | IoExec => Some(Duration::from_secs(16)),
            _ => None,
        }
    }
}

fn paused_containers(fleet: &Fleet) -> Vec<String> {
    fleet
        .names
        .iter()
        .filter(|n| paused(n))
        .map(|n| format!("{n} is paused"))
        .collect()
}

/// Processes of the containers left stopped (state `T`, as the host's `ps` sees them).
fn stopped_processes(fleet: &Fleet) -> Vec<String> {
    let mut left = Vec::new();
    for n in &fleet.names {
        for line in docker_ok(&["top", n, "-o", "pid,stat,args"])
            .lines()
            .skip(1)
        {
            let stat = line.split_whitespace().nth(1).unwrap_or("");
            if stat.starts_with('T') {
                left.push(format!("{n}: `{}` is stopped", line.trim()));
            }
        }
    }
    left
}

fn network_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = Vec::new();
    for n in &fleet.names {
        if qdiscs(n).contains("fa17:") {
            left.push(format!("{n} still has faultline's qdisc"));
        }
        if qdiscs(n).contains("qdisc ingress") {
            left.push(format!("{n} still has an ingress qdisc"));
        }
        if !in_netns(n, &["ip", "link", "show", "ifb-fa17"]).is_empty() {
            left.push(format!("{n} still has faultline's IFB device"));
        }
        if helpers(n) > 0 {
            left.push(format!("{n} still has a network helper"));
        }
    }
    left
}

fn nfqueue_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = network_leftovers(fleet);
    for n in &fleet.names {
        if nfqueue_rules(n).contains("NFQUEUE") {
            left.push(format!("{n} still has faultline's NFQUEUE rule"));
        }
    }
    left
}

/// faultline's rules in either chain (a scope's INPUT rules, a partition's DROP rules),
/// and delayers still in the containers' namespaces.
fn scoped_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = network_leftovers(fleet);
    for n in &fleet.names {
        for chain in ["OUTPUT", "INPUT"] {
            let rules = in_netns(n, &["iptables", "-S", chain]);
            let ours = rules.lines().filter(|l| l.contains("faultline-")).count();
            if ours > 0 {
                left.push(format!("{n} still has {ours} faultline rule(s) in {chain}"));
            }
        }
        let netns = std::fs::read_link(format!("/proc/{}/ns/net", inspect(n, "{{.State.Pid}}")));
        let delayers = host_processes("\0delayer\0")
            .into_iter()
            .filter(|p| {
                netns
                    .as_ref()
                    .is_ok_and(|ns| std::fs::read_link(p.join("ns/net")).is_ok_and(|x| &x == ns))
            })
            .count();
        if delayers > 0 {
            left.push(format!("{delayers} delayer(s) in {n}'s namespace"));
        }
    }
    left
}

/// faultline's processes carrying `marker` that belong to this test: on the host (a
/// marker in the command line, and a cgroup of one of this test's containers: other tests
/// run their own at the same time), and inside the containers, where `also_inside` counts
/// too (the exec strategy's `dd` holding its buffer).
fn marked_processes(
    fleet: &Fleet,
    marker: &str,
    also_inside: Option<&str>,
    what: &str,
) -> Vec<String> {
    let mut left = Vec::new();
    let ids: Vec<String> = fleet.names.iter().map(|n| fleet.id(n)).collect();
    let host = host_processes(marker)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(p.join("cgroup"))
                .is_ok_and(|c| ids.iter().any(|id| c.contains(id)))
        })
        .count();
    if host > 0 {
        left.push(format!("{host} host {what}(s)"));
    }
    for n in &fleet.names {
        let inside = marked_inside(n, marker)
            .unwrap_or_else(|| panic!("cannot list the processes in {n}"))
            + also_inside.map_or(0, |a| marked_inside(n, a).unwrap_or(0));
        if inside > 0 {
            left.push(format!("{inside} {what} process(es) in {n}"));
        }
    }
    left
}

fn stressors(fleet: &Fleet) -> Vec<String> {
    marked_processes(fleet, STRESS_MARKER, None, "stressor")
}

fn memory_allocators(fleet: &Fleet) -> Vec<String> {
    marked_processes(
        fleet,
        "faultline-memory-",
        Some("dd if=/dev/zero"),
        "memory allocator",
    )
}

/// Every `run` of the command fault rolled back exactly once: as many rollbacks as runs
/// (0 when the signal came before the injection), never more than one, and no flag left.
fn rollbacks_not_once(fleet: &Fleet) -> Vec<String> {
    let count = |n: &str, file: &str| {
        let out = docker(&["exec", n, "sh", "-c", &format!("cat {file} 2>/dev/null")]);
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let mut left = Vec::new();
    for n in &fleet.names {
        let (runs, rollbacks) = (count(n, "/tmp/runs"), count(n, "/tmp/rollbacks"));
        if runs > 1 || rollbacks != runs {
            left.push(format!("{n}: {runs} run(s), {rollbacks} rollback(s)"));
        }
        if docker(&["exec", n, "sh", "-c", "[ -e /tmp/flag ]"])
            .status
            .success()
        {
            left.push(format!("{n} still has the command's flag"));
        }
    }
    left
}

fn stopped_containers(fleet: &Fleet) -> Vec<String> {
    fleet
        .names
        .iter()
        .filter(|n| !running(n))
        .map(|n| format!("{n} is stopped"))
        .collect()
}

/// faultline's fill files left in the containers' /fill.
fn fill_files(fleet: &Fleet) -> Vec<String> {
    fleet
        .names
        .iter()
        .filter_map(|n| {
            let ls = docker_ok(&["exec", n, "sh", "-c", "ls -a /fill"]);
            let left = ls
                .lines()
                .filter(|l| l.starts_with(".faultline-fill-"))
                .count();
            (left > 0).then(|| format!("{left} fill file(s) in {n}:/fill"))
        })
        .collect()
}

/// io_stress leftovers: its workers (marked, on the host in one of this test's
/// containers' cgroups, or inside) and faultline's I/O files in the containers' /io.
fn io_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = marked_processes(fleet, "faultline-io-", None, "I/O stressor");
    for n in &fleet.names {
        let files = docker_ok(&["exec", n, "sh", "-c", "ls -a /io"])
            .lines()
            .filter(|l| l.starts_with(".faultline-io-"))
            .count();
        if files > 0 {
            left.push(format!("{files} I/O file(s) in {n}:/io"));
        }
    }
    left
}

/// The `http` fault's redirect and proxy, and any request not answered by the server.
fn http_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = Vec::new();
    for n in &fleet.names {
        let rules = in_netns(n, &["iptables", "-w", "-t", "nat", "-S"]);
        if rules.contains("faultline-http-") {
            left.push(format!("{n} still has faultline's redirect"));
        }
        let proxies = netns_processes(n, "\0http-proxy\0").len();
        if proxies > 0 {
            left.push(format!("{proxies} HTTP proxy(ies) in {n}'s namespace"));
        }
        if !http_ok(&fleet.url(n)) {
            left.push(format!("{n} does not answer HTTP as its server"));
        }
    }
    left
}

/// As [`http_leftovers`], and any call a target makes to another that is not answered by
/// that server (busybox `nc` inside the target: its `wget` crashes on a 200).
fn http_outbound_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = http_leftovers(fleet);
    for (i, n) in fleet.names.iter().enumerate() {
        let other = &fleet.names[(i + 1) % fleet.names.len()];
        let call = format!(
            "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {} 80",
            container_addr(other).ip()
        );
        let out = docker(&["exec", n, "sh", "-c", &call]);
        if !String::from_utf8_lossy(&out.stdout).contains("hello from faultline-test") {
            left.push(format!(
                "{n}'s call to {other} is not answered by it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    left
}

fn trials() -> usize {
    std::env::var("FAULTLINE_CHAOS_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

#[derive(Clone, Copy, PartialEq)]
enum Kill {
    /// SIGKILL, then `faultline recover` (dead-man's switch off).
    HardThenRecover,
    /// SIGKILL and nothing else: the dead-man's switch must heal it.
    HardDeadMansSwitch,
    /// SIGINT: exit 130 and nothing left, no recover needed.
    Interrupt,
    /// SIGKILL, no switch, no recover: a fault with its own deadline ends by itself.
    HardDeadline,
}

fn chaos(s: Scenario, how: Kill) {
    if !require_docker() {
        return;
    }
    let mut rng = rand::rng();
    let mut left_total = Vec::new();
    // Waiting out a deadline is slow: fewer trials there.
    let n = if how == Kill::HardDeadline {
        trials().min(2)
    } else {
        trials()
    };
    for trial in 0..n {
        let slug: String = s
            .name()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let mut fleet = Fleet::new(&format!("chaos-{slug}"));
        fleet.webs(2, s.container_flags());
        let exp = s.experiment(&fleet);
        let (state, dir) = (StateDir::new(), tempfile::tempdir().unwrap());
        let audit = dir.path().join("audit.jsonl");
        let mut run = Run::experiment(&exp)
            .arg("--audit-log")
            .arg(&audit)
            .state(&state);
        if how != Kill::HardDeadMansSwitch {
            run = run.no_dead_mans_switch();
        }
        let child = run.spawn();
        // Wait for the first injection, then strike at a random moment of the window.
        assert!(wait_until(Duration::from_secs(10), || std::fs::metadata(
            &audit
        )
        .is_ok_and(|m| m.len() > 0)));
        let at = rng.random_range(0..s.window().as_millis() as u64);
        std::thread::sleep(Duration::from_millis(at));
        child.signal(if how == Kill::Interrupt {
            nix::sys::signal::Signal::SIGINT
        } else {
            nix::sys::signal::Signal::SIGKILL
        });
        let out = child.wait();
        match how {
            Kill::Interrupt => {
                let code = out.code;
                // A signal after the faults ended finishes the run normally.
                assert!(
                    matches!(code, Some(130) | Some(0)),
                    "trial {trial}: exit {code:?}: {}",
                    out.stderr
                );
            }
            Kill::HardThenRecover => {
                state.recover();
            }
            Kill::HardDeadline => {
                let heal = s.self_healing().expect("only for self-healing faults");
                std::thread::sleep(heal.saturating_sub(Duration::from_millis(at)));
                let left = s.leftovers(&fleet);
                assert!(
                    left.is_empty(),
                    "trial {trial}: after the deadline: {left:?}"
                );
                // The journal still says what was injected; recover closes it.
                state.recover();
            }
            Kill::HardDeadMansSwitch => {
                let healed = wait_until(Duration::from_secs(15), || state.open_entries() == 0);
                assert!(
                    healed,
                    "trial {trial}: the dead-man's switch did not close the journal"
                );
            }
        }
        let mut left = s.leftovers(&fleet);
        if state.open_entries() > 0 {
            left.push("open journal entries".into());
        }
        if how != Kill::Interrupt || out.code == Some(130) {
            let audit_text = std::fs::read_to_string(&audit).unwrap_or_default();
            assert!(
                audit_text.contains("\"action\":\"inject\""),
                "the audit log lacks the injection"
            );
        }
        left_total.extend(
            left.into_iter()
                .map(|l| format!("trial {trial} (signal at {at}ms): {l}")),
        );
    }
    let case = match how {
        Kill::HardThenRecover => "SIGKILL + recover",
        Kill::HardDeadMansSwitch => "SIGKILL + dead-man's switch",
        Kill::Interrupt => "SIGINT",
        Kill::HardDeadline => "SIGKILL + own deadline",
    };
    let line = format!(
        "chaos: {} / {case}: {n} trials, {} left behind",
        s.name(),
        left_total.len()
    );
    eprintln!("{line}");
    let summary = root().join("target/chaos-summary.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(summary)
    {
        let _ = writeln!(f, "{line}");
    }
    assert!(left_total.is_empty(), "{line}:\n{}", left_total.join("\n"));
}

#[test]
fn pause_sigkill_then_recover() {
    chaos(Pause, Kill::HardThenRecover);
}

#[test]
fn pause_sigkill_dead_mans_switch() {
    chaos(Pause, Kill::HardDeadMansSwitch);
}

#[test]
fn pause_sigint() {
    chaos(Pause, Kill::Interrupt);
}

#[test]
fn process_pause_sigkill_then_recover() {
    chaos(ProcessPause, Kill::HardThenRecover);
}

#[test]
fn process_pause_sigkill_dead_mans_switch() {
    chaos(ProcessPause, Kill::HardDeadMansSwitch);
}

#[test]
fn process_pause_sigint() {
    chaos(ProcessPause, Kill::Interrupt);
}

#[test]
fn repeated_kill_sigkill_then_recover() {
    chaos(RepeatedKill, Kill::HardThenRecover);
}

#[test]
fn repeated_kill_sigint() {
    chaos(RepeatedKill, Kill::Interrupt);
}

#[test]
fn network_host_sigkill_then_recover() {
    chaos(NetworkHost, Kill::HardThenRecover);
}

#[test]
fn network_host_sigint() {
    chaos(NetworkHost, Kill::Interrupt);
}

#[test]
fn network_sidecar_sigkill_then_recover() {
    chaos(NetworkSidecar, Kill::HardThenRecover);
}

#[test]
fn network_sidecar_sigint() {
    chaos(NetworkSidecar, Kill::Interrupt);
}

#[test]
fn network_scoped_sigkill_then_recover() {
    chaos(NetworkScoped, Kill::HardThenRecover);
}

#[test]
fn network_scoped_sigint() {
    chaos(NetworkScoped, Kill::Interrupt);
}

#[test]
fn network_impair_sigkill_then_recover() {
    chaos(NetworkImpair, Kill::HardThenRecover);
}

#[test]
fn network_impair_sigint() {
    chaos(NetworkImpair, Kill::Interrupt);
}

#[test]
fn network_ingress_sigkill_then_recover() {
    chaos(NetworkIngress, Kill::HardThenRecover);
}

#[test]
fn network_ingress_dead_mans_switch() {
    chaos(NetworkIngress, Kill::HardDeadMansSwitch);
}

#[test]
fn dns_sigkill_then_recover() {
    chaos(Dns, Kill::HardThenRecover);
}

#[test]
fn dns_sigint() {
    chaos(Dns, Kill::Interrupt);
}

#[test]
fn partition_sigkill_then_recover() {
    chaos(Partition, Kill::HardThenRecover);
}

#[test]
fn partition_sigkill_dead_mans_switch() {
    chaos(Partition, Kill::HardDeadMansSwitch);
}

#[test]
fn partition_sigint() {
    chaos(Partition, Kill::Interrupt);
}

#[test]
fn cpu_host_sigkill_then_recover() {
    chaos(CpuHost, Kill::HardThenRecover);
}

#[test]
fn cpu_host_sigint() {
    chaos(CpuHost, Kill::Interrupt);
}

#[test]
fn cpu_exec_sigkill_then_recover() {
    chaos(CpuExec, Kill::HardThenRecover);
}

#[test]
fn cpu_exec_sigint() {
    chaos(CpuExec, Kill::Interrupt);
}

/// Fewer trials: each waits out the stressor's deadline.
#[test]
fn cpu_exec_sigkill_own_deadline() {
    chaos(CpuExec, Kill::HardDeadline);
}

#[test]
fn cpu_host_sigkill_own_deadline() {
    chaos(CpuHost, Kill::HardDeadline);
}

#[test]
fn memory_host_sigkill_then_recover() {
    chaos(MemoryHost, Kill::HardThenRecover);
}

#[test]
fn memory_host_sigint() {
    chaos(MemoryHost, Kill::Interrupt);
}

#[test]
fn memory_host_sigkill_own_deadline() {
    chaos(MemoryHost, Kill::HardDeadline);
}

#[test]
fn memory_exec_sigkill_then_recover() {
    chaos(MemoryExec, Kill::HardThenRecover);
}

#[test]
fn memory_exec_sigint() {
    chaos(MemoryExec, Kill::Interrupt);
}

#[test]
fn memory_exec_sigkill_own_deadline() {
    chaos(MemoryExec, Kill::HardDeadline);
}

#[test]
fn disk_host_sigkill_then_recover() {
    chaos(DiskHost, Kill::HardThenRecover);
}

#[test]
fn disk_host_sigint() {
    chaos(DiskHost, Kill::Interrupt);
}

#[test]
fn disk_exec_sigkill_then_recover() {
    chaos(DiskExec, Kill::HardThenRecover);
}

#[test]
fn disk_exec_sigint() {
    chaos(DiskExec, Kill::Interrupt);
}

#[test]
fn io_host_sigkill_then_recover() {
    chaos(IoHost, Kill::HardThenRecover);
}

#[test]
fn io_host_sigkill_dead_mans_switch() {
    chaos(IoHost, Kill::HardDeadMansSwitch);
}

#[test]
fn io_host_sigint() {
    chaos(IoHost, Kill::Interrupt);
}

#[test]
fn io_exec_sigkill_then_recover() {
    chaos(IoExec, Kill::HardThenRecover);
}

#[test]
fn io_exec_sigint() {
    chaos(IoExec, Kill::Interrupt);
}

#[test]
fn io_exec_sigkill_own_deadline() {
    chaos(IoExec, Kill::HardDeadline);
}

#[test]
fn stop_sigkill_then_recover() {
    chaos(Stop, Kill::HardThenRecover);
}

#[test]
fn stop_sigint() {
    chaos(Stop, Kill::Interrupt);
}

#[test]
fn network_nfqueue_sigkill_then_recover() {
    chaos(NetworkNfqueue, Kill::HardThenRecover);
}

#[test]
fn network_nfqueue_sigint() {
    chaos(NetworkNfqueue, Kill::Interrupt);
}

#[test]
fn the_harness_detects_a_leftover() {
    // Guards the harness itself: a container paused behind faultline's back is seen.
    let Some((fleet, web)) = one_web("chaos-self") else {
        return;
    };
    docker_ok(&["pause", &web]);
    assert_eq!(paused_containers(&fleet).len(), 1);
}

#[test]
fn the_harness_detects_a_stopped_process() {
    // Guards `stopped_processes`: a process stopped behind faultline's back is seen.
    let Some((fleet, web)) = one_web("chaos-self-stopped") else {
        return;
    };
    assert!(stopped_processes(&fleet).is_empty());
    let pid: i32 = inspect(&web, "{{.State.Pid}}").parse().unwrap();
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let seen = wait_until(Duration::from_secs(2), || {
        stopped_processes(&fleet).len() == 1
    });
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(seen, "the stopped httpd was not seen");
}

#[test]
fn command_sigkill_then_recover() {
    chaos(Command, Kill::HardThenRecover);
}

#[test]
fn command_sigkill_dead_mans_switch() {
    chaos(Command, Kill::HardDeadMansSwitch);
}

#[test]
fn command_sigint() {
    chaos(Command, Kill::Interrupt);
}

#[test]
fn http_sigkill_then_recover() {
    chaos(Http, Kill::HardThenRecover);
}

#[test]
fn http_sigkill_dead_mans_switch() {
    chaos(Http, Kill::HardDeadMansSwitch);
}

#[test]
fn http_sigint() {
    chaos(Http, Kill::Interrupt);
}

#[test]
fn http_outbound_sigkill_then_recover() {
    chaos(HttpOutbound, Kill::HardThenRecover);
}

#[test]
fn http_outbound_sigkill_dead_mans_switch() {
    chaos(HttpOutbound, Kill::HardDeadMansSwitch);
}

#[test]
fn http_outbound_sigint() {
    chaos(HttpOutbound, Kill::Interrupt);
}

#[test]
fn two_targets_sigkill_then_recover() {
    chaos(TwoTargets, Kill::HardThenRecover);
}

#[test]
fn two_targets_sigkill_dead_mans_switch() {
    chaos(TwoTargets, Kill::HardDeadMansSwitch);
}

#[test]
fn two_targets_sigint() {
    chaos(TwoTargets, Kill::Interrupt);
}
