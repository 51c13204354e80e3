//! Chaos on the chaos tool: faultline is killed (SIGKILL) or interrupted (SIGINT) at
//! random moments while its faults are active, and nothing may be left behind.
//!
//! Each fault kind is one [`Scenario`]; a later fault adds itself with a few lines (its
//! YAML and what "left behind" means for it). Trials per case: `FAULTLINE_CHAOS_TRIALS`
//! (default 10). A summary of trials and leftovers is appended to
//! `target/chaos-summary.txt`, which `.ci/run` prints.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::Rng;
use support::*;

struct Scenario {
    name: &'static str,
    /// The faults block, for containers labelled `fltest.group=GROUP`.
    faults: &'static str,
    /// Extra `docker run` flags for the targets.
    container_flags: &'static [&'static str],
    /// How long after start a signal may land (the fault window).
    window: Duration,
    /// Names what is left behind on these containers (empty: nothing).
    leftovers: fn(&Fleet) -> Vec<String>,
    /// For faults that end by themselves: how long after the start they are surely over.
    self_healing: Option<Duration>,
}

fn paused_containers(fleet: &Fleet) -> Vec<String> {
    fleet
        .names
        .iter()
        .filter(|n| paused(n))
        .map(|n| format!("{n} is paused"))
        .collect()
}

const PAUSE: Scenario = Scenario {
    name: "pause",
    faults: "  - pause: {duration: 4s}\n",
    container_flags: &[],
    window: Duration::from_millis(2500),
    leftovers: paused_containers,
    self_healing: None,
};

const REPEATED_KILL: Scenario = Scenario {
    name: "repeated kill",
    faults: "  - kill: {every: 300ms, duration: 3s}\n  - pause: {duration: 3s, after: 100ms}\n",
    container_flags: &["--restart", "always"],
    window: Duration::from_millis(2500),
    leftovers: paused_containers,
    self_healing: None,
};

fn network_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = Vec::new();
    for n in &fleet.names {
        if qdiscs(n).contains("fa17:") {
            left.push(format!("{n} still has faultline's qdisc"));
        }
        if helpers(n) > 0 {
            left.push(format!("{n} still has a network helper"));
        }
    }
    left
}

const NETWORK_HOST: Scenario = Scenario {
    name: "network (host)",
    faults: "  - network: {rate: 1mbit, duration: 4s, strategy: host}\n",
    container_flags: &[],
    window: Duration::from_millis(2500),
    leftovers: network_leftovers,
    self_healing: None,
};

fn nfqueue_leftovers(fleet: &Fleet) -> Vec<String> {
    let mut left = network_leftovers(fleet);
    for n in &fleet.names {
        let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", n]);
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n", "iptables", "-S", "OUTPUT"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("NFQUEUE") {
            left.push(format!("{n} still has faultline's NFQUEUE rule"));
        }
    }
    left
}

const NETWORK_NFQUEUE: Scenario = Scenario {
    name: "network (nfqueue)",
    faults: "  - network: {delay: 50ms, loss: 5, duration: 4s, engine: nfqueue}\n",
    container_flags: &[],
    window: Duration::from_millis(2500),
    leftovers: nfqueue_leftovers,
    self_healing: None,
};

const NETWORK_SIDECAR: Scenario = Scenario {
    name: "network (sidecar)",
    faults: "  - network: {rate: 1mbit, duration: 4s, strategy: sidecar, tc_image: \"faultline-test/tc:1\"}\n",
    container_flags: &[],
    window: Duration::from_millis(2500),
    leftovers: network_leftovers,
    self_healing: None,
};

fn stressors(fleet: &Fleet) -> Vec<String> {
    let mut left = Vec::new();
    // Host stressors of this test: a marker in the command line, and a cgroup of one of
    // this test's containers (other tests run their own at the same time).
    let ids: Vec<String> = fleet.names.iter().map(|n| fleet.id(n)).collect();
    let host = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("faultline-stress-"))
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("cgroup"))
                .is_ok_and(|c| ids.iter().any(|id| c.contains(id)))
        })
        .count();
    if host > 0 {
        left.push(format!("{host} host stressor(s)"));
    }
    for n in &fleet.names {
        let out = docker(&[
            "exec",
            n,
            "sh",
            "-c",
            "cat /proc/[0-9]*/cmdline 2>/dev/null",
        ]);
        let inside = String::from_utf8_lossy(&out.stdout)
            .matches("faultline-stress-")
            .count();
        if inside > 0 {
            left.push(format!("{inside} stressor process(es) in {n}"));
        }
    }
    left
}

const CPU_HOST: Scenario = Scenario {
    name: "cpu_stress (host)",
    faults: "  - cpu_stress: {workers: 1, load: 30, duration: 4s, strategy: host}\n",
    container_flags: &[],
    window: Duration::from_millis(2500),
    leftovers: stressors,
    self_healing: Some(Duration::from_secs(16)),
};

const CPU_EXEC: Scenario = Scenario {
    name: "cpu_stress (exec)",
    faults: "  - cpu_stress: {workers: 1, load: 30, duration: 4s, strategy: exec}\n",
    container_flags: &[],
    window: Duration::from_millis(2500),
    leftovers: stressors,
    self_healing: Some(Duration::from_secs(16)),
};

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

fn start(file: &Path, state: &Path, audit: &Path, switch: bool) -> Child {
    let mut cmd: Command = faultline();
    cmd.arg("run")
        .arg(file)
        .arg("--audit-log")
        .arg(audit)
        .env("FAULTLINE_STATE_DIR", state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !switch {
        cmd.env("FAULTLINE_NO_DEAD_MANS_SWITCH", "1");
    }
    cmd.spawn().unwrap()
}

fn open_entries(state: &Path) -> usize {
    let out = faultline()
        .args(["recover", "--dry-run"])
        .env("FAULTLINE_STATE_DIR", state)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("would revert"))
        .count()
}

fn chaos(s: &Scenario, how: Kill) {
    if !docker_available() {
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
            .name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let mut fleet = Fleet::new(&format!("chaos-{slug}"));
        fleet.web(s.container_flags);
        fleet.web(s.container_flags);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let audit = dir.path().join("audit.jsonl");
        let file = write(
            dir.path(),
            "e.yaml",
            &format!(
                "version: 1\nname: chaos\ntarget:\n  docker: {{labels: {{fltest.group: {}}}}}\n  select: {{mode: all}}\nfaults:\n{}",
                fleet.label(),
                s.faults
            ),
        );
        let mut child = start(&file, &state, &audit, how == Kill::HardDeadMansSwitch);
        // Wait for the first injection, then strike at a random moment of the window.
        assert!(wait_until(Duration::from_secs(10), || std::fs::metadata(
            &audit
        )
        .is_ok_and(|m| m.len() > 0)));
        let at = rng.random_range(0..s.window.as_millis() as u64);
        std::thread::sleep(Duration::from_millis(at));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let signal = if how == Kill::Interrupt {
            nix::sys::signal::Signal::SIGINT
        } else {
            nix::sys::signal::Signal::SIGKILL
        };
        let _ = nix::sys::signal::kill(pid, signal);
        let status = child.wait().unwrap();
        match how {
            Kill::Interrupt => {
                let code = status.code();
                // A signal after the faults ended finishes the run normally.
                assert!(
                    matches!(code, Some(130) | Some(0)),
                    "trial {trial}: exit {code:?}: {}",
                    std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default()
                );
            }
            Kill::HardThenRecover => {
                let out = faultline()
                    .arg("recover")
                    .env("FAULTLINE_STATE_DIR", &state)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "recover failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Kill::HardDeadline => {
                let heal = s.self_healing.expect("only for self-healing faults");
                std::thread::sleep(heal.saturating_sub(Duration::from_millis(at)));
                let left = (s.leftovers)(&fleet);
                assert!(
                    left.is_empty(),
                    "trial {trial}: after the deadline: {left:?}"
                );
                // The journal still says what was injected; recover closes it.
                let out = faultline()
                    .arg("recover")
                    .env("FAULTLINE_STATE_DIR", &state)
                    .output()
                    .unwrap();
                assert!(out.status.success());
            }
            Kill::HardDeadMansSwitch => {
                let healed = wait_until(Duration::from_secs(15), || open_entries(&state) == 0);
                assert!(
                    healed,
                    "trial {trial}: the dead-man's switch did not close the journal"
                );
            }
        }
        let mut left = (s.leftovers)(&fleet);
        if open_entries(&state) > 0 {
            left.push("open journal entries".into());
        }
        if how != Kill::Interrupt || status.code() == Some(130) {
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
        s.name,
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
    chaos(&PAUSE, Kill::HardThenRecover);
}

#[test]
fn pause_sigkill_dead_mans_switch() {
    chaos(&PAUSE, Kill::HardDeadMansSwitch);
}

#[test]
fn pause_sigint() {
    chaos(&PAUSE, Kill::Interrupt);
}

#[test]
fn repeated_kill_sigkill_then_recover() {
    chaos(&REPEATED_KILL, Kill::HardThenRecover);
}

#[test]
fn repeated_kill_sigint() {
    chaos(&REPEATED_KILL, Kill::Interrupt);
}

#[test]
fn network_host_sigkill_then_recover() {
    chaos(&NETWORK_HOST, Kill::HardThenRecover);
}

#[test]
fn network_host_sigint() {
    chaos(&NETWORK_HOST, Kill::Interrupt);
}

#[test]
fn network_sidecar_sigkill_then_recover() {
    chaos(&NETWORK_SIDECAR, Kill::HardThenRecover);
}

#[test]
fn network_sidecar_sigint() {
    chaos(&NETWORK_SIDECAR, Kill::Interrupt);
}

#[test]
fn cpu_host_sigkill_then_recover() {
    chaos(&CPU_HOST, Kill::HardThenRecover);
}

#[test]
fn cpu_host_sigint() {
    chaos(&CPU_HOST, Kill::Interrupt);
}

#[test]
fn cpu_exec_sigkill_then_recover() {
    chaos(&CPU_EXEC, Kill::HardThenRecover);
}

#[test]
fn cpu_exec_sigint() {
    chaos(&CPU_EXEC, Kill::Interrupt);
}

/// Fewer trials: each waits out the stressor's deadline.
#[test]
fn cpu_exec_sigkill_own_deadline() {
    chaos(&CPU_EXEC, Kill::HardDeadline);
}

#[test]
fn cpu_host_sigkill_own_deadline() {
    chaos(&CPU_HOST, Kill::HardDeadline);
}

#[test]
fn network_nfqueue_sigkill_then_recover() {
    chaos(&NETWORK_NFQUEUE, Kill::HardThenRecover);
}

#[test]
fn network_nfqueue_sigint() {
    chaos(&NETWORK_NFQUEUE, Kill::Interrupt);
}

#[test]
fn the_harness_detects_a_leftover() {
    // Guards the harness itself: a container paused behind faultline's back is seen.
    if !docker_available() {
        return;
    }
    let mut fleet = Fleet::new("chaos-self");
    let web = fleet.web(&[]);
    docker_ok(&["pause", &web]);
    assert_eq!(paused_containers(&fleet).len(), 1);
}
